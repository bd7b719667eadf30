"""linear, bilinear.

``linear`` is one graph node: the leading dims of the input fold into one GEMM
``x2 @ W.T`` (+ bias in place), and the backward is two GEMMs and a column sum.
"""
from __future__ import annotations

import math

from ..._dispatch import apply, defop
from ..._ops.linalg import same_dtype
from ...tensor import Tensor

__all__ = ["linear", "bilinear"]



def _needs(ctx, i: int) -> bool:
    return ctx.next_functions[i][0] is not None


@defop("linear", save=(0, 1))
def _linear(x, w, b=None):
    x2 = x.reshape(-1, x.shape[-1])
    out = x2 @ w.T
    if out.dtype is not x.dtype:
        out = same_dtype(out, x)
    if b is not None:
        out += b
    return out.reshape(x.shape[:-1] + (w.shape[0],))


@_linear.backward
def _linear_bw(ns, ctx, g, x, w):
    gx = gw = gb = None
    if _needs(ctx, 0):
        gx = ns.matmul(g, w)
    if _needs(ctx, 1) or _needs(ctx, 2):
        g2 = ns.reshape(g, shape=(-1, g.shape[-1]))
        if _needs(ctx, 1):
            gw = ns.mm(g2.T, ns.reshape(x, shape=(-1, x.shape[-1])))
        if _needs(ctx, 2):
            gb = ns.sum(g2, dim=0)
    return gx, gw, gb


def _check_linear(input: Tensor, weight: Tensor, bias) -> None:
    for t, name, pos in ((input, "input", 1), (weight, "weight", 2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"linear(): argument '{name}' (position {pos}) must be Tensor, not {type(t).__name__}")
    if input._data.ndim == 0 or weight._data.ndim not in (1, 2):
        raise RuntimeError(f"both arguments to linear need to be at least 1D, but they are {input._data.ndim}D and "
                           f"{weight._data.ndim}D")
    di, dw = input.dtype, weight.dtype
    if di != dw:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {di.cpp_name} "
                           f"!= {dw.cpp_name}")
    k = input._data.shape[-1]
    wshape = weight._data.shape
    if wshape[-1] != k:
        rows = math.prod(input._data.shape[:-1])
        cols = wshape[0] if len(wshape) == 2 else 1
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{k} and {wshape[-1]}x{cols})")
    if bias is not None:
        out = wshape[0] if len(wshape) == 2 else None
        bshape = tuple(bias._data.shape)
        if out is not None and bshape not in ((out,), (1,), ()):
            target = list(input._data.shape[:-1]) + [out]
            raise RuntimeError(f"The expanded size of the tensor ({out}) must match the existing size "
                               f"({bshape[-1]}) at non-singleton dimension {len(target) - 1}.  Target sizes: "
                               f"{target}.  Tensor sizes: {list(bshape)}")
        if bias.dtype != di:
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                               f"{di.cpp_name} != "
                               f"{bias.dtype.cpp_name}")


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` over any leading dims, as one node (one GEMM)."""
    _check_linear(input, weight, bias)
    if weight._data.ndim == 1 or input._data.ndim == 1:
        out = input.matmul(weight.t() if weight._data.ndim == 2 else weight)
        return out + bias if bias is not None else out
    return apply(_linear, (input, weight, bias))


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y[..., o] = x1[..., i] W[o, i, j] x2[..., j] + b[o]``."""
    if input1._data.shape[:-1] != input2._data.shape[:-1]:
        raise RuntimeError(f"bilinear(): input batch dimensions do not match: got {list(input1._data.shape[:-1])} "
                           f"and {list(input2._data.shape[:-1])}")
    if weight._data.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be three-dimensional: got {weight._data.ndim}")
    o, i, j = weight._data.shape
    if input1._data.shape[-1] != i:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got {input1._data.shape[-1]} but "
                           f"expected {i}")
    if input2._data.shape[-1] != j:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got {input2._data.shape[-1]} but "
                           f"expected {j}")
    lead = tuple(input1._data.shape[:-1])
    x1 = input1.reshape(-1, i)
    x2 = input2.reshape(-1, j)
    # (B, i) @ (i, o*j) -> (B, o, j), then contract j with x2
    t = x1.matmul(weight.permute(1, 0, 2).reshape(i, o * j)).reshape(-1, o, j)
    out = (t * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        out = out + bias
    return out.reshape(lead + (o,))
