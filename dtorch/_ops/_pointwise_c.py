"""ReLU's and LeakyReLU's elementwise kernels in C, one pass each (float32/float64, contiguous, on the CPU).

numpy spends several passes on them: ReLU's gradient is a compare, a bool-to-float cast and a multiply; LeakyReLU
a multiply and a maximum, its gradient a compare, a cast, a maximum and a multiply. The C loops give the same
values in one pass (the slope rounded to the array's dtype, as numpy's weak scalar is), built once with the
system C compiler (``cpp_extension.CFunctions``); without one, or for other arrays, callers keep numpy's code.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ..utils.cpp_extension import KERNEL_CFLAGS, CFunctions, real_signatures, real_variants

_TYPED = r"""
/* d = 0 where out <= 0 (ReLU's result), else g: torch's threshold_backward (a NaN output passes g) */
void dt_relu_grad_SUF(const REAL *restrict out, const REAL *restrict g, REAL *restrict d, i64 n) {
    for (i64 i = 0; i < n; i++) d[i] = out[i] <= 0 ? (REAL)0 : g[i];
}

/* max(a, slope * a) for 0 < slope <= 1 (NaN stays NaN) */
void dt_leaky_SUF(const REAL *restrict a, REAL *restrict y, i64 n, double slope) {
    const REAL sl = (REAL)slope;
    for (i64 i = 0; i < n; i++) {
        const REAL v = a[i], s = v * sl;
        y[i] = v > s ? v : s;
    }
}

/* g where a > 0, else g * slope (NaN a too) */
void dt_leaky_grad_SUF(const REAL *restrict a, const REAL *restrict g, REAL *restrict d, i64 n, double slope) {
    const REAL sl = (REAL)slope;
    for (i64 i = 0; i < n; i++) d[i] = a[i] > 0 ? g[i] : g[i] * sl;
}
"""
# below this many elements the ctypes call costs more than numpy's passes
MIN_SIZE = 1 << 14


def _source() -> str:
    return "#include <stdint.h>\ntypedef int64_t i64;\n" + real_variants(_TYPED)


_P, _N, _D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
KERNELS = CFunctions("dtorch_pointwise", _source, KERNEL_CFLAGS, real_signatures({
    "dt_relu_grad_SUF": [_P, _P, _P, _N], "dt_leaky_SUF": [_P, _P, _N, _D], "dt_leaky_grad_SUF": [_P, _P, _P, _N, _D]}))


def _run(name: str, inputs: tuple, *scalars):
    """The kernel ``name`` on ``inputs`` into a new array like the first, or None where it does not serve them."""
    if not KERNELS.serves(inputs, MIN_SIZE):
        return None
    out = np.empty_like(inputs[0])
    KERNELS.real(f"dt_{name}", out.dtype)(*(a.ctypes.data for a in inputs), out.ctypes.data, out.size, *scalars)
    return out


def relu_grad(out, g):
    """ReLU's input gradient from its result ``out``, or None where the kernel does not serve the arrays."""
    return _run("relu_grad", (out, g))


def leaky(a, slope: float):
    """``max(a, slope * a)`` for ``0 < slope <= 1``, or None where the kernel does not serve ``a``."""
    return _run("leaky", (a,), slope)


def leaky_grad(a, g, slope: float):
    """LeakyReLU's input gradient (``0 < slope <= 1``), or None where the kernel does not serve the arrays."""
    return _run("leaky_grad", (a, g), slope)
