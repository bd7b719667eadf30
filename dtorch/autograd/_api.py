"""backward() and grad(): tensors and seed gradients in, roots and targets for the engine."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .._creation import tensor, zeros_like
from .._device import xp_of
from ..tensor import Tensor, _make
from .engine import run_backward
from .graph import grad_edge


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _make_grads(outputs: tuple, grads: tuple, create_graph: bool) -> list:
    out = []
    for i, t in enumerate(outputs):
        g = grads[i] if i < len(grads) else None
        if g is None:
            if not t._rg:
                out.append(None)
                continue
            if t._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if t._data.dtype.kind not in "fV":
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {t.dtype}")
            arr = xp_of(t._data).ones(t._data.shape, t._data.dtype)
            out.append(_make(arr) if create_graph else arr)
            continue
        if not isinstance(g, Tensor):
            g = tensor(g, dtype=t.dtype)
        if g._data.shape != t._data.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and output[{i}] has a shape "
                f"of {t.shape}."
            )
        if type(g._data) is not type(t._data):
            raise RuntimeError(f"invalid gradient at index {i} - expected device {t.device} but got {g.device}")
        out.append(g if create_graph else g._data)
    return out


def _roots(outputs: tuple) -> list:
    roots = []
    for i, t in enumerate(outputs):
        if not t._rg:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        roots.append(grad_edge(t))
    return roots


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None, create_graph: bool = False,
             grad_variables=None, inputs=None) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves (or of ``inputs``)."""
    outputs = _as_tuple(tensors)
    grads = _make_grads(outputs, _as_tuple(grad_tensors if grad_tensors is not None else grad_variables),
                        create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    roots = _roots(outputs)
    if inputs is None:
        run_backward(roots, grads, retain_graph, create_graph)
        return
    inputs = _as_tuple(inputs)
    if not inputs:
        raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    targets = {}
    for i, t in enumerate(inputs):
        if not t._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        targets[grad_edge(t)] = i
    captured = run_backward(roots, grads, retain_graph, create_graph, targets, accumulate=True)
    for t, g in zip(inputs, captured):
        if t.grad_fn is not None and g is not None:  # leaves were accumulated by the engine
            gt = g if isinstance(g, Tensor) else _make(np.array(g))
            t._grad = gt if t._grad is None else t._grad + gt


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused: bool | None = None, is_grads_batched: bool = False,
         materialize_grads: bool = False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated)."""
    outs = _as_tuple(outputs)
    ins = _as_tuple(inputs)
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True")
    allow_unused = bool(allow_unused) or materialize_grads
    grads = _make_grads(outs, _as_tuple(grad_outputs), create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    roots = _roots(outs)
    targets = {}
    slots = []
    for t in ins:
        if not isinstance(t, Tensor):
            raise TypeError(f"grad(): inputs must be Tensors, got {type(t).__name__}")
        if not t._rg:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        edge = grad_edge(t)
        if edge not in targets:
            targets[edge] = len(targets)
        slots.append(targets[edge])
    captured = run_backward(roots, grads, retain_graph, create_graph, targets, accumulate=False)
    result = []
    for i, (t, s) in enumerate(zip(ins, slots)):
        g = captured[s]
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"The differentiated Tensor at index {i} appears to not have been used in the graph. Set "
                    "allow_unused=True if this is the desired behavior."
                )
            if materialize_grads:
                g = zeros_like(t)
            result.append(g)
            continue
        if not isinstance(g, Tensor):
            g = _make(np.asarray(g) if isinstance(g, np.generic) else g)  # numpy makes 0-d results scalars
        result.append(g)
    return tuple(result)


def _tensor_backward(self: Tensor, gradient=None, retain_graph: bool | None = None, create_graph: bool = False,
                     inputs: Sequence | None = None) -> None:
    backward(self, gradient, retain_graph, create_graph, inputs=inputs)


Tensor.backward = _tensor_backward
