"""Quantized tensors: torch's quantize_per_tensor / quantize_per_channel and the QTensor they return.

A QTensor is a Tensor subclass whose ``_data`` is the integer array (int8 for qint8, uint8 for
quint8, int32 for qint32) and which carries its quantization parameters. It is not
differentiable and its arithmetic is refused as torch refuses it on the QuantizedCPU backend:
``dequantize()`` it first. Quantization rounds half to even and clamps, as torch (fbgemm) does.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..._device import xp_of
from ..._dtype import QUANTIZED_DTYPES, dtype, qint8, qint32, quint8
from ..._repr import _add_suffixes, tensor_repr
from ...tensor import Tensor, _make, _new

__all__ = ["QTensor", "qscheme", "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
           "per_channel_symmetric", "per_channel_affine_float_qparams", "quantize_per_tensor", "quantize_per_channel"]


class qscheme:
    """A quantization scheme (``dtorch.per_tensor_affine`` ...)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"dtorch.{self.name}"


per_tensor_affine = qscheme("per_tensor_affine")
per_channel_affine = qscheme("per_channel_affine")
per_tensor_symmetric = qscheme("per_tensor_symmetric")
per_channel_symmetric = qscheme("per_channel_symmetric")
per_channel_affine_float_qparams = qscheme("per_channel_affine_float_qparams")

_RANGE = {qint8: (-128, 127), quint8: (0, 255), qint32: (-(2 ** 31), 2 ** 31 - 1)}
_REFUSED = ("add", "sub", "mul", "div", "matmul", "mm", "sum", "mean", "neg", "pow", "abs", "exp", "log",
            "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__", "__rmul__", "__imul__",
            "__truediv__", "__rtruediv__", "__itruediv__", "__matmul__", "__rmatmul__", "__neg__", "__pow__")


def quant_range(dt: dtype) -> tuple[int, int]:
    """(qmin, qmax) of a quantized dtype."""
    return _RANGE[dt]


class QTensor(Tensor):
    """A quantized tensor: integers plus scale(s) and zero point(s); ``dequantize()`` gives the floats."""

    is_quantized = True

    @property
    def dtype(self) -> dtype:
        return self._qdtype

    @property
    def requires_grad(self) -> bool:
        return False

    def is_floating_point(self) -> bool:
        return False

    def qscheme(self) -> qscheme:
        return self._qscheme

    def int_repr(self) -> Tensor:
        """The stored integers as a plain (uint8, int8 or int32) tensor."""
        return _make(self._data.copy())

    def _per_tensor(self, what: str) -> None:
        if self._axis is not None:
            raise RuntimeError(f"Expected quantizer->qscheme() == kPerTensorAffine to be true, but got false. "
                               f"({what} needs a per-tensor quantized tensor)")

    def _per_channel(self, what: str) -> None:
        if self._axis is None:
            raise RuntimeError(f"Expected quantizer->qscheme() == kPerChannelAffine to be true, but got false. "
                               f"({what} needs a per-channel quantized tensor)")

    def q_scale(self) -> float:
        self._per_tensor("q_scale")
        return self._scale

    def q_zero_point(self) -> int:
        self._per_tensor("q_zero_point")
        return self._zero_point

    def q_per_channel_scales(self) -> Tensor:
        self._per_channel("q_per_channel_scales")
        return _make(self._scale.copy())

    def q_per_channel_zero_points(self) -> Tensor:
        self._per_channel("q_per_channel_zero_points")
        return _make(self._zero_point.copy())

    def q_per_channel_axis(self) -> int:
        self._per_channel("q_per_channel_axis")
        return self._axis

    def dequantize(self) -> Tensor:
        """``(q - zero_point) * scale`` as a float32 tensor."""
        q = self._data
        xp = xp_of(q)
        if self._axis is None:
            return _make(xp.asarray((q.astype(np.float32) - np.float32(self._zero_point)) * np.float32(self._scale)))
        shape = [1] * q.ndim
        shape[self._axis] = -1
        zp = xp.asarray(self._zero_point).reshape(shape)
        sc = xp.asarray(self._scale).reshape(shape)  # float64, as torch's per-channel dequantize uses it
        return _make(((q.astype(np.float64) - zp) * sc).astype(np.float32))

    def detach(self) -> "QTensor":
        return _qtensor(self._data, self._qdtype, self._qscheme, self._scale, self._zero_point, self._axis)

    def clone(self, *, memory_format=None) -> "QTensor":
        return _qtensor(self._data.copy(), self._qdtype, self._qscheme, self._scale, self._zero_point, self._axis)

    def __repr__(self) -> str:
        body = tensor_repr(self.dequantize())[:-1]  # a float32 tensor's repr has no suffix: drop its ')'
        suffixes = [f"size={tuple(self._data.shape)}", f"dtype={self._qdtype!r}",
                    f"quantization_scheme={self._qscheme!r}"]
        if self._axis is None:
            suffixes += [f"scale={self._scale}", f"zero_point={self._zero_point}"]
        else:
            suffixes += [f"scale={tensor_repr(self.q_per_channel_scales())}",
                         f"zero_point={tensor_repr(self.q_per_channel_zero_points())}", f"axis={self._axis}"]
        return _add_suffixes(body, suffixes, len("tensor("))


def _refuse(name: str):
    op = name.strip("_").removeprefix("r").removeprefix("i") if name.startswith("__") else name

    def refused(self, *args, **kwargs):
        raise NotImplementedError(f"Could not run 'aten::{op}' with arguments from the 'QuantizedCPU' backend: "
                                  "dtorch's quantized tensors hold integers; dequantize() them first")
    refused.__name__ = name
    return refused


for _name in _REFUSED:
    setattr(QTensor, _name, _refuse(_name))


def _qtensor(data, dt: dtype, scheme: qscheme, scale, zero_point, axis: int | None) -> QTensor:
    t = _new(QTensor)
    t._data = data
    t._rg = False
    t.grad_fn = None
    t._vc = [0]
    t._qdtype, t._qscheme, t._scale, t._zero_point, t._axis = dt, scheme, scale, zero_point, axis
    return t


def _check_dtype(dt) -> dtype:
    if dt not in QUANTIZED_DTYPES:
        name = getattr(dt, "scalar_name", dt)
        raise RuntimeError(f"ScalarType {name} is not supported in new_qtensor.")
    return dt


def _as_float(x: Tensor):
    a = x._data
    return a if a.dtype == np.float32 else a.astype(np.float32)


def quantize_array(a, scale, zero_point, dt: dtype):
    """Round ``zero_point + a / scale`` half to even (as fbgemm: times the float32 reciprocal) and clamp.

    ``scale``/``zero_point`` are numbers, or arrays broadcasting against ``a``.
    """
    xp = xp_of(a)
    inv = np.float32(1.0) / xp.asarray(scale, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        v = a.astype(np.float32) * inv + xp.asarray(zero_point, dtype=np.float32)
        v = xp.rint(v.astype(np.float64))
    lo, hi = _RANGE[dt]
    return xp.nan_to_num(xp.clip(v, lo, hi), nan=0.0).astype(dt.np)


def _check_zero_point(zp: int, dt: dtype, where: str) -> None:
    lo, hi = _RANGE[dt]
    if zp > hi:
        raise RuntimeError(f"{where} zero_point {zp} is above upper bound.")
    if zp < lo:
        raise RuntimeError(f"{where} zero_point {zp} is below lower bound.")


def quantize_per_tensor(input: Tensor, scale, zero_point, dtype: dtype) -> QTensor:
    """torch.quantize_per_tensor: ``clamp(round(input / scale) + zero_point)`` stored as ``dtype``."""
    _check_dtype(dtype)
    if isinstance(scale, Tensor):
        scale = float(np.float32(scale.item()))
    if isinstance(zero_point, Tensor):
        zero_point = zero_point.item()
    if not isinstance(scale, numbers.Real) or not isinstance(zero_point, numbers.Integral):
        raise TypeError(f"quantize_per_tensor(): expected (Tensor input, float scale, int zero_point, dtype dtype), "
                        f"got scale {type(scale).__name__} and zero_point {type(zero_point).__name__}")
    scale, zero_point = float(scale), int(zero_point)
    _check_zero_point(zero_point, dtype, "quantize_tensor_per_tensor_affine")
    data = quantize_array(_as_float(input), scale, zero_point, dtype)
    return _qtensor(data, dtype, per_tensor_affine, scale, zero_point, None)


def quantize_per_channel(input: Tensor, scales: Tensor, zero_points: Tensor, axis: int, dtype: dtype) -> QTensor:
    """torch.quantize_per_channel: one scale and zero point per slice along ``axis``."""
    _check_dtype(dtype)
    a = _as_float(input)
    if not 0 <= axis < max(a.ndim, 1):
        raise RuntimeError(f"Channel axis out of range in per channel affine quantization. Got: {axis}"
                           f"Expected: < {a.ndim}")
    xp = xp_of(a)
    sc = xp.asarray(scales._data if isinstance(scales, Tensor) else scales, dtype=np.float64).reshape(-1)
    zp = xp.asarray(zero_points._data if isinstance(zero_points, Tensor) else zero_points).reshape(-1)
    channels = a.shape[axis]
    if sc.size != channels:
        raise RuntimeError(f"length of scales must equal to channel, expected {channels} got, {sc.size}")
    if zp.size != channels:
        raise RuntimeError(f"length of zero_points must equal to channel expected {channels} got, {zp.size}")
    zp = zp.astype(np.int64)
    for z in (int(zp.min()), int(zp.max())) if zp.size else ():
        _check_zero_point(z, dtype, "quantize_tensor_per_channel_affine")
    shape = [1] * a.ndim
    shape[axis] = -1
    data = quantize_array(a, sc.astype(np.float32).reshape(shape), zp.reshape(shape), dtype)
    return _qtensor(data, dtype, per_channel_affine, sc, zp, axis)


def from_int_repr(data, dt: dtype, scale, zero_point, axis: int | None = None) -> QTensor:
    """A QTensor around stored integers (``data``, an array of ``dt``'s storage type) and its parameters."""
    if axis is None:
        return _qtensor(data, dt, per_tensor_affine, float(scale), int(zero_point), None)
    xp = xp_of(data)
    return _qtensor(data, dt, per_channel_affine, xp.asarray(scale, dtype=np.float64).reshape(-1),
                    xp.asarray(zero_point).astype(np.int64).reshape(-1), axis)



_SMALL_SCALE = float(np.float32(6.1e-5))


def choose_qparams(lo: float, hi: float, qmin: int, qmax: int, reduce_range: bool = False) -> tuple[float, int]:
    """(scale, zero_point) covering [lo, hi] and 0, as fbgemm chooses them for a dynamic activation.

    The arithmetic is in double, like ATen's ChooseQuantizationParams; the scale comes back as the
    float32 number the kernel then uses.
    """
    if not lo <= hi:
        raise RuntimeError(f"In ChooseQuantizationParams, min should be less than or equal to max, got {lo} and {hi}")
    if reduce_range:
        qmin, qmax = qmin // 2, qmax // 2
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    if float(np.float32(scale)) == 0.0 or not np.isfinite(np.float32(1.0) / np.float32(scale)):
        scale = 0.1
    if scale < _SMALL_SCALE:
        org_scale, scale = scale, _SMALL_SCALE
        if lo == 0.0:
            hi = _SMALL_SCALE * (qmax - qmin)
        elif hi == 0.0:
            lo = -_SMALL_SCALE * (qmax - qmin)
        else:
            amplifier = float(np.float32(_SMALL_SCALE / org_scale))
            lo, hi = float(np.float32(lo * amplifier)), float(np.float32(hi * amplifier))
    zp_from_min, zp_from_max = qmin - lo / scale, qmax - hi / scale
    err_min, err_max = abs(qmin) - abs(lo / scale), abs(qmax) - abs(hi / scale)
    initial = zp_from_min if err_min < err_max else zp_from_max
    zero_point = qmin if initial < qmin else qmax if initial > qmax else int(np.rint(initial))
    return float(np.float32(scale)), zero_point
