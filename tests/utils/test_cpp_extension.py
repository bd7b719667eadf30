"""dtorch.utils.cpp_extension: C++ extensions built with the system compiler and pybind11, CUDA with nvcc.

Compilations are the slow part (seconds each): the tests share builds through module-scoped fixtures and one
cache directory, and each test that needs a fresh build uses a small source.
"""
from __future__ import annotations

import concurrent.futures
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dtorch
from dtorch.utils import cpp_extension as cpp

SOURCES = pathlib.Path(__file__).with_name("cpp_ext")
REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("dtorch_extensions")


@pytest.fixture(scope="module")
def builds(root):
    """The shared extensions, compiled concurrently (the compilers run in parallel on a multi-core machine)."""
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futures = {
            "add": pool.submit(cpp.load, "dtorch_test_add", [str(SOURCES / "add.cpp")], build_directory=root),
            "inline": pool.submit(cpp.load_inline, "dtorch_test_inline", (SOURCES / "scaled.cpp").read_text(),
                                  functions={"add_scaled": "a + alpha * b", "scale": "alpha * g"},
                                  build_directory=root),
            # the seed's CUDA example as written (the import needs no GPU; tests/cuda runs it)
            "custom_op": pool.submit(cpp.load, name="custom_op", sources=[str(SOURCES / "custom_op.cu")],
                                     extra_cuda_cflags=["-O3"], build_directory=root)}
        concurrent.futures.wait(futures.values())
    return futures


@pytest.fixture(scope="module")
def ext(builds):
    return builds["add"].result()


@pytest.fixture(scope="module")
def inline_ext(builds):
    return builds["inline"].result()


@pytest.mark.parametrize("dtype", [dtorch.float32, dtorch.float64])
def test_load_add(ext, dtype):
    a, b = dtorch.randn(3, 5, dtype=dtype), dtorch.randn(3, 5, dtype=dtype)
    out = ext.add(a, b)
    assert type(out) is dtorch.Tensor and out.dtype == dtype and out.shape == (3, 5) and out.device.type == "cpu"
    np.testing.assert_array_equal(out.numpy(), a.numpy() + b.numpy())
    t = a.t()  # non-contiguous inputs go through Tensor::contiguous()
    np.testing.assert_array_equal(ext.add(t, b.t()).numpy(), a.numpy().T + b.numpy().T)


def test_zero_copy(ext):
    a, b = dtorch.randn(1000), dtorch.randn(1000)
    out, written, read = ext.add_scaled(a, b, 2.0)
    assert written == out.data_ptr() and read == a.data_ptr()  # the buffer C++ wrote is the tensor's own
    np.testing.assert_allclose(out.numpy(), a.numpy() + 2 * b.numpy(), rtol=1e-6)
    base = dtorch.zeros(3, 4)
    ext.fill_index(base.t())  # writes through the strides of a view, into the base's storage
    np.testing.assert_array_equal(base.numpy(), (np.arange(4)[:, None] * 10 + np.arange(3)).T)


def test_tensor_accessors(ext):
    x = dtorch.zeros(4, 6, dtype=dtorch.float64)
    assert ext.describe(x) == [2, 24, 7, 1, 8]
    assert ext.describe(x.t()) == [2, 24, 7, 0, 8]
    assert ext.describe(x[:, :1]) == [2, 4, 7, 0, 8]
    assert ext.describe(x[:1].t()) == [2, 6, 7, 1, 8]  # torch ignores the stride of a size-1 dimension
    assert ext.describe(dtorch.zeros(3, dtype=dtorch.int64)) == [1, 3, 4, 1, 8]
    assert ext.describe(dtorch.zeros(3, dtype=dtorch.bfloat16)) == [1, 3, 15, 1, 2]
    x = dtorch.randn(1000).to(dtorch.bfloat16)
    y = ext.scale_bf16(x, 3.0)
    assert y.dtype == dtorch.bfloat16
    np.testing.assert_array_equal(y.float().numpy(), (x.float() * 3).to(dtorch.bfloat16).float().numpy())
    with pytest.raises(RuntimeError, match="expected scalar type BFloat16 but found Float"):
        ext.scale_bf16(x.float(), 1.0)
    ones = ext.ones([2, 3])
    assert type(ones) is dtorch.Tensor and ones.dtype == dtorch.float64 and ones.tolist() == [[1.0] * 3] * 2


def test_torch_check_errors(ext):
    a = dtorch.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"^add: dtype mismatch, Float vs Double$"):
        ext.add(a, a.double())
    with pytest.raises(RuntimeError, match=r"^add: shape mismatch, \[2, 3\] vs \[3, 2\]$"):
        ext.add(a, a.t())
    with pytest.raises(NotImplementedError, match="\"add\" not implemented for 'Int'"):
        ext.add(a.int(), a.int())
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        ext.fill_index(a.double())
    with pytest.raises(RuntimeError, match="fill_index: expected a 2-d tensor, got 1-d"):
        ext.fill_index(dtorch.zeros(3))
    with pytest.raises(TypeError, match="incompatible function arguments"):
        ext.add(a, np.zeros((2, 3), np.float32))


class AddScaled(dtorch.autograd.Function):
    """a + alpha * b with forward and backward in C++ (torch's custom-op tutorial pattern)."""

    @staticmethod
    def forward(ctx, a, b, alpha, ext):
        ctx.alpha, ctx.ext = alpha, ext
        return ext.add_scaled(a, b, alpha)

    @staticmethod
    def backward(ctx, g):
        return g, ctx.ext.scale(g, ctx.alpha), None, None


def test_load_inline_function_gradcheck(inline_ext):
    assert inline_ext.add_scaled.__doc__.strip().endswith("a + alpha * b")
    a = dtorch.randn(4, 3, dtype=dtorch.float64, requires_grad=True)
    b = dtorch.randn(4, 3, dtype=dtorch.float64, requires_grad=True)
    out = AddScaled.apply(a, b, 0.5, inline_ext)
    np.testing.assert_allclose(out.detach().numpy(), a.detach().numpy() + 0.5 * b.detach().numpy())
    assert dtorch.autograd.gradcheck(lambda x, y: AddScaled.apply(x, y, 0.5, inline_ext), (a, b))
    with pytest.raises(RuntimeError, match=r"add_scaled: shape mismatch, \[4, 3\] vs \[3\]"):
        inline_ext.add_scaled(a.detach(), dtorch.zeros(3, dtype=dtorch.float64), 1.0)


def test_compile_error_names_file_and_line(root):
    source = "int broken() {\n  return undefined_name;\n}\n"
    with pytest.raises(RuntimeError, match="Error building extension 'dtorch_test_broken'") as info:
        cpp.load_inline("dtorch_test_broken", source, build_directory=root)
    # load_inline prepends one #include line: the error is on main.cpp's line 3
    assert "main.cpp:3:" in str(info.value) and "undefined_name" in str(info.value)


_LOADER = """
import sys
from dtorch.utils.cpp_extension import load
m = load("dtorch_test_value", [sys.argv[1]], extra_cflags=["-DFACTOR=3"], build_directory=sys.argv[2], verbose=True)
print("value", m.value())
"""


def test_two_processes_build_once_then_cache_hit_then_rebuild(tmp_path, monkeypatch):
    for f in ("value.cpp", "value.h"):
        (tmp_path / f).write_text((SOURCES / f).read_text())
    src, root = tmp_path / "value.cpp", tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs = [subprocess.Popen([sys.executable, "-c", _LOADER, str(src), str(root)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all("value 3" in out for out in outputs)
    assert sum(out.count("building extension") for out in outputs) == 1, outputs  # one built, one waited

    def load():
        return cpp.load("dtorch_test_value", [str(src)], extra_cflags=["-DFACTOR=3"], build_directory=root)

    monkeypatch.setenv("CXX", "false")  # a cache hit must not need the compiler
    assert load().value() == 3
    [build] = [d for d in (root / "dtorch_test_value").iterdir() if d.is_dir()]
    (tmp_path / "value.h").write_text("#define VALUE 2\n")
    assert not cpp._deps_current(build / "deps.json")  # an included header changed: that build is stale
    src.write_text(src.read_text().replace("VALUE * FACTOR", "VALUE * FACTOR + 100"))
    with pytest.raises(RuntimeError, match="Error building extension 'dtorch_test_value'"):
        load()  # the source changed: it rebuilds (and the compiler is `false`)
    monkeypatch.delenv("CXX")
    assert load().value() == 106


def test_seed_cuda_example_compiles_with_nvcc(builds):
    nvcc = cpp.find_nvcc()
    assert "site-packages" in str(nvcc) and "nvidia" in str(nvcc)  # from the nvidia-cuda-nvcc wheel
    custom_op = builds["custom_op"].result()
    assert custom_op.add.__doc__.strip().endswith("Add two tensors (CUDA)")
    assert "cuda" in cpp.include_paths("cuda")[-1] or "cu13" in cpp.include_paths("cuda")[-1]


def test_setup_py_build_extension(tmp_path):
    (tmp_path / "setup_ext.cpp").write_text((SOURCES / "setup_ext.cpp").read_text())
    (tmp_path / "setup.py").write_text(textwrap.dedent("""
        from setuptools import setup
        from dtorch.utils.cpp_extension import BuildExtension, CppExtension
        setup(name="dtorch_test_setup", ext_modules=[CppExtension("dtorch_test_setup", ["setup_ext.cpp"],
                                                                   extra_compile_args=["-O0", "-g0"])],
              cmdclass={"build_ext": BuildExtension})
    """))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run([sys.executable, "-c", "import dtorch, dtorch_test_setup as m; "
                          "print(m.twice(dtorch.arange(4, dtype=dtorch.float32)).tolist())"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "[0.0, 2.0, 4.0, 6.0]", run.stdout + run.stderr


def test_not_python_module_and_argument_errors(ext, root):
    # same sources and flags as the fixture: a cache hit, loaded as a plain library
    assert cpp.load("dtorch_test_add", [str(SOURCES / "add.cpp")], build_directory=root,
                    is_python_module=False) is None
    path = cpp.load("dtorch_test_add", [str(SOURCES / "add.cpp")], build_directory=root, is_python_module=False,
                    is_standalone=True)
    assert pathlib.Path(path).parent.parent == root / "dtorch_test_add"
    with pytest.raises(FileNotFoundError, match="source file not found"):
        cpp.load("dtorch_test_missing", [str(SOURCES / "missing.cpp")], build_directory=root)
    with pytest.raises(ValueError, match="valid Python identifier"):
        cpp.load("not-an-identifier", [str(SOURCES / "add.cpp")], build_directory=root)
    with pytest.raises(ValueError, match="Expected 'functions' to be a list or dict"):
        cpp.load_inline("dtorch_test_f", "", functions=3, build_directory=root)


def test_build_key_and_arch_flags(monkeypatch):
    src = [SOURCES / "add.cpp"]
    opts = cpp._options(None, None, None, None)
    key = cpp.build_key("e", src, False, opts)
    assert key == cpp.build_key("e", src, False, opts)
    others = {cpp.build_key("e", src, False, cpp._options(["-O3"], None, None, None)),
              cpp.build_key("e2", src, False, opts), cpp.build_key("e", [SOURCES / "scaled.cpp"], False, opts)}
    assert key not in others and len(others) == 3
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
    assert cpp._arch_flags([]) == ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90",
                                   "-gencode=arch=compute_90,code=compute_90"]
    assert cpp._arch_flags(["-arch=sm_70"]) == []
    paths = cpp.include_paths()
    assert (pathlib.Path(paths[0]) / "torch" / "extension.h").is_file() and len(paths) == 3
    assert cpp.library_paths() == []
