"""The torch APIs programs touch before their first op: accelerator, backends, finfo/iinfo, the legacy
constructors, threads, pinned and shared memory, compile, and tensors over np.memmap (nanoGPT's get_batch)."""
from __future__ import annotations

import multiprocessing
import re
import warnings

import numpy as np
import pytest

import dtorch
import dtorch.backends.cudnn as cudnn
from tests.oracle import assert_close

HAS_GPU = dtorch.cuda.is_available()


# ---- dtorch.accelerator ------------------------------------------------------------------------
def test_accelerator_matches_torchs_cpu_build(torch):
    if HAS_GPU:
        pytest.skip("the oracle is torch's CPU build")
    assert dtorch.accelerator.is_available() is torch.accelerator.is_available() is False
    assert dtorch.accelerator.current_accelerator() is torch.accelerator.current_accelerator() is None
    assert dtorch.accelerator.current_accelerator(check_available=True) is None
    assert dtorch.accelerator.device_count() == torch.accelerator.device_count() == 0
    for name, args in [("current_device_index", ()), ("set_device_index", (0,)), ("synchronize", ()),
                       ("memory_allocated", ()), ("empty_cache", ())]:
        with pytest.raises(RuntimeError) as want:
            getattr(torch.accelerator, name)(*args)
        with pytest.raises(RuntimeError, match=re.escape(str(want.value))):
            getattr(dtorch.accelerator, name)(*args)
    with dtorch.accelerator.device_index(None):
        pass


def test_accelerator_names_are_torchs(torch):
    for name in dtorch.accelerator.__all__:
        assert callable(getattr(torch.accelerator, name)), name


def test_accelerator_with_a_gpu():
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    assert dtorch.accelerator.is_available()
    assert dtorch.accelerator.current_accelerator() == dtorch.device("cuda")
    assert dtorch.accelerator.device_count() == dtorch.cuda.device_count()
    dtorch.accelerator.set_device_index(0)
    assert dtorch.accelerator.current_device_index() == 0
    dtorch.accelerator.synchronize()


# ---- dtorch.backends ---------------------------------------------------------------------------
@pytest.fixture
def fresh_matmul_flags():
    m = dtorch.backends.cuda.matmul
    saved = dict(m._values), dtorch.get_float32_matmul_precision()
    yield m
    m._values.update(saved[0])
    dtorch.backends.cuda._precision[0] = saved[1]


def test_backend_defaults_are_torchs(torch, fresh_matmul_flags):
    m, tm = dtorch.backends.cuda.matmul, torch.backends.cuda.matmul
    for name in ("allow_tf32", "fp32_precision", "allow_fp16_reduced_precision_reduction",
                 "allow_bf16_reduced_precision_reduction", "allow_fp16_accumulation"):
        assert getattr(m, name) == getattr(tm, name), name
    for name in ("enabled", "benchmark", "deterministic", "allow_tf32", "fp32_precision"):
        assert getattr(cudnn, name) == getattr(torch.backends.cudnn, name), name
    for mod, tmod in [(cudnn, torch.backends.cudnn), (dtorch.backends.mps, torch.backends.mps)]:
        assert [n for n in mod.__all__ if not hasattr(tmod, n)] == []
    assert dtorch.get_float32_matmul_precision() == "highest"
    assert dtorch.backends.mps.is_available() is torch.backends.mps.is_available() is False
    assert dtorch.backends.mps.is_built() is False
    if not HAS_GPU:
        assert cudnn.is_available() is torch.backends.cudnn.is_available() is False
        assert cudnn.version() is torch.backends.cudnn.version() is None


def test_unknown_matmul_flag_is_an_attribute_error(torch):
    for lib in (torch, dtorch):
        with pytest.raises(AttributeError, match="Unknown attribute foo"):
            lib.backends.cuda.matmul.foo  # noqa: B018
        with pytest.raises(AttributeError, match="Unknown attribute foo"):
            lib.backends.cuda.matmul.foo = 1
    with pytest.raises(RuntimeError, match="expects a bool, but got str"):
        dtorch.backends.cuda.matmul.allow_tf32 = "yes"
    with pytest.raises(RuntimeError, match="Unknown precision: bad"):
        dtorch.backends.cuda.matmul.fp32_precision = "bad"


@pytest.mark.parametrize("precision, tf32, fp32", [("high", True, "tf32"), ("medium", True, "tf32"),
                                                   ("highest", False, "ieee")])
def test_float32_matmul_precision_sets_tf32_as_torch(torch, fresh_matmul_flags, precision, tf32, fp32):
    torch.set_float32_matmul_precision(precision)
    try:
        dtorch.set_float32_matmul_precision(precision)
        m, tm = dtorch.backends.cuda.matmul, torch.backends.cuda.matmul
        assert (m.allow_tf32, m.fp32_precision) == (tm.allow_tf32, tm.fp32_precision) == (tf32, fp32)
        assert dtorch.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == precision
    finally:
        torch.set_float32_matmul_precision("highest")


def test_allow_tf32_and_the_precision_are_one_flag(fresh_matmul_flags):
    m = fresh_matmul_flags
    m.allow_tf32 = True
    assert (m.fp32_precision, dtorch.get_float32_matmul_precision()) == ("tf32", "high")
    m.allow_tf32 = False
    assert (m.fp32_precision, dtorch.get_float32_matmul_precision()) == ("ieee", "highest")
    m.fp32_precision = "tf32"
    assert m.allow_tf32 is True
    with pytest.warns(UserWarning, match="has no effect"):
        dtorch.set_float32_matmul_precision("low")
    assert dtorch.get_float32_matmul_precision() == "high"


def test_tf32_flag_reaches_cupy(fresh_matmul_flags):
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    from cupy._core import _routines_linalg as linalg

    cp = dtorch._device.cupy_module()
    f32 = np.dtype(np.float32)
    fresh_matmul_flags.allow_tf32 = True
    want = linalg.COMPUTE_TYPE_TF32 if int(cp.cuda.Device().compute_capability) >= 80 else \
        linalg.COMPUTE_TYPE_DEFAULT
    assert linalg.get_compute_type(f32) == want
    fresh_matmul_flags.allow_tf32 = False
    assert linalg.get_compute_type(f32) == linalg.COMPUTE_TYPE_DEFAULT


def test_flags_set_before_cupy_loads_apply_when_it_does(monkeypatch):
    seen = []
    monkeypatch.setattr(dtorch._device, "_on_load", [])
    monkeypatch.setattr(dtorch._device, "_cupy", None)
    monkeypatch.setattr(dtorch._device, "_cupy_checked", False)
    dtorch._device.when_cupy_loaded(seen.append)
    dtorch._device.when_cupy_loaded(seen.append)  # registered once
    assert seen == []
    cp = dtorch._device.cupy_module()
    assert seen == ([cp] if cp is not None else [])


def test_cudnn_is_a_module_whose_flags_stick():
    import importlib

    assert importlib.import_module("dtorch.backends.cudnn") is dtorch.backends.cudnn is cudnn
    old = cudnn.benchmark, cudnn.deterministic
    try:
        cudnn.benchmark, cudnn.deterministic = True, True
        assert dtorch.backends.cudnn.benchmark and dtorch.backends.cudnn.deterministic
        with cudnn.flags(enabled=False, deterministic=False):
            assert not cudnn.enabled and not cudnn.deterministic
        assert cudnn.enabled and cudnn.deterministic
    finally:
        cudnn.benchmark, cudnn.deterministic = old


# ---- finfo / iinfo -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_is_torchs(torch, name):
    got, want = dtorch.finfo(getattr(dtorch, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(got, field) == getattr(want, field), field
        assert type(getattr(got, field)) is type(getattr(want, field)), field
    assert repr(got) == repr(want)


def test_finfo_of_the_default_dtype(float64_default):
    assert dtorch.finfo().dtype == "float64"
    assert dtorch.finfo(np.float32).bits == 32


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_is_torchs(torch, name):
    got, want = dtorch.iinfo(getattr(dtorch, name)), torch.iinfo(getattr(torch, name))
    for field in ("bits", "max", "min", "dtype"):
        assert getattr(got, field) == getattr(want, field), field
    assert type(got.max) is int
    assert repr(got) == repr(want)


def test_finfo_and_iinfo_refuse_the_other_kind(torch):
    for make, dt in [("finfo", "int32"), ("iinfo", "float32"), ("iinfo", "bool")]:
        with pytest.raises(TypeError) as want:
            getattr(torch, make)(getattr(torch, dt))
        with pytest.raises(TypeError, match=re.escape(str(want.value).replace("torch.", "dtorch."))):
            getattr(dtorch, make)(getattr(dtorch, dt))


# ---- legacy constructors -----------------------------------------------------------------------
LEGACY = ["BoolTensor", "ByteTensor", "CharTensor", "ShortTensor", "IntTensor", "LongTensor", "HalfTensor",
          "FloatTensor", "DoubleTensor"]


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_constructor_from_data(torch, name):
    data = [[1, 0], [2.7, -3]] if name != "ByteTensor" else [[1, 0], [2.7, 3]]
    got, want = getattr(dtorch, name)(data), getattr(torch, name)(data)
    assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
    assert got.tolist() == want.tolist()
    assert isinstance(got, getattr(dtorch, name)) and isinstance(got, dtorch.Tensor)
    assert not isinstance(got, dtorch.FloatTensor if name != "FloatTensor" else dtorch.LongTensor)
    assert getattr(dtorch, name).__name__ == name and getattr(dtorch, name).dtype is got.dtype


def test_legacy_constructor_from_sizes(torch):
    for args in [(2, 3), (4,), (), (dtorch.Size([2, 3]),)]:
        targs = tuple(torch.Size(a) if isinstance(a, dtorch.Size) else a for a in args)
        assert tuple(dtorch.FloatTensor(*args).shape) == tuple(torch.FloatTensor(*targs).shape)
    assert dtorch.LongTensor(2, 3).dtype is dtorch.int64
    assert tuple(dtorch.Tensor().shape) == (0,)
    assert dtorch.FloatTensor((2, 3)).tolist() == [2.0, 3.0]  # a tuple is data, as in torch


def test_legacy_constructor_from_a_tensor(torch):
    t = dtorch.zeros(3)
    assert dtorch.FloatTensor(t).data_ptr() == t.data_ptr()
    with pytest.raises(TypeError, match=r"expected Long \(got Float\)"):
        dtorch.LongTensor(t)
    with pytest.raises(TypeError):
        torch.LongTensor(torch.zeros(3))


def test_isinstance_of_a_legacy_type_checks_the_dtype():
    x = dtorch.zeros(2)
    assert isinstance(x, dtorch.FloatTensor) and not isinstance(x, dtorch.DoubleTensor)
    assert isinstance(x.long(), dtorch.LongTensor)
    assert not isinstance(np.zeros(2, np.float32), dtorch.FloatTensor)
    assert dtorch.typename(x) == "dtorch.FloatTensor"


def test_type_converts_to_a_legacy_type(torch):
    x = dtorch.zeros(2)
    assert x.type(dtorch.LongTensor).dtype is dtorch.int64
    assert torch.zeros(2).type(torch.LongTensor).dtype is torch.int64


# ---- threads -----------------------------------------------------------------------------------
def test_set_num_threads_sets_the_blas_pool(torch):
    from threadpoolctl import ThreadpoolController

    before = dtorch.get_num_threads()
    try:
        dtorch.set_num_threads(1)
        assert dtorch.get_num_threads() == 1
        blas = [lib.num_threads for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        assert set(blas) <= {1}
    finally:
        dtorch.set_num_threads(before)
    assert dtorch.get_num_threads() == before
    for bad in (0, -1):
        with pytest.raises(RuntimeError, match="set_num_threads expects a positive integer"):
            torch.set_num_threads(bad)
        with pytest.raises(RuntimeError, match="set_num_threads expects a positive integer"):
            dtorch.set_num_threads(bad)
    with pytest.raises(RuntimeError, match="set_num_threads expects an int, but got float"):
        dtorch.set_num_threads(2.0)


# ---- Tensor: device kinds, pinned and shared memory --------------------------------------------
def test_tensor_device_kind_flags(torch):
    x, tx = dtorch.zeros(2), torch.zeros(2)
    for name in ("is_xpu", "is_mps", "is_meta", "is_cpu", "is_cuda"):
        assert getattr(x, name) is getattr(tx, name), name


def test_pin_memory_without_a_gpu_is_torchs_error(torch):
    if HAS_GPU:
        pytest.skip("the oracle is torch's CPU build")
    x, tx = dtorch.zeros(2), torch.zeros(2)
    assert x.is_pinned() is tx.is_pinned() is False
    with pytest.raises(RuntimeError) as want:
        tx.pin_memory()
    with pytest.raises(RuntimeError, match=re.escape(str(want.value))):
        x.pin_memory()


def test_pin_memory_with_a_gpu():
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    x = dtorch.arange(6.0).reshape(2, 3)
    p = x.pin_memory()
    assert p.is_pinned() and p[1].is_pinned() and not x.is_pinned()
    assert p.pin_memory() is p
    assert p.tolist() == x.tolist()
    assert p.to("cuda", non_blocking=True).cpu().tolist() == x.tolist()


def test_share_memory_keeps_the_tensor_and_its_values(torch):
    x = dtorch.arange(6.0).reshape(2, 3).t()
    assert not x.is_shared() and not torch.zeros(1).is_shared()
    assert x.share_memory_() is x
    assert x.is_shared() and x[0].is_shared()
    assert x.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    before = x.data_ptr()
    x.share_memory_()
    assert x.data_ptr() == before  # already shared: no new copy
    empty = dtorch.zeros(0).share_memory_()
    assert empty.is_shared() and empty.shape == (0,)


def _child_fills(t: dtorch.Tensor) -> None:
    t.fill_(7.0)


def test_shared_tensor_is_shared_with_a_forked_process():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    x = dtorch.zeros(4).share_memory_()
    p = multiprocessing.get_context("fork").Process(target=_child_fills, args=(x,))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert x.tolist() == [7.0] * 4


def test_parameters_train_after_share_memory():
    w = dtorch.nn.Parameter(dtorch.ones(3))
    w.share_memory_()
    (w * 2).sum().backward()
    assert w.grad.tolist() == [2.0] * 3
    with dtorch.no_grad():
        w -= w.grad
    assert w.tolist() == [-1.0] * 3 and w.is_shared()


# ---- compile -----------------------------------------------------------------------------------
def test_compile_wraps_a_module_and_keeps_its_outputs():
    model = dtorch.nn.Linear(2, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = dtorch.compile(model)
        compiled_too = dtorch.compile(model, mode="max-autotune", fullgraph=True)
        x = dtorch.randn(3, 2)
        with dtorch.no_grad():
            assert dtorch.equal(compiled(x), model(x)) and dtorch.equal(compiled_too(x), model(x))
    assert caught == []  # a capturable model compiles without a warning
    assert isinstance(compiled, dtorch.nn.Module) and compiled._orig_mod is model
    assert compiled.weight is model.weight
    with pytest.raises(RuntimeError, match="Unrecognized mode=fast"):
        dtorch.compile(model, mode="fast")


def test_compile_as_a_decorator():
    @dtorch.compile
    def f(x):
        return x * 2

    @dtorch.compile(mode="max-autotune")
    def g(x):
        return x + 1

    assert f(dtorch.ones(1)).item() == 2.0 and g(dtorch.ones(1)).item() == 2.0
    assert f.__name__ == "f"


# ---- tensors over np.memmap (nanoGPT's get_batch) ----------------------------------------------
@pytest.fixture
def memmap_file(tmp_path):
    path = tmp_path / "train.bin"
    m = np.memmap(path, dtype=np.uint16, mode="w+", shape=(64,))
    m[:] = np.arange(64) * 3
    m.flush()
    del m
    return path


def test_from_numpy_of_a_memmap_batch(memmap_file, torch):
    data = np.memmap(memmap_file, dtype=np.uint16, mode="r")
    ix = [3, 10, 40]
    x = dtorch.stack([dtorch.from_numpy(data[i:i + 8].astype(np.int64)) for i in ix])
    tx = torch.stack([torch.from_numpy(data[i:i + 8].astype(np.int64)) for i in ix])
    assert x.device == dtorch.device("cpu") and x.is_cpu and not x.is_cuda
    assert x.tolist() == tx.tolist()
    emb = dtorch.nn.Embedding(200, 4)
    emb(x).sum().backward()
    assert emb.weight.grad.shape == (200, 4)


@pytest.mark.parametrize("make", ["from_numpy", "as_tensor", "tensor", "Tensor"])
def test_creation_from_a_memmap_makes_a_host_tensor(memmap_file, make):
    m = np.memmap(memmap_file, dtype=np.float32, mode="w+", shape=(4, 4))
    m[:] = np.arange(16, dtype=np.float32).reshape(4, 4)
    t = getattr(dtorch, make)(m)
    assert type(t._data) is np.ndarray and t.device == dtorch.device("cpu")
    if make in ("from_numpy", "as_tensor"):  # these share memory, without a copy
        assert np.shares_memory(t.numpy(), m)
        m[0, 0] = 100.0
        assert t[0, 0].item() == 100.0
        m[0, 0] = 0.0
    w = t.detach().clone().requires_grad_(True)
    y = (w @ w.t()).relu().sum() + (w * 2).mean()
    y.backward()
    ref = m.view(np.ndarray).astype(np.float64)
    want = 2 * np.ones((4, 4)) @ ref + 2.0 / 16  # d/dW sum(W W^T) = 2 * 1 W for a non-negative W
    assert_close(w.grad, want.astype(np.float32))


def test_as_tensor_of_a_memmap_with_another_dtype(memmap_file):
    m = np.memmap(memmap_file, dtype=np.uint8, mode="r", shape=(16,))
    t = dtorch.as_tensor(m, dtype=dtorch.int64)
    assert type(t._data) is np.ndarray and t.dtype is dtorch.int64
    assert (t + 1).tolist() == (m.astype(np.int64) + 1).tolist()


def test_sdp_kernel_flags_are_torchs(torch):
    for kind in ("flash", "mem_efficient", "math", "cudnn"):
        enabled = getattr(dtorch.backends.cuda, f"{kind}_sdp_enabled")
        assert enabled() is getattr(torch.backends.cuda, f"{kind}_sdp_enabled")() is True
        getattr(dtorch.backends.cuda, f"enable_{kind}_sdp")(False)
        try:
            assert enabled() is False
        finally:
            getattr(dtorch.backends.cuda, f"enable_{kind}_sdp")(True)
    for name in dtorch.backends.cuda.__all__:
        assert hasattr(torch.backends.cuda, name), name


def test_kernels_are_silent_on_inf_and_nan_like_torch():
    """In a user's program (pytest installs its own warning filters, so a fresh interpreter)."""
    import subprocess
    import sys

    code = ("import dtorch, numpy as np\n"
            "out = [dtorch.log(dtorch.zeros(2)), dtorch.ones(1) / 0, dtorch.exp(dtorch.tensor([1000.0]))]\n"
            "print([t.tolist() for t in out])\n"
            "np.log(np.zeros(1))\n")
    p = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "[[-inf, -inf], [inf], [inf]]", p.stderr
    assert p.stderr.count("RuntimeWarning") == 1 and "<string>:4:" in p.stderr  # only the user's numpy call warns
