"""Graph passes: dead code, common subexpressions, constant folding, algebraic simplification.

Each pass rewrites the graph in place and returns the number of nodes it removed or replaced.
Values in the alias family of an in-place write (the written value, its views and its base) are
never touched, and nothing is merged across random ops or in-place ops. Control-flow nodes (with
blocks): dead-code elimination recurses into their blocks; CSE and folding leave them and their blocks
alone and merge nothing across them.
"""
from __future__ import annotations

import numpy as np

from .._dispatch import REGISTRY
from ._ir import PRIM_CONSTANT, Graph, Node, Value, is_array as _is_array
from ._printer import attr_text

RANDOM_OPS = frozenset({"dropout"})
MAX_FOLDED_BYTES = 64 << 20
_NOTHING = object()


def _is_view(n: Node) -> bool:
    op = REGISTRY.get(n.op)
    return op is not None and op.view


def mutated_family(graph: Graph) -> set[int]:
    """Ids of values that share storage with a value some node writes in place."""
    root: dict[int, int] = {}
    for v in graph.inputs:
        root[v.id] = v.id
    for n in graph.walk():
        for o in n.outputs:
            aliasing = (n.inplace or _is_view(n)) and n.inputs
            root[o.id] = root.get(n.inputs[0].id, n.inputs[0].id) if aliasing else o.id
    written = {root.get(n.inputs[0].id, n.inputs[0].id) for n in graph.walk() if n.inplace}
    return {vid for vid, r in root.items() if r in written}


def const_value(v: Value):
    """The value of a prim::Constant output, or ``_NOTHING``."""
    n = v.node
    if n is not None and n.op == PRIM_CONSTANT:
        return n.attrs["value"]
    return _NOTHING


# ---- dead code ------------------------------------------------------------------------------
EFFECTS = frozenset({"prim::RaiseException"})


def _has_effects(n: Node) -> bool:
    return n.inplace or n.op in EFFECTS or any(_has_effects(m) for b in n.blocks for m in b.nodes)


def eliminate_dead_code(graph: Graph) -> int:
    """Drop nodes none of whose outputs is used (in-place writes and raises are kept: they have effects);
    inside the blocks of the control-flow nodes kept, the same with the block's outputs live."""
    return _dce(graph, {v.id for v in graph.outputs})


def _dce(graph: Graph, live: set) -> int:
    keep, removed = [], 0
    for n in reversed(graph.nodes):
        if not (_has_effects(n) or any(o.id in live for o in n.outputs)):
            removed += 1 + sum(1 for b in n.blocks for _ in b.walk())
            continue
        for b in n.blocks:
            removed += _dce(b, live | {v.id for v in b.outputs})
            live |= b.free_ids()
        keep.append(n)
        live.update(v.id for v in n.inputs)
    graph.nodes = keep[::-1]
    return removed


# ---- common subexpressions -----------------------------------------------------------------------
def _key(n: Node):
    parts = []
    for k, a in n.attrs.items():
        if _is_array(a):
            if n.op != PRIM_CONSTANT or a.size > 64:
                return None
            parts.append((k, str(a.dtype), a.shape, a.tobytes() if isinstance(a, np.ndarray) else None))
        else:
            parts.append((k, type(a).__name__, attr_text(a)))
    return (n.op, tuple(v.id for v in n.inputs), tuple(parts))


def eliminate_common_subexpression(graph: Graph) -> int:
    """Reuse the first of two identical pure nodes (same op, inputs, attributes). Reading a value that is
    written in place later is fine (the table is cleared at every write); producing one is not."""
    family = mutated_family(graph)
    seen: dict = {}
    removed = 0
    keep = []
    for i, n in enumerate(graph.nodes):
        if n.inplace or n.blocks or n.op in EFFECTS:
            seen.clear()  # nothing is merged across an in-place write or a control-flow node
            keep.append(n)
            continue
        key = None
        if n.op not in RANDOM_OPS and not any(v.id in family for v in n.outputs):
            key = _key(n)
        first = seen.get(key) if key is not None else None
        if first is None:
            if key is not None:
                seen[key] = n
            keep.append(n)
            continue
        for old, new in zip(n.outputs, first.outputs):
            graph.replace_uses(old, new, i + 1)
        removed += 1
    graph.nodes = keep
    return removed


# ---- constant folding -------------------------------------------------------------------------------
def constant_fold(graph: Graph) -> int:
    """Run nodes whose inputs are all constants once, at compile time; their outputs become constants."""
    family = mutated_family(graph)
    folded = 0
    out_nodes = []
    for n in graph.nodes:
        op = REGISTRY.get(n.op)
        vals = [const_value(v) for v in n.inputs]
        if (op is None or n.inplace or n.op in RANDOM_OPS or op.extra or op.n_out != 1 or not n.inputs or n.refs
                or any(x is _NOTHING for x in vals) or not any(_is_array(x) for x in vals)
                or any(v.id in family for v in n.inputs + n.outputs)):
            out_nodes.append(n)
            continue
        kern = op.cpu_kernel if all(isinstance(x, np.ndarray) or not _is_array(x) for x in vals) else op.cuda_kernel
        res = kern(*vals, **n.attrs)
        res = np.array(res) if not _is_array(res) else res.copy()
        if res.nbytes > MAX_FOLDED_BYTES:
            out_nodes.append(n)
            continue
        const = Node(PRIM_CONSTANT, [], {"value": res})
        const.outputs = n.outputs
        n.outputs[0].node = const
        n.outputs[0].set_type_from(res)
        out_nodes.append(const)
        folded += 1
    graph.nodes = out_nodes
    return folded
