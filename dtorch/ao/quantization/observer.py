"""torch.ao.quantization.observer: modules that watch tensors and choose their scale and zero point."""
from __future__ import annotations

import functools

import numpy as np

from ..._device import xp_of
from ..._dtype import dtype, float16, float32, qint8, qint32, quint8
from ...autograd.grad_mode import no_grad
from ...nn.modules.module import Module
from ...tensor import Tensor, _make
from ._qtensor import (
    per_channel_affine, per_channel_affine_float_qparams, per_channel_symmetric, per_tensor_affine,
    per_tensor_symmetric, qscheme,
)

__all__ = ["ObserverBase", "MinMaxObserver", "PerChannelMinMaxObserver", "PlaceholderObserver",
           "default_weight_observer", "default_per_channel_weight_observer", "default_dynamic_quant_observer",
           "default_placeholder_observer"]

_EPS = float(np.finfo(np.float32).eps)


def _with_args(cls_or_self, **kwargs):
    """A factory making observers with these keyword arguments (torch's ``Observer.with_args``)."""
    return functools.partial(cls_or_self, **kwargs)


class ObserverBase(Module):
    """The base of observers: a ``dtype`` and ``calculate_qparams()``."""

    with_args = classmethod(_with_args)

    def __init__(self, dtype: dtype, is_dynamic: bool = False) -> None:
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = is_dynamic


def calculate_qmin_qmax(dt: dtype, reduce_range: bool, quant_min: int | None, quant_max: int | None) -> tuple:
    """torch's quantization range: the custom one, else the dtype's (halved by ``reduce_range``)."""
    if quant_min is not None and quant_max is not None:
        if not quant_min <= 0 <= quant_max:
            raise AssertionError("Used-specified quantization range must include 0.")
        if quant_min >= quant_max:
            raise AssertionError("qmin must be strictly less than qmax for user-specified quantization range.")
        return quant_min, quant_max
    if dt is qint8:
        return (-64, 63) if reduce_range else (-128, 127)
    if dt is quint8:
        return (0, 127) if reduce_range else (0, 255)
    if dt is qint32:
        return -(2 ** 31), 2 ** 31 - 1
    return 0, 15


class _MinMaxBase(ObserverBase):
    def __init__(self, dtype: dtype, qscheme: qscheme, reduce_range: bool, quant_min, quant_max, eps: float,
                 is_dynamic: bool) -> None:
        super().__init__(dtype, is_dynamic)
        if dtype not in (qint8, quint8, qint32):
            raise AssertionError("Default Observer only works for qint8, quint8 and quint4x2 data type")
        self.qscheme = qscheme
        self.reduce_range = reduce_range
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        self.quant_min, self.quant_max = calculate_qmin_qmax(dtype, reduce_range, quant_min, quant_max)
        self.eps = eps
        self.register_buffer("min_val", _make(np.asarray(np.inf, np.float32)))
        self.register_buffer("max_val", _make(np.asarray(-np.inf, np.float32)))

    def _calculate_qparams(self, min_val, max_val) -> tuple[Tensor, Tensor]:
        """(scale float32, zero_point int) arrays from observed minima/maxima, as torch's formulas."""
        xp = xp_of(min_val)
        if not bool(xp.all(min_val <= max_val)):
            return _make(xp.ones(1, np.float32)), _make(xp.zeros(1, np.int64))
        qmin, qmax = self.quant_min, self.quant_max
        min_neg = xp.minimum(min_val, np.float32(0))
        max_pos = xp.maximum(max_val, np.float32(0))
        eps = np.float32(self.eps)
        if self.qscheme in (per_tensor_symmetric, per_channel_symmetric):
            max_pos = xp.maximum(-min_neg, max_pos)
            scale = xp.maximum((max_pos / np.float32((qmax - qmin) / 2)).astype(np.float32), eps)
            mid = (qmin + qmax) // 2 if self.has_customized_qrange else 128
            zero_point = xp.full(scale.shape, mid if self.dtype is quint8 else 0, dtype=np.int64)
        else:
            scale = xp.maximum(((max_pos - min_neg) / np.float32(qmax - qmin)).astype(np.float32), eps)
            zero_point = qmin - xp.rint(min_neg / scale).astype(np.int32)
            zero_point = xp.clip(zero_point, qmin, qmax).astype(np.int32)
        return _make(xp.atleast_1d(scale)), _make(xp.atleast_1d(zero_point))


class MinMaxObserver(_MinMaxBase):
    """Tracks the running min and max of everything it sees (per tensor)."""

    def __init__(self, dtype: dtype = quint8, qscheme: qscheme = per_tensor_affine, reduce_range: bool = False,
                 quant_min: int | None = None, quant_max: int | None = None, factory_kwargs=None,
                 eps: float = _EPS, is_dynamic: bool = False, **kwargs) -> None:
        if qscheme not in (per_tensor_affine, per_tensor_symmetric):
            raise NotImplementedError("MinMaxObserver's qscheme only support torch.per_tensor_symmetric "
                                      "                     and torch.per_tensor_affine.")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps, is_dynamic)

    def forward(self, x_orig: Tensor) -> Tensor:
        if x_orig.numel() == 0:
            return x_orig
        with no_grad():
            x = x_orig.detach()._data.astype(np.float32)
            self.min_val = _make(np.minimum(self.min_val._data, x.min()).astype(np.float32))
            self.max_val = _make(np.maximum(self.max_val._data, x.max()).astype(np.float32))
        return x_orig

    def calculate_qparams(self) -> tuple[Tensor, Tensor]:
        return self._calculate_qparams(self.min_val._data, self.max_val._data)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val.item()}, max_val={self.max_val.item()}"

    def reset_min_max_vals(self) -> None:
        self.min_val = _make(np.asarray(np.inf, np.float32))
        self.max_val = _make(np.asarray(-np.inf, np.float32))


class PerChannelMinMaxObserver(_MinMaxBase):
    """Tracks the min and max of each slice along ``ch_axis``."""

    def __init__(self, ch_axis: int = 0, dtype: dtype = quint8, qscheme: qscheme = per_channel_affine,
                 reduce_range: bool = False, quant_min: int | None = None, quant_max: int | None = None,
                 factory_kwargs=None, eps: float = _EPS, is_dynamic: bool = False, **kwargs) -> None:
        if qscheme not in (per_channel_affine, per_channel_symmetric, per_channel_affine_float_qparams):
            raise NotImplementedError("PerChannelMinMaxObserver's qscheme only support torch.per_channel_symmetric, "
                                      "torch.per_channel_affine and torch.per_channel_affine_float_qparams.")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps, is_dynamic)
        self.ch_axis = ch_axis
        self.min_val = _make(np.zeros(0, np.float32))
        self.max_val = _make(np.zeros(0, np.float32))

    def forward(self, x_orig: Tensor) -> Tensor:
        if x_orig.numel() == 0:
            return x_orig
        x = np.moveaxis(x_orig.detach()._data.astype(np.float32), self.ch_axis, 0)
        x = x.reshape(x.shape[0], -1)
        lo, hi = x.min(axis=1), x.max(axis=1)
        if self.min_val.numel():
            lo, hi = np.minimum(self.min_val._data, lo), np.maximum(self.max_val._data, hi)
        self.min_val, self.max_val = _make(lo), _make(hi)
        return x_orig

    def calculate_qparams(self) -> tuple[Tensor, Tensor]:
        scale, zp = self._calculate_qparams(self.min_val._data, self.max_val._data)
        return scale, _make(zp._data.astype(np.int64))

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class PlaceholderObserver(ObserverBase):
    """Observes nothing: carries the dtype (and range) a dynamic or float16 quantization will use."""

    def __init__(self, dtype: dtype = float32, custom_op_name: str = "", compute_dtype=None,
                 quant_min: int | None = None, quant_max: int | None = None, qscheme: qscheme | None = None,
                 eps: float | None = None, is_dynamic: bool = False) -> None:
        super().__init__(dtype, is_dynamic)
        if qscheme is None:
            qscheme = per_tensor_affine
        if eps is None:
            eps = _EPS
        self.qscheme, self.quant_min, self.quant_max, self.eps = qscheme, quant_min, quant_max, eps
        self.custom_op = custom_op_name

    def forward(self, x: Tensor) -> Tensor:
        return x

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, is_dynamic={self.is_dynamic}"

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for PlaceholderObserver")


default_placeholder_observer = PlaceholderObserver
default_weight_observer = MinMaxObserver.with_args(dtype=qint8, qscheme=per_tensor_symmetric)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(dtype=qint8, qscheme=per_channel_symmetric)
default_dynamic_quant_observer = PlaceholderObserver.with_args(dtype=quint8, quant_min=0, quant_max=255,
                                                               is_dynamic=True)
float16_dynamic_observer = PlaceholderObserver.with_args(dtype=float16, is_dynamic=True)
float16_weight_observer = PlaceholderObserver.with_args(dtype=float16)
