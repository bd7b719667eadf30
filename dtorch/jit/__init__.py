"""torch.jit: trace functions and modules into one graph IR, run, optimize, save and load it.

Files: _ir.py (Graph/Node/Value), _tracer.py (recording at the dispatcher), _trace.py (trace and
its checks), _exec.py (running a graph), _module.py (ScriptModule/ScriptFunction), _printer.py
(``.graph``/``.code`` text), _codec.py (graph <-> JSON), _serialize.py (the zip archive),
_passes.py/_simplify.py (DCE, CSE, constant folding, algebraic simplification), _freeze.py (freeze,
conv/linear+BN folding, optimize_for_inference), _compile.py (``dtorch.compile``).
"""
from __future__ import annotations

from ._ir import Graph, Node, Value
from ._codec import ArchiveError
from ._freeze import fold_conv_bn, fold_linear_bn, freeze, optimize_for_inference, run_passes
from ._module import ScriptFunction, ScriptModule
from ._passes import constant_fold, eliminate_common_subexpression, eliminate_dead_code
from ._serialize import load, save
from ._simplify import simplify
from ._trace import TracingCheckError, trace
from ._tracer import TracerWarning

__all__ = [
    "ArchiveError", "Graph", "Node", "ScriptFunction", "ScriptModule", "TracerWarning", "TracingCheckError", "Value",
    "freeze", "load", "optimize_for_inference", "save", "trace",
    # passes over a Graph (each returns how many nodes it removed or rewrote)
    "constant_fold", "eliminate_common_subexpression", "eliminate_dead_code", "fold_conv_bn", "fold_linear_bn",
    "run_passes", "simplify",
]
