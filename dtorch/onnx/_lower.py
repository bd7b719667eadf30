"""Lowering of jit graph nodes to ONNX nodes, per opset.

Each ``lower_<op>(b, node, xs)`` gets the builder ``b`` (``_builder.Builder``), the jit node and the ONNX names of
its inputs, adds ONNX nodes and returns the names of the node's outputs. ``FIRST_OPSET`` names ops that exist only
from some opset and have no decomposition here.
"""
from __future__ import annotations

import math

import numpy as np

from ..jit._prims import PRIMS, is_prim
from ..jit._script_control import MAX_TRIPS
from .errors import UnsupportedOperatorError

LOWERINGS: dict = {}
FIRST_OPSET: dict[str, int] = {}


def lowering(*names: str):
    def deco(fn):
        for n in names:
            LOWERINGS[n] = fn
        return fn
    return deco


def lower(b, node, xs: list) -> list[str]:
    fn = LOWERINGS.get(node.op)
    if fn is None:
        raise UnsupportedOperatorError(node.kind(), b.opset, FIRST_OPSET.get(node.op))
    return fn(b, node, xs)


# ---- elementwise -------------------------------------------------------------------------------
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "eq": "Equal", "lt": "Less",
           "gt": "Greater", "le": "LessOrEqual", "ge": "GreaterOrEqual", "maximum": "Max", "minimum": "Min"}


@lowering(*_BINARY)
def _binary(b, node, xs):
    a, c = b.operands(node, xs)
    alpha = node.attrs.get("alpha", 1)
    if alpha != 1:
        c = b.op("Mul", [c, b.const(np.asarray(alpha, b.dtype_of(node.inputs[0])))])
    if node.op == "div" and node.attrs.get("rounding_mode") == "floor":
        return [b.op("Floor", [b.op("Div", [a, c])])]
    return [b.op(_BINARY[node.op], [a, c])]


_UNARY = {"neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "tanh": "Tanh", "sigmoid": "Sigmoid",
          "relu": "Relu", "abs": "Abs", "erf": "Erf", "sin": "Sin", "cos": "Cos", "reciprocal": "Reciprocal",
          "floor": "Floor", "ceil": "Ceil", "logical_not": "Not"}


@lowering(*_UNARY)
def _unary(b, node, xs):
    return [b.op(_UNARY[node.op], [xs[0]])]


@lowering("rsqrt")
def _rsqrt(b, node, xs):
    return [b.op("Reciprocal", [b.op("Sqrt", [xs[0]])])]


@lowering("clone", "contiguous", "detach", "alias", "dropout", "feature_dropout")
def _identity(b, node, xs):
    return [b.op("Identity", [xs[0]])]


@lowering("_to_copy")
def _cast(b, node, xs):
    dt = node.outputs[0].dtype
    return [b.op("Cast", [xs[0]], to=b.onnx_type(dt))]


@lowering("gelu")
def _gelu(b, node, xs):
    x = xs[0]
    approx = node.attrs.get("approximate", "none")
    if b.opset >= 20:
        return [b.op("Gelu", [x], approximate=approx)]
    dt = b.dtype_of(node.inputs[0])
    half, one = b.const(np.asarray(0.5, dt)), b.const(np.asarray(1.0, dt))
    if approx == "tanh":
        inner = b.op("Mul", [b.op("Add", [x, b.op("Mul", [b.const(np.asarray(0.044715, dt)),
                                                           b.op("Pow", [x, b.const(np.asarray(3.0, dt))])])]),
                             b.const(np.asarray(math.sqrt(2 / math.pi), dt))])
        cdf = b.op("Add", [one, b.op("Tanh", [inner])])
    else:
        cdf = b.op("Add", [one, b.op("Erf", [b.op("Div", [x, b.const(np.asarray(math.sqrt(2.0), dt))])])])
    return [b.op("Mul", [b.op("Mul", [half, x]), cdf])]


@lowering("masked_fill")
def _masked_fill(b, node, xs):
    x, mask, value = xs[0], xs[1], b.scalar_like(node.inputs[2], node.inputs[0], xs[2])
    return [b.op("Where", [mask, value, x])]


@lowering("where")
def _where(b, node, xs):
    cond = xs[0]
    x, y = b.operands(node, xs[1:], first=1)
    return [b.op("Where", [cond, x, y])]


# ---- shapes ------------------------------------------------------------------------------------
@lowering("view", "reshape", "_unsafe_view")
def _reshape(b, node, xs):
    return [b.op("Reshape", [xs[0], b.shape_input(node, "shape")])]


@lowering("transpose")
def _transpose(b, node, xs):
    nd = len(node.inputs[0].shape)
    perm = list(range(nd))
    d0, d1 = node.attrs["dim0"] % nd, node.attrs["dim1"] % nd
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return [b.op("Transpose", [xs[0]], perm=perm)]


@lowering("permute")
def _permute(b, node, xs):
    nd = len(node.inputs[0].shape)
    return [b.op("Transpose", [xs[0]], perm=[d % nd for d in node.attrs["dims"]])]


@lowering("unsqueeze")
def _unsqueeze(b, node, xs):
    return [b.axes_op("Unsqueeze", xs[0], [node.attrs["dim"] % (len(node.inputs[0].shape) + 1)], 13)]


@lowering("squeeze")
def _squeeze(b, node, xs):
    shape = node.inputs[0].shape
    dims = node.attrs.get("dim")
    dims = [d for d in range(len(shape)) if shape[d] == 1] if dims is None else \
        [d % len(shape) for d in (dims if isinstance(dims, (tuple, list)) else (dims,)) if shape[d] == 1]
    return [b.axes_op("Squeeze", xs[0], dims, 13)]


@lowering("cat")
def _cat(b, node, xs):
    return [b.op("Concat", xs, axis=node.attrs["dim"])]


@lowering("slice")
def _slice(b, node, xs):
    shape = node.inputs[0].shape
    out, dim, squeeze = xs[0], 0, []
    starts, ends, axes, steps = [], [], [], []
    for item in node.attrs["index"]:
        if item is Ellipsis:
            dim = len(shape) - (len(node.attrs["index"]) - 1 - node.attrs["index"].index(Ellipsis)) + 0
            continue
        if isinstance(item, slice):
            start, stop, step = item.indices(shape[dim])
            if (start, stop, step) != (0, shape[dim], 1):
                starts.append(start), ends.append(stop), axes.append(dim), steps.append(step)
        elif isinstance(item, int):
            i = item % shape[dim]
            starts.append(i), ends.append(i + 1), axes.append(dim), steps.append(1)
            squeeze.append(dim)
        else:
            raise UnsupportedOperatorError(f"aten::slice with a {type(item).__name__} index", b.opset, None)
        dim += 1
    if starts:
        ints = [b.const(np.asarray(v, np.int64)) for v in (starts, ends, axes, steps)]
        out = b.op("Slice", [out, *ints])
    if squeeze:
        out = b.axes_op("Squeeze", out, squeeze, 13)
    return [out]


@lowering("split_with_sizes", "split")
def _split(b, node, xs):
    sizes, dim = node.attrs.get("split_sizes") or node.attrs.get("sizes"), node.attrs["dim"]
    n = len(node.outputs)
    if b.opset >= 13:
        return b.op_n("Split", [xs[0], b.const(np.asarray(sizes, np.int64))], n, axis=dim)
    return b.op_n("Split", [xs[0]], n, axis=dim, split=list(sizes))


# ---- linear algebra and layers -----------------------------------------------------------------
@lowering("matmul", "mm", "bmm")
def _matmul(b, node, xs):
    return [b.op("MatMul", xs[:2])]


@lowering("linear")
def _linear(b, node, xs):
    x, w = xs[0], xs[1]
    bias = xs[2] if len(xs) > 2 and node.inputs[2].kind == "Tensor" else None
    if len(node.inputs[0].shape) == 2 and bias is not None:
        return [b.op("Gemm", [x, w, bias], transB=1)]
    y = b.op("MatMul", [x, b.op("Transpose", [w], perm=[1, 0])])
    return [b.op("Add", [y, bias]) if bias is not None else y]


@lowering("convolution")
def _conv(b, node, xs):
    a = node.attrs
    pads = [p[0] for p in a["padding"]] + [p[1] for p in a["padding"]]
    inputs = xs[:3] if len(xs) > 2 and node.inputs[2].kind == "Tensor" else xs[:2]
    return [b.op("Conv", inputs, strides=list(a["stride"]), pads=pads, dilations=list(a["dilation"]),
                 group=a["groups"], kernel_shape=list(node.inputs[1].shape[2:]))]


@lowering("max_pool")
def _max_pool(b, node, xs):
    a = node.attrs
    spatial = node.inputs[0].shape[2:]
    floor_out = [(n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, s, p, d in zip(spatial, a["kernel"], a["stride"], a["padding"], a["dilation"])]
    ceil = int(tuple(floor_out) != tuple(a["out"]))
    pads = list(a["padding"]) * 2
    kw = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=pads, ceil_mode=ceil)
    if any(d != 1 for d in a["dilation"]):
        kw["dilations"] = list(a["dilation"])
    return [b.op("MaxPool", [xs[0]], **kw)]


@lowering("adaptive_avg_pool")
def _adaptive_avg_pool(b, node, xs):
    mats = node.attrs["mats"]
    if all(m.shape[0] == 1 for m in mats):
        return [b.op("GlobalAveragePool", [xs[0]])]
    out = xs[0]
    nd = len(node.inputs[0].shape)
    for i, m in enumerate(mats):  # contract spatial dim i with its averaging matrix
        axis = nd - len(mats) + i
        perm = list(range(nd))
        perm[axis], perm[-1] = perm[-1], perm[axis]
        out = b.op("Transpose", [out], perm=perm)
        out = b.op("MatMul", [out, b.const(np.ascontiguousarray(m.T.astype(b.dtype_of(node.inputs[0]))))])
        out = b.op("Transpose", [out], perm=perm)
    return [out]


@lowering("softmax", "log_softmax")
def _softmax(b, node, xs):
    kind = "Softmax" if node.op == "softmax" else "LogSoftmax"
    nd = len(node.inputs[0].shape)
    dim = node.attrs["dim"]
    dim = (dim[0] if isinstance(dim, (tuple, list)) else dim) % nd
    if b.opset >= 13 or dim == nd - 1:
        return [b.op(kind, [xs[0]], axis=dim)]
    perm = list(range(nd))
    perm[dim], perm[-1] = perm[-1], perm[dim]  # before 13 Softmax flattens from axis on: move dim last
    y = b.op(kind, [b.op("Transpose", [xs[0]], perm=perm)], axis=nd - 1)
    return [b.op("Transpose", [y], perm=perm)]


@lowering("native_layer_norm")
def _layer_norm(b, node, xs):
    n_axes, eps = node.attrs["n_axes"], node.attrs["eps"]
    x, w = xs[0], xs[1]
    bias = xs[2] if len(xs) > 2 and node.inputs[2].kind == "Tensor" else None
    if b.opset >= 17:
        ins = [x, w] + ([bias] if bias is not None else [])
        return [b.op("LayerNormalization", ins, axis=-n_axes, epsilon=float(eps))]
    nd = len(node.inputs[0].shape)
    axes = list(range(nd - n_axes, nd))
    dt = b.dtype_of(node.inputs[0])
    mean = b.reduce("ReduceMean", x, axes)
    d = b.op("Sub", [x, mean])
    var = b.reduce("ReduceMean", b.op("Mul", [d, d]), axes)
    y = b.op("Div", [d, b.op("Sqrt", [b.op("Add", [var, b.const(np.asarray(eps, dt))])])])
    y = b.op("Mul", [y, w]) if node.inputs[1].kind == "Tensor" else y
    return [b.op("Add", [y, bias]) if bias is not None else y]


@lowering("embedding")
def _embedding(b, node, xs):
    if "indices" in node.refs:
        indices = xs[node.refs["indices"]]
    else:  # indices the trace saw as constants (positions from arange)
        indices = b.const(np.asarray(node.attrs["indices"], np.int64))
    return [b.op("Gather", [xs[0], indices], axis=0)]


@lowering("scaled_dot_product_attention")
def _sdpa(b, node, xs):
    q, k, v = xs[:3]
    dt = b.dtype_of(node.inputs[0])
    kt = b.op("Transpose", [k], perm=list(range(len(node.inputs[1].shape) - 2)) + [len(node.inputs[1].shape) - 1,
                                                                                     len(node.inputs[1].shape) - 2])
    scores = b.op("Mul", [b.op("MatMul", [q, kt]), b.const(np.asarray(node.attrs["scale"], dt))])
    if len(xs) > 3 and node.inputs[3].kind == "Tensor":  # an additive (float) or boolean mask
        mask = xs[3]
        if node.inputs[3].dtype == "bool":
            scores = b.op("Where", [mask, scores, b.const(np.asarray(-np.inf, dt))])
        else:
            scores = b.op("Add", [scores, mask])
    return [b.op("MatMul", [b.op("Softmax", [scores], axis=len(node.inputs[0].shape) - 1), v])]


@lowering("sum", "mean")
def _reduce(b, node, xs):
    nd = len(node.inputs[0].shape)
    dims = node.attrs.get("dim")
    axes = list(range(nd)) if dims is None else [d % nd for d in (dims if isinstance(dims, (tuple, list)) else
                                                                   (dims,))]
    kind = "ReduceSum" if node.op == "sum" else "ReduceMean"
    return [b.reduce(kind, xs[0], axes, keepdims=int(bool(node.attrs.get("keepdim", False))))]


@lowering("max", "min", "amax", "amin")
def _reduce_extreme(b, node, xs):
    if node.op in ("max", "min") and (node.attrs or len(node.outputs) != 1):
        raise UnsupportedOperatorError(f"{node.kind()} with a dim (values and indices)", b.opset, None)
    nd = len(node.inputs[0].shape)
    dims = node.attrs.get("dim")
    dims = () if dims is None else (dims if isinstance(dims, (tuple, list)) else (dims,))
    axes = [d % nd for d in dims] or list(range(nd))
    kind = "ReduceMax" if node.op in ("max", "amax") else "ReduceMin"
    return [b.reduce(kind, xs[0], axes, keepdims=int(bool(node.attrs.get("keepdim", False))))]


@lowering("quantized_linear_dynamic")
def _dynamic_int8_linear(b, node, xs):
    """quantize_dynamic's Linear: DynamicQuantizeLinear + MatMulInteger, which ONNX Runtime runs with int8 kernels
    (8-bit activations: fbgemm's reduce_range is an x86 overflow guard ORT does not need)."""
    x, wq, w_scale, w_zp, bias = xs
    xq, x_scale, x_zp = b.op_n("DynamicQuantizeLinear", [x], 3)
    w_t = b.op("Transpose", [wq], perm=[1, 0])
    acc = b.op("MatMulInteger", [xq, w_t, x_zp, b.op("Cast", [w_zp], to=b.onnx_type("int8"))])
    scale = b.op("Mul", [x_scale, b.op("Cast", [w_scale], to=b.onnx_type("float32"))])
    y = b.op("Mul", [b.op("Cast", [acc], to=b.onnx_type("float32")), scale])
    return [b.op("Add", [y, bias])]


@lowering("stack")
def _stack(b, node, xs):
    dim = node.attrs.get("dim", 0) % (len(node.inputs[0].shape) + 1)
    return [b.op("Concat", [b.axes_op("Unsqueeze", x, [dim], 13) for x in xs], axis=dim)]


def _gates(b, w: str, hidden: int, order: list[int]) -> str:
    """torch's stacked gate blocks reordered for ONNX (rows ``order`` of ``hidden`` each), with the direction axis."""
    rows = np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in order]).astype(np.int64)
    return b.axes_op("Unsqueeze", b.op("Gather", [w, b.const(rows)], axis=0), [0], 13)


def _recurrent(b, node, xs, kind: str, order: list[int], n_state: int):
    """One layer and direction of nn.LSTM / nn.GRU as ONNX's LSTM / GRU (torch's gate order and bias split)."""
    x, states = xs[0], xs[1:1 + n_state]
    w_ih, w_hh, b_ih, b_hh = xs[1 + n_state:5 + n_state]
    w_value = node.inputs[1 + n_state]
    if node.attrs.get("batch_sizes") is not None or (len(xs) > 5 + n_state and node.inputs[5 + n_state].kind ==
                                                      "Tensor"):
        raise UnsupportedOperatorError(f"{node.kind()} with packed sequences or proj_size", b.opset, None)
    hidden = w_value.shape[0] // len(order)
    bias_ins = [node.inputs[3 + n_state], node.inputs[4 + n_state]]
    if all(v.kind == "Tensor" for v in bias_ins):
        bias = b.op("Concat", [_gates(b, b_ih, hidden, order), _gates(b, b_hh, hidden, order)], axis=1)
    else:
        bias = b.const(np.zeros((1, 2 * len(order) * hidden), b.dtype_of(node.inputs[0])))
    ins = [x, _gates(b, w_ih, hidden, order), _gates(b, w_hh, hidden, order), bias, ""]
    ins += [b.axes_op("Unsqueeze", s, [0], 13) for s in states]
    attrs = dict(hidden_size=hidden, direction="reverse" if node.attrs.get("reverse") else "forward")
    if kind == "GRU":
        attrs["linear_before_reset"] = 1  # torch applies the reset gate after the recurrent product
    outs = b.op_n(kind, ins, 1 + n_state, **attrs)
    y = b.axes_op("Squeeze", outs[0], [1], 13)
    results = [y] + [b.axes_op("Squeeze", o, [0], 13) for o in outs[1:]]
    return results + [b.op("Identity", [y])] * (len(node.outputs) - len(results))


@lowering("lstm_layer")
def _lstm(b, node, xs):
    return _recurrent(b, node, xs, "LSTM", [0, 3, 1, 2], 2)  # torch i,f,g,o -> ONNX i,o,f,c


@lowering("gru_layer")
def _gru(b, node, xs):
    return _recurrent(b, node, xs, "GRU", [1, 0, 2], 1)  # torch r,z,n -> ONNX z,r,h


# ---- scripted graphs: prim:: scalars and control flow ---------------------------------------------------------
_SCALAR_ONNX = {"add": "Add", "sub": "Sub", "mul": "Mul", "truediv": "Div", "lt": "Less", "gt": "Greater",
                "le": "LessOrEqual", "ge": "GreaterOrEqual", "eq": "Equal", "and": "And", "or": "Or", "min": "Min",
                "max": "Max", "neg": "Neg", "not": "Not", "abs": "Abs"}
_KIND_DTYPES = {"int": np.int64, "float": np.float64, "bool": np.bool_}


def lower_nodes(b, nodes: list) -> None:
    """Lower ``nodes`` into ``b.nodes``: constants are remembered (Python ones are folded into what reads them),
    prim:: nodes over constants are computed here, control flow becomes If/Loop with subgraphs."""
    for node in nodes:
        if node.op == "prim::Constant":
            value = node.attrs["value"]
            if isinstance(value, np.ndarray) or hasattr(value, "__array__") and not np.isscalar(value):
                b.names[node.output.id] = b.const(np.asarray(value))
            else:
                b.python[node.output.id] = value
            continue
        if is_prim(node.op):
            _lower_prim(b, node)
            continue
        xs = [b.names.get(v.id, "") for v in node.inputs]
        for v, name in zip(node.outputs, lower(b, node, xs)):
            b.names[v.id] = name


def _scalar_name(b, v) -> str:
    """The ONNX name of a scalar value: a 0-d tensor (int64, float64 or bool), constants made on the spot."""
    if v.id in b.names:
        return b.names[v.id]
    value = b.python[v.id]
    return b.const(np.asarray(value, _KIND_DTYPES.get(v.kind, np.asarray(value).dtype.type)))


def _lower_prim(b, node) -> None:
    op = node.op[6:]
    if node.op in ("prim::If", "prim::Loop"):
        (_lower_if if op == "If" else _lower_loop)(b, node)
        return
    if node.op == "prim::RaiseException":
        return  # as torch's exporter: ONNX has no exceptions, the raising path is dropped
    if node.inputs and all(v.id in b.python for v in node.inputs):
        b.python[node.output.id] = PRIMS[node.op](*[b.python[v.id] for v in node.inputs], **node.attrs)
        return
    out = node.outputs[0] if node.outputs else None
    if op in _SCALAR_ONNX:
        xs = [_scalar_name(b, v) for v in node.inputs]
        b.names[out.id] = b.op(_SCALAR_ONNX[op], xs)
    elif op in ("Bool", "Int", "Float", "NumToTensor"):
        to = {"Bool": "bool", "Int": "int64", "Float": "float64"}.get(op) or out.dtype
        b.names[out.id] = b.op("Cast", [_scalar_name(b, node.inputs[0])], to=b.onnx_type(to))
    elif op == "floordiv":
        b.names[out.id] = b.op("Div", [_scalar_name(b, v) for v in node.inputs])  # int64 Div truncates
    else:
        raise UnsupportedOperatorError(node.op, b.opset, None)


def _value_info(b, name: str, v):
    dtype = v.dtype if v.kind == "Tensor" else {"int": "int64", "float": "float64", "bool": "bool"}.get(v.kind)
    if dtype is None:
        raise UnsupportedOperatorError(f"a {v.kind} value crossing a block", b.opset, None)
    shape = None if v.kind == "Tensor" else []
    return b.helper.make_tensor_value_info(name, b.onnx_type(dtype), shape)


def _subgraph(b, block, inputs: list, like: list, hint: str):
    """Lower ``block`` into an ONNX graph with ``inputs`` (value infos); outputs typed like ``like``'s values."""
    saved = b.nodes
    b.nodes = []
    try:
        lower_nodes(b, block.nodes)
        outs = []
        for v, ref in zip(block.outputs, like):
            src = _scalar_name(b, v) if v.kind != "Tensor" else b.names[v.id]
            name = b.op("Identity", [src])
            outs.append(_value_info(b, name, ref))
        return b.helper.make_graph(b.nodes, b.fresh(hint), inputs, outs)
    finally:
        b.nodes = saved


def _lower_if(b, node) -> None:
    cond = node.inputs[0]
    if cond.id in b.python:  # a constant condition: only the branch taken
        block = node.blocks[0 if b.python[cond.id] else 1]
        lower_nodes(b, block.nodes)
        for out, v in zip(node.outputs, block.outputs):
            table = b.python if v.id in b.python else b.names
            table[out.id] = table[v.id]
        return
    branches = [_subgraph(b, blk, [], node.outputs, f"{k}_branch") for k, blk in zip(("then", "else"), node.blocks)]
    outs = [b.fresh("if") for _ in node.outputs]
    b.nodes.append(b.helper.make_node("If", [_scalar_name(b, cond)], outs, name=b.fresh("If"),
                                      then_branch=branches[0], else_branch=branches[1]))
    for v, name in zip(node.outputs, outs):
        b.names[v.id] = name


def _lower_loop(b, node) -> None:
    trips, cond, inits = node.inputs[0], node.inputs[1], node.inputs[2:]
    block = node.blocks[0]
    counter = b.fresh("iter")
    b.names[block.inputs[0].id] = counter
    body_ins = [b.helper.make_tensor_value_info(counter, b.onnx_type("int64"), []),
                b.helper.make_tensor_value_info(b.fresh("cond_in"), b.onnx_type("bool"), [])]
    for v in block.inputs[1:]:
        b.names[v.id] = b.fresh("carried")
        body_ins.append(_value_info(b, b.names[v.id], v))
    body = _subgraph(b, block, body_ins, [block.outputs[0]] + list(node.outputs), "loop_body")
    m = "" if b.python.get(trips.id) == MAX_TRIPS else _scalar_name(b, trips)
    ins = [m, _scalar_name(b, cond)] + [b.names[v.id] if v.kind == "Tensor" else _scalar_name(b, v) for v in inits]
    outs = [b.fresh("loop") for _ in node.outputs]
    b.nodes.append(b.helper.make_node("Loop", ins, outs, name=b.fresh("Loop"), body=body))
    for v, name in zip(node.outputs, outs):
        b.names[v.id] = name
