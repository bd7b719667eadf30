"""load_inline: signature parsing, argument checks, cache key and layout (CPU); build and run (GPU)."""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import dtorch
from dtorch.utils import cuda_extension as ce

def test_parse_kernels():
    src = ('extern "C" __global__ void k(const float* __restrict__ a, double s, long long n, int* flags) {}\n'
           'extern "C" __global__ void other(unsigned int x) {}\n__device__ void helper(float* p) {}')
    assert ce.parse_kernels(src) == {"k": [("float", True), ("double", False), ("long long", False), ("int", True)],
                                     "other": [("unsigned int", False)]}


def test_cache_key_and_layout(tmp_path, monkeypatch):
    k = ce.cache_key("ext", "src", ["-O3"], "compute_90", "12.4")
    assert len(k) == 32 and k == ce.cache_key("ext", "src", ["-O3"], "compute_90", "12.4")
    others = {ce.cache_key("ext", "src2", ["-O3"], "compute_90", "12.4"),
              ce.cache_key("ext", "src", [], "compute_90"),
              ce.cache_key("ext", "src", ["-O3"], "compute_80", "12.4"),
              ce.cache_key("x", "src", ["-O3"], "compute_90")}
    assert k not in others and len(others) == 4
    assert ce.build_dir(tmp_path, "ext", k) == tmp_path / "ext" / k
    monkeypatch.setenv("DTORCH_EXTENSIONS_DIR", str(tmp_path / "env"))
    assert ce.cache_root() == tmp_path / "env"
    assert ce.cache_root(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("DTORCH_EXTENSIONS_DIR")
    assert ce.cache_root() == pathlib.Path.home() / ".cache" / "dtorch_extensions"


def test_convert_args_checks():
    params = [("float", True), ("float", False), ("long long", False)]
    with pytest.raises(TypeError, match="takes 3 arguments"):
        ce.convert_args("k", params, (1, 2))
    with pytest.raises(TypeError, match="expected a CUDA tensor"):
        ce.convert_args("k", params, (dtorch.zeros(3), 1.0, 3))
    with pytest.raises(TypeError, match="unsupported parameter type"):
        ce.convert_args("k", [("mystruct", False)], (1,))


@pytest.mark.skipif(dtorch.cuda.is_available(), reason="checks the no-GPU error")
def test_load_inline_without_gpu():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        ce.load_inline("x", 'extern "C" __global__ void k() {}', ["k"])


@pytest.mark.cuda
@pytest.mark.skipif(not dtorch.cuda.is_available(), reason="no CUDA device")
def test_add_kernel_with_backward(tmp_path, monkeypatch):
    monkeypatch.setenv("DTORCH_EXTENSIONS_DIR", str(tmp_path))
    path = pathlib.Path(__file__).with_name("cuda_extension_add.py")
    spec = importlib.util.spec_from_file_location("ext_example", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    mod = ex.extension()
    assert (mod.path / "kernel.ptx").exists() and (mod.path / "kernel.cu").read_text() == ex.SOURCE
    assert mod.path.parent == tmp_path / "add_scaled_example"
    assert ex.extension().path == mod.path  # second load: from the cache
    a = dtorch.randn(1000, device="cuda", requires_grad=True)
    b = dtorch.randn(1000, device="cuda", requires_grad=True)
    out = ex.AddScaled.apply(a, b, 0.5)
    np.testing.assert_allclose(out.detach().cpu().numpy(), (a + 0.5 * b).detach().cpu().numpy(), rtol=1e-6)
    (out * 2).sum().backward()
    np.testing.assert_array_equal(a.grad.cpu().numpy(), np.full(1000, 2, np.float32))
    np.testing.assert_array_equal(b.grad.cpu().numpy(), np.full(1000, 1, np.float32))
    with pytest.raises(TypeError, match="needs a float32"):
        mod.scale(dtorch.zeros(4, device="cuda", dtype=dtorch.float64), dtorch.zeros(4, device="cuda"), 1.0, 4, numel=4)
