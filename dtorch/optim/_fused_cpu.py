"""Adam/AdamW's and Adadelta's flat-buffer steps as one C loop each (float32/float64, on the CPU).

The numpy steps (``adam.py``, ``adadelta.py``) make 12-15 passes over the parameters; these kernels do the same
operations, in the same order and the same precision (each Python scalar rounded to the arrays' dtype first, as
numpy's weak scalars are; no contraction into FMAs), element by element in one pass, so their results are
identical. Built on first use by ``cpp_extension.CFunctions``; without a C compiler the numpy steps run.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ..utils.cpp_extension import KERNEL_CFLAGS, CFunctions, real_signatures, real_variants

_TYPED = r"""
/* adam.py's _flat_update after the weight decay: lerp_ (w1 = 1 - beta1; big: |w1| >= 0.5, torch's other form),
   v = v * beta2 + (g * (1 - beta2)) * g, optional amsgrad max, denominator sqrt(v) / sqrt(bc2) + eps,
   p = p + (m / denom) * value */
void dt_adam_SUF(REAL *restrict p, const REAL *restrict g, REAL *restrict m, REAL *restrict v,
                 REAL *restrict vmax, i64 n, const double *s) {
    const REAL w1 = (REAL)s[0], one_w1 = (REAL)s[1], beta2 = (REAL)s[2], one_beta2 = (REAL)s[3];
    const REAL bc2 = (REAL)s[4], eps = (REAL)s[5], value = (REAL)s[6];
    const int big = s[7] != 0;
    for (i64 i = 0; i < n; i++) {
        const REAL gi = g[i];
        REAL t = gi - m[i];
        if (big) { t = t * one_w1; m[i] = gi - t; } else { t = t * w1; m[i] = m[i] + t; }
        REAL vi = v[i] * beta2;
        t = gi * one_beta2;
        t = t * gi;
        vi = vi + t;
        v[i] = vi;
        if (vmax) {
            const REAL a = vmax[i];
            vi = (a != a || a >= vi) ? a : vi;  /* numpy's maximum: NaN wins */
            vmax[i] = vi;
        }
        t = (REAL)sqrt(vi);
        t = t / bc2;
        t = t + eps;
        t = m[i] / t;
        t = t * value;
        p[i] = p[i] + t;
    }
}

/* adadelta.py's _update: sq = sq * rho + (g * (1 - rho)) * g; delta = sqrt(acc + eps) / sqrt(sq + eps) * g;
   acc = acc * rho + (delta * (1 - rho)) * delta; p = p - delta (lr 1) or p + delta * (-lr) */
void dt_adadelta_SUF(REAL *restrict p, const REAL *restrict g, REAL *restrict sq, REAL *restrict acc, i64 n,
                     const double *s) {
    const REAL rho = (REAL)s[0], one_rho = (REAL)s[1], eps = (REAL)s[2], alpha = (REAL)s[3];
    const int unit = s[4] != 0;
    for (i64 i = 0; i < n; i++) {
        const REAL gi = g[i];
        REAL si = sq[i] * rho, t = gi * one_rho;
        t = t * gi;
        si = si + t;
        sq[i] = si;
        const REAL std = (REAL)sqrt(si + eps);
        REAL d = (REAL)sqrt(acc[i] + eps);
        d = d / std;
        d = d * gi;
        REAL ai = acc[i] * rho;
        t = d * one_rho;
        t = t * d;
        acc[i] = ai + t;
        p[i] = unit ? p[i] - d : p[i] + d * alpha;
    }
}
"""

_P = ctypes.c_void_p
KERNELS = CFunctions(
    "dtorch_fused_cpu",
    lambda: "#include <stdint.h>\n#include <math.h>\ntypedef int64_t i64;\n" + real_variants(_TYPED),
    KERNEL_CFLAGS,
    real_signatures({"dt_adam_SUF": [_P, _P, _P, _P, _P, ctypes.c_int64, _P],
                     "dt_adadelta_SUF": [_P, _P, _P, _P, ctypes.c_int64, _P]}))


def _call(name: str, arrays: list, scalars: list) -> bool:
    """Run kernel ``name`` on ``arrays`` (None: a NULL pointer) and ``scalars``; False where it does not serve."""
    if not KERNELS.serves([a for a in arrays if a is not None]):
        return False
    s = np.array(scalars, np.float64)
    ptrs = [None if a is None else a.ctypes.data for a in arrays]
    KERNELS.real(f"dt_{name}", arrays[0].dtype)(*ptrs, arrays[0].size, s.ctypes.data)
    return True


def adam(P, g, m, v, vmax, w1: float, beta2: float, bc2_sqrt: float, eps: float, value: float) -> bool:
    """Adam's step in place (as ``adam.py``'s numpy ops after the weight decay); False where it does not serve."""
    return _call("adam", [P, g, m, v, vmax], [w1, 1 - w1, beta2, 1 - beta2, bc2_sqrt, eps, value, abs(w1) >= 0.5])


def adadelta(P, g, sq, acc, rho: float, eps: float, alpha: float) -> bool:
    """Adadelta's step in place (``adadelta.py``'s numpy ops); False where it does not serve the arrays."""
    return _call("adadelta", [P, g, sq, acc], [rho, 1 - rho, eps, alpha, alpha == -1])
