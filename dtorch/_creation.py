"""Tensor creation: tensor, as_tensor, from_numpy, zeros/ones/full/empty(_like), arange, linspace, eye."""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import _dtype
from ._device import CPU, as_device, device_of, move_array, require_cupy
from .tensor import Size, Tensor, _make


def _size_arg(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s.item())
        if not isinstance(s, (int, np.integer)):
            raise TypeError(f"expected a sequence of integers or a single integer, got '{s!r}'")
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(int(s))
    return tuple(out)


def _place(arr: np.ndarray, device, requires_grad: bool) -> Tensor:
    if device is not None:
        dev = as_device(device)
        if dev.type != "cpu":
            arr = move_array(arr, dev)
    t = _make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_np_dtype(data, arr: np.ndarray) -> np.dtype:
    k = arr.dtype.kind
    if isinstance(data, (np.ndarray, np.generic)):  # numpy arrays and scalars keep their dtype
        return _dtype.from_numpy_dtype(arr.dtype).np
    if arr.dtype == np.uint64:  # a Python int above the int64 range
        raise RuntimeError("Overflow when unpacking long long")
    if k == "f":
        return _dtype.get_default_dtype().np
    if k == "c":
        return _dtype.default_complex().np
    if k in "iu":
        return np.dtype(np.int64)
    if k == "b":
        return np.dtype(np.bool_)
    raise TypeError(f"Could not infer dtype of {type(data).__name__}")


def _to_array(data):
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (list, tuple)) and data and any(isinstance(x, Tensor) for x in data):
        parts = [_to_array(x) for x in data]
        parts = [p.get() if type(p) is not np.ndarray and hasattr(p, "get") else p for p in parts]
        return np.array(parts)
    if hasattr(data, "__cuda_array_interface__") and not isinstance(data, np.ndarray):
        return data
    return np.asarray(data)


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A new tensor copying ``data`` (nested lists, numbers, numpy arrays, tensors)."""
    if isinstance(data, Tensor):
        warnings.warn(
            "To copy construct from a tensor, it is recommended to use sourceTensor.detach().clone() or "
            "sourceTensor.detach().clone().requires_grad_(True), rather than dtorch.tensor(sourceTensor).",
            UserWarning, stacklevel=2,
        )
    arr = _to_array(data)
    if type(arr) is np.ndarray:
        if dtype is not None:
            dt = _dtype.to_dtype(dtype).np
        elif isinstance(data, Tensor):
            dt = arr.dtype
        else:
            dt = _infer_np_dtype(data, arr)
        arr = np.array(arr, dtype=dt, copy=True)
        dev = device if device is not None else (data.device if isinstance(data, Tensor) else None)
        return _place(arr, dev, requires_grad)
    arr = arr.astype(_dtype.to_dtype(dtype).np if dtype is not None else arr.dtype, copy=True)
    t = _make(arr if device is None else move_array(arr, as_device(device)))
    if requires_grad:
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Share memory with ``data`` when dtype and device allow, as torch.as_tensor."""
    if isinstance(data, Tensor):
        out = data
        if dtype is not None:
            out = out.to(_dtype.to_dtype(dtype))
        if device is not None:
            out = out.to(device)
        return out
    if isinstance(data, np.ndarray):
        if type(data) is not np.ndarray:  # np.memmap...: dtorch tells host arrays by `type(a) is np.ndarray`
            data = data.view(np.ndarray)  # same memory, base class
        dt = _dtype.to_dtype(dtype).np if dtype is not None else _dtype.from_numpy_dtype(data.dtype).np
        arr = data if data.dtype == dt else data.astype(dt)
        return _place(arr, device, False)
    return tensor(data, dtype=dtype, device=device)


asarray = as_tensor


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``ndarray``."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    _dtype.from_numpy_dtype(ndarray.dtype)
    if type(ndarray) is not np.ndarray:  # np.memmap...: dtorch tells host arrays by `type(a) is np.ndarray`
        ndarray = ndarray.view(np.ndarray)  # same memory, base class
    return _make(ndarray)


def _dt(dtype) -> np.dtype:
    return _dtype.get_default_dtype().np if dtype is None else _dtype.to_dtype(dtype).np


def _xp_for(device):
    if device is None:
        return np, None
    dev = as_device(device)
    if dev.type == "cpu":
        return np, None
    return require_cupy(), dev


def _filled(shape, value, dtype, device, requires_grad: bool, kind: str = "full") -> Tensor:
    xp, dev = _xp_for(device)
    if dev is not None:
        with xp.cuda.Device(dev.index or 0):
            arr = xp.empty(shape, dtype) if kind == "empty" else xp.full(shape, value, dtype)
    else:
        arr = np.empty(shape, dtype) if kind == "empty" else np.full(shape, value, dtype)
    t = _make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    return _filled(_size_arg(size), 0, _dt(dtype), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    return _filled(_size_arg(size), 1, _dt(dtype), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    return _filled(_size_arg(size), None, _dt(dtype), device, requires_grad, "empty")


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = _dtype.scalar_dtype(fill_value)
    return _filled(_size_arg((size,)), fill_value, _dt(dtype), device, requires_grad)


def _like(t: Tensor, dtype, device):
    return (t._data.dtype if dtype is None else _dt(dtype)), (device_of(t._data) if device is None else device)


def zeros_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return _filled(input._data.shape, 0, dt, dev if dev != CPU else None, requires_grad)


def ones_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return _filled(input._data.shape, 1, dt, dev if dev != CPU else None, requires_grad)


def empty_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return _filled(input._data.shape, None, dt, dev if dev != CPU else None, requires_grad, "empty")


def full_like(input: Tensor, fill_value, *, dtype=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    dt, dev = _like(input, dtype, device)
    return _filled(input._data.shape, fill_value, dt, dev if dev != CPU else None, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) / step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dtype is None:
        is_float = any(isinstance(v, float) for v in vals)
        dt = _dtype.get_default_dtype().np if is_float else np.dtype(np.int64)
    else:
        dt = _dt(dtype)
    n = math.ceil((end - start) / step)
    arr = (start + np.arange(n, dtype=np.float64) * step).astype(dt) if dt.kind in "fV" else \
        np.arange(start, end, step).astype(dt)
    return _place(arr, device, requires_grad)


def range_(start, end, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    n = int(math.floor((end - start) / step)) + 1
    arr = (start + np.arange(n, dtype=np.float64) * step).astype(_dt(dtype))
    return _place(arr, device, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dt = _dt(dtype)
    # torch's kernel: the first half counts up from start, the second half down from end, in the
    # result's precision (double for integer results), so both ends are exact
    ct = dt if dt.kind in "fV" else np.dtype(np.float64)
    lo, hi = ct.type(float(start)), ct.type(float(end))
    idx = np.arange(steps)
    if steps > 1:
        step = (hi - lo) / ct.type(steps - 1)
        half = steps // 2
        vals = np.where(idx < half, lo + step * idx.astype(ct), hi - step * (steps - 1 - idx).astype(ct))
    else:
        vals = np.full(steps, lo, ct)
    return _place(vals.astype(dt), device, requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    arr = np.logspace(float(start), float(end), steps, base=base).astype(_dt(dtype))
    return _place(arr, device, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    for v in (n, m):
        if v is not None and v < 0:
            raise RuntimeError(f"n must be greater or equal to 0, got {v}")
    return _place(np.eye(n, m, dtype=_dt(dtype)), device, requires_grad)


def scalar_tensor(s, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _place(np.array(s, dtype=_dt(dtype)), device, requires_grad)


def _legacy_array(args: tuple, dtype, device):
    """The array of the legacy constructor: ``Tensor(2, 3)`` (uninitialised) or ``Tensor(data)`` (float)."""
    if len(args) == 1 and not isinstance(args[0], (int, Size)):
        return tensor(args[0], dtype=dtype or _dtype.get_default_dtype())._data
    return empty(*(args or (0,)), dtype=dtype, device=device)._data


Tensor._legacy_array = _legacy_array


class _LegacyTensorType(type):
    """The type of ``dtorch.FloatTensor`` & co: calling one is the legacy constructor of its dtype
    (``LongTensor([1, 2])``, ``FloatTensor(2, 3)``), and ``isinstance`` tests a CPU tensor's dtype."""

    def __call__(cls, *args, device=None) -> Tensor:
        if len(args) == 1 and isinstance(args[0], Tensor) and args[0].dtype is not cls.dtype:
            raise TypeError(f"expected {cls.dtype.scalar_name} (got {args[0].dtype.scalar_name})")
        return Tensor(*args, dtype=cls.dtype, device=device)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and type(obj._data) is np.ndarray and obj._data.dtype == cls.dtype.np

    def __repr__(cls) -> str:
        return f"<class 'dtorch.{cls.__name__}'>"


def _legacy_type(dt: _dtype.dtype) -> type:
    return _LegacyTensorType(f"{dt.scalar_name}Tensor", (), {"dtype": dt, "is_cuda": False, "__module__": "dtorch"})


BoolTensor = _legacy_type(_dtype.bool_)
ByteTensor = _legacy_type(_dtype.uint8)
CharTensor = _legacy_type(_dtype.int8)
ShortTensor = _legacy_type(_dtype.int16)
IntTensor = _legacy_type(_dtype.int32)
LongTensor = _legacy_type(_dtype.int64)
HalfTensor = _legacy_type(_dtype.float16)
FloatTensor = _legacy_type(_dtype.float32)
DoubleTensor = _legacy_type(_dtype.float64)
