"""Graph nodes: PyTorch's ``grad_fn`` objects (``MulBackward0``, ``AccumulateGrad``...)."""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from typing import Callable

from ..tensor import Tensor
from ..utils.hooks import RemovableHandle, add_hook

next_seq = itertools.count().__next__

FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


class Node:
    """A backward function in the graph; ``next_functions`` lead towards the leaves."""

    __slots__ = (
        "next_functions",   # tuple of (Node | None, input_nr), one per differentiable input
        "_seq",             # creation order: later nodes run first when several are ready
        "__dict__",
        "__weakref__",
    )
    # Rarely set, so class-level defaults (an instance gets its own only when used):
    _hooks = None           # dict of fn(grad_inputs, grad_outputs)
    _pre_hooks = None       # dict of fn(grad_outputs)
    _tensor_hooks = None    # {output_nr: {key: fn(grad)}} from Tensor.register_hook
    _retained = None        # {output_nr: weakref to tensor} for retain_grad
    _trace = None           # forward stack when anomaly mode is on
    metadata_ = None

    def __init__(self) -> None:
        self._seq = next_seq()

    def name(self) -> str:
        return type(self).__name__

    @property
    def metadata(self) -> dict:
        if self.metadata_ is None:
            self.metadata_ = {}
        return self.metadata_

    def register_hook(self, fn: Callable) -> RemovableHandle:
        """``fn(grad_inputs, grad_outputs)`` after this node ran; may return new grad_inputs."""
        if self._hooks is None:
            self._hooks = OrderedDict()
        return add_hook(self._hooks, fn)

    def register_prehook(self, fn: Callable) -> RemovableHandle:
        """``fn(grad_outputs)`` before this node runs; may return new grad_outputs."""
        if self._pre_hooks is None:
            self._pre_hooks = OrderedDict()
        return add_hook(self._pre_hooks, fn)

    def _register_tensor_hook(self, output_nr: int, fn: Callable) -> RemovableHandle:
        if self._tensor_hooks is None:
            self._tensor_hooks = {}
        return add_hook(self._tensor_hooks.setdefault(output_nr, OrderedDict()), fn)

    def _retain_grad_for(self, t: Tensor) -> None:
        if self._retained is None:
            self._retained = {}
        self._retained[t._output_nr] = weakref.ref(t)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"

    # Subclasses implement: n_outputs, _apply(grads, create_graph) -> tuple of input grads
    n_outputs = 1

    def _out_meta(self, i: int):  # (shape, numpy dtype, xp) of output i, to materialise zeros
        raise NotImplementedError


class AccumulateGrad(Node):
    """Leaf sink: adds the incoming gradient into ``variable.grad``."""

    __slots__ = ("_var",)

    def __init__(self, variable: Tensor) -> None:
        self._seq = 1 << 62  # run as soon as ready, as torch does
        self._var = weakref.ref(variable)
        self.next_functions = ()

    @property
    def variable(self) -> Tensor | None:
        return self._var()

    def _out_meta(self, i: int):
        d = self.variable._data
        return d.shape, d.dtype, type(d)


def accumulator_of(t: Tensor) -> AccumulateGrad:
    """The AccumulateGrad node of a leaf that requires grad.

    The leaf holds its node strongly and the node holds the leaf weakly: no reference
    cycle, and one node per leaf for its whole life (torch makes one per graph).
    """
    node = t._acc
    if node is None:
        node = t._acc = AccumulateGrad(t)
    return node


def grad_edge(t: Tensor) -> tuple:
    """(node, output_nr) through which a gradient reaches ``t``; (None, 0) when it needs none."""
    fn = t.grad_fn
    if fn is not None:
        return (fn, t._output_nr)
    if t._rg:
        return (t._acc or accumulator_of(t), 0)  # (no call when the leaf has its node: a hot path)
    return NO_EDGE


NO_EDGE = (None, 0)
