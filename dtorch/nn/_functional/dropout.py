"""dropout (and its channel-wise forms dropout1d/2d/3d).

The keep-mask is drawn from dtorch's default generator for the input's device, so
``dtorch.manual_seed`` makes dropout reproducible. Kept elements are scaled by 1/(1-p).
The mask (0 or 1/(1-p) in the input's dtype, broadcastable to the input) is a parameter
of the op node; the backward is ``g * mask`` and is differentiable again.
"""
from __future__ import annotations

import numpy as np

from ..._device import device_of, require_cupy, xp_of
from ..._dispatch import ARRAY_NS, apply, defop
from ...random import generator_for
from ...tensor import Tensor, _make

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d"]


def _uniform(like, shape: tuple):
    """Uniform [0, 1) numbers of ``like``'s float dtype on its device, from the default generator."""
    dtype = like.dtype if like.dtype in (np.float32, np.float64) else np.float32
    dev = device_of(like)
    gen = generator_for(dev, None)
    if dev.type == "cuda":
        with require_cupy().cuda.Device(dev.index or 0):
            return gen._cupy_random_state().random_sample(shape, dtype=dtype)
    return gen._np.random(shape, dtype=dtype)


@defop("dropout")
def _dropout(x, mask):
    return x * mask


def _dropout_bw(ns, ctx, g):
    mask = ctx._args["mask"]
    if ns is ARRAY_NS:
        return (g * mask,)
    return (g * _make(mask),)


_dropout.backward(_dropout_bw, "NativeDropoutBackward0")


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _scaled_mask(input: Tensor, p: float, mask_shape: tuple):
    """0 for dropped elements, 1/(1-p) for kept ones, in the input's dtype: the forward and the backward are
    one multiply each."""
    x = input._data
    if x.dtype.kind not in "fcV":
        raise RuntimeError(f"result type Float can't be cast to the desired output type {input.dtype.scalar_name}")
    if p == 1.0:
        return xp_of(x).zeros(mask_shape, dtype=x.dtype)
    u = _uniform(x, mask_shape)
    keep = u >= p  # the draws and their comparison: a seed gives the masks it gave before
    if u.dtype == x.dtype:  # the draws' buffer becomes the mask
        xp_of(u).copyto(u, keep)
        mask = u
    else:
        mask = keep.astype(x.dtype)
    mask *= x.dtype.type(1.0 / (1.0 - p))
    return mask


def _apply_mask(input: Tensor, p: float, mask_shape: tuple, inplace: bool) -> Tensor:
    mask = _scaled_mask(input, p, mask_shape)
    if inplace:
        return input.mul_(_make(mask))
    return apply(_dropout, (input,), {"mask": mask})


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (identity when not training)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    return _apply_mask(input, p, tuple(input.shape), inplace)


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool, n_spatial: int, name: str) -> Tensor:
    _check_p(p)
    batched = input.ndim == n_spatial + 2
    if input.ndim not in (n_spatial + 1, n_spatial + 2):
        raise RuntimeError(f"{name}: Expected {n_spatial + 1}D or {n_spatial + 2}D input, but received a "
                           f"{input.ndim}D input.")
    if not training or p == 0.0:
        return input
    lead = 2 if batched else 1
    mask_shape = tuple(input.shape[:lead]) + (1,) * n_spatial
    return _apply_mask(input, p, mask_shape, inplace)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) inputs."""
    return _feature_dropout(input, p, training, inplace, 1, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) or (C, H, W) inputs."""
    return _feature_dropout(input, p, training, inplace, 2, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) inputs."""
    return _feature_dropout(input, p, training, inplace, 3, "dropout3d")
