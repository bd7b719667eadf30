"""CPU checks of the CUDA kernel sources: names, dtypes, parameters, and (with CuPy's NVRTC) that they compile."""
from __future__ import annotations

import os

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


# ---- compile with NVRTC through CuPy's binding, as load_inline and CuPy do (no GPU needed) --------------
def _nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
        return nvrtc
    except Exception:  # cupy, or the NVRTC library (nvidia-cuda-nvrtc-cu12), not installed
        return None


_NEEDS_NVRTC = pytest.mark.skipif(_nvrtc() is None, reason="CuPy's NVRTC is not installed: pip install -e '.[nvrtc]'")
ARCHS = ("compute_80", "compute_90")   # A100, H100/H200


def _ptx(name: str, src: str, arch: str, include: tuple[str, ...] = ()) -> str:
    from dtorch.utils.cuda_extension import _compile_ptx

    return _compile_ptx(src, name, [f"--gpu-architecture={arch}", "-std=c++17", *(f"-I{d}" for d in include)])


def _cupy_headers() -> tuple[str, ...]:
    """CuPy's kernel headers (its float16 class) and the CUDA runtime's cuda_fp16.h they include."""
    import os

    import cupy

    dirs = [os.path.join(os.path.dirname(cupy.__file__), "_core", "include")]
    try:
        import nvidia.cuda_runtime as rt

        dirs.append(os.path.join(list(rt.__path__)[0], "include"))
    except ImportError:
        pass
    return tuple(d for d in dirs if os.path.isdir(d))


@_NEEDS_NVRTC
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_raw_kernels_compile(dtype, arch):
    for key, (src, names) in _raw_sources(dtype).items():
        ptx = _ptx(key, src, arch)
        for name in names:
            assert f".entry {name}(" in ptx, (key, name)


@_NEEDS_NVRTC
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", ["float16", *DTYPES])
def test_gelu_operations_compile(dtype, approximate, arch):
    """The elementwise operations in a stand-in for CuPy's generated loop (same names, same types;
    float16 is CuPy's own class from its headers)."""
    include = _cupy_headers()
    if dtype == "float16":
        if not any(os.path.exists(os.path.join(d, "cuda_fp16.h")) for d in include):
            pytest.skip("cuda_fp16.h not found: pip install nvidia-cuda-runtime-cu12")
        head = "#include <cupy/float16.cuh>\n"
    else:
        head = f"typedef {c_type(dtype)} {dtype};\n"
    t = dtype
    fwd, bwd = gelu.forward(dtype, approximate), gelu.backward(dtype, approximate)
    src = head + f"""
extern "C" __global__ void fwd(const {t}* xs, {t}* ys, long long n) {{
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) {{ const {t} x = xs[i]; {t} y; {fwd.operation} ys[i] = y; }}
}}
extern "C" __global__ void bwd(const {t}* gs, const {t}* xs, {t}* gxs, long long n) {{
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) {{ const {t} g = gs[i]; const {t} x = xs[i]; {t} gx; {bwd.operation} gxs[i] = gx; }}
}}
"""
    ptx = _ptx(f"gelu_{dtype}_{approximate}", src, arch, include)
    assert ".entry fwd(" in ptx and ".entry bwd(" in ptx


@_NEEDS_NVRTC
def test_load_inline_example_compiles_and_a_bad_source_names_the_error():
    import cuda_extension_add as example

    ptx = _ptx("add_scaled_example", example.SOURCE, "compute_90")
    assert ".entry add_scaled(" in ptx and ".entry scale(" in ptx
    with pytest.raises(RuntimeError, match=r"load_inline\('broken'\): compilation failed\n.*undefined"):
        _ptx("broken", 'extern "C" __global__ void k(float* a) { a[0] = undefined_name; }', "compute_90")
