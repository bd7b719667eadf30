"""``freeze`` (parameters become constants; conv+BN and linear+BN folded) and ``optimize_for_inference``."""
from __future__ import annotations

import numpy as np

from ._ir import PRIM_CONSTANT, Graph, Node
from ._module import ScriptModule
from ._passes import const_value, constant_fold, eliminate_common_subexpression, eliminate_dead_code
from ._simplify import simplify


def _single_user(graph: Graph, node: Node) -> Node | None:
    """The one node reading ``node``'s only output (None when it has several readers or is an output)."""
    out = node.outputs[0]
    if any(v is out for v in graph.outputs):
        return None
    users = [n for n in graph.nodes if any(v is out for v in n.inputs)]
    return users[0] if len(users) == 1 else None


def _per_channel(x, channels: int, axis_from_end: int) -> bool:
    """``x`` holds one value per channel, laid out to broadcast along dimension ``-axis_from_end``."""
    if not isinstance(x, np.ndarray) or x.size != channels:
        return False
    shape = list(x.shape)
    while len(shape) > axis_from_end and shape[0] == 1:
        shape.pop(0)
    return shape == [channels] + [1] * (axis_from_end - 1)


def _channel_affine(graph: Graph, node: Node, channels: int, axis_from_end: int):
    """(scale, shift, last node) when ``node`` is followed by ``* S + T`` per output channel, else None."""
    mul = _single_user(graph, node)
    if mul is None or mul.op != "mul" or mul.inputs[0] is not node.outputs[0]:
        return None
    add = _single_user(graph, mul)
    if add is None or add.op != "add" or add.inputs[0] is not mul.outputs[0] or add.attrs.get("alpha", 1) != 1:
        return None
    s, t = const_value(mul.inputs[1]), const_value(add.inputs[1])
    if not (_per_channel(s, channels, axis_from_end) and _per_channel(t, channels, axis_from_end)):
        return None
    return s.reshape(channels), t.reshape(channels), add


def _fold_affine(graph: Graph, node: Node, weight_axis_shape: tuple, axis_from_end: int) -> bool:
    w = const_value(node.inputs[1])
    b = const_value(node.inputs[2]) if len(node.inputs) > 2 else None
    if not isinstance(w, np.ndarray) or (b is not None and not isinstance(b, np.ndarray)):
        return False
    channels = w.shape[0]
    found = _channel_affine(graph, node, channels, axis_from_end)
    if found is None:
        return False
    s, t, last = found
    w2 = (w * s.reshape((channels,) + weight_axis_shape)).astype(w.dtype)
    b2 = ((b if b is not None else np.zeros(channels, w.dtype)) * s + t).astype(w.dtype)
    at = graph.nodes.index(node)
    wv, bv = graph.constant(w2, index=at), graph.constant(b2, index=at)
    node.inputs = [node.inputs[0], wv, bv] + node.inputs[3:]
    graph.replace_uses(last.outputs[0], node.outputs[0])
    node.outputs[0].set_type_from(np.empty(last.outputs[0].shape, last.outputs[0].dtype))
    return True


def fold_conv_bn(graph: Graph) -> int:
    """``convolution(x, W, b) * S + T`` (eval batch norm, frozen) -> ``convolution(x, W*S, b*S + T)``."""
    n = 0
    for node in list(graph.nodes):
        if node.op == "convolution" and node.outputs and node.outputs[0].shape:
            nd = len(node.outputs[0].shape) - 2
            if nd >= 1 and _fold_affine(graph, node, (1,) * (nd + 1), nd + 1):
                n += 1
    return n


def fold_linear_bn(graph: Graph) -> int:
    """``linear(x, W, b) * S + T`` (eval BatchNorm1d after a Linear, frozen) -> ``linear(x, W*S, b*S + T)``."""
    n = 0
    for node in list(graph.nodes):
        if node.op == "linear" and _fold_affine(graph, node, (1,), 1):
            n += 1
    return n


def run_passes(graph: Graph, inference: bool = False) -> None:
    """Every pass, to a fixed point."""
    while True:
        changed = simplify(graph, inference) + constant_fold(graph) + fold_conv_bn(graph) + fold_linear_bn(graph)
        changed += eliminate_common_subexpression(graph) + eliminate_dead_code(graph)
        if not changed:
            return


def _inline_parameters(mod: ScriptModule, preserved: set) -> Graph:
    graph = mod.graph.copy()
    tensors = mod._state_tensors()
    params = graph.inputs[graph.n_user:]
    kept = []
    for pos, (v, t) in enumerate(zip(params, tensors)):
        if v.name in preserved:
            kept.append(v)
            continue
        node = Node(PRIM_CONSTANT, [], {"value": t._data.copy()})
        node.outputs = [v]
        v.node = node
        v.requires_grad = False
        graph.nodes.insert(pos, node)
    graph.inputs = graph.inputs[:graph.n_user] + kept
    return graph


def freeze(mod, preserved_attrs=None, optimize_numerics: bool = True):
    """torch.jit.freeze: a ScriptModule whose parameters and buffers are constants of its graph, folded."""
    if not isinstance(mod, ScriptModule) or mod.graph is None:
        raise RuntimeError("Freezing expects a ScriptModule as input. Please use torch.jit.script or "
                           "torch.jit.trace to script your 'nn.Module'.")
    if mod.training:
        raise RuntimeError("Freezing is currently only implemented for modules in eval mode. Please call .eval() "
                           "on your module before freezing.")
    preserved = set(preserved_attrs or ())
    graph = _inline_parameters(mod, preserved)
    if optimize_numerics:
        run_passes(graph)
    else:
        constant_fold(graph)
        eliminate_dead_code(graph)
    out = ScriptModule(mod.original_name)
    out.train(False)
    for name in preserved:
        path, _, leaf = name.rpartition(".")
        src = mod.get_submodule(path) if path else mod
        t = src._parameters.get(leaf)
        if t is not None:
            out.register_parameter(name.replace(".", "_"), t)
        else:
            out.register_buffer(name.replace(".", "_"), src._buffers[leaf])
    for v in graph.inputs[graph.n_user:]:
        v.name = v.name.replace(".", "_")
    out._set_graph(graph)
    return out


def optimize_for_inference(mod, other_methods=None):
    """torch.jit.optimize_for_inference: freeze (if not frozen), then every pass with dropout removed."""
    frozen = mod if isinstance(mod, ScriptModule) and len(mod.graph.inputs) == mod.graph.n_user else freeze(mod)
    graph = frozen.graph.copy()
    run_passes(graph, inference=True)
    out = ScriptModule(frozen.original_name)
    out.train(False)
    out._set_graph(graph)
    return out

