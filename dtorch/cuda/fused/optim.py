"""SGD and Adam/AdamW steps on CUDA flat buckets: one fused kernel per parameter slice.

Called from the optimizers' ``_flat_update`` when the bucket lives on a GPU; each returns False
(and the caller runs its array-op path) for a dtype without a raw kernel. A tensor learning rate
or weight decay is read to the host once per step (``to_scalar``) and passed as a kernel argument.
"""
from __future__ import annotations

from ...optim._flat import FlatBucket
from ...optim._flat_optimizer import lr_div, one_minus_lr_times, to_scalar
from .._compile import f64, i32, i64, launch_flat, raw_kernel
from ..._device import require_cupy
from ..kernels import optim as src
from ..kernels import raw_supported


def _contiguous(g):
    return g if g.flags.c_contiguous else require_cupy().ascontiguousarray(g)


def sgd_step(group: dict, b: FlatBucket, grads: list, init: bool, state: dict) -> bool:
    """One SGD step of bucket ``b`` (torch's rule: momentum, dampening, Nesterov, weight decay, maximize)."""
    if not raw_supported(b.dtype):
        return False
    lr, wd = to_scalar(group["lr"]), to_scalar(group["weight_decay"])
    momentum = group["momentum"]
    code = src.sgd_source(b.dtype)
    plain, with_momentum = src.sgd_names(b.dtype)
    P = b.flat
    if momentum == 0:
        k = raw_kernel(code, plain)
        for sl, g in b.pairs(grads):
            p = P[sl]
            launch_flat(k, p.size, (p, _contiguous(g), i64(p.size), f64(lr), f64(wd), i32(group["maximize"])))
        return True
    buf = b.new_state(state, "momentum_buffer", fill=0) if init else b.state_flat["momentum_buffer"]
    k = raw_kernel(code, with_momentum)
    for sl, g in b.pairs(grads):
        p, m = P[sl], buf[sl]
        launch_flat(k, p.size, (p, m, _contiguous(g), i64(p.size), f64(lr), f64(momentum), f64(group["dampening"]),
                                f64(wd), i32(init), i32(group["nesterov"]), i32(group["maximize"])))
    return True


def adam_step(group: dict, b: FlatBucket, hyper: tuple, step: float) -> tuple | None:
    """The per-step scalars of one Adam/AdamW update, or None when no kernel covers ``b``."""
    if not raw_supported(b.dtype):
        return None
    lr, beta1, beta2, eps, wd = hyper
    decoupled = group["decoupled_weight_decay"]
    decay = one_minus_lr_times(lr, wd) if wd != 0 and decoupled else 1.0
    l2 = 0.0 if decoupled else wd
    step_size = lr_div(lr, 1 - beta1 ** step)
    bc2_sqrt = (1 - beta2 ** step) ** 0.5
    return beta1, beta2, eps, l2, decay, step_size, bc2_sqrt


def adam_launch(group: dict, b: FlatBucket, grads: list, scalars: tuple) -> None:
    """Run the fused Adam kernel over every parameter slice of ``b`` (state already exists)."""
    amsgrad = group["amsgrad"]
    k = raw_kernel(src.adam_source(b.dtype, amsgrad), src.adam_name(b.dtype, amsgrad))
    P, S = b.flat, b.state_flat
    m, v = S["exp_avg"], S["exp_avg_sq"]
    vmax = S["max_exp_avg_sq"] if amsgrad else None
    tail = tuple(f64(s) for s in scalars) + (i32(group["maximize"]),)
    for sl, g in b.pairs(grads):
        p = P[sl]
        state = (p, m[sl], v[sl]) + ((vmax[sl],) if amsgrad else ())
        launch_flat(k, p.size, state + (_contiguous(g), i64(p.size)) + tail)
