"""Fused optimizer updates over flat contiguous buffers (one grid-stride kernel per update).

Hyper-parameters that depend on the step (Adam's bias corrections) are computed on the host
and passed as doubles, so a kernel never reads device memory for them.
"""
from __future__ import annotations

from . import render

SGD = "dtorch_sgd_$SUFFIX"
SGD_MOMENTUM = "dtorch_sgd_momentum_$SUFFIX"
ADAM = "dtorch_adam_$SUFFIX"
ADAM_AMSGRAD = "dtorch_adam_amsgrad_$SUFFIX"

_GRAD = r"""
    $ACC d = ($ACC)g[i];
    if (maximize) d = -d;
    if (weight_decay != 0) d += ($ACC)weight_decay * ($ACC)p[i];
"""

_SGD = r"""
// p -= lr * (maximize ? -g : g) + weight_decay * p  (no momentum)
extern "C" __global__ void dtorch_sgd_$SUFFIX($T* __restrict__ p, const $T* __restrict__ g, const long long n,
        const double lr, const double weight_decay, const int maximize) {
    $FOR_EACH_I {
""" + _GRAD + r"""
        p[i] = ($T)(($ACC)p[i] - ($ACC)lr * d);
    }
}

// buf = first ? d : momentum * buf + (1 - dampening) * d;  p -= lr * (nesterov ? d + momentum * buf : buf)
extern "C" __global__ void dtorch_sgd_momentum_$SUFFIX($T* __restrict__ p, $T* __restrict__ buf,
        const $T* __restrict__ g, const long long n, const double lr, const double momentum,
        const double dampening, const double weight_decay, const int first, const int nesterov, const int maximize) {
    $FOR_EACH_I {
""" + _GRAD + r"""
        const $ACC m = first ? d : ($ACC)momentum * ($ACC)buf[i] + ($ACC)(1 - dampening) * d;
        buf[i] = ($T)m;
        const $ACC u = nesterov ? d + ($ACC)momentum * m : m;
        p[i] = ($T)(($ACC)p[i] - ($ACC)lr * u);
    }
}
"""

_ADAM = r"""
// Adam / AdamW. decay = 1 - lr * weight_decay for AdamW (1 otherwise); weight_decay is the L2 term
// (0 for AdamW); step_size = lr / (1 - beta1^t); bc2_sqrt = sqrt(1 - beta2^t).
extern "C" __global__ void $NAME($T* __restrict__ p, $T* __restrict__ m, $T* __restrict__ v,$VMAX_PARAM
        const $T* __restrict__ g, const long long n, const double beta1, const double beta2, const double eps,
        const double weight_decay, const double decay, const double step_size, const double bc2_sqrt,
        const int maximize) {
    $FOR_EACH_I {
        const $ACC pv = ($ACC)p[i] * ($ACC)decay;
""" + _GRAD.replace("($ACC)p[i]", "pv") + r"""
        const $ACC mo = ($ACC)m[i];
        const $ACC mv = mo + ($ACC)(1 - beta1) * (d - mo);
        $ACC vv = ($ACC)v[i] * ($ACC)beta2 + ($ACC)(1 - beta2) * d * d;
        m[i] = ($T)mv;
        v[i] = ($T)vv;$VMAX_BODY
        const $ACC denom = sqrt(vv) / ($ACC)bc2_sqrt + ($ACC)eps;
        p[i] = ($T)(pv - ($ACC)step_size * (mv / denom));
    }
}
"""

_VMAX_BODY = r"""
        const $ACC vm = ($ACC)vmax[i] > vv ? ($ACC)vmax[i] : vv;
        vmax[i] = ($T)vm;
        vv = vm;"""


def sgd_source(dtype) -> str:
    """Source of the SGD kernels (plain and momentum) for ``dtype``."""
    return render(_SGD, dtype)


def sgd_names(dtype) -> tuple[str, str]:
    """(plain, momentum) SGD kernel names for ``dtype``."""
    return render(SGD, dtype), render(SGD_MOMENTUM, dtype)


def adam_source(dtype, amsgrad: bool) -> str:
    """Source of the Adam kernel for ``dtype``; with ``amsgrad`` it keeps ``vmax`` too."""
    src = _ADAM.replace("$VMAX_BODY", _VMAX_BODY if amsgrad else "")
    src = src.replace("$VMAX_PARAM", " $T* __restrict__ vmax," if amsgrad else "")
    return render(src.replace("$NAME", ADAM_AMSGRAD if amsgrad else ADAM), dtype)


def adam_name(dtype, amsgrad: bool) -> str:
    return render(ADAM_AMSGRAD if amsgrad else ADAM, dtype)
