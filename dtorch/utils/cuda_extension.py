"""``load_inline``: compile CUDA C++ at run time (NVRTC through CuPy) and call its kernels on dtorch tensors.

The counterpart of ``torch.utils.cpp_extension.load_inline`` for ``extern "C" __global__`` kernels:
NVRTC compiles device code only, so each listed function is a kernel, launched with
``mod.name(*args, grid=..., block=...)`` (or ``numel=`` for a 1-d launch). Tensor arguments pass
their device pointer (their dtype is checked against the kernel's pointer type); Python numbers are
converted to the kernel's scalar types, read from its signature.

Builds are cached on disk in ``<cache>/<name>/<key>/`` (``kernel.cu``, ``options.json``,
``kernel.ptx``), ``key`` a hash of the source, options, target architecture and NVRTC version; the
cache is ``build_directory`` or ``$DTORCH_EXTENSIONS_DIR`` or ``~/.cache/dtorch_extensions``.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
from typing import Any, Sequence

import numpy as np

from .._device import require_cupy
from ..tensor import Tensor

_SCALARS = {"int": np.int32, "unsigned int": np.uint32, "long long": np.int64, "int64_t": np.int64,
            "long": np.int64, "size_t": np.uint64, "unsigned long long": np.uint64, "float": np.float32,
            "double": np.float64, "bool": np.bool_, "int32_t": np.int32}
_POINTEES = {"float": "float32", "double": "float64", "int": "int32", "int32_t": "int32", "long long": "int64",
             "int64_t": "int64", "__half": "float16", "half": "float16", "bool": "bool", "unsigned char": "uint8",
             "uint8_t": "uint8", "char": "int8", "int8_t": "int8"}
_QUALIFIERS = re.compile(r"\b(const|__restrict__|volatile|struct)\b")


def parse_kernels(source: str) -> dict[str, list[tuple[str, bool]]]:
    """``{kernel: [(base C type, is_pointer), ...]}`` for every ``extern "C" __global__ void`` in source."""
    kernels = {}
    for m in re.finditer(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', source):
        params = []
        for p in filter(None, (s.strip() for s in m.group(2).split(","))):
            p = _QUALIFIERS.sub(" ", p)
            is_ptr = "*" in p
            words = p.replace("*", " ").split()
            params.append((" ".join(words[:-1]), is_ptr))
        kernels[m.group(1)] = params
    return kernels


def cache_key(name: str, source: str, options: Sequence[str], arch: str, nvrtc_version: str = "") -> str:
    """The build's cache key: sha256 of everything that changes the binary."""
    blob = json.dumps({"name": name, "source": source, "options": list(options), "arch": arch,
                       "nvrtc": nvrtc_version}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cache_root(build_directory: str | os.PathLike | None = None) -> pathlib.Path:
    if build_directory is not None:
        return pathlib.Path(build_directory)
    env = os.environ.get("DTORCH_EXTENSIONS_DIR")
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "dtorch_extensions"


def build_dir(root: pathlib.Path, name: str, key: str) -> pathlib.Path:
    """``<root>/<name>/<key>``: one directory per build."""
    return root / name / key


def convert_args(kernel: str, params: list[tuple[str, bool]], args: tuple) -> tuple:
    """Kernel arguments from tensors / arrays / Python numbers, checked against the signature."""
    if len(args) != len(params):
        raise TypeError(f"{kernel}() takes {len(params)} arguments ({len(args)} given)")
    out = []
    for i, (a, (ctype, is_ptr)) in enumerate(zip(args, params)):
        if isinstance(a, Tensor):
            a = a._data
        if is_ptr:
            if isinstance(a, np.ndarray) or not hasattr(a, "data"):
                got = type(a).__name__
                raise TypeError(f"{kernel}() argument {i}: expected a CUDA tensor for '{ctype}*', got {got}")
            want = _POINTEES.get(ctype)
            if want is not None and a.dtype.name != want:
                raise TypeError(f"{kernel}() argument {i}: '{ctype}*' needs a {want} tensor, got {a.dtype.name}")
            if not a.flags.c_contiguous:
                raise ValueError(f"{kernel}() argument {i}: the tensor must be contiguous")
            out.append(a)
        else:
            conv = _SCALARS.get(ctype)
            if conv is None:
                raise TypeError(f"{kernel}() argument {i}: unsupported parameter type '{ctype}'")
            out.append(conv(a))
    return tuple(out)


class _KernelFunction:
    def __init__(self, module, name: str, params: list[tuple[str, bool]]) -> None:
        self._fn = module.get_function(name)
        self.__name__ = name
        self.params = params

    def __call__(self, *args, grid: Any = None, block: Any = (256,), shared_mem: int = 0, numel: int | None = None):
        if grid is None:
            if numel is None:
                raise TypeError(f"{self.__name__}(): give grid= (and block=) or numel= for a 1-d launch")
            threads = block[0] if isinstance(block, tuple) else int(block)
            grid = (max(1, (int(numel) + threads - 1) // threads),)
        grid = grid if isinstance(grid, tuple) else (int(grid),)
        block = block if isinstance(block, tuple) else (int(block),)
        self._fn(grid, block, convert_args(self.__name__, self.params, args), shared_mem=shared_mem)

    def __repr__(self) -> str:
        return f"<CUDA kernel {self.__name__}>"


class CudaExtension:
    """The loaded module: one attribute per kernel in ``functions``."""

    def __init__(self, name: str, path: pathlib.Path, module, kernels: dict, functions: Sequence[str]) -> None:
        self.name, self.path = name, path
        for f in functions:
            if f not in kernels:
                raise ValueError(f"load_inline({name!r}): no extern \"C\" __global__ kernel named {f!r} in the source")
            setattr(self, f, _KernelFunction(module, f, kernels[f]))

    def __repr__(self) -> str:
        return f"<dtorch CUDA extension {self.name!r} from {self.path}>"


def _arch(cp) -> str:
    dev = cp.cuda.Device()
    return f"compute_{dev.compute_capability}"


def _nvrtc_version(cp) -> str:
    try:
        from cupy_backends.cuda.libs import nvrtc

        return ".".join(map(str, nvrtc.getVersion()))
    except Exception:  # old cupy layouts: the cupy version stands in
        return cp.__version__


def _compile_ptx(source: str, name: str, options: list[str]) -> str:
    from cupy_backends.cuda.libs import nvrtc

    prog = nvrtc.createProgram(source, f"{name}.cu", (), ())
    try:
        try:
            nvrtc.compileProgram(prog, options)
        except nvrtc.NVRTCError as e:
            raise RuntimeError(f"load_inline({name!r}): compilation failed\n{nvrtc.getProgramLog(prog)}") from e
        ptx = nvrtc.getPTX(prog)
    finally:
        nvrtc.destroyProgram(prog)
    return ptx.decode() if isinstance(ptx, bytes) else ptx


def load_inline(name: str, cuda_sources: str | Sequence[str], functions: Sequence[str] | str,
                extra_cuda_cflags: Sequence[str] | None = None, build_directory: str | os.PathLike | None = None,
                verbose: bool = False) -> CudaExtension:
    """Compile ``cuda_sources`` (once; cached on disk) and return a module whose ``functions`` launch kernels."""
    cp = require_cupy()
    source = cuda_sources if isinstance(cuda_sources, str) else "\n".join(cuda_sources)
    functions = [functions] if isinstance(functions, str) else list(functions)
    kernels = parse_kernels(source)
    arch = _arch(cp)
    options = [f"--gpu-architecture={arch}", *(extra_cuda_cflags or [])]
    key = cache_key(name, source, options, arch, _nvrtc_version(cp))
    path = build_dir(cache_root(build_directory), name, key)
    ptx_file = path / "kernel.ptx"
    if not ptx_file.exists():
        if verbose:
            print(f"dtorch: building extension {name!r} in {path}")
        path.mkdir(parents=True, exist_ok=True)
        (path / "kernel.cu").write_text(source)
        (path / "options.json").write_text(json.dumps(options))
        tmp = path / f"kernel.ptx.{os.getpid()}"
        tmp.write_text(_compile_ptx(source, name, options))
        os.replace(tmp, ptx_file)  # atomic: concurrent builders never see half a file
    elif verbose:
        print(f"dtorch: loading extension {name!r} from {path}")
    module = cp.RawModule(path=str(ptx_file))
    return CudaExtension(name, path, module, kernels, functions)
