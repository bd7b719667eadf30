"""dtorch.device and the array module (numpy or cupy) behind each device type."""
from __future__ import annotations

import numpy as np

_cupy = None
_cupy_checked = False
_on_load: list = []  # settings to apply to cupy once it is loaded (dtorch.backends' TF32 flag)


def cupy_module():
    """The cupy module, imported on first use; None when CuPy or a GPU is missing."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() > 0:
                _cupy = cupy
        except Exception:  # no cupy wheel, no driver or no device: CPU only
            _cupy = None
        for fn in _on_load if _cupy is not None else ():
            fn(_cupy)
    return _cupy


def when_cupy_loaded(fn) -> None:
    """Call ``fn(cupy)`` now if CuPy is loaded, else when :func:`cupy_module` first loads it (never without it)."""
    if _cupy is not None:
        fn(_cupy)
    elif not _cupy_checked and fn not in _on_load:
        _on_load.append(fn)


def require_cupy():
    """The cupy module; ``RuntimeError("CUDA is not available: ...")`` when CuPy or a GPU is missing."""
    cp = cupy_module()
    if cp is None:
        raise RuntimeError(
            "CUDA is not available: install a cupy wheel (pip install 'dtorch[cuda12]' or "
            "'dtorch[cuda13]') and run on a machine with an NVIDIA GPU"
        )
    return cp


class device:
    """``dtorch.device('cuda', 0)``, ``device('cuda:1')``, ``device('cpu')``."""

    __slots__ = ("type", "index")

    def __init__(self, type: "str | device", index: int | None = None) -> None:
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if isinstance(type, int):
            type, index = "cuda", type
        if ":" in type:
            if index is not None:
                raise ValueError(f"type (string) must not include an index because index was passed explicitly: {type}")
            type, idx = type.split(":", 1)
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}:{idx}'")
            index = int(idx)
        if type not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Expected one of cpu, cuda device type at start of device string: {type}"
            )
        self.type = type
        self.index = index

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")
_cuda_devices: dict[int, device] = {}


def device_of(arr) -> device:
    """The device an array lives on."""
    if type(arr) is np.ndarray:
        return CPU
    idx = arr.device.id
    d = _cuda_devices.get(idx)
    if d is None:
        d = _cuda_devices[idx] = device("cuda", idx)
    return d


def xp_of(arr):
    """numpy for host arrays and numpy scalars, cupy for device arrays."""
    if type(arr) is np.ndarray or isinstance(arr, np.generic):
        return np
    return _cupy if _cupy is not None else cupy_module()


def array_device_scope(arr):
    """A context making ``arr``'s GPU the current one (CuPy runs kernels on the current device); None for host
    arrays and Tensors' host data."""
    data = getattr(arr, "_data", arr)
    if type(data) is np.ndarray or isinstance(data, np.generic) or _cupy is None:
        return None
    return _cupy.cuda.Device(data.device.id)


def as_device(d) -> device:
    if isinstance(d, device):
        return d
    if d is None:
        return CPU
    return device(d)


def move_array(arr, dev: device):
    """Copy ``arr`` to ``dev`` (no copy when it is already there)."""
    if dev.type == "cpu":
        if type(arr) is np.ndarray:
            return arr
        return arr.get()
    cp = require_cupy()
    index = dev.index if dev.index is not None else cp.cuda.runtime.getDevice()
    if type(arr) is not np.ndarray and arr.device.id == index:
        return arr
    with cp.cuda.Device(index):
        return cp.asarray(arr)
