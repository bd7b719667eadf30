"""Row-wise layer norm kernels (one block per row of a contiguous [rows, n] array)."""
from __future__ import annotations

from . import BLOCK_REDUCE, render

FORWARD = "dtorch_layer_norm_fwd_$SUFFIX"
BACKWARD = "dtorch_layer_norm_bwd_$SUFFIX"

_SOURCE = BLOCK_REDUCE + r"""
// xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (biased var); y = xhat * w + b.
// w, b are read only when has_w / has_b (pass any array otherwise).
extern "C" __global__ void dtorch_layer_norm_fwd_$SUFFIX(
        const $T* __restrict__ x, const $T* __restrict__ w, const $T* __restrict__ b,
        $T* __restrict__ y, $T* __restrict__ xhat, $T* __restrict__ rstd,
        const long long n, const double eps, const int has_w, const int has_b) {
    __shared__ $ACC buf[$BLOCK];
    const long long off = (long long)blockIdx.x * n;
    $ACC s = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) s += ($ACC)x[off + i];
    const $ACC mean = block_sum(s, buf) / ($ACC)n;
    $ACC q = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        const $ACC c = ($ACC)x[off + i] - mean;
        q += c * c;
    }
    const $ACC var = block_sum(q, buf) / ($ACC)n;
    const $ACC r = ($ACC)1 / sqrt(var + ($ACC)eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = ($T)r;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        const $ACC h = (($ACC)x[off + i] - mean) * r;
        xhat[off + i] = ($T)h;
        $ACC v = h;
        if (has_w) v *= ($ACC)w[i];
        if (has_b) v += ($ACC)b[i];
        y[off + i] = ($T)v;
    }
}

// gx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)), gxhat = g * w.
extern "C" __global__ void dtorch_layer_norm_bwd_$SUFFIX(
        const $T* __restrict__ g, const $T* __restrict__ xhat, const $T* __restrict__ rstd,
        const $T* __restrict__ w, $T* __restrict__ gx, const long long n, const int has_w) {
    __shared__ $ACC buf[$BLOCK];
    const long long off = (long long)blockIdx.x * n;
    $ACC sa = 0, sb = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        $ACC gh = ($ACC)g[off + i];
        if (has_w) gh *= ($ACC)w[i];
        sa += gh;
        sb += gh * ($ACC)xhat[off + i];
    }
    const $ACC a = block_sum(sa, buf) / ($ACC)n;
    const $ACC bb = block_sum(sb, buf) / ($ACC)n;
    const $ACC r = ($ACC)rstd[blockIdx.x];
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        $ACC gh = ($ACC)g[off + i];
        if (has_w) gh *= ($ACC)w[i];
        gx[off + i] = ($T)((gh - ($ACC)xhat[off + i] * bb - a) * r);
    }
}
"""


def source(dtype) -> str:
    """CUDA source of the layer norm forward and backward kernels for ``dtype`` (float32 or float64)."""
    return render(_SOURCE, dtype)


def names(dtype) -> tuple[str, str]:
    """(forward, backward) kernel names for ``dtype``."""
    return render(FORWARD, dtype), render(BACKWARD, dtype)
