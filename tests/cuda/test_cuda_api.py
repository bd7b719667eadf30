"""dtorch.cuda's API: clear errors without a GPU (CPU), streams/events/memory/NVML on a GPU."""
from __future__ import annotations

import inspect

import pytest

import dtorch
import dtorch.cuda as dc

NO_GPU = not dc.is_available()


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU errors")
@pytest.mark.parametrize("call", [dc.Stream, dc.Event, dc.current_stream, dc.default_stream, dc.synchronize,
                                  dc.utilization, dc.temperature, dc.memory_usage, dc.power_draw,
                                  lambda: dc.Event(enable_timing=True)])
def test_no_gpu_raises_runtime_error(call):
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        call()


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU readings")
def test_no_gpu_memory_readings_are_zero():
    assert dc.memory_allocated() == dc.memory_reserved() == dc.max_memory_allocated() == 0
    dc.reset_peak_memory_stats()
    dc.empty_cache()
    assert "Allocated memory" in dc.memory_summary()
    with dc.stream(None):
        pass


def test_signatures():
    assert list(inspect.signature(dc.Event).parameters)[:1] == ["enable_timing"]
    for name in ("record", "wait", "query", "synchronize", "elapsed_time"):
        assert callable(getattr(dc.Event, name))
    for name in ("synchronize", "query", "wait_event", "wait_stream", "record_event"):
        assert callable(getattr(dc.Stream, name))


@pytest.mark.cuda
@pytest.mark.skipif(NO_GPU, reason="no CUDA device")
def test_streams_and_events():
    s = dc.Stream()
    start, end = dc.Event(enable_timing=True), dc.Event(enable_timing=True)
    x = dtorch.randn(1024, 1024, device="cuda")
    with dc.stream(s):
        assert dc.current_stream() == s
        start.record()
        for _ in range(10):
            x = x @ x / 1024
        end.record()
    assert dc.current_stream() != s
    end.synchronize()
    assert end.query() and s.query()
    assert dc.current_stream() == dc.current_stream() and dc.default_stream().cuda_stream == 0
    assert start.elapsed_time(end) > 0
    dc.current_stream().wait_stream(s)
    dc.synchronize()
    with pytest.raises(RuntimeError, match="enable_timing"):
        dc.Event().elapsed_time(end)


@pytest.mark.cuda
@pytest.mark.skipif(NO_GPU, reason="no CUDA device")
def test_memory_stats():
    dc.empty_cache()
    dc.reset_peak_memory_stats()
    base = dc.memory_allocated()
    x = dtorch.empty(1 << 20, device="cuda")
    assert dc.memory_allocated() >= base + (4 << 20)
    del x
    assert dc.max_memory_allocated() >= base + (4 << 20)
    assert dc.memory_reserved() >= dc.memory_allocated()
    dc.empty_cache()
    assert "Peak allocated" in dc.memory_summary()


@pytest.mark.cuda
@pytest.mark.skipif(NO_GPU, reason="no CUDA device")
def test_nvml_readings():
    pytest.importorskip("pynvml")
    assert 0 <= dc.utilization() <= 100 and 0 <= dc.memory_usage() <= 100
    assert 0 < dc.temperature() < 120 and dc.power_draw() > 0


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU answers")
def test_no_gpu_device_queries():
    assert dc.is_bf16_supported() is False and dc.is_initialized() is False
    for call in (dc.get_device_capability, dc.get_device_properties, dc.mem_get_info, dc.get_arch_list, dc.init,
                 lambda: dc.device(0).__enter__()):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            call()
    with dc.device(None):  # torch: device(None) is a no-op
        pass
    assert issubclass(dc.OutOfMemoryError, RuntimeError)


@pytest.mark.cuda
@pytest.mark.skipif(NO_GPU, reason="needs a GPU")
def test_device_queries_on_gpu(torch):
    assert dc.get_device_capability() == torch.cuda.get_device_capability()
    props, theirs = dc.get_device_properties(0), torch.cuda.get_device_properties(0)
    assert (props.name, props.major, props.minor, props.multi_processor_count) == (
        theirs.name, theirs.major, theirs.minor, theirs.multi_processor_count)
    assert dc.is_bf16_supported() == torch.cuda.is_bf16_supported()
    free, total = dc.mem_get_info()
    assert 0 < free <= total == props.total_memory
    with dc.device(0):
        assert dc.current_device() == 0
