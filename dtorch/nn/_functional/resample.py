"""interpolate's modes beyond nearest/linear, each a separable matrix per spatial dim (the same linear-map op
and transposed-matrix backward as the others): nearest-exact, area (adaptive average pooling's bins), and
bicubic (torch's cubic convolution with A = -0.75, borders clamped)."""
from __future__ import annotations

import numpy as np

from .pooling import _mean_matrix, linear_map

__all__ = ["MODES"]

_A = -0.75


def _nearest_exact_matrix(n: int, o: int, scale: float | None, align_corners: bool, dtype) -> np.ndarray:
    s = np.float32(1.0 / scale if scale else n / o)
    src = np.minimum(np.floor((np.arange(o, dtype=np.float32) + np.float32(0.5)) * s).astype(np.int64), n - 1)
    m = np.zeros((o, n), dtype)
    m[np.arange(o), src] = 1
    return m


def _area_matrix(n: int, o: int, scale: float | None, align_corners: bool, dtype) -> np.ndarray:
    return _mean_matrix(n, o, dtype)


def _cubic_near(x):
    return ((_A + 2) * x - (_A + 3)) * x * x + 1


def _cubic_far(x):
    return ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A


def _cubic_matrix(n: int, o: int, scale: float | None, align_corners: bool, dtype) -> np.ndarray:
    """Four taps per output, at floor(src) - 1 .. floor(src) + 2 clamped into the input (torch's bicubic)."""
    dst = np.arange(o, dtype=np.float64)
    if align_corners:
        src = dst * ((n - 1) / (o - 1) if o > 1 else 0.0)
    else:
        src = (dst + 0.5) * (1.0 / scale if scale else n / o) - 0.5  # no clamp at 0 for cubic
    i0 = np.floor(src).astype(np.int64)
    t = src - i0
    coeffs = (_cubic_far(t + 1), _cubic_near(t), _cubic_near(1 - t), _cubic_far(2 - t))
    m = np.zeros((o, n), np.float64)
    for k, c in enumerate(coeffs):
        np.add.at(m, (np.arange(o), np.clip(i0 - 1 + k, 0, n - 1)), c)
    return m.astype(dtype)


# mode: (spatial dims it needs or None for any, matrix builder, op)
MODES = {
    "nearest-exact": (None, _nearest_exact_matrix,
                      linear_map("upsample_nearest_exact", "UpsampleNearestExact2DBackward0")),
    "area": (None, _area_matrix, linear_map("upsample_area", "AdaptiveAvgPool2DBackward0")),
    "bicubic": (2, _cubic_matrix, linear_map("upsample_bicubic", "UpsampleBicubic2DBackward0")),
}
