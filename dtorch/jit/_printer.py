"""Text forms of a graph: TorchScript-style ``.graph`` and readable Python ``.code``."""
from __future__ import annotations

import numpy as np

_CONST = "prim::Constant"


def _names(graph) -> dict[int, str]:
    names: dict[int, str] = {}
    taken: set[str] = set()
    for v in graph.inputs:
        base = v.name or str(v.id)
        name, k = base, 1
        while name in taken:
            name, k = f"{base}.{k}", k + 1
        names[v.id] = name
        taken.add(name)
    counter = len(graph.inputs)
    for n in graph.nodes:
        for v in n.outputs:
            while str(counter) in taken:
                counter += 1
            names[v.id] = str(counter)
            taken.add(str(counter))
            counter += 1
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


def graph_text(graph) -> str:
    names = _names(graph)
    ins = ",\n      ".join(f"%{names[v.id]} : {v.type_str()}" for v in graph.inputs)
    lines = [f"graph({ins}):"]
    for n in graph.nodes:
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
        lines.append(f"  {outs} = {n.kind()}{attrs}({args}){scope}")
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
    for n in graph.nodes:
        if n.op == _CONST and len(n.outputs) == 1:
            val = n.attrs["value"]
            if not isinstance(val, np.ndarray) and not hasattr(val, "__cuda_array_interface__"):
                expr[n.outputs[0].id] = attr_text(val) if not isinstance(val, str) else repr(val)
                continue
        args = [expr.get(v.id, "?") for i, v in enumerate(n.inputs) if i not in n.refs.values()]
        args += [f"{k}={expr.get(n.inputs[n.refs[k]].id, '?') if k in n.refs else attr_text(v)}"
                 for k, v in n.attrs.items()]
        outs = [_py_name(names[v.id]) for v in n.outputs]
        for v, o in zip(n.outputs, outs):
            expr[v.id] = o
        fn = n.kind().replace("aten::", "torch.").replace("prim::", "prim.")
        lines.append(f"  {', '.join(outs)} = {fn}({', '.join(args)})")
    rets = [expr.get(v.id, "?") for v in graph.outputs]
    lines.append(f"  return {rets[0] if len(rets) == 1 else '(' + ', '.join(rets) + ')'}")
    return "\n".join(lines) + "\n"
