"""Elementwise fusion: chains of elementwise ops (ending, optionally, in a softmax or layer norm over the last
dimension) become one ``prim::FusionGroup`` node that runs as one generated C kernel (``_fuse_c.py``).

A group's node keeps its subgraph as plain attributes, so it prints, saves and loads like any node:
``body`` is a tuple of entries ``(op, args, params)`` (``op`` a registry name or ``prim::Constant``,
``args`` value indices: ``0..n_in-1`` are the node's inputs, ``n_in + e`` is entry ``e``'s result,
``params`` ``(name, value)`` pairs) and ``outputs`` the value indices the node returns. The op
``prim::FusionGroup`` is registered in the dispatcher's registry; its kernel compiles the group for the
inputs' rank and broadcasting pattern on first use (a loaded archive recompiles, from the disk cache when
it can), and runs dtorch's own kernels entry by entry where no C applies: CUDA arrays, other dtypes, or no
working C compiler (one warning naming why).
"""
from __future__ import annotations

from ._fuse_run import FUSION_GROUP, ROW_OPS, SPECS
from ._ir import PRIM_CONSTANT, Graph, Node, Value
from ._passes import const_value, eliminate_dead_code, mutated_family

# a group of one op is worth a kernel only where the C loop beats numpy's passes (bench/jit_infer.py --backends)
WORTH_ALONE = frozenset({"gelu", "softmax", "native_layer_norm", "masked_fill", "where", "exp", "relu"})


# ---- the pass -----------------------------------------------------------------------------------------
def _params_ok(n: Node) -> bool:
    a = n.attrs
    if n.op == "div":
        return a.get("rounding_mode") is None
    if n.op == "gelu":
        return a.get("approximate", "none") in ("none", "tanh")
    if n.op == "where":
        return a.get("dtype") is None
    if n.op == "softmax":
        dims = a.get("dim")
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        nd = len(n.outputs[0].shape)
        return len(dims) == 1 and isinstance(dims[0], int) and dims[0] % nd == nd - 1
    if n.op == "native_layer_norm":
        w, b = n.inputs[1], n.inputs[2]
        size = n.outputs[0].shape[-1:]
        return (a.get("n_axes") == 1 and all(v.kind == "Tensor" and v.dtype == "float32" and v.shape == size
                                              for v in (w, b)))
    return True


def _operand_ok(v: Value, mask: bool) -> bool:
    if v.kind == "Tensor":
        return v.dtype == ("bool" if mask else "float32") and v.shape is not None and v.device == "cpu"
    c = const_value(v)
    return isinstance(c, (bool, int, float)) and (mask or not isinstance(c, bool))


def _fusible(n: Node, users: dict, outputs: set, family: set) -> bool:
    spec = SPECS.get(n.op)
    if spec is None or n.op == PRIM_CONSTANT or n.inplace or n.sym or n.refs or len(n.inputs) != spec[0]:
        return False
    out = n.outputs[0]
    if (out.kind != "Tensor" or out.dtype != "float32" or out.device != "cpu" or not out.shape
            or 0 in out.shape or set(n.attrs) - spec[1]):
        return False
    if any(v.id in users or v.id in outputs for v in n.outputs[1:]):
        return False
    if any(v.id in family for v in n.inputs + n.outputs):
        return False
    return _params_ok(n) and all(_operand_ok(v, i in spec[2]) for i, v in enumerate(n.inputs))


class _Group:
    __slots__ = ("nodes", "shape", "closed")

    def __init__(self, node: Node) -> None:
        self.nodes = [node]
        self.shape = node.outputs[0].shape
        self.closed = node.op in ROW_OPS


def _can_join(group: _Group, node: Node, at: dict, users: dict) -> bool:
    """``node`` may join: its shape matches and no outsider reads a member's result before ``node``'s place."""
    if group.closed or node.outputs[0].shape != group.shape:
        return False
    members = {id(m) for m in group.nodes}
    for m in group.nodes:
        for reader in users.get(m.outputs[0].id, ()):
            if id(reader) not in members and reader is not node and at[id(reader)] < at[id(node)]:
                return False
    return True


def _groups(graph: Graph) -> list[_Group]:
    users = graph.users()
    outputs = {v.id for v in graph.outputs}
    family = mutated_family(graph)
    at = {id(n): i for i, n in enumerate(graph.nodes)}
    group_of: dict[int, _Group] = {}
    groups = []
    for n in graph.nodes:
        if not _fusible(n, users, outputs, family):
            continue
        candidates = [group_of[id(v.node)] for v in n.inputs if v.node is not None and id(v.node) in group_of]
        candidates = [g for g in candidates if _can_join(g, n, at, users)]
        if candidates:
            g = max(candidates, key=lambda g: at[id(g.nodes[-1])])
            g.nodes.append(n)
            g.closed = n.op in ROW_OPS
        else:
            g = _Group(n)
            groups.append(g)
        group_of[id(n)] = g
    return [g for g in groups if len(g.nodes) > 1 or g.nodes[0].op in WORTH_ALONE]


def _fused_node(group: _Group, graph: Graph) -> Node:
    """One ``prim::FusionGroup`` node for ``group``: its outside tensors as inputs, scalars as body constants."""
    members = {id(m) for m in group.nodes}
    produced = {m.outputs[0].id for m in group.nodes}
    inputs: list[Value] = []
    for m in group.nodes:
        for v in m.inputs:
            if v.id not in produced and v.kind == "Tensor" and all(v is not x for x in inputs):
                inputs.append(v)
    n_in = len(inputs)
    index = {v.id: i for i, v in enumerate(inputs)}
    body: list[tuple] = []
    for m in group.nodes:
        for v in m.inputs:
            if v.id not in index:
                body.append((PRIM_CONSTANT, (), (("value", const_value(v)),)))
                index[v.id] = n_in + len(body) - 1
        body.append((m.op, tuple(index[v.id] for v in m.inputs), tuple(sorted(m.attrs.items()))))
        index[m.outputs[0].id] = n_in + len(body) - 1
    read = {v.id for v in graph.outputs}
    for n in graph.nodes:
        if id(n) not in members:
            read.update(v.id for v in n.inputs)
    outs = [m.outputs[0] for m in group.nodes if m.outputs[0].id in read]
    node = Node(FUSION_GROUP, inputs, {"body": tuple(body), "outputs": tuple(index[v.id] for v in outs)})
    node.outputs = outs
    for v in outs:
        v.node = node
    node.scope = group.nodes[-1].scope
    return node


def _split_bias(graph: Graph) -> None:
    """``linear(x, W, b)`` whose one reader is fusible -> ``linear(x, W)`` then ``add(., b)``, so the bias joins
    the reader's group (bias + activation, bias + residual add) instead of taking a pass of its own."""
    users = graph.users()
    outputs = {v.id for v in graph.outputs}
    family = mutated_family(graph)
    nodes = []
    for n in graph.nodes:
        nodes.append(n)
        if n.op != "linear" or len(n.inputs) != 3 or n.inplace or n.sym or n.refs or n.attrs:
            continue
        out, b = n.outputs[0], n.inputs[2]
        readers = users.get(out.id, [])
        if (out.id in outputs or len(readers) != 1 or b.kind != "Tensor" or b.dtype != "float32"
                or out.dtype != "float32" or not out.shape or b.shape != out.shape[-1:] or out.id in family
                or readers[0].outputs[0].shape != out.shape or not _fusible(readers[0], users, outputs, family)):
            continue
        plain = graph.new_value()
        for s in ("kind", "dtype", "shape", "strides", "device"):
            setattr(plain, s, getattr(out, s))
        plain.node = n
        n.inputs, n.outputs = n.inputs[:2], [plain]
        add = Node("add", [plain, b])
        add.outputs, out.node, add.scope = [out], add, n.scope
        nodes.append(add)
    graph.nodes = nodes


def fuse_elementwise(graph: Graph) -> int:
    """Replace each group of fusible elementwise ops with one ``prim::FusionGroup`` node; returns how many
    nodes were fused away. Never crosses in-place writes (their alias family is left alone) or random ops
    (not elementwise here)."""
    _split_bias(graph)
    groups = _groups(graph)
    if not groups:
        return 0
    last = {id(g.nodes[-1]): g for g in groups}
    inside = {id(n) for g in groups for n in g.nodes}
    fused = {id(g): _fused_node(g, graph) for g in groups}
    nodes = []
    for n in graph.nodes:
        if id(n) in last:
            nodes.append(fused[id(last[id(n)])])
        elif id(n) not in inside:
            nodes.append(n)
    removed = sum(len(g.nodes) for g in groups) - len(groups)
    graph.nodes = nodes
    eliminate_dead_code(graph)
    return removed
