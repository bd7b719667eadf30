"""Array formulas shared by the optimizers, written to round like torch's CPU kernels.

``*_into`` functions work in place with ``out=`` on caller-given work arrays (the fast path);
the others build new arrays (the per-parameter reference path).
"""
from __future__ import annotations

from ._flat import FlatBucket


def lerp_(xp, a, end, w: float, tmp) -> None:
    """``a.lerp_(end, w)`` in place, torch's formula: a + w*(end-a), or end - (end-a)*(1-w) for w >= 0.5."""
    xp.subtract(end, a, out=tmp)
    if abs(w) < 0.5:
        xp.multiply(tmp, w, out=tmp)
        xp.add(a, tmp, out=a)
    else:
        xp.multiply(tmp, 1 - w, out=tmp)
        xp.subtract(end, tmp, out=a)


def addcmul_(xp, a, t1, t2, value: float, tmp) -> None:
    """``a.addcmul_(t1, t2, value=value)``: a + value*t1*t2."""
    xp.multiply(t1, value, out=tmp)
    xp.multiply(tmp, t2, out=tmp)
    xp.add(a, tmp, out=a)


def addcdiv_(xp, a, t1, t2, value: float, tmp) -> None:
    """``a.addcdiv_(t1, t2, value=value)``: a + value*(t1/t2). ``tmp`` may be ``t2``."""
    xp.divide(t1, t2, out=tmp)
    if value != 1:
        xp.multiply(tmp, value, out=tmp)
    xp.add(a, tmp, out=a)


def add_scaled_(xp, a, b, alpha: float, tmp) -> None:
    """``a.add_(b, alpha=alpha)``: a + alpha*b."""
    if alpha == 1 or alpha == -1:  # a - b is a + (-1)*b exactly: one pass
        (xp.add if alpha == 1 else xp.subtract)(a, b, out=a)
        return
    xp.multiply(b, alpha, out=tmp)
    xp.add(a, tmp, out=a)


def flat_grad(b: FlatBucket, grads: list, maximize: bool, weight_decay: float):
    """The flat gradient the update uses: negated for ``maximize``, plus ``weight_decay * param`` (L2).

    Gathering and transforming are one pass per parameter; the result must not be written to.
    """
    if not maximize and weight_decay == 0:
        return b.gathered(grads)
    xp = b.xp
    d = b.scratch("d")
    P = b.flat
    for sl, g in b.pairs(grads):
        out = d[sl]
        if weight_decay == 0:
            xp.negative(g, out=out)
            continue
        xp.multiply(P[sl], weight_decay, out=out)
        # (-g) + wd*p is exactly wd*p - g: one rounding either way
        (xp.subtract if maximize else xp.add)(out, g, out=out)
    return d


# ---- reference path (per parameter, new arrays) ----------------------------------------------
def lerp(a, end, w: float):
    if abs(w) < 0.5:
        return a + w * (end - a)
    return end - (end - a) * (1 - w)


def ref_grad(g, p, maximize: bool, weight_decay: float):
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    return g
