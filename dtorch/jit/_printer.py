"""Text forms of a graph: TorchScript-style ``.graph`` and readable Python ``.code``."""
from __future__ import annotations

import numpy as np

_CONST = "prim::Constant"


def _names(graph) -> dict[int, str]:
    names: dict[int, str] = {}
    taken: set[str] = set()

    def named(v) -> None:
        base = v.name or str(v.id)
        name, k = base, 1
        while name in taken:
            name, k = f"{base}.{k}", k + 1
        names[v.id] = name
        taken.add(name)

    for v in graph.inputs:
        named(v)
    counter = [len(graph.inputs)]

    def numbered(nodes) -> None:
        for n in nodes:
            for b in n.blocks:
                for v in b.inputs:
                    named(v)
                numbered(b.nodes)
            for v in n.outputs:
                while str(counter[0]) in taken:
                    counter[0] += 1
                names[v.id] = str(counter[0])
                taken.add(str(counter[0]))
                counter[0] += 1

    numbered(graph.nodes)
    return names


def attr_text(value) -> str:
    """One attribute as TorchScript prints it (tensors as ``<Tensor>``, dtypes by torch's name)."""
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        if value.ndim == 0:
            return "{" + repr(value.item()) + "}"
        return "<Tensor>"
    if isinstance(value, np.dtype):
        return f"torch.{value}" if value != np.bool_ else "torch.bool"
    if isinstance(value, slice):
        return f"{attr_text(value.start)}:{attr_text(value.stop)}:{attr_text(value.step)}"
    if value is Ellipsis:
        return "..."
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(attr_text(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return "None"
    return str(value)


def _node_lines(nodes, names: dict, indent: str, lines: list) -> None:
    for n in nodes:
        outs = ", ".join(f"%{names[v.id]} : {v.type_str()}" for v in n.outputs)
        attrs = ""
        shown = {k: v for k, v in n.attrs.items() if k not in n.refs}
        if shown:
            attrs = "[" + ", ".join(f"{k}={attr_text(v)}" for k, v in shown.items()) + "]"
        refs = {k for k in n.refs.values()}
        args = ", ".join(f"%{names[v.id]}" for i, v in enumerate(n.inputs) if i not in refs)
        if n.refs:
            args += "".join(f", {k}=%{names[n.inputs[i].id]}" for k, i in n.refs.items())
        scope = f", scope: {n.scope}" if n.scope else ""
        lines.append(f"{indent}{outs}{' = ' if outs else ''}{n.kind()}{attrs}({args}){scope}")
        for i, b in enumerate(n.blocks):
            ins = ", ".join(f"%{names[v.id]} : {v.type_str(False)}" for v in b.inputs)
            lines.append(f"{indent}  block{i}({ins}):")
            _node_lines(b.nodes, names, indent + "    ", lines)
            lines.append(f"{indent}    -> (" + ", ".join(f"%{names[v.id]}" for v in b.outputs) + ")")


def graph_text(graph) -> str:
    names = _names(graph)
    ins = ",\n      ".join(f"%{names[v.id]} : {v.type_str()}" for v in graph.inputs)
    lines = [f"graph({ins}):"]
    _node_lines(graph.nodes, names, "  ", lines)
    lines.append("  return (" + ", ".join(f"%{names[v.id]}" for v in graph.outputs) + ")")
    return "\n".join(lines) + "\n"


def _py_name(name: str) -> str:
    return name.replace(".", "_") if not name.isdigit() else f"_{name}"


def code_text(graph) -> str:
    """The graph as a Python function over dtorch's ops (for reading; never executed on load)."""
    names = _names(graph)
    user = graph.inputs[:graph.n_user]
    params = graph.inputs[graph.n_user:]
    expr: dict[int, str] = {}
    for v in user:
        expr[v.id] = _py_name(names[v.id])
    for v in params:
        expr[v.id] = "self" + "".join(f".{p}" if p.isidentifier() else f"[{p!r}]" for p in v.name.split("."))
    sig = "".join(f",\n    {expr[v.id]}: {v.type_str(False)}" for v in user)
    lines = [f"def forward(self{sig}):"]
    _code_lines(graph.nodes, names, expr, "  ", lines)
    rets = [expr.get(v.id, "?") for v in graph.outputs]
    lines.append(f"  return {rets[0] if len(rets) == 1 else '(' + ', '.join(rets) + ')'}")
    return "\n".join(lines) + "\n"


def _code_lines(nodes, names: dict, expr: dict, indent: str, lines: list) -> None:
    for n in nodes:
        if n.op == _CONST and len(n.outputs) == 1:
            val = n.attrs["value"]
            if not isinstance(val, np.ndarray) and not hasattr(val, "__cuda_array_interface__"):
                expr[n.outputs[0].id] = attr_text(val) if not isinstance(val, str) else repr(val)
                continue
        outs = [_py_name(names[v.id]) for v in n.outputs]
        if n.blocks:
            _control_code(n, outs, names, expr, indent, lines)
        else:
            args = [expr.get(v.id, "?") for i, v in enumerate(n.inputs) if i not in n.refs.values()]
            args += [f"{k}={expr.get(n.inputs[n.refs[k]].id, '?') if k in n.refs else attr_text(v)}"
                     for k, v in n.attrs.items()]
            fn = n.kind().replace("aten::", "torch.").replace("prim::", "prim.")
            lines.append(f"{indent}{', '.join(outs)}{' = ' if outs else ''}{fn}({', '.join(args)})")
        for v, o in zip(n.outputs, outs):
            expr[v.id] = o


def _assign_lines(targets: list[str], values: list[str], indent: str, lines: list) -> None:
    for t, v in zip(targets, values):
        if t != v:
            lines.append(f"{indent}{t} = {v}")


def _control_code(n, outs: list[str], names: dict, expr: dict, indent: str, lines: list) -> None:
    if n.op == "prim::If":
        for i, b in enumerate(n.blocks):
            lines.append(f"{indent}{'if ' + expr.get(n.inputs[0].id, '?') if i == 0 else 'else'}:")
            _code_lines(b.nodes, names, expr, indent + "  ", lines)
            _assign_lines(outs, [expr.get(v.id, "?") for v in b.outputs], indent + "  ", lines)
            if not b.nodes and not outs:
                lines.append(f"{indent}  pass")
        return
    b = n.blocks[0]
    carried = [_py_name(names[v.id]) for v in b.inputs[1:]]
    for v, c in zip(b.inputs, [_py_name(names[b.inputs[0].id])] + carried):
        expr[v.id] = c
    _assign_lines(carried, [expr.get(v.id, "?") for v in n.inputs[2:]], indent, lines)
    trips, cond = expr.get(n.inputs[0].id, "?"), expr.get(n.inputs[1].id, "?")
    if cond == "True" and expr.get(b.outputs[0].id) == "True":
        lines.append(f"{indent}for {expr[b.inputs[0].id]} in range({trips}):")
    else:
        lines.append(f"{indent}{expr[b.inputs[0].id]}, _cond = 0, {cond}")
        lines.append(f"{indent}while _cond and {expr[b.inputs[0].id]} < {trips}:")
    _code_lines(b.nodes, names, expr, indent + "  ", lines)
    _assign_lines(carried, [expr.get(v.id, "?") for v in b.outputs[1:]], indent + "  ", lines)
    if cond != "True" or expr.get(b.outputs[0].id) != "True":
        lines.append(f"{indent}  _cond = {expr.get(b.outputs[0].id, '?')}")
        lines.append(f"{indent}  {expr[b.inputs[0].id]} += 1")
    _assign_lines(outs, carried, indent, lines)
