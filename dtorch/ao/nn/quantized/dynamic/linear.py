"""torch.ao.nn.quantized.dynamic.Linear: int8 (or float16) weights, activations quantized per call.

The arithmetic is torch's (fbgemm's): the weight is qint8 (symmetric, from its observer); each call
quantizes the input to quint8 from the batch's min and max with ``reduce_range`` (7 bits, as on
x86), multiplies the integers exactly, then scales the int32 sums back to float and adds the bias.

numpy has no int8 GEMM, so the integer product runs through float32 sgemm on the int8 values,
which is exact while every partial sum stays below 2**24 (``K * max|x_q| * max|w_q|``); past that
it runs in float64 (exact to 2**53). This layer saves memory (weights are stored as int8), not time.
"""
from __future__ import annotations

import numpy as np

from ....._device import xp_of
from ....._dtype import dtype, float16, qint8, quint8
from ....._dispatch import apply, defop
from .....nn.modules.linear import Linear as _FloatLinear
from .....nn.modules.module import Module
from .....tensor import Tensor, _make
from ....quantization.qconfig import default_dynamic_qconfig
from ....quantization._qtensor import (
    QTensor, choose_qparams, from_int_repr, per_channel_affine, per_channel_symmetric, per_tensor_affine,
    per_tensor_symmetric, quant_range, quantize_array, quantize_per_channel, quantize_per_tensor,
)

__all__ = ["Linear", "LinearPackedParams"]

_SGEMM_EXACT = 2 ** 24


class LinearPackedParams(Module):
    """The stored weight (int8 plus scale/zero point, or float16) and bias: what the state_dict holds."""

    def __init__(self, dtype: dtype = qint8) -> None:
        super().__init__()
        self.dtype = dtype
        self.axis = None
        for name in ("weight", "scale", "zero_point", "bias"):
            self.register_buffer(name, None)

    def set_weight_bias(self, weight: Tensor, bias: Tensor | None) -> None:
        if self.dtype is qint8:
            if not isinstance(weight, QTensor) or weight.dtype is not qint8:
                raise RuntimeError("dynamic quantized Linear (qint8) expects a qint8 quantized weight")
            self.axis = weight._axis
            self.weight = _make(weight._data)
            self.scale = _make(np.asarray(weight._scale, dtype=np.float64))
            self.zero_point = _make(np.asarray(weight._zero_point, dtype=np.int64))
        else:
            self.weight = _make(weight.detach()._data.astype(np.float16))
        self.bias = None if bias is None else _make(bias.detach()._data.astype(np.float32))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        scale = state_dict.get(prefix + "scale")
        if isinstance(scale, Tensor) and self.dtype is qint8 and scale.dim() != self.scale.dim():
            self.axis = 0 if scale.dim() else None  # per channel <-> per tensor: take the checkpoint's scheme
            self.scale = _make(np.zeros(scale.shape, np.float64))
            self.zero_point = _make(np.zeros(scale.shape, np.int64))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def qweight(self) -> Tensor:
        if self.dtype is qint8:
            return from_int_repr(self.weight._data, qint8, self.scale._data if self.axis is not None
                                 else self.scale.item(), self.zero_point._data if self.axis is not None
                                 else self.zero_point.item(), self.axis)
        return _make(self.weight._data.astype(np.float32))


class Linear(Module):
    """A Linear layer whose weights are stored quantized (qint8) or in float16; float in, float out."""

    _FLOAT_MODULE = (_FloatLinear,)

    def __init__(self, in_features: int, out_features: int, bias_: bool = True, dtype: dtype = qint8) -> None:
        super().__init__()
        if dtype not in (qint8, float16):
            raise RuntimeError("Unsupported dtype specified for dynamic quantized Linear!")
        self.in_features, self.out_features = in_features, out_features
        self._packed_params = LinearPackedParams(dtype)
        zeros = _make(np.zeros((out_features, in_features), np.float32))
        weight = quantize_per_tensor(zeros, 1.0, 0, qint8) if dtype is qint8 else zeros
        self._packed_params.set_weight_bias(weight, _make(np.zeros(out_features, np.float32)) if bias_ else None)

    def _get_name(self) -> str:
        return "DynamicQuantizedLinear"

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}, dtype={self._packed_params.dtype}"
        if self._packed_params.dtype is qint8:
            s += f", qscheme={self.weight().qscheme()}"
        return s

    def __repr__(self) -> str:  # the packed parameters are an implementation detail, as in torch
        return f"{self._get_name()}({self.extra_repr()})"

    def weight(self) -> Tensor:
        """The stored weight: a qint8 QTensor, or (float16 mode) a float32 tensor of the float16 values."""
        return self._packed_params.qweight()

    def bias(self) -> Tensor | None:
        return self._packed_params.bias

    def set_weight_bias(self, w: Tensor, b: Tensor | None) -> None:
        self._packed_params.set_weight_bias(w, b)

    def forward(self, x: Tensor) -> Tensor:
        p = self._packed_params
        if p.dtype is float16:
            a = x.detach()._data
            y = a.reshape(-1, a.shape[-1]).astype(np.float32, copy=False) @ p.weight._data.astype(np.float32).T
            if p.bias is not None:
                y += p.bias._data
            return _make(y.reshape(a.shape[:-1] + (self.out_features,)).astype(a.dtype, copy=False))
        # one registered op, so jit.trace records it and ONNX export lowers it (DynamicQuantizeLinear + MatMulInteger)
        bias = p.bias if p.bias is not None else _make(np.zeros(self.out_features, np.float32))
        return apply(_dynamic_int8_linear, (x.detach(), p.weight, p.scale, p.zero_point, bias))

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> "Linear":
        """The dynamic quantized twin of a float ``nn.Linear`` carrying a ``qconfig``."""
        if not isinstance(mod, cls._FLOAT_MODULE) or type(mod).__name__ not in ("Linear",
                                                                                  "NonDynamicallyQuantizableLinear"):
            raise AssertionError("nn.quantized.dynamic.Linear.from_float only works for one of"
                                 f"{['Linear', 'NonDynamicallyQuantizableLinear']}, got {type(mod)}")
        if not hasattr(mod, "qconfig"):
            raise AssertionError("Input float module must have qconfig defined")
        if mod.qconfig is not None and mod.qconfig.weight is not None:
            observer = mod.qconfig.weight()
        else:
            observer = default_dynamic_qconfig.weight()
        dt = observer.dtype
        if dt not in (qint8, float16):
            raise AssertionError(f"The only supported dtypes for dynamic quantized linear are qint8 and float16 "
                                 f"got: {dt}")
        observer(mod.weight)
        weight = _quantize_weight(mod.weight.detach().float(), observer) if dt is qint8 else mod.weight.detach()
        qlinear = cls(mod.in_features, mod.out_features, dtype=dt)
        qlinear.set_weight_bias(weight, mod.bias)
        return qlinear


def _quantize_weight(w: Tensor, observer) -> QTensor:
    scale, zp = observer.calculate_qparams()
    if observer.qscheme in (per_tensor_symmetric, per_tensor_affine):
        q = quantize_per_tensor(w, float(scale.item()), int(zp.item()), qint8)
    elif observer.qscheme in (per_channel_symmetric, per_channel_affine):
        q = quantize_per_channel(w, _make(scale._data.astype(np.float64)), _make(zp._data.astype(np.int64)),
                                 observer.ch_axis, qint8)
    else:
        raise ValueError(f"Unexpected qscheme {observer.qscheme}")
    lo, hi = observer.quant_min, observer.quant_max
    if (lo, hi) != quant_range(qint8):
        q._data = np.clip(q._data, lo, hi).astype(np.int8)
    return q


@defop("quantized_linear_dynamic")
def _dynamic_int8_linear(x, wq, w_scale, w_zero_point, bias):
    """``x @ dequantize(wq).T + bias`` with ``x`` quantized per call: any leading dims, float out."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.float32, copy=False)
    y = _int8_linear(rows, wq, w_scale, w_zero_point, bias)
    return y.reshape(x.shape[:-1] + (wq.shape[0],)).astype(x.dtype, copy=False)


def _int8_linear(x, wq, w_scale, w_zero_point, bias, w32=None, w_absmax: float | None = None):
    """fbgemm's dynamic int8 linear on float32 rows ``x``: quint8 input, exact integer sums, then
    ``sums * (x_scale * w_scale) + bias`` rounded once (fbgemm's fused multiply-add).

    ``w32``/``w_absmax``: ``wq`` as float32 and its largest magnitude, when a caller reusing the weight
    (a recurrent layer's steps) has them already."""
    xp = xp_of(x)
    if x.size == 0:
        return xp.zeros((x.shape[0], wq.shape[0]), np.float32) + (0 if bias is None else bias)
    x_scale, x_zp = choose_qparams(float(x.min()), float(x.max()), *quant_range(quint8), reduce_range=True)
    xq = quantize_array(x, x_scale, x_zp, quint8)
    centred = xq.astype(np.float32) - np.float32(x_zp)  # |.| <= 127: exact in float32
    w = wq.astype(np.float32) if w32 is None else w32
    if w_absmax is None:
        w_absmax = float(xp.abs(w).max())
    bound = x.shape[1] * float(xp.abs(centred).max()) * w_absmax
    # (W @ x.T).T: OpenBLAS is much faster with the few activation rows as the last dim (as the float RNN kernels)
    if bound < _SGEMM_EXACT:
        acc = (w @ centred.T).T
    else:
        acc = (w.astype(np.float64) @ centred.T.astype(np.float64)).T.astype(np.float32)
    acc -= _weight_offset(w_zero_point, centred)
    y = acc.astype(np.float64) * (np.float32(x_scale) * w_scale.astype(np.float32)).astype(np.float64)
    if bias is not None:
        y += bias
    return y.astype(np.float32)


def _weight_offset(w_zero_point, centred):
    """The weight zero point's share of the integer sums (0 for symmetric weights)."""
    if not np.any(w_zero_point):
        return np.float32(0)
    return (centred.astype(np.float64).sum(axis=1, keepdims=True) * w_zero_point.astype(np.float64)).astype(np.float32)
