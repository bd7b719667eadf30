"""BatchNorm's training forward and backward in C for float32 (N, C, *) arrays on the CPU: two passes each.

numpy needs five passes forward (the per-channel sum, the centring, the sum of squares, the scale, the shift)
and six backward. Here the forward sums a channel (pass 1), then centres it, keeping ``x - mean`` for the
backward, while summing its squares (pass 2), then writes ``(x - mean) * rstd * w + b`` (pass 3, over the
centred values, still in cache for small channels); the backward sums ``g`` and ``g * (x - mean)`` (pass 1) and
writes the input gradient (pass 2). Sums run in float32 lanes along each sample's run of the channel
(``omp simd``, reassociation allowed only there) and in double across runs. float64 arrays keep numpy's code,
whose pairwise sums the gradchecks rely on. Built on first use by ``cpp_extension.CFunctions``.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ...utils.cpp_extension import KERNEL_CFLAGS, CFunctions

_SOURCE = r"""
#include <stdint.h>
#include <math.h>
typedef int64_t i64;

static float dt_run_sum(const float *a, i64 l) {
    float s = 0;
    #pragma omp simd reduction(+:s)
    for (i64 i = 0; i < l; i++) s += a[i];
    return s;
}

/* per channel: mean, xc = x - mean, var = mean(xc^2), rstd = 1 / sqrt(var + eps), y = xc * (rstd * w) + b */
void dt_bn_forward(const float *restrict x, float *restrict xc, float *restrict y, const float *w, const float *b,
                   float *stats, i64 n, i64 c, i64 l, double eps) {
    const double count = (double)n * (double)l;
    for (i64 ch = 0; ch < c; ch++) {
        double s = 0;
        for (i64 s_ = 0; s_ < n; s_++) s += dt_run_sum(x + (s_ * c + ch) * l, l);
        const float mean = (float)(s / count);
        double q = 0;
        for (i64 s_ = 0; s_ < n; s_++) {
            const float *xr = x + (s_ * c + ch) * l;
            float *dr = xc + (s_ * c + ch) * l;
            float qs = 0;
            #pragma omp simd reduction(+:qs)
            for (i64 i = 0; i < l; i++) {
                const float d = xr[i] - mean;
                dr[i] = d;
                qs += d * d;
            }
            q += qs;
        }
        const float var = (float)(q / count);
        const float rstd = 1.0f / sqrtf(var + (float)eps);
        const float k = w ? rstd * w[ch] : rstd, sh = b ? b[ch] : 0.0f;
        for (i64 s_ = 0; s_ < n; s_++) {
            const float *dr = xc + (s_ * c + ch) * l;
            float *yr = y + (s_ * c + ch) * l;
            for (i64 i = 0; i < l; i++) {
                const float t = dr[i] * k;
                yr[i] = t + sh;
            }
        }
        stats[ch] = mean; stats[c + ch] = var; stats[2 * c + ch] = rstd;
    }
}

/* per channel: sg = sum(g), sgxc = sum(g * xc); with gx: gx = (g * k - xc * (k * r^2 * sgxc / m)) - k * sg / m,
   k = w * r (r: rstd) */
void dt_bn_backward(const float *restrict g, const float *restrict xc, float *restrict gx, const float *rstd,
                    const float *w, float *sums, i64 n, i64 c, i64 l) {
    const double count = (double)n * (double)l;
    for (i64 ch = 0; ch < c; ch++) {
        double sg = 0, sgxc = 0;
        for (i64 s_ = 0; s_ < n; s_++) {
            const float *gr = g + (s_ * c + ch) * l, *dr = xc + (s_ * c + ch) * l;
            float a = 0, b = 0;
            #pragma omp simd reduction(+:a, b)
            for (i64 i = 0; i < l; i++) { a += gr[i]; b += gr[i] * dr[i]; }
            sg += a; sgxc += b;
        }
        sums[ch] = (float)sg; sums[c + ch] = (float)sgxc;
        if (!gx) continue;
        const float r = rstd[ch], k = w ? w[ch] * r : r;
        const float coef = (float)((double)(k * r * r) * sgxc / count), shift = (float)((double)k * sg / count);
        for (i64 s_ = 0; s_ < n; s_++) {
            const float *gr = g + (s_ * c + ch) * l, *dr = xc + (s_ * c + ch) * l;
            float *o = gx + (s_ * c + ch) * l;
            for (i64 i = 0; i < l; i++) {
                const float t = gr[i] * k, u = dr[i] * coef;
                o[i] = (t - u) - shift;
            }
        }
    }
}
"""

_P = ctypes.c_void_p
_I = ctypes.c_int64
KERNELS = CFunctions("dtorch_batch_norm", lambda: _SOURCE, KERNEL_CFLAGS + ("-fopenmp-simd",), {
    "dt_bn_forward": [_P, _P, _P, _P, _P, _P, _I, _I, _I, ctypes.c_double],
    "dt_bn_backward": [_P, _P, _P, _P, _P, _P, _I, _I, _I]})


def _serves(*arrays) -> bool:
    return all(a is None or (type(a) is np.ndarray and a.dtype == np.float32 and a.flags.c_contiguous)
               for a in arrays) and arrays[0].ndim >= 2 and bool(KERNELS.get())


def _ptr(a):
    return None if a is None else a.ctypes.data


def forward(x, w, b, eps: float):
    """``(y, xc, mean, var, rstd)`` of BatchNorm's training forward, or None where the kernel does not serve."""
    if not _serves(x, w, b):
        return None
    n, c = x.shape[:2]
    xc, y = np.empty_like(x), np.empty_like(x)
    stats = np.empty((3, c), np.float32)
    KERNELS.get()["dt_bn_forward"](x.ctypes.data, xc.ctypes.data, y.ctypes.data, _ptr(w), _ptr(b), stats.ctypes.data,
                                   n, c, x.size // max(1, n * c), eps)
    return y, xc, stats[0], stats[1], stats[2]


def backward(g, xc, rstd, w, need_input: bool):
    """``(gx or None, sum(g), sum(g * xc))`` per channel, or None where the kernel does not serve the arrays."""
    if not _serves(g, xc, rstd, w) or g.shape != xc.shape:
        return None
    n, c = g.shape[:2]
    gx = np.empty_like(g) if need_input else None
    sums = np.empty((2, c), np.float32)
    KERNELS.get()["dt_bn_backward"](g.ctypes.data, xc.ctypes.data, _ptr(gx), rstd.ctypes.data, _ptr(w),
                                    sums.ctypes.data, n, c, g.size // max(1, n * c))
    return gx, sums[0], sums[1]
