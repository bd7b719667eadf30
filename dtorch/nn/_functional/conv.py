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
GEMM whose result is already NCHW. The weight gradient rebuilds the columns rather than
keeping them on the node: one copy is cheaper than holding (and re-faulting) ``prod(kernel)``
times the input for the whole step. The columns come from ``_conv_cols`` (C kernels where a compiler
exists); layers with few output pixels take the channels-last rows of ``_conv_rows`` instead, whose GEMMs
have the whole batch chunk as their long side (``_COLUMNS_FROM``).
"""
from __future__ import annotations

import math

import numpy as np

from ..._dispatch import apply, defop
from ..._device import xp_of
from ...tensor import Tensor
from . import _blas, _conv_c, _conv_nchw_c, _conv_rows, _gemm_c
from ._conv_cols import col2im, im2col, out_size

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "unfold", "fold"]


# Bytes of columns per batch chunk: on the CPU small enough to stay cache-warm and come back
# from the allocator's free list; on a GPU only a cap on memory (big GEMMs run best there).
_CHUNK_BYTES = {"cpu": 1 << 21, "cuda": 1 << 28}


def _batch_chunks(a, n: int, sample_bytes: int) -> list[slice]:
    """Slices of the batch whose columns take about ``_CHUNK_BYTES`` each: the temporaries
    stay bounded whatever the batch size."""
    limit = _CHUNK_BYTES["cpu" if xp_of(a) is np else "cuda"]
    step = max(1, limit // max(1, sample_bytes))
    return [slice(i, min(n, i + step)) for i in range(0, n, step)]


# ---- the three kernels ---------------------------------------------------------------------------
# Columns are ``(N, groups, K, L)`` with K = C/groups * prod(kernel) and L the output pixels,
# so the forward product ``w @ cols`` is a batched GEMM whose result is already NCHW. When L is
# small (strided layers deep in a network, 1x1 outputs) those per-sample GEMMs are thin and BLAS
# runs them far below its peak: the columns are then laid out batch-minor, ``(groups, K, N * L)``,
# and each chunk of the batch is one GEMM, at the price of transposing the (smaller) output.
_MINOR_BELOW = 256


def _batch_minor(length: int) -> bool:
    return length < _MINOR_BELOW


def _to_minor(a, groups: int):
    """``(N, C, *spatial)`` -> contiguous ``(groups, C/groups, N * L)``."""
    n, c = a.shape[:2]
    return xp_of(a).ascontiguousarray(a.reshape(n, c, -1).swapaxes(0, 1)).reshape(groups, c // groups, -1)


def _from_minor(ym, out) -> None:
    """Write ``(C, N * L)`` into ``out`` ``(N, C, *spatial)``."""
    n, c = out.shape[:2]
    out.reshape(n, c, -1).swapaxes(0, 1)[...] = ym.reshape(c, n, -1)


# With the C column kernels (_conv_c) the per-sample column GEMMs, ``L`` output pixels wide, beat the channels-last
# rows of _conv_rows from this many output pixels on, per kernel (measured on MNIST's, the CNN's and DCGAN's layers)
_COLUMNS_FROM = {"forward": 512, "weight": 512, "input": 256}


def _columns_first(a, length: int, spatial_dims: int, kind: str, out_channels: int = 0, dilation=()) -> bool:
    """Whether the columns beat the rows here; never where _gemm_c's tiles read the rows in place (MNIST's conv2
    at 1 thread: forward 16.3 -> 15.4 ms, weight gradient 17.7 -> 14.8 ms)."""
    if out_channels and _gemm_c.conv_serves(a, out_channels, dilation):
        return False
    return length >= _COLUMNS_FROM[kind] and _conv_c.available(a, spatial_dims)


def _needs(ctx, i: int) -> bool:
    return ctx.next_functions[i][0] is not None


def _conv_params(ctx) -> dict:
    a = ctx._args
    return {"stride": a["stride"], "padding": a["padding"], "dilation": a["dilation"], "groups": a["groups"]}


@defop("convolution", save=(0, 1))
def _convolution(x, w, b, stride, padding, dilation, groups):
    xp = xp_of(x)
    n, o = x.shape[0], w.shape[0]
    kernel = w.shape[2:]
    out = out_size(x.shape[2:], kernel, stride, padding, dilation)
    length = math.prod(out)
    minor = _batch_minor(length)
    wm = w.reshape(groups, o // groups, -1)
    y = xp.empty((n, o) + out, x.dtype)
    if n == 0:  # an empty batch (torch allows it): the layouts below reshape by the batch
        return y
    chunks = _batch_chunks(x, n, w[0].size * groups * length * x.itemsize)
    if groups == 1 and w.dtype == x.dtype and _conv_nchw_c.serves(x, dilation, out):
        for sl in _batch_chunks(x, n, math.prod(x.shape[1:]) * x.itemsize * 2):  # a sample and its phases
            _conv_nchw_c.forward(x[sl], w, y[sl], stride, padding)
        chunks = []
    elif (not _columns_first(x, length, len(kernel), "forward", o, dilation)
          and _conv_rows.use_rows(x, x.shape[1], kernel, groups)):
        _conv_rows.forward(x, w, y, stride, padding, dilation, chunks)
        chunks = []
    # on the CPU, the bias as one more GEMM column (the columns get a row of ones)
    fold_bias = b is not None and groups == 1 and not minor and bool(chunks) and xp is np
    if fold_bias:
        wm = xp.concatenate([wm, b.reshape(1, o, 1).astype(wm.dtype, copy=False)], axis=-1)
    for sl in chunks:
        cols, _ = im2col(x[sl], kernel, stride, padding, dilation, groups, batch_minor=minor, ones_row=fold_bias)
        if minor:
            _from_minor(xp.matmul(wm, cols), y[sl])
        else:
            xp.matmul(wm, cols, out=y[sl].reshape(-1, groups, o // groups, length))
    if b is not None and not fold_bias:
        y += b.reshape((o,) + (1,) * len(out))
    return y


@_convolution.backward
def _convolution_bw(ns, ctx, g, x, w):
    p = _conv_params(ctx)
    gb = _bias_grad(ns, g) if _needs(ctx, 2) else None
    gw = ns.conv_weight_grad(x, g, kernel=tuple(w.shape[2:]), **p) if _needs(ctx, 1) else None
    gx = ns.conv_input_grad(g, w, None, size=tuple(x.shape[2:]), **p) if _needs(ctx, 0) else None
    return gx, gw, gb


def _bias_grad(ns, g):
    """The gradient of a per-channel bias: ``g`` summed over every dim but the channels (dim 1)."""
    return ns.sum(g, dim=(0,) + tuple(range(2, len(g.shape))))


@defop("conv_input_grad", save=(0, 1))
def _conv_input_grad(g, w, b, size, stride, padding, dilation, groups):
    xp = xp_of(g)
    n, o = g.shape[:2]
    cin = w.shape[1] * groups
    length = math.prod(g.shape[2:])
    minor = _batch_minor(length)
    wt = w.reshape(groups, o // groups, -1).swapaxes(-1, -2)
    y = xp.empty((n, cin) + tuple(size), g.dtype)
    if n == 0:
        return y
    gm = g.reshape(n, groups, o // groups, -1)
    chunks = _batch_chunks(g, n, w[0].size * groups * length * g.itemsize)
    if (not _columns_first(g, length, len(size), "input")
            and _conv_rows.input_grad_fits(g, cin, w.shape[2:], stride, dilation, groups)):
        _conv_rows.input_grad(g, w, y, stride, padding, dilation, chunks)
        chunks = []
    for sl in chunks:
        if minor:
            cols = xp.matmul(wt, _to_minor(g[sl], groups))  # (G, C/G * prod(k), n * L)
            col2im(cols, cin, size, w.shape[2:], stride, padding, dilation, out=y[sl], batch_minor=True)
        else:
            cols = xp.matmul(wt, gm[sl])  # (n, G, C/G * prod(k), L)
            col2im(cols.reshape(cols.shape[0], -1, length), cin, size, w.shape[2:], stride, padding, dilation,
                   out=y[sl])
    if b is not None:
        y += b.reshape((cin,) + (1,) * len(size))
    return y


@_conv_input_grad.backward
def _conv_input_grad_bw(ns, ctx, gy, g, w):
    p = _conv_params(ctx)
    gg = ns.convolution(gy, w, None, **p) if _needs(ctx, 0) else None
    gw = ns.conv_weight_grad(gy, g, kernel=tuple(w.shape[2:]), **p) if _needs(ctx, 1) else None
    gb = _bias_grad(ns, gy) if _needs(ctx, 2) else None
    return gg, gw, gb


_conv_input_grad.backward(_conv_input_grad_bw, "ConvolutionBackward0")


@defop("conv_weight_grad", save=(0, 1))
def _conv_weight_grad(x, g, kernel, stride, padding, dilation, groups):
    xp = xp_of(x)
    n, o = g.shape[:2]
    k = x.shape[1] // groups * math.prod(kernel)
    if n == 0:
        return xp.zeros((o, x.shape[1] // groups) + tuple(kernel), g.dtype)
    length = math.prod(g.shape[2:])
    chunks = _batch_chunks(x, n, groups * k * length * x.itemsize)
    if groups == 1 and g.dtype == x.dtype and _conv_nchw_c.serves(x, dilation, g.shape[2:]):
        gw = np.zeros((o, x.shape[1]) + tuple(kernel), np.float32)
        for sl in _batch_chunks(x, n, math.prod(x.shape[1:]) * x.itemsize * 2):  # a sample and its phases
            _conv_nchw_c.weight_grad(x[sl], g[sl], gw, stride, padding)
        return gw
    if (not _columns_first(x, length, len(kernel), "weight", o, dilation)
            and _conv_rows.use_rows(x, x.shape[1], kernel, groups)):
        return _conv_rows.weight_grad(x, g, kernel, stride, padding, dilation, chunks)
    minor = _batch_minor(length)
    if minor:  # (G, O/G, K): already the weight's layout
        gw = xp.zeros((groups, o // groups, k), g.dtype)
    else:  # (K, O/G) per group: BLAS runs cols @ g^T much faster than g @ cols^T here
        gw = xp.zeros((groups, k, o // groups), g.dtype)
        accumulate = xp is np and _blas.available(g.dtype)
        gt = g.reshape(n, groups, o // groups, -1).swapaxes(-1, -2)
        if not accumulate:  # (N, G, L, O/G) contiguous for one batched matmul per chunk
            gt = xp.ascontiguousarray(gt)
    for sl in chunks:
        cols, _ = im2col(x[sl], kernel, stride, padding, dilation, groups, batch_minor=minor)
        if minor:
            gw += xp.matmul(_to_minor(g[sl], groups), cols.swapaxes(-1, -2))
        elif accumulate:  # each sample's product summed by BLAS into gw, g transposed in the call
            for grp in range(groups):
                _blas.gemm_sum(cols[:, grp], gt[sl, grp], gw[grp])
        else:
            gw += xp.matmul(cols, gt[sl]).sum(0)
    if not minor:
        gw = xp.ascontiguousarray(gw.swapaxes(-1, -2))
    return gw.reshape((o, x.shape[1] // groups) + tuple(kernel))


@_conv_weight_grad.backward
def _conv_weight_grad_bw(ns, ctx, gw, x, g):
    p = _conv_params(ctx)
    gx = ns.conv_input_grad(g, gw, None, size=tuple(x.shape[2:]), **p) if _needs(ctx, 0) else None
    gg = ns.convolution(x, gw, None, **p) if _needs(ctx, 1) else None
    return gx, gg


# ---- argument handling ---------------------------------------------------------------------------


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
    di, dw = input.dtype, weight.dtype
    if di != dw:
        raise RuntimeError(f"expected scalar type {di.scalar_name} but found "
                           f"{dw.scalar_name}")
    if bias is not None and bias.dtype != di:
        raise RuntimeError(f"Input type ({di.cpp_name}) and bias type "
                           f"({bias.dtype.cpp_name}) should be the same")


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
    out = apply(_convolution, (input, weight, bias), params)
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
    return col2im(cols, channels, size, kernel, stride, padding, dilation)


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
