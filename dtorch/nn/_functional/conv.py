"""conv1d, conv2d, conv3d, conv_transpose1d/2d/3d, unfold, fold: im2col + one GEMM per group.

Three registered kernels carry every convolution; each is the adjoint of another, so
every backward formula is a convolution again and ``create_graph=True`` works:

* ``convolution(x, w, b)``: ``y = conv(x, w) + b`` (node ``ConvolutionBackward0``);
* ``conv_input_grad(g, w, b)``: the adjoint of conv in ``x`` — the transposed
  convolution, which is also ``conv_transpose*``'s forward;
* ``conv_weight_grad(x, g)``: the adjoint of conv in ``w``.

Kernels take ``stride``, ``dilation`` (tuples, one per spatial dim), ``padding``
(``(lo, hi)`` pairs: 'same' can pad unevenly) and ``groups``. Columns are laid out
``(N, groups, C/groups * prod(kernel), L)`` so that the forward product is one batched
GEMM whose result is already NCHW. The forward keeps these columns on the node
(``extra``) so the weight gradient needs no second im2col.
"""
from __future__ import annotations

import math

from ..._dispatch import ARRAY_NS, apply, defop, tensor_fn
from ..._ops._helpers import xp_of
from ...tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "unfold", "fold"]


# ---- array helpers ------------------------------------------------------------------------------
def _as_strided(a, shape, strides):
    return xp_of(a).lib.stride_tricks.as_strided(a, shape, strides)


def pad_zeros(x, padding):
    """Zero-pad the trailing ``len(padding)`` dims of ``x`` by ``(lo, hi)`` pairs (non-negative)."""
    if not any(lo or hi for lo, hi in padding):
        return x
    nd = len(padding)
    lead = x.shape[:x.ndim - nd]
    shape = lead + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[-nd:], padding))
    out = xp_of(x).zeros(shape, x.dtype)
    out[(Ellipsis,) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[-nd:], padding))] = x
    return out


def crop(x, padding, size):
    """Undo :func:`pad_zeros`: the ``size`` window after the low padding."""
    if not any(lo or hi for lo, hi in padding):
        return x
    return x[(Ellipsis,) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(size, padding))]


def out_size(size, kernel, stride, padding, dilation) -> tuple:
    return tuple((s + lo + hi - d * (k - 1) - 1) // st + 1
                 for s, k, st, (lo, hi), d in zip(size, kernel, stride, padding, dilation))


def windows(xpad, kernel, stride, dilation, out):
    """Strided view ``(..., *kernel, *out)`` of the sliding windows over the trailing dims."""
    nd = len(kernel)
    st = xpad.strides
    lead = xpad.ndim - nd
    sp = st[lead:]
    return _as_strided(xpad, xpad.shape[:lead] + tuple(kernel) + tuple(out),
                       st[:lead] + tuple(s * d for s, d in zip(sp, dilation))
                       + tuple(s * t for s, t in zip(sp, stride)))


def im2col(x, kernel, stride, padding, dilation, groups: int):
    """Contiguous columns ``(N, groups, C/groups * prod(kernel), L)`` and the output size."""
    xpad = pad_zeros(x, padding)
    out = out_size(x.shape[2:], kernel, stride, padding, dilation)
    cols = xp_of(x).ascontiguousarray(windows(xpad, kernel, stride, dilation, out))
    return cols.reshape(x.shape[0], groups, -1, math.prod(out)), out


def col2im(cols, channels: int, size, kernel, stride, padding, dilation):
    """Adjoint of :func:`im2col`: add every column entry back into its input position.

    cols: ``(N, C * prod(kernel), L)``; one strided add per kernel position.
    """
    n = cols.shape[0]
    nd = len(kernel)
    out = out_size(size, kernel, stride, padding, dilation)
    cols = cols.reshape((n, channels, math.prod(kernel)) + out)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, padding))
    acc = xp_of(cols).zeros((n, channels) + padded, cols.dtype)
    for p in range(math.prod(kernel)):
        pos = _unravel(p, kernel)
        sl = tuple(slice(pos[i] * dilation[i], pos[i] * dilation[i] + stride[i] * (out[i] - 1) + 1, stride[i])
                   for i in range(nd))
        acc[(slice(None), slice(None)) + sl] += cols[:, :, p]
    return crop(acc, padding, size)


def _unravel(p: int, shape) -> tuple:
    idx = []
    for s in reversed(shape):
        idx.append(p % s)
        p //= s
    return tuple(reversed(idx))


# ---- stride-1 fast path: columns over the flattened padded plane -------------------------------
# With stride 1 the window of kernel position p is the flattened padded plane shifted by a
# constant, so im2col copies long contiguous runs and col2im adds them back. The price: the
# product also computes ``padded - out`` garbage columns per row, cropped (or zero) afterwards.
class _Flat:
    """Geometry of the flattened padded plane for a stride-1 convolution."""

    def __init__(self, size, kernel, padding, dilation):
        self.padded = tuple(n + lo + hi for n, (lo, hi) in zip(size, padding))
        self.full = tuple(pn - d * (k - 1) for pn, k, d in zip(self.padded, kernel, dilation))
        st, acc = [], 1
        for pn in reversed(self.padded):
            st.append(acc)
            acc *= pn
        self.pst = tuple(reversed(st))  # element strides of the padded plane
        self.total = acc
        self.length = self.full[0] * self.pst[0]  # columns per kernel position
        self.kstrides = tuple(d * ps for d, ps in zip(dilation, self.pst))
        self.slack = sum((k - 1) * ks for k, ks in zip(kernel[1:], self.kstrides[1:]))
        self.kernel = tuple(kernel)

    def shifts(self) -> list[int]:
        return [sum(q * ks for q, ks in zip(pos, self.kstrides)) for pos in
                (_unravel(p, self.kernel) for p in range(math.prod(self.kernel)))]

    def spread(self, a, out):
        """``(N, C, *out)`` -> ``(N, C, length)`` laid on the padded rows, zeros elsewhere."""
        n, c = a.shape[:2]
        buf = xp_of(a).zeros((n, c, self.full[0]) + self.padded[1:], a.dtype)
        buf[(Ellipsis,) + tuple(slice(0, o) for o in out)] = a
        return buf.reshape(n, c, self.length)

    def gather(self, a, out):
        """Inverse of :meth:`spread`: the ``out`` block of ``(N, C, length)`` columns, contiguous."""
        n, c = a.shape[:2]
        a = a.reshape((n, c, self.full[0]) + self.padded[1:])
        return xp_of(a).ascontiguousarray(a[(Ellipsis,) + tuple(slice(0, o) for o in out)])


def _flat_im2col(x, kernel, padding, dilation, groups: int, geo: _Flat):
    xp = xp_of(x)
    n, c = x.shape[:2]
    buf = xp.zeros((n, c, geo.total + geo.slack), x.dtype)
    plane = buf[:, :, :geo.total].reshape((n, c) + geo.padded)
    plane[(Ellipsis,) + tuple(slice(lo, lo + s) for s, (lo, _) in zip(x.shape[2:], padding))] = x
    it = buf.itemsize
    cg = c // groups
    view = _as_strided(buf, (n, groups, cg) + tuple(kernel) + (geo.length,),
                       (buf.strides[0], cg * buf.strides[1], buf.strides[1])
                       + tuple(ks * it for ks in geo.kstrides) + (it,))
    return xp.ascontiguousarray(view).reshape(n, groups, -1, geo.length)


def _flat_col2im(cols, channels: int, size, padding, geo: _Flat):
    """Adjoint of :func:`_flat_im2col`: ``(N, C * prod(kernel), length)`` -> ``(N, C, *size)``."""
    n = cols.shape[0]
    cols = cols.reshape(n, channels, -1, geo.length)
    acc = xp_of(cols).zeros((n, channels, geo.total + geo.slack), cols.dtype)
    for p, shift in enumerate(geo.shifts()):
        acc[:, :, shift:shift + geo.length] += cols[:, :, p]
    plane = acc[:, :, :geo.total].reshape((n, channels) + geo.padded)
    return crop(plane, padding, size)


def _stride_one(stride) -> bool:
    return all(s == 1 for s in stride)


# ---- the three kernels ---------------------------------------------------------------------------
def _needs(ctx, i: int) -> bool:
    return ctx.next_functions[i][0] is not None


def _conv_params(ctx) -> dict:
    a = ctx._args
    return {"stride": a["stride"], "padding": a["padding"], "dilation": a["dilation"], "groups": a["groups"]}


@defop("convolution", save=(0, 1), extra=True)
def _convolution(x, w, b, stride, padding, dilation, groups):
    xp = xp_of(x)
    n, o = x.shape[0], w.shape[0]
    kernel = w.shape[2:]
    wm = w.reshape(groups, o // groups, -1)
    if _stride_one(stride):
        geo = _Flat(x.shape[2:], kernel, padding, dilation)
        cols = _flat_im2col(x, kernel, padding, dilation, groups, geo)
        y = geo.gather(xp.matmul(wm, cols).reshape(n, o, -1), geo.full)
    else:
        cols, out = im2col(x, kernel, stride, padding, dilation, groups)
        y = xp.matmul(wm, cols).reshape((n, o) + out)  # (N, G, O/G, L): already channel-major
    if b is not None:
        y += b.reshape((o,) + (1,) * (y.ndim - 2))
    return y, cols


@_convolution.backward
def _convolution_bw(ns, ctx, g, x, w):
    p = _conv_params(ctx)
    gb = ns.sum(g, dim=(0,) + tuple(range(2, len(g.shape)))) if _needs(ctx, 2) else None
    gx = gw = None
    if _needs(ctx, 0):
        gx = ns.conv_input_grad(g, w, None, size=tuple(x.shape[2:]), **p)
    if _needs(ctx, 1):
        if ns is ARRAY_NS and ctx._extra is not None:
            if _stride_one(p["stride"]):
                g = _Flat(x.shape[2:], w.shape[2:], p["padding"], p["dilation"]).spread(g, g.shape[2:])
            gw = _weight_grad_from_cols(ctx._extra, g, w.shape, p["groups"])
        else:
            gw = ns.conv_weight_grad(x, g, kernel=tuple(w.shape[2:]), **p)
    return gx, gw, gb


def _weight_grad_from_cols(cols, g, wshape, groups: int):
    n = g.shape[0]
    gm = g.reshape(n, groups, wshape[0] // groups, -1)
    return xp_of(g).matmul(gm, cols.swapaxes(-1, -2)).sum(0).reshape(wshape)


@defop("conv_input_grad", save=(0, 1))
def _conv_input_grad(g, w, b, size, stride, padding, dilation, groups):
    xp = xp_of(g)
    n, o = g.shape[:2]
    cin = w.shape[1] * groups
    wm = w.reshape(groups, o // groups, -1)
    if _stride_one(stride):
        geo = _Flat(size, w.shape[2:], padding, dilation)
        gm = geo.spread(g, g.shape[2:]).reshape(n, groups, o // groups, -1)
        cols = xp.matmul(wm.swapaxes(-1, -2), gm)
        y = _flat_col2im(cols, cin, size, padding, geo)
    else:
        gm = g.reshape(n, groups, o // groups, -1)
        cols = xp.matmul(wm.swapaxes(-1, -2), gm)  # (N, G, C/G * prod(k), L)
        y = col2im(cols.reshape(n, -1, cols.shape[-1]), cin, size, w.shape[2:], stride, padding, dilation)
    if b is not None:
        y = y + b.reshape((cin,) + (1,) * len(size))
    elif not y.flags.c_contiguous:
        y = xp.ascontiguousarray(y)
    return y


@_conv_input_grad.backward
def _conv_input_grad_bw(ns, ctx, gy, g, w):
    p = _conv_params(ctx)
    gg = ns.convolution(gy, w, None, **p) if _needs(ctx, 0) else None
    gw = ns.conv_weight_grad(gy, g, kernel=tuple(w.shape[2:]), **p) if _needs(ctx, 1) else None
    gb = ns.sum(gy, dim=(0,) + tuple(range(2, len(gy.shape)))) if _needs(ctx, 2) else None
    if ns is ARRAY_NS and gg is not None:
        gg = gg[0]  # the array kernel also returns its columns
    return gg, gw, gb


_conv_input_grad.backward(_conv_input_grad_bw, "ConvolutionBackward0")


@defop("conv_weight_grad", save=(0, 1))
def _conv_weight_grad(x, g, kernel, stride, padding, dilation, groups):
    wshape = (g.shape[1], x.shape[1] // groups) + tuple(kernel)
    if _stride_one(stride):
        geo = _Flat(x.shape[2:], kernel, padding, dilation)
        cols = _flat_im2col(x, kernel, padding, dilation, groups, geo)
        return _weight_grad_from_cols(cols, geo.spread(g, g.shape[2:]), wshape, groups)
    cols, _ = im2col(x, kernel, stride, padding, dilation, groups)
    return _weight_grad_from_cols(cols, g, wshape, groups)


@_conv_weight_grad.backward
def _conv_weight_grad_bw(ns, ctx, gw, x, g):
    p = _conv_params(ctx)
    gx = ns.conv_input_grad(g, gw, None, size=tuple(x.shape[2:]), **p) if _needs(ctx, 0) else None
    gg = None
    if _needs(ctx, 1):
        gg = ns.convolution(x, gw, None, **p)
        if ns is ARRAY_NS:
            gg = gg[0]
    return gx, gg


def _convolution_tensor(x, w, b, **params) -> Tensor:
    """TENSOR_NS entry: the recorded op without the columns."""
    return apply(_convolution, (x, w, b), params)[0]


tensor_fn("convolution", _convolution_tensor)


# ---- argument handling ---------------------------------------------------------------------------
_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half"}
_SCALAR = {"float32": "Float", "float64": "Double", "float16": "Half"}


def ntuple(v, n: int, name: str) -> tuple:
    """An int or a sequence of ``n`` ints as a tuple of ``n`` ints (torch's message otherwise)."""
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return (int(v[0]),) * n
        if len(v) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values to match "
                               f"the convolution dimensions, but got {name}={list(v)}")
        return tuple(int(i) for i in v)
    return (int(v),) * n


def _padding_pairs(padding, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding != "same":
            raise RuntimeError(f"Invalid padding string: '{padding}'")
        if any(s != 1 for s in stride):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        pairs = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pairs.append((total // 2, total - total // 2))
        return tuple(pairs)
    pad = ntuple(padding, n, "padding")
    if any(p < 0 for p in pad):
        raise RuntimeError("negative padding is not supported")
    return tuple((p, p) for p in pad)


def _shape_str(shape) -> str:
    return " x ".join(str(s) for s in shape)


def _check_dtypes(input: Tensor, weight: Tensor, bias) -> None:
    di, dw = input._data.dtype, weight._data.dtype
    if di != dw:
        raise RuntimeError(f"expected scalar type {_SCALAR.get(di.name, di.name)} but found "
                           f"{_SCALAR.get(dw.name, dw.name)}")
    if bias is not None and bias._data.dtype != di:
        raise RuntimeError(f"Input type ({_NAMES.get(di.name, di.name)}) and bias type "
                           f"({_NAMES.get(bias._data.dtype.name, bias._data.dtype.name)}) should be the same")


def _check_conv(input: Tensor, weight: Tensor, bias, groups: int, n: int, fn: str, transposed: bool) -> None:
    shp, wshp = tuple(input._data.shape), tuple(weight._data.shape)
    if weight._data.ndim != n + 2:
        raise RuntimeError("weight should have at least three dimensions" if weight._data.ndim < 3 else
                           f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) weight for {fn}, but got "
                           f"weight of size: {list(wshp)}")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    out_dim = wshp[1] * groups if transposed else wshp[0]
    if wshp[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
                           f"but got weight of size [{list(wshp)}] instead")
    want = wshp[0] if transposed else wshp[1] * groups
    if shp[1] != want:
        kind = "transposed=1, weight" if transposed else f"groups={groups}, weight"
        raise RuntimeError(f"Given {kind} of size {list(wshp)}, expected input{list(shp)} to have {want} channels, "
                           f"but got {shp[1]} channels instead")
    if bias is not None and tuple(bias._data.shape) != (out_dim,):
        raise RuntimeError(f"Given weight of size {list(wshp)}, expected bias to be 1-dimensional with {out_dim} "
                           f"elements, but got bias of size {list(bias._data.shape)} instead")
    _check_dtypes(input, weight, bias)


def _batched(input: Tensor, n: int, fn: str) -> bool:
    """True when ``input`` lacks the batch dim (torch's unbatched form); error for other ranks."""
    nd = input._data.ndim
    if nd not in (n + 1, n + 2):
        raise RuntimeError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {fn}, but got input of "
                           f"size: {list(input._data.shape)}")
    return nd == n + 1


def _conv_nd(n: int, fn: str, input: Tensor, weight: Tensor, bias, stride, padding, dilation, groups) -> Tensor:
    unbatched = _batched(input, n, fn)
    if unbatched:
        input = input.unsqueeze(0)
    _check_conv(input, weight, bias, groups, n, fn, False)
    kernel = tuple(weight._data.shape[2:])
    stride = ntuple(stride, n, "stride")
    dilation = ntuple(dilation, n, "dilation")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    pads = _padding_pairs(padding, kernel, stride, dilation)
    size = tuple(input._data.shape[2:])
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, pads))
    if any(p < d * (k - 1) + 1 for p, k, d in zip(padded, kernel, dilation)):
        raise RuntimeError(f"Calculated padded input size per channel: ({_shape_str(padded)}). Kernel size: "
                           f"({_shape_str(tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation)))}). "
                           "Kernel size can't be greater than actual input size")
    params = {"stride": stride, "padding": pads, "dilation": dilation, "groups": int(groups)}
    out = apply(_convolution, (input, weight, bias), params)[0]
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation) over ``(N, C, L)``; padding may be 'valid' or 'same'."""
    return _conv_nd(1, "conv1d", input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) over ``(N, C, H, W)``; padding may be 'valid' or 'same'."""
    return _conv_nd(2, "conv2d", input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """3-D convolution (cross-correlation) over ``(N, C, D, H, W)``."""
    return _conv_nd(3, "conv3d", input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose_nd(n: int, fn: str, input: Tensor, weight: Tensor, bias, stride, padding, output_padding,
                       groups, dilation) -> Tensor:
    unbatched = _batched(input, n, fn)
    if unbatched:
        input = input.unsqueeze(0)
    _check_conv(input, weight, bias, groups, n, fn, True)
    kernel = tuple(weight._data.shape[2:])
    stride = ntuple(stride, n, "stride")
    dilation = ntuple(dilation, n, "dilation")
    opad = ntuple(output_padding, n, "output_padding")
    if isinstance(padding, str):
        raise RuntimeError(f"{fn}(): argument 'padding' must be tuple of ints, not str")
    pad = ntuple(padding, n, "padding")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(p < 0 for p in pad):
        raise RuntimeError("negative padding is not supported")
    if any(op >= s and op >= d for op, s, d in zip(opad, stride, dilation)):
        names = ("height", "width") if n == 2 else ("depth", "height", "width")[-n:] if n == 3 else ("width",)
        parts = [f"output_padding_{a}: {op}" for a, op in zip(names, opad)]
        parts += [f"stride_{a}: {s}" for a, s in zip(names, stride)]
        parts += [f"dilation_{a}: {d}" for a, d in zip(names, dilation)]
        raise RuntimeError("output padding must be smaller than either stride or dilation, but got " + " ".join(parts))
    size = tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1
                 for i, s, p, d, k, op in zip(input._data.shape[2:], stride, pad, dilation, kernel, opad))
    if any(s <= 0 for s in size):
        raise RuntimeError(f"Given input size per channel: ({_shape_str(input._data.shape[2:])}). Calculated output "
                           f"size per channel: ({_shape_str(size)}). Output size is too small")
    params = {"size": size, "stride": stride, "padding": tuple((p, p) for p in pad), "dilation": dilation,
              "groups": int(groups)}
    out = apply(_conv_input_grad, (input, weight, bias), params)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-D transposed convolution; ``weight`` is ``(C_in, C_out / groups, k)``."""
    return _conv_transpose_nd(1, "conv_transpose1d", input, weight, bias, stride, padding, output_padding, groups,
                              dilation)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-D transposed convolution (the adjoint of conv2d in its input)."""
    return _conv_transpose_nd(2, "conv_transpose2d", input, weight, bias, stride, padding, output_padding, groups,
                              dilation)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """3-D transposed convolution."""
    return _conv_transpose_nd(3, "conv_transpose3d", input, weight, bias, stride, padding, output_padding, groups,
                              dilation)


# ---- unfold / fold -------------------------------------------------------------------------------
@defop("im2col")
def _im2col_op(x, kernel, stride, padding, dilation):
    cols, _ = im2col(x, kernel, stride, padding, dilation, 1)
    return cols.reshape(x.shape[0], -1, cols.shape[-1])


@_im2col_op.backward
def _im2col_bw(ns, ctx, g):
    a = ctx._args
    return (ns.col2im(g, size=tuple(ctx._in_meta[0][0][2:]), kernel=a["kernel"], stride=a["stride"],
                      padding=a["padding"], dilation=a["dilation"]),)


@defop("col2im")
def _col2im_op(cols, size, kernel, stride, padding, dilation):
    channels = cols.shape[1] // math.prod(kernel)
    out = col2im(cols, channels, size, kernel, stride, padding, dilation)
    return xp_of(cols).ascontiguousarray(out)


@_col2im_op.backward
def _col2im_bw(ns, ctx, g):
    a = ctx._args
    return (ns.im2col(g, kernel=a["kernel"], stride=a["stride"], padding=a["padding"], dilation=a["dilation"]),)


def _fold_params(kernel_size, dilation, padding, stride) -> dict:
    kernel = ntuple(kernel_size, 2, "kernel_size")
    stride = ntuple(stride, 2, "stride")
    dilation = ntuple(dilation, 2, "dilation")
    pad = ntuple(padding, 2, "padding")
    if any(k <= 0 for k in kernel):
        raise RuntimeError(f"kernel size should be greater than zero, but got kernel_height: {kernel[0]} "
                           f"kernel_width: {kernel[1]}")
    if any(s <= 0 for s in stride):
        raise RuntimeError(f"stride should be greater than zero, but got stride_height: {stride[0]} "
                           f"stride_width: {stride[1]}")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got dilation_height: {dilation[0]} "
                           f"dilation_width: {dilation[1]}")
    if any(p < 0 for p in pad):
        raise RuntimeError(f"padding should be non-negative, but got pad_height: {pad[0]} pad_width: {pad[1]}")
    return {"kernel": kernel, "stride": stride, "padding": tuple((p, p) for p in pad), "dilation": dilation}


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col: ``(N, C, H, W)`` -> ``(N, C * kh * kw, L)`` sliding blocks."""
    nd = input._data.ndim
    if nd not in (3, 4):
        raise NotImplementedError(f"Input Error: Only 3D or 4D input Tensors are supported (got {nd}D)")
    unbatched = nd == 3
    if unbatched:
        input = input.unsqueeze(0)
    p = _fold_params(kernel_size, dilation, padding, stride)
    size = tuple(input._data.shape[2:])
    out = out_size(size, p["kernel"], p["stride"], p["padding"], p["dilation"])
    if any(o <= 0 for o in out):
        padded = tuple(s + 2 * lo for s, (lo, _) in zip(size, p["padding"]))
        raise RuntimeError(f"Given input with spatial size ({size[0]}, {size[1]}), kernel_size=({p['kernel'][0]}, "
                           f"{p['kernel'][1]}), dilation=({p['dilation'][0]}, {p['dilation'][1]}), padding=("
                           f"{p['padding'][0][0]}, {p['padding'][1][0]}), calculated shape of the array of sliding "
                           f"blocks as ({out[0]}, {out[1]}), but its components must be at least one. "
                           f"(padded input {padded})")
    res = apply(_im2col_op, (input,), p)
    return res.squeeze(0) if unbatched else res


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im: sums ``(N, C * kh * kw, L)`` sliding blocks into ``(N, C, *output_size)``."""
    nd = input._data.ndim
    if nd not in (2, 3):
        raise NotImplementedError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported "
                                  f"(got {nd}D)")
    unbatched = nd == 2
    if unbatched:
        input = input.unsqueeze(0)
    p = _fold_params(kernel_size, dilation, padding, stride)
    size = ntuple(output_size, 2, "output_size")
    kk = math.prod(p["kernel"])
    c_k, length = input._data.shape[1:]
    if c_k % kk:
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product of kernel_size, "
                           f"but got input.size(1)={c_k} and kernel_size=({p['kernel'][0]}, {p['kernel'][1]})")
    out = out_size(size, p["kernel"], p["stride"], p["padding"], p["dilation"])
    if math.prod(out) != length:
        raise RuntimeError(f"Given output_size=({size[0]}, {size[1]}), kernel_size=({p['kernel'][0]}, "
                           f"{p['kernel'][1]}), dilation=({p['dilation'][0]}, {p['dilation'][1]}), padding=("
                           f"{p['padding'][0][0]}, {p['padding'][1][0]}), stride=({p['stride'][0]}, "
                           f"{p['stride'][1]}), expected size of input's dimension 2 to match the calculated number "
                           f"of sliding blocks {out[0]} * {out[1]} = {math.prod(out)}, but got input.size(2)={length}.")
    res = apply(_col2im_op, (input,), dict(p, size=size))
    return res.squeeze(0) if unbatched else res
