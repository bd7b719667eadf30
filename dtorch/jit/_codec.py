"""A graph as JSON and back: typed attributes, tensor constants kept aside (they go to safetensors).

Decoding trusts nothing: every field is type-checked, value ids must be defined before use, op
names must be in the registry; a problem is a :class:`ArchiveError` naming the file and place.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._exec import resolve
from ._ir import PRIM_CONSTANT, PRIM_IF, PRIM_LOOP, Graph, Node, Value
from ._prims import ARITY

MAX_DEPTH = 32
MAX_BLOCK_DEPTH = 64
_NO_OUTPUTS = ("prim::RaiseException", PRIM_IF, PRIM_LOOP)
_VALUE_KINDS = ("Tensor", "int", "float", "bool", "str", "None", "list", "object")


class ArchiveError(RuntimeError):
    """A dtorch.jit archive that cannot be loaded; the message names the file and the problem."""


# ---- attributes -----------------------------------------------------------------------------------
def encode_attr(value: Any, arrays: dict, where: str, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: attribute nested deeper than {MAX_DEPTH}")
    if value is None:
        return {"t": "none"}
    if value is Ellipsis:
        return {"t": "ellipsis"}
    if isinstance(value, (bool, np.bool_)):
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"t": "int", "v": int(value)}
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return {"t": "float", "v": f if math.isfinite(f) else repr(f)}
    if isinstance(value, str):
        return {"t": "str", "v": value}
    if isinstance(value, np.dtype):
        return {"t": "dtype", "v": str(value)}
    if isinstance(value, slice):
        return {"t": "slice", "v": [encode_attr(x, arrays, where, depth + 1) for x in (value.start, value.stop,
                                                                                      value.step)]}
    if isinstance(value, (tuple, list)):
        return {"t": "tuple" if isinstance(value, tuple) else "list",
                "v": [encode_attr(x, arrays, where, depth + 1) for x in value]}
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        key = f"c{len(arrays)}"
        arrays[key] = value if isinstance(value, np.ndarray) else value.get()
        return {"t": "tensor", "key": key}
    raise TypeError(f"{where}: cannot save an attribute of type {type(value).__name__}")


def _bad(where: str, what: str) -> ArchiveError:
    return ArchiveError(f"{where}: {what}")


def decode_attr(obj: Any, arrays: dict, where: str, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise _bad(where, f"attribute nested deeper than {MAX_DEPTH}")
    if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
        raise _bad(where, "malformed attribute (expected an object with a type tag 't')")
    t, v = obj["t"], obj.get("v")
    if t == "none":
        return None
    if t == "ellipsis":
        return Ellipsis
    simple = {"bool": bool, "int": int, "str": str}
    if t in simple:
        if type(v) is not simple[t]:
            raise _bad(where, f"attribute of type {t} holds a {type(v).__name__}")
        return v
    if t == "float":
        if isinstance(v, str) and v in ("inf", "-inf", "nan"):
            return float(v)
        if type(v) not in (int, float):
            raise _bad(where, "float attribute holds no number")
        return float(v)
    if t == "dtype":
        try:
            dt = np.dtype(v) if isinstance(v, str) else None
        except TypeError:
            dt = None
        if dt is None or dt.kind not in "biuf":
            raise _bad(where, f"unknown dtype {v!r}")
        return dt
    if t in ("tuple", "list", "slice"):
        if not isinstance(v, list) or (t == "slice" and len(v) != 3):
            raise _bad(where, f"malformed {t} attribute")
        items = [decode_attr(x, arrays, where, depth + 1) for x in v]
        return slice(*items) if t == "slice" else (tuple(items) if t == "tuple" else items)
    if t == "tensor":
        key = obj.get("key")
        if not isinstance(key, str) or key not in arrays:
            raise _bad(where, f"tensor attribute names a missing constant {key!r}")
        return arrays[key]
    raise _bad(where, f"unknown attribute type {t!r}")


# ---- graphs -------------------------------------------------------------------------------------
def _value_json(v: Value) -> dict:
    out = {"id": v.id, "kind": v.kind}
    if v.name is not None:
        out["name"] = v.name
    if v.kind == "Tensor" and v.dtype is not None:
        out.update(dtype=v.dtype, shape=list(v.shape), strides=list(v.strides), device=v.device,
                   requires_grad=v.requires_grad)
    return out


def _nodes_json(nodes: list, arrays: dict) -> list:
    out = []
    for i, n in enumerate(nodes):
        where = f"node {i} ({n.kind()})"
        obj = {"op": n.op, "inputs": [v.id for v in n.inputs], "outputs": [_value_json(v) for v in n.outputs],
               "attrs": {k: encode_attr(a, arrays, f"{where} attribute {k!r}") for k, a in n.attrs.items()},
               "inplace": n.inplace, "sym": n.sym, "refs": n.refs, "scope": n.scope}
        if n.blocks:
            obj["blocks"] = [{"inputs": [_value_json(v) for v in b.inputs], "nodes": _nodes_json(b.nodes, arrays),
                              "outputs": [v.id for v in b.outputs]} for b in n.blocks]
        out.append(obj)
    return out


def graph_to_json(graph: Graph, arrays: dict) -> dict:
    out = {"inputs": [_value_json(v) for v in graph.inputs], "n_user": graph.n_user,
           "nodes": _nodes_json(graph.nodes, arrays), "outputs": [v.id for v in graph.outputs],
           "out_spec": graph.out_spec}
    if graph.guards:
        out["guards"] = [[i, encode_attr(v, arrays, "guards")] for i, v in graph.guards.items()]
    return out


def _guards(obj, graph: Graph, where: str) -> dict:
    if not isinstance(obj, list):
        raise _bad(where, "malformed guards")
    out = {}
    for entry in obj:
        if not isinstance(entry, list) or len(entry) != 2:
            raise _bad(where, "malformed guards")
        i = _int(entry[0], f"{where}: guard", 0, graph.n_user)
        value = decode_attr(entry[1], {}, f"{where}: guard")
        kind = graph.inputs[i].kind
        if kind == "Tensor" or (kind in ("int", "float", "bool", "None") and type(value).__name__ != kind
                                and not (kind == "None" and value is None)):
            raise _bad(where, f"guard on input {i} does not match its type")
        out[i] = value
    return out


def _int(x, where: str, lo: int = 0, hi: int = 1 << 40) -> int:
    if type(x) is not int or not lo <= x < hi:
        raise _bad(where, f"expected an integer in [{lo}, {hi}), got {x!r}"[:200])
    return x


def _value(obj, where: str, defined: dict) -> Value:
    if not isinstance(obj, dict):
        raise _bad(where, "malformed value")
    vid = _int(obj.get("id"), where + " id")
    if vid in defined:
        raise _bad(where, f"value id {vid} defined twice")
    kind = obj.get("kind")
    if kind not in _VALUE_KINDS:
        raise _bad(where, f"unknown value kind {kind!r}"[:200])
    name = obj.get("name")
    v = Value(vid, kind, name if isinstance(name, str) else None)
    if kind == "Tensor" and "dtype" in obj:
        shape, strides = obj.get("shape"), obj.get("strides")
        if (not isinstance(obj["dtype"], str) or not isinstance(shape, list) or not isinstance(strides, list)
                or len(shape) > 64 or len(strides) != len(shape)):
            raise _bad(where, "malformed tensor type")
        v.dtype = decode_attr({"t": "dtype", "v": obj["dtype"]}, {}, where).name
        v.shape = tuple(_int(s, where + " shape") for s in shape)
        v.strides = tuple(_int(s, where + " strides", -(1 << 40)) for s in strides)
        v.device = str(obj.get("device", "cpu"))
        v.requires_grad = bool(obj.get("requires_grad", False))
    defined[vid] = v
    return v


def _sym(obj, where: str, n_inputs: int) -> dict:
    if not isinstance(obj, dict):
        raise _bad(where, "malformed sym")
    out = {}
    for name, entries in obj.items():
        if not isinstance(entries, list):
            raise _bad(where, "malformed sym")
        out[name] = [[_int(e[0], where), _int(e[1], where, 0, n_inputs), _int(e[2], where, 0, 64)]
                     for e in entries if isinstance(e, list) and len(e) == 3]
        if len(out[name]) != len(entries):
            raise _bad(where, "malformed sym entry")
    return out


def _refs(obj, where: str, n_inputs: int) -> dict:
    """attribute -> input index; the referenced inputs must be the last ones, in order."""
    if not isinstance(obj, dict) or not all(isinstance(k, str) and type(v) is int for k, v in obj.items()):
        raise _bad(where, "malformed refs")
    if sorted(obj.values()) != list(range(n_inputs - len(obj), n_inputs)):
        raise _bad(where, "refs must name the node's last inputs")
    return dict(obj)


def _node(obj, i: int, where: str, defined: dict, arrays: dict, visible: set, depth: int = 0) -> Node:
    """One node; ``defined`` holds every value id decoded so far (ids are unique), ``visible`` those in scope."""
    here = f"{where}: node {i}"
    if not isinstance(obj, dict) or not isinstance(obj.get("op"), str):
        raise _bad(here, "malformed node")
    op = obj["op"]
    resolve(op, f"{where}: node {i}") if op != PRIM_CONSTANT else None
    ins = obj.get("inputs")
    if not isinstance(ins, list):
        raise _bad(here, "malformed inputs")
    inputs = []
    for vid in ins:
        if type(vid) is not int or vid not in visible:
            raise _bad(here, f"({op}) reads value {vid!r} before it is defined (or outside its block)"[:200])
        inputs.append(defined[vid])
    attrs = obj.get("attrs", {})
    if not isinstance(attrs, dict):
        raise _bad(here, "malformed attrs")
    node = Node(op, inputs, {k: decode_attr(a, arrays, f"{here} ({op}) attribute {k!r}") for k, a in attrs.items()},
                bool(obj.get("inplace", False)))
    if node.inplace and not inputs:
        raise _bad(here, "an in-place node needs an input")
    node.sym = _sym(obj.get("sym", {}), here, len(inputs))
    node.refs = _refs(obj.get("refs", {}), here, len(inputs))
    node.scope = str(obj.get("scope", ""))
    node.blocks = _blocks(obj.get("blocks", []), here, op, defined, arrays, visible, depth)
    outs = obj.get("outputs")
    if not isinstance(outs, list) or (not outs and op not in _NO_OUTPUTS) or len(outs) > 4096:
        raise _bad(here, "malformed outputs")
    for o in outs:
        v = _value(o, here, defined)
        v.node = node
        node.outputs.append(v)
        visible.add(v.id)
    if op == PRIM_CONSTANT and "value" not in node.attrs:
        raise _bad(here, "prim::Constant without a value")
    _check_prim(node, here)
    return node


def _check_prim(node: Node, here: str) -> None:
    """The shapes a prim node must have: arity, control-flow blocks matching the node's inputs and outputs."""
    op, n_in, n_out = node.op, len(node.inputs), len(node.outputs)
    if op in ARITY and (n_in != ARITY[op] or n_out != (0 if op == "prim::RaiseException" else 1)):
        raise _bad(here, f"{op} takes {ARITY[op]} input(s), got {n_in}")
    if op == "prim::RaiseException" and not isinstance(node.attrs.get("msg"), str):
        raise _bad(here, "prim::RaiseException needs a message")
    if op == "prim::Build":
        slots = node.attrs.get("slots")
        if not isinstance(slots, list) or len(slots) != n_in or n_out != 1 or not all(
                isinstance(p, list) and all(type(k) is int for k in p) for p in slots):
            raise _bad(here, "malformed prim::Build")
    blocks = node.blocks
    if op == PRIM_IF and (n_in != 1 or len(blocks) != 2 or any(b.inputs or len(b.outputs) != n_out for b in blocks)):
        raise _bad(here, "prim::If needs one condition input and two blocks without inputs, each with one output "
                         "per node output")
    if op == PRIM_LOOP and (n_in < 2 or len(blocks) != 1 or n_out != n_in - 2 or len(blocks[0].inputs) != n_in - 1
                            or len(blocks[0].outputs) != n_in - 1):
        raise _bad(here, "prim::Loop needs (trip count, condition, carried...) inputs and one block with "
                         "(counter, carried...) inputs and (condition, carried...) outputs")
    if blocks and op not in (PRIM_IF, PRIM_LOOP):
        raise _bad(here, f"{op} cannot have blocks")


def _blocks(objs, here: str, op: str, defined: dict, arrays: dict, visible: set, depth: int) -> list[Graph]:
    if not isinstance(objs, list) or len(objs) > 2:
        raise _bad(here, "malformed blocks")
    if objs and depth >= MAX_BLOCK_DEPTH:
        raise _bad(here, f"blocks nested deeper than {MAX_BLOCK_DEPTH}")
    out = []
    for k, b in enumerate(objs):
        where = f"{here} block {k}"
        if not isinstance(b, dict) or not isinstance(b.get("inputs"), list) or not isinstance(b.get("nodes"), list):
            raise _bad(where, "malformed block")
        block = Graph()
        scope = set(visible)
        block.inputs = [_value(v, f"{where} input {i}", defined) for i, v in enumerate(b["inputs"])]
        scope.update(v.id for v in block.inputs)
        block.nodes = [_node(n, i, where, defined, arrays, scope, depth + 1) for i, n in enumerate(b["nodes"])]
        outs = b.get("outputs")
        if not isinstance(outs, list) or any(type(v) is not int or v not in scope for v in outs):
            raise _bad(where, "block outputs name values not defined in scope")
        block.outputs = [defined[v] for v in outs]
        out.append(block)
    return out


def graph_from_json(obj: Any, arrays: dict, where: str) -> Graph:
    if not isinstance(obj, dict) or not isinstance(obj.get("nodes"), list) or not isinstance(obj.get("inputs"), list):
        raise _bad(where, "malformed graph")
    graph = Graph()
    defined: dict[int, Value] = {}
    graph.inputs = [_value(v, f"{where}: input {i}", defined) for i, v in enumerate(obj["inputs"])]
    graph.n_user = _int(obj.get("n_user"), f"{where}: n_user", 0, len(graph.inputs) + 1)
    visible = set(defined)
    graph.nodes = [_node(n, i, where, defined, arrays, visible) for i, n in enumerate(obj["nodes"])]
    outs = obj.get("outputs")
    if not isinstance(outs, list) or any(type(v) is not int or v not in visible for v in outs):
        raise _bad(where, "graph outputs name undefined values")
    graph.outputs = [defined[v] for v in outs]
    graph.out_spec = _spec(obj.get("out_spec"), where, 0)
    if _leaves(graph.out_spec) != len(graph.outputs):
        raise _bad(where, "the output structure does not match the graph outputs")
    graph.guards = _guards(obj.get("guards", []), graph, where)
    graph._next = max(defined, default=-1) + 1
    if graph._next > 8 * len(defined) + 1024:
        raise _bad(where, f"value ids up to {graph._next - 1} for {len(defined)} values (ids must be dense)")
    for n in graph.walk():
        for b in n.blocks:
            b._root = graph
    return graph


def _spec(spec: Any, where: str, depth: int) -> Any:
    if spec == "T":
        return spec
    if depth > MAX_DEPTH or not isinstance(spec, dict) or len(spec) != 1:
        raise _bad(where, "malformed output structure")
    kind, inner = next(iter(spec.items()))
    if kind in ("tuple", "list") and isinstance(inner, list):
        return {kind: [_spec(s, where, depth + 1) for s in inner]}
    if kind == "dict" and isinstance(inner, dict):
        return {kind: {str(k): _spec(s, where, depth + 1) for k, s in inner.items()}}
    raise _bad(where, "malformed output structure")


def _leaves(spec: Any) -> int:
    if spec == "T":
        return 1
    inner = next(iter(spec.values()))
    return sum(_leaves(s) for s in (inner.values() if isinstance(inner, dict) else inner))
