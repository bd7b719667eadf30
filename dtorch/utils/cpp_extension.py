"""``torch.utils.cpp_extension`` for dtorch: build C++/CUDA extensions that ``#include <torch/extension.h>``.

``load`` compiles source files, ``load_inline`` source strings, into a Python module (pybind11) whose
functions take and return dtorch tensors; ``CppExtension``/``CUDAExtension``/``BuildExtension`` do the
same from a ``setup.py``. The headers (``dtorch/include``) give a small ``torch::Tensor`` over the
dtorch tensor's numpy/CuPy storage (no copies), torch's factories, ``TORCH_CHECK`` and
``AT_DISPATCH_*``.

C++ compiles with ``$CXX`` (default ``c++``); ``.cu`` files with ``nvcc`` from NVIDIA's wheel
(``pip install 'dtorch[cpp]'``), else ``$CUDA_HOME/bin/nvcc``, else ``nvcc`` on ``PATH``. A build lives in
``<root>/<name>/<key>/`` (root: ``build_directory``, ``$DTORCH_EXTENSIONS_DIR`` or
``~/.cache/dtorch_extensions``), ``key`` a hash of the sources, flags, headers, dtorch version and
Python ABI; it is rebuilt when a source or a header it includes changes, and a file lock makes
concurrent loaders (ranks of one job) build once.
"""
from __future__ import annotations

import ctypes
import fcntl
import hashlib
import importlib.metadata
import importlib.machinery
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import threading
from types import ModuleType
from typing import Callable, Sequence

import numpy as np

try:
    import setuptools
    from setuptools.command.build_ext import build_ext
except ImportError:  # only the setup.py helpers need it (it comes with the cpp extra); load/load_inline do not
    setuptools = None
    build_ext = object

from .._device import cupy_module
from .cuda_extension import build_dir, cache_root

_INCLUDE = pathlib.Path(__file__).resolve().parent.parent / "include"
_CUDA_SUFFIXES = (".cu", ".cuh")
_LOADED: dict[str, ModuleType] = {}


def _pybind11_include() -> str:
    try:
        import pybind11
    except ImportError as e:
        raise RuntimeError("dtorch.utils.cpp_extension needs pybind11: pip install 'dtorch[cpp]'") from e
    return pybind11.get_include()


def _wheel_nvcc() -> pathlib.Path | None:
    spec = importlib.util.find_spec("nvidia")
    for base in (spec.submodule_search_locations or []) if spec else []:
        for sub in ("cu13", "cu12", "cuda_nvcc"):
            nvcc = pathlib.Path(base) / sub / "bin" / "nvcc"
            if nvcc.is_file() and os.access(nvcc, os.X_OK):
                return nvcc
    return None


def find_nvcc() -> pathlib.Path:
    """nvcc from NVIDIA's PyPI wheel (``nvidia-cuda-nvcc``), else ``$CUDA_HOME/bin/nvcc``, else ``PATH``."""
    nvcc = _wheel_nvcc()
    if nvcc is None and os.environ.get("CUDA_HOME"):
        candidate = pathlib.Path(os.environ["CUDA_HOME"]) / "bin" / "nvcc"
        nvcc = candidate if candidate.is_file() else None
    if nvcc is None and shutil.which("nvcc"):
        nvcc = pathlib.Path(shutil.which("nvcc")).resolve()
    if nvcc is None:
        raise RuntimeError("nvcc not found: pip install 'dtorch[cpp]' (NVIDIA's nvidia-cuda-nvcc wheel), "
                           "or set CUDA_HOME to a CUDA toolkit")
    return nvcc


def _cuda_home() -> pathlib.Path:
    return find_nvcc().parent.parent


def include_paths(device_type: str | bool = "cpu") -> list[str]:
    """Header directories for an extension: dtorch's ``torch/extension.h``, pybind11, Python (and CUDA)."""
    paths = [str(_INCLUDE), _pybind11_include(), sysconfig.get_paths()["include"]]
    if device_type is True or device_type == "cuda":
        paths.append(str(_cuda_home() / "include"))
    return paths


def library_paths(device_type: str | bool = "cpu") -> list[str]:
    """Library directories: the CUDA runtime's for ``"cuda"``, none for CPU."""
    if device_type is True or device_type == "cuda":
        home = _cuda_home()
        return [str(d) for d in (home / "lib64", home / "lib") if d.is_dir()][:1]
    return []


def _arch_flags(cuda_cflags: Sequence[str]) -> list[str]:
    """``-gencode`` for $TORCH_CUDA_ARCH_LIST ("8.0;9.0+PTX") or the visible GPUs; nvcc's default otherwise."""
    if any(f.startswith(("-arch", "--gpu-architecture", "-gencode", "--generate-code")) for f in cuda_cflags):
        return []
    arch_list = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if arch_list:
        archs = arch_list.replace(",", ";").replace(" ", ";").split(";")
    else:
        cp = cupy_module()
        if cp is None:
            return []
        archs = sorted({cp.cuda.Device(i).compute_capability for i in range(cp.cuda.runtime.getDeviceCount())})
        archs = [f"{a[:-1]}.{a[-1]}" for a in archs]
        archs[-1] += "+PTX"
    flags = []
    for a in filter(None, archs):
        num = a.replace("+PTX", "").replace(".", "")
        flags.append(f"-gencode=arch=compute_{num},code=sm_{num}")
        if a.endswith("+PTX"):
            flags.append(f"-gencode=arch=compute_{num},code=compute_{num}")
    return flags


def _system_includes(with_cuda: bool) -> list[str]:
    flags = []
    for p in include_paths("cuda" if with_cuda else "cpu"):
        flags += ["-isystem", p]
    return flags


def _compile_command(src: pathlib.Path, obj: pathlib.Path, name: str, with_cuda: bool, opts: dict) -> list[str]:
    common = ["-c", str(src), "-o", str(obj), "-MMD", "-MF", f"{obj}.d", "-std=c++17",
              f"-DTORCH_EXTENSION_NAME={name}", "-DTORCH_API_INCLUDE_EXTENSION_H", *_system_includes(with_cuda),
              *(f"-I{p}" for p in opts["extra_include_paths"])]
    if src.suffix in _CUDA_SUFFIXES:
        ccbin = ["-ccbin", os.environ["CXX"]] if os.environ.get("CXX") else []
        return [str(find_nvcc()), *ccbin, *common, "-Xcompiler", "-fPIC", "-Xcompiler", "-fvisibility=hidden",
                *_arch_flags(opts["extra_cuda_cflags"]), *opts["extra_cuda_cflags"]]
    return [os.environ.get("CXX", "c++"), *common, "-fPIC", "-fvisibility=hidden", *opts["extra_cflags"]]


def _link_command(objs: list[pathlib.Path], out: pathlib.Path, with_cuda: bool, opts: dict) -> list[str]:
    # nvcc links the CUDA runtime statically: the module needs only the driver (libcuda) at run time
    linker = [str(find_nvcc()), "-shared"] if with_cuda else [os.environ.get("CXX", "c++"), "-shared"]
    return [*linker, *map(str, objs), "-o", str(out), *opts["extra_ldflags"]]


def _run(cmd: list[str], name: str, verbose: bool) -> None:
    if verbose:
        print(" ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if verbose and proc.stdout:
        print(proc.stdout, flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"Error building extension '{name}':\n{' '.join(cmd)}\n{proc.stdout}")


def _file_hash(path: str | os.PathLike) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


_HEADERS_HASH: list[str] = []


def _headers_hash() -> str:
    if not _HEADERS_HASH:
        files = sorted(p for p in _INCLUDE.rglob("*.h"))
        _HEADERS_HASH.append(hashlib.sha256("".join(f"{p.relative_to(_INCLUDE)}:{_file_hash(p)}"
                                                    for p in files).encode()).hexdigest())
    return _HEADERS_HASH[0]


def _dtorch_version() -> str:
    try:
        return importlib.metadata.version("dtorch")
    except importlib.metadata.PackageNotFoundError:
        return "source"


def build_key(name: str, sources: Sequence[pathlib.Path], with_cuda: bool, opts: dict) -> str:
    """sha256 of everything that changes the binary: sources' contents, flags, headers, versions, ABI."""
    blob = json.dumps({"name": name, "sources": [[p.name, _file_hash(p)] for p in sources], "cuda": with_cuda,
                       "opts": opts, "headers": _headers_hash(), "dtorch": _dtorch_version(),
                       "abi": sysconfig.get_config_var("EXT_SUFFIX"),
                       "nvcc": str(find_nvcc()) if with_cuda else "",
                       "arch": _arch_flags(opts["extra_cuda_cflags"]) if with_cuda else []}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _read_deps(objs: list[pathlib.Path]) -> dict[str, str]:
    """``{file: sha256}`` of every non-system file the objects were built from (the compilers' -MMD lists)."""
    deps = {}
    for obj in objs:
        text = pathlib.Path(f"{obj}.d").read_text().replace("\\\n", " ")
        for path in text.split(":", 1)[1].split():
            if os.path.isfile(path):
                deps[os.path.abspath(path)] = _file_hash(path)
    return deps


def _deps_current(manifest: pathlib.Path) -> bool:
    try:
        deps = json.loads(manifest.read_text())
        return all(os.path.isfile(p) and _file_hash(p) == h for p, h in deps.items())
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def _compile_and_link(name: str, sources: list[pathlib.Path], path: pathlib.Path, library: pathlib.Path,
                      with_cuda: bool, opts: dict, verbose: bool) -> None:
    objs = []
    for i, src in enumerate(sources):
        obj = path / f"{i}_{src.stem}.o"
        _run(_compile_command(src, obj, name, with_cuda, opts), name, verbose)
        objs.append(obj)
    tmp = path / f"{library.name}.{os.getpid()}.tmp"
    _run(_link_command(objs, tmp, with_cuda, opts), name, verbose)
    (path / "deps.json").write_text(json.dumps(_read_deps(objs), indent=1))
    os.replace(tmp, library)  # atomic: a reader sees the old library or the new one


def _build(name: str, sources: list[pathlib.Path], build_directory, with_cuda: bool, opts: dict,
           verbose: bool) -> pathlib.Path:
    """The extension's shared library, built under a file lock unless an up-to-date build is cached."""
    key = build_key(name, sources, with_cuda, opts)
    path = build_dir(cache_root(build_directory), name, key)
    library = path / f"{name}{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"
    path.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first rank builds; the others wait, then find it built
        if library.is_file() and _deps_current(path / "deps.json"):
            if verbose:
                print(f"dtorch: loading extension {name!r} from {path}", flush=True)
            return library
        if verbose:
            print(f"dtorch: building extension {name!r} in {path}", flush=True)
        _compile_and_link(name, sources, path, library, with_cuda, opts, verbose)
    return library


def _import(name: str, library: pathlib.Path) -> ModuleType:
    stat = library.stat()
    memo = f"{library}:{stat.st_mtime_ns}:{stat.st_ino}"
    if memo in _LOADED:
        return _LOADED[memo]
    # pybind11 caches modules by spec name per interpreter: a rebuilt library imported under the same name
    # would return the old module, so a second build of one name gets a unique parent (PyInit_<name> stays)
    first = not any(m.__name__ == name for m in _LOADED.values())
    spec_name = name if first else f"_dtorch_extension_{hashlib.sha256(memo.encode()).hexdigest()[:16]}.{name}"
    loader = importlib.machinery.ExtensionFileLoader(spec_name, str(library))
    spec = importlib.util.spec_from_file_location(spec_name, str(library), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    module.__name__ = name
    sys.modules[name] = module
    _LOADED[memo] = module
    return module


def _options(extra_cflags, extra_cuda_cflags, extra_ldflags, extra_include_paths) -> dict:
    return {"extra_cflags": list(extra_cflags or []), "extra_cuda_cflags": list(extra_cuda_cflags or []),
            "extra_ldflags": list(extra_ldflags or []),
            "extra_include_paths": [os.path.abspath(p) for p in extra_include_paths or []]}


def load(name: str, sources: str | os.PathLike | Sequence[str | os.PathLike], extra_cflags=None,
         extra_cuda_cflags=None, extra_sycl_cflags=None, extra_ldflags=None, extra_include_paths=None,
         build_directory=None, verbose: bool = False, with_cuda: bool | None = None, with_sycl=None,
         is_python_module: bool = True, is_standalone: bool = False, keep_intermediates: bool = True):
    """Compile ``sources`` (C++ and ``.cu``) into the extension ``name`` and import it.

    Returns the module (``is_python_module=True``); otherwise loads the library into the process
    (``ctypes``, global symbols) and returns None, or its path when ``is_standalone``.
    """
    if extra_sycl_cflags or with_sycl:
        raise RuntimeError("dtorch.utils.cpp_extension: SYCL is not supported")
    if not name.isidentifier():
        raise ValueError(f"extension name must be a valid Python identifier, got {name!r}")
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    sources = [pathlib.Path(s).resolve() for s in sources]
    for s in sources:
        if not s.is_file():
            raise FileNotFoundError(f"extension {name!r}: source file not found: {s}")
    if with_cuda is None:
        with_cuda = any(s.suffix in _CUDA_SUFFIXES for s in sources)
    opts = _options(extra_cflags, extra_cuda_cflags, extra_ldflags, extra_include_paths)
    library = _build(name, sources, build_directory, bool(with_cuda), opts, verbose)
    if is_python_module:
        return _import(name, library)
    ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
    return str(library) if is_standalone else None


def _cpu_id() -> str:
    """The CPU's feature flags (a ``-march=native`` build is only valid on a CPU that has them)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return ""


def build_c_library(name: str, source: str, extra_cflags: Sequence[str] = (), build_directory=None,
                    verbose: bool = False) -> pathlib.Path:
    """Compile one C source string into a shared library for ``ctypes`` (no Python headers, no pybind11).

    ``$CC`` (default ``cc``) compiles it into ``<root>/<name>/<key>/`` (``key``: a hash of the source, flags,
    compiler and CPU), once, under the same file lock as ``load``; a cached library is returned as is.
    """
    cc = os.environ.get("CC", "cc")
    flags = ["-shared", "-fPIC", *extra_cflags]
    blob = json.dumps({"source": source, "flags": flags, "cc": cc, "cpu": _cpu_id()}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:32]
    path = build_dir(cache_root(build_directory), name, key)
    library = path / f"{name}.so"
    if library.is_file():
        return library
    path.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not library.is_file():
            src = _write_source(path, f"{name}.c", source)
            tmp = path / f"{library.name}.{os.getpid()}.tmp"
            try:
                _run([cc, *flags, str(src), "-o", str(tmp), "-lm"], name, verbose)
            except FileNotFoundError as e:
                raise RuntimeError(f"Error building {name!r}: C compiler {cc!r} not found") from e
            os.replace(tmp, library)
    return library


# flags of dtorch's own C kernels: no -ffast-math and no contraction, so they round as numpy does
KERNEL_CFLAGS = ("-O3", "-march=native", "-std=c99", "-fno-math-errno", "-ffp-contract=off")
# numpy dtype -> (C type, function-name suffix) of the float kernels
REAL_TYPES = {"float32": ("float", "f32"), "float64": ("double", "f64")}


def real_variants(template: str) -> str:
    """``template`` once per entry of :data:`REAL_TYPES`, ``REAL`` and ``SUF`` replaced by its type and suffix."""
    return "".join(template.replace("SUF", suf).replace("REAL", ct) for ct, suf in REAL_TYPES.values())


def real_signatures(signatures: dict[str, list]) -> dict[str, list]:
    """``{name: argtypes}`` of a :func:`real_variants` source: each name once per suffix (``dt_x_SUF``)."""
    return {name.replace("SUF", suf): argtypes for name, argtypes in signatures.items()
            for _, suf in REAL_TYPES.values()}


class CFunctions:
    """The functions ``signatures`` names (name -> ctypes argument types, no result), from one C source compiled
    by :func:`build_c_library` on first use and bound with ctypes. ``get()`` is empty, and stays so, when there
    is no compiler or the build fails: callers then run their numpy code. ``fns`` may be set to ``{}`` to force
    that (tests, benchmarks)."""

    def __init__(self, name: str, source: Callable[[], str], cflags: Sequence[str],
                 signatures: dict[str, list]) -> None:
        self.name, self.source, self.cflags, self.signatures = name, source, tuple(cflags), signatures
        self.fns: dict | None = None
        self._lock = threading.Lock()

    def get(self) -> dict:
        fns = self.fns
        if fns is None:
            with self._lock:
                if self.fns is None:
                    try:
                        self.fns = self._build()
                    except (RuntimeError, OSError):
                        self.fns = {}
                fns = self.fns
        return fns

    def real(self, name: str, dtype):
        """The ``dtype`` variant of :func:`real_variants` function ``name`` (``dt_x`` -> ``dt_x_f32``)."""
        return self.get()[f"{name}_{REAL_TYPES[dtype.name][1]}"]

    def serves(self, arrays, min_size: int = 0) -> bool:
        """Whether the :func:`real_variants` kernels take ``arrays``: numpy, one float dtype of REAL_TYPES, one
        size (at least ``min_size``), C-contiguous, and the library built."""
        a = arrays[0]
        return (type(a) is np.ndarray and a.size >= min_size and a.dtype.name in REAL_TYPES
                and all(type(b) is np.ndarray and b.dtype == a.dtype and b.size == a.size and b.flags.c_contiguous
                        for b in arrays) and bool(self.get()))

    def _build(self) -> dict:
        lib = ctypes.CDLL(str(build_c_library(self.name, self.source(), self.cflags)))
        fns = {}
        for fname, argtypes in self.signatures.items():
            fn = getattr(lib, fname)
            fn.argtypes, fn.restype = argtypes, None
            fns[fname] = fn
        return fns


def _module_def(functions) -> str:
    if isinstance(functions, str):
        functions = [functions]
    if isinstance(functions, (list, tuple)):
        functions = {f: f for f in functions}
    elif not isinstance(functions, dict):
        raise ValueError(f"Expected 'functions' to be a list or dict, but was {type(functions)}")
    lines = [f'm.def("{f}", {f}, "{doc}");' for f, doc in functions.items()]
    return "PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {\n" + "\n".join(lines) + "\n}\n"


def load_inline(name: str, cpp_sources: str | Sequence[str], cuda_sources: str | Sequence[str] | None = None,
                sycl_sources=None, functions=None, extra_cflags=None, extra_cuda_cflags=None, extra_sycl_cflags=None,
                extra_ldflags=None, extra_include_paths=None, build_directory=None, verbose: bool = False,
                with_cuda: bool | None = None, with_sycl=None, is_python_module: bool = True,
                with_pytorch_error_handling: bool = True, keep_intermediates: bool = True, use_pch: bool = False,
                no_implicit_headers: bool = False):
    """``load`` for source strings: writes ``main.cpp`` (and ``cuda.cu``) and binds ``functions``.

    ``cpp_sources`` get ``#include <torch/extension.h>`` prepended, ``cuda_sources``
    ``<torch/types.h>``, ``<cuda.h>`` and ``<cuda_runtime.h>`` (unless ``no_implicit_headers``);
    ``functions`` (names, or ``{name: docstring}``) become the module's ``PYBIND11_MODULE``.
    """
    if sycl_sources:
        raise RuntimeError("dtorch.utils.cpp_extension: SYCL is not supported")
    cpp = [cpp_sources] if isinstance(cpp_sources, str) else list(cpp_sources)
    cuda = [cuda_sources] if isinstance(cuda_sources, str) else list(cuda_sources or [])
    if not no_implicit_headers:
        cpp.insert(0, "#include <torch/extension.h>")
        if cuda:
            cuda.insert(0, "#include <torch/types.h>\n#include <cuda.h>\n#include <cuda_runtime.h>")
    if functions is not None:
        cpp.append(_module_def(functions))
    staging = cache_root(build_directory) / name / "inline"
    staging.mkdir(parents=True, exist_ok=True)
    files = [_write_source(staging, "main.cpp", "\n".join(cpp))]
    if cuda:
        files.append(_write_source(staging, "cuda.cu", "\n".join(cuda)))
    return load(name, files, extra_cflags=extra_cflags, extra_cuda_cflags=extra_cuda_cflags,
                extra_ldflags=extra_ldflags, extra_include_paths=extra_include_paths, build_directory=build_directory,
                verbose=verbose, with_cuda=with_cuda if with_cuda is not None else bool(cuda),
                is_python_module=is_python_module)


def _write_source(folder: pathlib.Path, filename: str, text: str) -> pathlib.Path:
    """Writes ``text`` to ``folder/<hash>/filename`` (compiler messages name it), once per content."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = folder / digest / filename
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{filename}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def _require_setuptools() -> None:
    if setuptools is None:
        raise RuntimeError("CppExtension/CUDAExtension/BuildExtension need setuptools: pip install 'dtorch[cpp]'")


def CppExtension(name: str, sources: Sequence[str], *args, **kwargs) -> setuptools.Extension:
    """A ``setuptools.Extension`` for C++ against dtorch's headers (use with ``BuildExtension``)."""
    _require_setuptools()
    kwargs["include_dirs"] = [*kwargs.get("include_dirs", []), *include_paths("cpu")]
    kwargs["language"] = "c++"
    return setuptools.Extension(name, list(sources), *args, **kwargs)


def CUDAExtension(name: str, sources: Sequence[str], *args, **kwargs) -> setuptools.Extension:
    """``CppExtension`` plus the CUDA headers and the static CUDA runtime; ``.cu`` sources go to nvcc."""
    _require_setuptools()
    kwargs["include_dirs"] = [*kwargs.get("include_dirs", []), *include_paths("cuda")]
    kwargs["library_dirs"] = [*kwargs.get("library_dirs", []), *library_paths("cuda")]
    kwargs["libraries"] = [*kwargs.get("libraries", []), "cudart_static", "rt", "pthread", "dl"]
    kwargs["language"] = "c++"
    return setuptools.Extension(name, list(sources), *args, **kwargs)


def _flags_for(extra_postargs, key: str) -> list[str]:
    """``extra_compile_args`` as torch takes it: a list, or ``{"cxx": [...], "nvcc": [...]}``."""
    if isinstance(extra_postargs, dict):
        return list(extra_postargs.get(key, []))
    return list(extra_postargs or [])


class BuildExtension(build_ext):
    """``build_ext`` that compiles ``.cu`` files with nvcc and defines ``TORCH_EXTENSION_NAME`` per extension."""

    @classmethod
    def with_options(cls, **options):
        class _WithOptions(cls):
            def __init__(self, *args, **kwargs):
                kwargs.update(options)
                super().__init__(*args, **kwargs)

        return _WithOptions

    def __init__(self, *args, **kwargs):
        self.no_python_abi_suffix = kwargs.pop("no_python_abi_suffix", False)
        self.use_ninja = kwargs.pop("use_ninja", False)
        super().__init__(*args, **kwargs)

    def build_extensions(self) -> None:
        self.compiler.src_extensions += [".cu", ".cuh"]
        cxx_compile = self.compiler._compile

        def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
            if os.path.splitext(src)[1] in _CUDA_SUFFIXES:
                nvcc_flags = _flags_for(extra_postargs, "nvcc")
                cmd = [str(find_nvcc()), "-c", src, "-o", obj, *pp_opts, "-std=c++17", "-Xcompiler", "-fPIC",
                       *_arch_flags(nvcc_flags), *nvcc_flags]
                self.compiler.spawn(cmd)
            else:
                cxx_flags = ["-std=c++17", "-fvisibility=hidden", *_flags_for(extra_postargs, "cxx")]
                cxx_compile(obj, src, ext, cc_args, cxx_flags, pp_opts)

        self.compiler._compile = _compile
        for extension in self.extensions:
            define = ("TORCH_EXTENSION_NAME", extension.name.split(".")[-1])
            extension.define_macros = [*(extension.define_macros or []), define,
                                       ("TORCH_API_INCLUDE_EXTENSION_H", None)]
        super().build_extensions()

    def get_ext_filename(self, ext_name: str) -> str:
        filename = super().get_ext_filename(ext_name)
        if self.no_python_abi_suffix:
            suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
            filename = filename[: -len(suffix)] + os.path.splitext(suffix)[1]
        return filename
