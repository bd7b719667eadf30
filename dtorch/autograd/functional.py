"""dtorch.autograd.functional: jacobian, hessian, vjp (built on autograd.grad)."""
from __future__ import annotations

from .._ops.joining import stack
from .._creation import zeros_like
from ..tensor import Tensor
from ._api import grad


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    single = isinstance(inputs, Tensor)
    ins = tuple(t.detach().requires_grad_() for t in ((inputs,) if single else inputs))
    out = func(*ins)
    gs = grad(out, ins, v, create_graph=create_graph, allow_unused=True, materialize_grads=True)
    return out, (gs[0] if single else gs)


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False):
    """Full Jacobian, one backward per output element."""
    single = isinstance(inputs, Tensor)
    ins = tuple(t.detach().requires_grad_() for t in ((inputs,) if single else inputs))
    out = func(*ins)
    flat = out.reshape(-1)
    rows = [[] for _ in ins]
    for k in range(flat.shape[0]):
        gs = grad(flat[k], ins, retain_graph=True, create_graph=create_graph, allow_unused=True)
        for i, g in enumerate(gs):
            rows[i].append(zeros_like(ins[i]) if g is None else g)
    jac = tuple(stack(r).reshape(tuple(out.shape) + tuple(ins[i].shape)) for i, r in enumerate(rows))
    return jac[0] if single else jac


def hessian(func, inputs, create_graph: bool = False, strict: bool = False):
    def gradient(*xs):
        out = func(*xs)
        g = grad(out, xs, create_graph=True)
        return g[0] if len(xs) == 1 else g

    return jacobian(gradient, inputs, create_graph=create_graph)
