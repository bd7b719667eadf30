"""torch.jit: trace functions and modules into one graph IR, run, optimize, save and load it.

Files: _ir.py (Graph/Node/Value), _tracer.py (recording at the dispatcher), _trace.py (trace and
its checks), _exec.py (running a graph), _module.py (ScriptModule/ScriptFunction), _printer.py
(``.graph``/``.code`` text), _codec.py (graph <-> JSON), _serialize.py (the zip archive).
"""
from __future__ import annotations

from ._ir import Graph, Node, Value
from ._codec import ArchiveError
from ._module import ScriptFunction, ScriptModule
from ._serialize import load, save
from ._trace import TracingCheckError, trace
from ._tracer import TracerWarning

__all__ = [
    "ArchiveError", "Graph", "Node", "ScriptFunction", "ScriptModule", "TracerWarning", "TracingCheckError", "Value",
    "load", "save", "trace",
]
