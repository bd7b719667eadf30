"""CPU checks of the CUDA kernel sources: names, dtypes, parameters, and (with nvcc) that they compile."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from dtorch.cuda.kernels import BLOCK, c_type, raw_supported
from dtorch.cuda.kernels import amp, gelu, layer_norm, optim, softmax

DTYPES = ("float32", "float64")


def _raw_sources(dtype: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {"softmax": (softmax.source(dtype), softmax.names(dtype)),
            "layer_norm": (layer_norm.source(dtype), layer_norm.names(dtype)),
            "sgd": (optim.sgd_source(dtype), optim.sgd_names(dtype)),
            "adam": (optim.adam_source(dtype, False), (optim.adam_name(dtype, False),)),
            "adam_amsgrad": (optim.adam_source(dtype, True), (optim.adam_name(dtype, True),)),
            "unscale": (amp.source(dtype), (amp.name(dtype),))}


@pytest.mark.parametrize("dtype", DTYPES)
def test_raw_sources_name_their_dtype_and_kernels(dtype):
    t = c_type(dtype)
    other = "double" if t == "float" else "float"
    for key, (src, names) in _raw_sources(dtype).items():
        assert "$" not in src, key  # every placeholder filled
        for name in names:
            assert name.endswith("_" + t) and f'extern "C" __global__ void {name}(' in src, (key, name)
        assert f"const {t}* __restrict__" in src or f"{t}* __restrict__" in src
        assert f"{other}* " not in src, key


def test_row_kernels_use_the_launch_block():
    assert BLOCK & (BLOCK - 1) == 0  # tree reductions need a power of two
    assert f"__shared__ float buf[{BLOCK}]" in softmax.source("float32")


def test_kernel_parameters():
    assert "const long long n, const double eps, const int has_w, const int has_b" in layer_norm.source("float32")
    src = optim.adam_source("float32", True)
    assert "float* __restrict__ vmax," in src and "vmax" not in optim.adam_source("float32", False)
    for p in ("beta1", "beta2", "eps", "weight_decay", "decay", "step_size", "bc2_sqrt", "maximize"):
        assert f" {p}," in src or f" {p})" in src, p
    assert "int* __restrict__ found" in amp.source("float64")


def test_unsupported_dtypes_are_refused():
    assert raw_supported("float32") and raw_supported("float64") and not raw_supported("float16")
    with pytest.raises(TypeError, match="float16"):
        softmax.source("float16")
    with pytest.raises(TypeError, match="int64"):
        gelu.forward("int64")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_gelu_specs(dtype, approximate):
    fwd, bwd = gelu.forward(dtype, approximate), gelu.backward(dtype, approximate)
    assert (fwd.in_params, fwd.out_params) == (f"{dtype} x", f"{dtype} y")
    assert (bwd.in_params, bwd.out_params) == (f"{dtype} g, {dtype} x", f"{dtype} gx")
    acc = "double" if dtype == "float64" else "float"
    assert f"const {acc} v = ({acc})x;" in fwd.operation
    assert ("erf(" in fwd.operation) == (approximate == "none")
    assert fwd.name == f"dtorch_gelu_{approximate}_fwd_{dtype}"


# ---- compile with nvcc where the toolkit is installed (no GPU needed for --ptx) ------------------------
_NVCC = shutil.which("nvcc")


def _ptx(tmp_path, name: str, src: str) -> str:
    cu = tmp_path / f"{name}.cu"
    cu.write_text(src)
    r = subprocess.run([_NVCC, "--ptx", "-arch=compute_80", str(cu), "-o", str(tmp_path / f"{name}.ptx")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return (tmp_path / f"{name}.ptx").read_text()


@pytest.mark.skipif(_NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("dtype", DTYPES)
def test_raw_kernels_compile(tmp_path, dtype):
    for key, (src, names) in _raw_sources(dtype).items():
        ptx = _ptx(tmp_path, key, src)
        for name in names:
            assert f".entry {name}(" in ptx, (key, name)


@pytest.mark.skipif(_NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_operations_compile(tmp_path, dtype, approximate):
    """The elementwise operations in a stand-in for CuPy's generated loop (same names, same types)."""
    t = c_type(dtype)
    fwd, bwd = gelu.forward(dtype, approximate), gelu.backward(dtype, approximate)
    src = f"""typedef {t} {dtype};
extern "C" __global__ void fwd(const {t}* xs, {t}* ys, long long n) {{
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) {{ const {t} x = xs[i]; {t} y; {fwd.operation} ys[i] = y; }}
}}
extern "C" __global__ void bwd(const {t}* gs, const {t}* xs, {t}* gxs, long long n) {{
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) {{ const {t} g = gs[i]; const {t} x = xs[i]; {t} gx; {bwd.operation} gxs[i] = gx; }}
}}
"""
    _ptx(tmp_path, f"gelu_{approximate}", src)
