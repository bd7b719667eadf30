"""torch.onnx.export (the TorchScript-based exporter's semantics): trace with dtorch.jit, lower each graph node
through an opset-aware table (``_lower.py``), write the model with the ``onnx`` package (extra ``onnx``).

Parameters and buffers become initializers named by their qualified names; ``dynamic_axes`` gives symbolic
dimensions (reshapes whose sizes the trace took from an input's shape follow them at run time); ``ir_version``
is the lowest the opset needs, so older ONNX Runtimes load the file.
"""
from __future__ import annotations

import enum
import io
import os

import numpy as np

from ..tensor import Tensor
from . import errors
from ._builder import Builder
from ._lower import lower_nodes
from .errors import OnnxExporterError, UnsupportedOperatorError

__all__ = ["OnnxExporterError", "TrainingMode", "UnsupportedOperatorError", "errors", "export"]

DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 11, 20


class TrainingMode(enum.IntEnum):
    EVAL = 0
    PRESERVE = 1
    TRAINING = 2


def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("dtorch.onnx.export needs the onnx package: pip install 'dtorch[onnx]'") from e
    return onnx


def _ir_version(onnx, opset: int) -> int:
    return next(row[1] for row in onnx.helper.VERSION_TABLE if row[2] >= opset)


def _graph(model, args: tuple):
    """The graph to export: a scripted model's for these inputs (a copy), else a fresh trace's."""
    from ..jit import RecursiveScriptModule, trace
    from ..jit._script_module import ScriptedFunction

    if isinstance(model, (RecursiveScriptModule, ScriptedFunction)):
        return model.graph_for(*args).copy()
    return trace(model, args, check_trace=False).graph


def _param_tensors(model) -> dict[str, Tensor]:
    if not hasattr(model, "named_parameters"):
        return {}
    named = dict(model.named_parameters(remove_duplicate=False))
    named.update(dict(model.named_buffers(remove_duplicate=False)))
    return named


def _value_info(onnx, name: str, value, dims: dict) -> object:
    shape = [dims.get(i, s) for i, s in enumerate(value.shape)]
    elem = getattr(onnx.TensorProto, {"float32": "FLOAT", "float64": "DOUBLE", "int64": "INT64", "int32": "INT32",
                                      "bool": "BOOL", "float16": "FLOAT16"}[value.dtype])
    return onnx.helper.make_tensor_value_info(name, elem, shape)


def _axes(spec) -> dict:
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return {int(k): str(v) for k, v in spec.items()}
    return {int(a): f"dim_{a}" for a in spec}


def export(model, args, f, export_params: bool = True, verbose: bool = False,
           training: TrainingMode = TrainingMode.EVAL, input_names=None, output_names=None,
           operator_export_type=None, opset_version: int | None = None, do_constant_folding: bool = True,
           dynamic_axes=None, keep_initializers_as_inputs: bool = False, custom_opsets=None,
           export_modules_as_functions: bool = False, autograd_inlining: bool = True, dynamo: bool = False):
    """Export ``model`` run on ``args`` to ONNX at ``f`` (a path or a binary file object)."""
    onnx = _onnx()
    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"Unsupported ONNX opset version: {opset}. dtorch exports opsets {MIN_OPSET} to {MAX_OPSET}")
    args = args if isinstance(args, tuple) else (args,)
    was_training = getattr(model, "training", False)
    if hasattr(model, "train"):
        model.train(training == TrainingMode.TRAINING or (training == TrainingMode.PRESERVE and was_training))
    try:
        graph = _graph(model, args)
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    if do_constant_folding:
        from ..jit import constant_fold, eliminate_dead_code

        constant_fold(graph)
        eliminate_dead_code(graph)
    flat = [t for a in args for t in (a if isinstance(a, (tuple, list)) and a and all(
        isinstance(x, Tensor) for x in a) else (a,))]
    proto = _build(onnx, graph, _param_tensors(model), opset, input_names, output_names, dynamic_axes or {},
                   export_params, keep_initializers_as_inputs, flat)
    if verbose:
        print(onnx.helper.printable_graph(proto.graph))
    data = proto.SerializeToString()
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            fh.write(data)
    elif isinstance(f, io.IOBase) or hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"dtorch.onnx.export: f must be a path or a binary file object, not {type(f).__name__}")
    return None


def _build(onnx, graph, params: dict, opset: int, input_names, output_names, dynamic_axes: dict,
           export_params: bool, keep_inputs: bool, args: tuple = ()):
    b = Builder(onnx, opset, dynamic=bool(dynamic_axes))
    user = []
    for v, a in zip(graph.inputs[:graph.n_user], list(args) + [None] * graph.n_user):
        if v.kind == "Tensor":
            user.append(v)
        else:
            b.python[v.id] = a  # a scripted function's Python number argument: a constant, as torch exports it
    names = list(input_names or []) + [f"input_{i}" if i else "input" for i in range(len(input_names or []),
                                                                                     len(user))]
    graph_inputs, initializers = [], []
    for v, name in zip(user, names):
        b.names[v.id] = name
        graph_inputs.append(_value_info(onnx, name, v, _axes(dynamic_axes.get(name))))
    for v in graph.inputs[graph.n_user:]:
        b.names[v.id] = v.name
        if v.name not in params:
            raise OnnxExporterError(f"dtorch.onnx.export: no parameter or buffer named {v.name!r} in the model")
        arr = params[v.name].detach().cpu().numpy()
        if export_params:
            initializers.append(onnx.numpy_helper.from_array(np.ascontiguousarray(arr), v.name))
        if keep_inputs or not export_params:
            graph_inputs.append(_value_info(onnx, v.name, v, {}))
    used = {v.id for n in graph.walk() for v in n.inputs + [o for blk in n.blocks for o in blk.outputs]}
    used |= {v.id for v in graph.outputs}
    initializers = [i for i, v in zip(initializers, [v for v in graph.inputs[graph.n_user:]] if export_params else [])
                    if v.id in used]
    lower_nodes(b, graph.nodes)
    outputs = []
    out_names = list(output_names or [])
    for i, v in enumerate(graph.outputs):
        name = out_names[i] if i < len(out_names) else (f"output_{i}" if i else "output")
        b.nodes.append(onnx.helper.make_node("Identity", [b.names[v.id]], [name], name=b.fresh("Identity")))
        outputs.append(_value_info(onnx, name, v, _axes(dynamic_axes.get(name))))
    onnx_graph = onnx.helper.make_graph(b.nodes, "main_graph", graph_inputs, outputs, initializers + b.initializers)
    model = onnx.helper.make_model(onnx_graph, producer_name="dtorch",
                                   opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = _ir_version(onnx, opset)
    return model
