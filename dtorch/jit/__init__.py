"""torch.jit: trace functions and modules into one graph IR, run, optimize, save and load it.

Files: _ir.py (Graph/Node/Value), _tracer.py (recording at the dispatcher), _trace.py (trace and
its checks), _exec.py (running a graph), _module.py (ScriptModule/ScriptFunction), _printer.py
(``.graph``/``.code`` text), _codec.py (graph <-> JSON), _serialize.py (the zip archive),
_passes.py/_simplify.py (DCE, CSE, constant folding, algebraic simplification), _freeze.py (freeze,
conv/linear+BN folding, optimize_for_inference), _compile.py (``dtorch.compile``); script: frontend.py
(source, syntax check, errors), _script.py (expressions, calls), _script_stmt.py (statements),
_script_control.py (if/loops as prim::If/prim::Loop blocks), _script_builtins.py, _script_values.py (run-time
scalars, the script tracer), _script_module.py (``script``, decorators, scripted functions and modules),
_prims.py (prim:: scalar ops the executor runs).
"""
from __future__ import annotations

from ._ir import Graph, Node, Value
from ._codec import ArchiveError
from ._freeze import fold_conv_bn, fold_linear_bn, freeze, optimize_for_inference, run_passes
from ._module import ScriptFunction, ScriptModule
from . import frontend
from ._prims import Error
from ._script_module import RecursiveScriptModule, export, ignore, script, unused
from ._passes import constant_fold, eliminate_common_subexpression, eliminate_dead_code
from ._serialize import load, save
from ._simplify import simplify
from ._trace import TracingCheckError, trace
from ._tracer import TracerWarning

__all__ = [
    "ArchiveError", "Error", "Graph", "RecursiveScriptModule",
    "Node", "ScriptFunction", "ScriptModule", "TracerWarning", "TracingCheckError", "Value",
    "export", "freeze", "frontend", "ignore", "load", "optimize_for_inference", "save", "script", "trace", "unused",
    # passes over a Graph (each returns how many nodes it removed or rewrote)
    "constant_fold", "eliminate_common_subexpression", "eliminate_dead_code", "fold_conv_bn", "fold_linear_bn",
    "run_passes", "simplify",
]
