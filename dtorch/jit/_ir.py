"""The graph IR that trace (and later script), the passes, save/load, ONNX export and serving share.

* :class:`Value`: one SSA value. ``kind`` is "Tensor" or a Python kind ("int", "float", "bool",
  "str", "None", "list", "object"); a Tensor value carries ``dtype`` (a dtorch dtype name such as
  "float32"), ``shape`` (a tuple of ints), ``strides`` (in elements), ``device`` and
  ``requires_grad`` as traced. ``name`` is its debug name (graph inputs: the argument name or the
  parameter's qualified name, ``fc.weight``).
* :class:`Node`: ``op`` is the dispatcher's registry name (``linear``, ``view``, ``_to_copy``...)
  or a ``prim::`` op of jit/_prims.py (``prim::Constant``); ``attrs`` are the op's params, passed to
  its kernel as keywords; ``inputs``/``outputs`` are Values. ``inplace`` marks an op whose result is
  written into input 0's storage (``add_``: the output aliases input 0). ``sym`` maps an attribute
  to the entries taken at run time from an input's size: ``{"shape": [[0, 0, 0]]}`` means
  ``attrs["shape"][0] = inputs[0].shape[0]`` (the batch dimension of a traced reshape). ``refs`` maps an
  attribute to the input that supplies it (an array param such as embedding's ``indices``): those
  inputs come last in ``inputs``, are not passed positionally, and the attribute holds None.
* :class:`Graph`: ``inputs`` (the user's inputs, then one per parameter and buffer, named by its
  qualified name; ``n_user`` of them are the user's), ``nodes`` in execution order, ``outputs``,
  and ``out_spec``, the structure (tuple/list/dict) the flat outputs are returned in. ``guards``: the
  Python-number inputs a scripted graph is specialized on (their values were used as constants).
* Blocks (scripted control flow): a node's ``blocks`` are Graphs made by :meth:`Graph.block`; they
  share the root's value numbering, may read any value defined before their node, and hand back
  ``outputs``. ``prim::If(cond)`` has two blocks without inputs, whose outputs become the node's;
  ``prim::Loop(trip_count, cond, *carried)`` has one block with inputs ``(i, *carried)`` and outputs
  ``(cond, *carried)`` (TorchScript's forms).
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .._dtype import _FROM_NP

PRIM_CONSTANT = "prim::Constant"
PRIM_IF = "prim::If"
PRIM_LOOP = "prim::Loop"


class Value:
    """One value of a graph: a tensor (with traced type) or a Python value."""

    __slots__ = ("id", "name", "kind", "dtype", "shape", "strides", "device", "requires_grad", "node")

    def __init__(self, id: int, kind: str = "Tensor", name: str | None = None) -> None:
        self.id = id
        self.name = name
        self.kind = kind
        self.dtype: str | None = None
        self.shape: tuple | None = None
        self.strides: tuple | None = None
        self.device = "cpu"
        self.requires_grad = False
        self.node: Node | None = None  # the producing node (None for graph inputs)

    def set_type_from(self, arr, requires_grad: bool = False) -> "Value":
        """Take dtype/shape/strides/device from an array (numpy or cupy)."""
        self.kind = "Tensor"
        self.dtype = str(arr.dtype) if arr.dtype != np.bool_ else "bool"
        self.shape = tuple(int(s) for s in arr.shape)
        isz = arr.itemsize or 1
        self.strides = tuple(int(s) // isz for s in arr.strides)
        self.device = "cpu" if type(arr) is np.ndarray else f"cuda:{arr.device.id}"
        self.requires_grad = bool(requires_grad)
        return self

    def type_str(self, full: bool = True) -> str:
        if self.kind != "Tensor":
            return {"None": "NoneType", "list": "int[]", "object": "Any"}.get(self.kind, self.kind)
        if not full or self.dtype is None:
            return "Tensor"
        scalar = _FROM_NP[np.dtype(self.dtype)].scalar_name
        dims = ", ".join(str(s) for s in self.shape)
        strides = ", ".join(str(s) for s in self.strides)
        return (f"{scalar}({dims}{', ' if dims else ''}strides=[{strides}], "
                f"requires_grad={int(self.requires_grad)}, device={self.device})")

    def uses(self, graph: "Graph") -> list["Node"]:
        return [n for n in graph.nodes if any(i is self for i in n.inputs)]

    def __repr__(self) -> str:
        return f"%{self.name or self.id}"


class Node:
    """One op application: ``outputs = op(*inputs, **attrs)``."""

    __slots__ = ("op", "inputs", "outputs", "attrs", "inplace", "sym", "refs", "scope", "blocks")

    def __init__(self, op: str, inputs: list[Value], attrs: dict | None = None, inplace: bool = False) -> None:
        self.op = op
        self.inputs = list(inputs)
        self.outputs: list[Value] = []
        self.attrs = dict(attrs or {})
        self.inplace = inplace
        self.sym: dict = {}
        self.refs: dict[str, int] = {}
        self.scope = ""
        self.blocks: list[Graph] = []

    @property
    def output(self) -> Value:
        return self.outputs[0]

    def kind(self) -> str:
        """torch's qualified name: ``aten::linear``, ``aten::add_`` (in place), ``prim::Constant``."""
        if "::" in self.op:
            return self.op
        return f"aten::{self.op}{'_' if self.inplace else ''}"

    def __repr__(self) -> str:
        return f"<Node {self.kind()}>"


class Graph:
    """Inputs, nodes in execution order, outputs; see the module docstring."""

    def __init__(self) -> None:
        self.inputs: list[Value] = []
        self.n_user = 0
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        self.out_spec: Any = None
        self._next = 0
        self._root: Graph | None = None  # set on blocks: the graph whose value numbering they share
        self.guards: dict[int, Any] = {}  # user input index -> the value a scripted graph was specialized on

    # ---- building -------------------------------------------------------------------------
    def new_value(self, kind: str = "Tensor", name: str | None = None) -> Value:
        root = self._root or self
        v = Value(root._next, kind, name)
        root._next += 1
        return v

    def block(self) -> "Graph":
        """A new, empty block numbering its values with this graph's root (attach it to a node's ``blocks``)."""
        b = Graph()
        b._root = self._root or self
        return b

    def add_input(self, name: str, arr=None, requires_grad: bool = False) -> Value:
        v = self.new_value("Tensor", name)
        if arr is not None:
            v.set_type_from(arr, requires_grad)
        self.inputs.append(v)
        return v

    def add_node(self, op: str, inputs: list[Value], attrs: dict | None = None, n_out: int = 1,
                 index: int | None = None) -> Node:
        node = Node(op, inputs, attrs)
        for _ in range(n_out):
            out = self.new_value()
            out.node = node
            node.outputs.append(out)
        if index is None:
            self.nodes.append(node)
        else:
            self.nodes.insert(index, node)
        return node

    def constant(self, value, index: int | None = None) -> Value:
        """A ``prim::Constant`` node holding ``value`` (a Python scalar, None, tuple or array)."""
        node = self.add_node(PRIM_CONSTANT, [], {"value": value}, index=index)
        out = node.output
        if is_array(value):
            out.set_type_from(value)
        else:
            out.kind = python_kind(value)
        return out

    # ---- queries --------------------------------------------------------------------------
    def users(self) -> dict[int, list[Node]]:
        """value id -> the nodes that read it, in order (a node with blocks reads what its blocks read)."""
        out: dict[int, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(v.id, []).append(n)
            for b in n.blocks:
                for vid in b.free_ids():
                    out.setdefault(vid, []).append(n)
        return out

    def free_ids(self) -> set[int]:
        """Ids of the values this graph (with its blocks) reads but does not define."""
        defined = {v.id for v in self.inputs}
        read: set[int] = set()
        for n in self.walk():
            read.update(v.id for v in n.inputs)
            defined.update(v.id for v in n.outputs)
            for b in n.blocks:
                defined.update(v.id for v in b.inputs)
                read.update(v.id for v in b.outputs)
        read.update(v.id for v in self.outputs)
        return read - defined

    def replace_uses(self, old: Value, new: Value, after: int = 0) -> None:
        """Make every reader of ``old`` (nodes from index ``after`` and their blocks, and the outputs) read ``new``."""
        for n in self.nodes[after:]:
            n.inputs = [new if v is old else v for v in n.inputs]
            for b in n.blocks:
                b.replace_uses(old, new)
        self.outputs = [new if v is old else v for v in self.outputs]

    def count(self, op: str | None = None) -> int:
        """Number of nodes, blocks' included (of one op, ``aten::`` or registry name; constants excluded when
        op is None)."""
        if op is None:
            return sum(1 for n in self.walk() if n.op != PRIM_CONSTANT)
        return sum(1 for n in self.walk() if n.op == op or n.kind() == op)

    def walk(self) -> Iterator[Node]:
        """Every node, those inside blocks right after the node that owns them."""
        for n in self.nodes:
            yield n
            for b in n.blocks:
                yield from b.walk()

    def copy(self) -> "Graph":
        """A structural copy (attribute values and constants are shared, not copied)."""
        g = Graph()
        g.n_user, g.out_spec, g._next, g.guards = self.n_user, self.out_spec, self._next, dict(self.guards)
        vmap: dict[int, Value] = {}

        def cp(v: Value) -> Value:
            if v.id not in vmap:
                nv = Value(v.id, v.kind, v.name)
                for s in ("dtype", "shape", "strides", "device", "requires_grad"):
                    setattr(nv, s, getattr(v, s))
                vmap[v.id] = nv
            return vmap[v.id]

        self._copy_into(g, cp)
        return g

    def _copy_into(self, g: "Graph", cp) -> None:
        g.inputs = [cp(v) for v in self.inputs]
        for n in self.nodes:
            m = Node(n.op, [cp(v) for v in n.inputs], n.attrs, n.inplace)
            m.sym, m.refs, m.scope = dict(n.sym), dict(n.refs), n.scope
            m.outputs = [cp(v) for v in n.outputs]
            for o in m.outputs:
                o.node = m
            for b in n.blocks:
                nb = g.block()
                b._copy_into(nb, cp)
                m.blocks.append(nb)
            g.nodes.append(m)
        g.outputs = [cp(v) for v in self.outputs]

    def paste(self, nodes: list[Node], vmap: dict[int, Value]) -> None:
        """Append copies of another graph's ``nodes`` (blocks included); ``vmap`` maps the ids of the values they
        read from outside to this graph's values, and gains their outputs."""
        def cp(v: Value) -> Value:
            nv = self.new_value(v.kind, v.name)
            for s in ("dtype", "shape", "strides", "device", "requires_grad"):
                setattr(nv, s, getattr(v, s))
            vmap[v.id] = nv
            return nv

        for n in nodes:
            m = Node(n.op, [vmap[v.id] for v in n.inputs], n.attrs, n.inplace)
            m.sym, m.refs, m.scope = dict(n.sym), dict(n.refs), n.scope
            for b in n.blocks:
                nb = self.block()
                nb.inputs = [cp(v) for v in b.inputs]
                nb.paste(b.nodes, vmap)
                nb.outputs = [vmap[v.id] for v in b.outputs]
                m.blocks.append(nb)
            m.outputs = [cp(v) for v in n.outputs]
            for o in m.outputs:
                o.node = m
            self.nodes.append(m)

    def __str__(self) -> str:
        from ._printer import graph_text  # the printer is a leaf of this package

        return graph_text(self)


def is_array(x) -> bool:
    """A numpy or CuPy array (a tensor's raw data)."""
    return isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__")


def python_kind(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (tuple, list)):
        return "list"
    return "object"
