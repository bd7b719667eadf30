"""Custom autograd functions: ``class F(dtorch.autograd.Function)`` with static forward/backward."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .._device import xp_of
from ..tensor import Tensor, _make
from .graph import FREED_MSG, Node, grad_edge
from .grad_mode import STATE, no_grad, set_grad_enabled


class FunctionCtx:
    """The ``ctx`` methods; the graph node of a custom Function is its ctx, as in torch."""

    def save_for_backward(self, *tensors) -> None:
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument is not a Tensor")
        self._to_save = tensors

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_diff = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize = value

    @property
    def saved_tensors(self) -> tuple:
        saved = self._saved
        if saved is None:
            raise RuntimeError(FREED_MSG)
        for t, v in zip(saved, self._saved_ver):
            if t is not None and t._vc[0] != v:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{t.dtype} {list(t.shape)}] is at version {t._vc[0]}; expected version {v} "
                    f"instead (saved by {self.name()})."
                )
        return saved


class BackwardCFunction(Node, FunctionCtx):
    """Node of one custom Function call; subclassed per Function as ``<Name>Backward``."""

    _cls: Any = None

    def __init__(self) -> None:
        Node.__init__(self)
        self._to_save = ()
        self._saved = ()
        self._saved_ver = ()
        self._dirty = ()
        self._non_diff = ()
        self._materialize = True
        self.next_functions = ()
        self._in_meta = []
        self._arg_pos = ()
        self._outs_meta = []
        self.needs_input_grad = ()

    @property
    def n_outputs(self) -> int:
        return len(self._outs_meta)

    def _out_meta(self, i: int):
        return self._outs_meta[i]

    def _apply(self, grads, create_graph: bool):
        tgrads = []
        for i, g in enumerate(grads):
            if g is None:
                if self._materialize:
                    shape, dt, xp = self._outs_meta[i]
                    g = xp.zeros(shape, dt)
                else:
                    tgrads.append(None)
                    continue
            tgrads.append(g if isinstance(g, Tensor) else _make(g))
        with set_grad_enabled(create_graph):
            res = self._cls.backward(self, *tgrads)
        if not isinstance(res, tuple):
            res = (res,)
        n_args = self._n_args
        if len(res) != n_args:
            if len(res) > n_args and all(r is None for r in res[n_args:]):
                res = res[:n_args]
            else:
                raise RuntimeError(
                    f"function {self.name()} returned an incorrect number of gradients (expected {n_args}, "
                    f"got {len(res)})"
                )
        out = []
        for pos in self._arg_pos:
            r = res[pos]
            if r is not None and not isinstance(r, Tensor):
                raise TypeError(f"function {self.name()} returned a gradient of type {type(r).__name__}, "
                                "expected a Tensor or None")
            out.append(None if r is None else (r if create_graph else r._data))
        return tuple(out)

    def _release(self) -> None:
        if self._saved:
            self._saved = None


class _FunctionMeta(type):
    def __init__(cls, name, bases, attrs) -> None:
        super().__init__(name, bases, attrs)
        cls._backward_cls = type(name + "Backward", (BackwardCFunction,), {"_cls": cls})


class Function(FunctionCtx, metaclass=_FunctionMeta):
    """Base class of custom differentiable operations (torch.autograd.Function)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        node = cls._backward_cls()
        tensor_pos = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
        needs = STATE.enabled and any(args[i]._rg for i in tensor_pos)
        node.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg and STATE.enabled for a in args)
        node._n_args = len(args)
        separate_setup = cls.setup_context is not Function.setup_context
        with no_grad():
            if separate_setup:
                outputs = cls.forward(*args, **kwargs)
                cls.setup_context(node, args, outputs)
            else:
                outputs = cls.forward(node, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        if not needs:
            return outputs
        node._arg_pos = tensor_pos
        node.next_functions = tuple(grad_edge(args[i]) for i in tensor_pos)
        node._in_meta = [(args[i]._data.shape, args[i]._data.dtype) for i in tensor_pos]
        dirty = {id(t) for t in node._dirty}
        non_diff = {id(t) for t in node._non_diff}
        inputs_by_id = {id(args[i]): args[i] for i in tensor_pos}
        wrapped = []
        for nr, o in enumerate(outs):
            if not isinstance(o, Tensor):
                wrapped.append(o)
                node._outs_meta.append(((), np.float32, np))
                continue
            node._outs_meta.append((o._data.shape, o._data.dtype, xp_of(o._data)))
            if id(o) in inputs_by_id and id(o) not in dirty:
                o = _alias(o)  # returning an input unchanged gives a new tensor, as torch
            if id(o) in non_diff:
                wrapped.append(o)
                continue
            if id(o) in dirty:
                if o._rg and o.grad_fn is None:
                    raise RuntimeError("a leaf Variable that requires grad has been used in an in-place operation.")
                o._vc[0] += 1  # marking dirty counts as a modification, as torch
            o.grad_fn = node
            o._output_nr = nr
            o._rg = True
            wrapped.append(o)
        to_save = node._to_save
        node._saved = tuple(to_save)
        node._saved_ver = tuple(t._vc[0] if t is not None else 0 for t in to_save)
        del node._to_save
        return wrapped[0] if single else tuple(wrapped)


def _alias(t: Tensor) -> Tensor:
    a = _make(t._data)
    a._vc = t._vc
    a._base = t._base if t._base is not None else t
    return a


_TWICE_MSG = "trying to differentiate twice a function that was marked with @once_differentiable"


def once_differentiable(fn):
    """Run a custom backward without recording it; differentiating its result again raises, as torch."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            outputs = fn(ctx, *args)
        if not STATE.enabled or not any(isinstance(a, Tensor) and a._rg for a in args):
            return outputs
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        # the results take a node whose backward raises (torch's DelayedError)
        # (detached leaves that require grad: the node needs an input that does)
        marked = _DelayedError.apply(*[o.detach().requires_grad_() for o in outs if isinstance(o, Tensor)])
        marked = iter(marked if isinstance(marked, tuple) else (marked,))
        outs = tuple(next(marked) if isinstance(o, Tensor) else o for o in outs)
        return outs[0] if single else outs

    return wrapper


class InplaceFunction(Function):
    pass


class NestedIOFunction(Function):
    pass


class _DelayedError(Function):
    """Passes tensors through; its backward raises (the result of a once_differentiable backward)."""

    @staticmethod
    def forward(ctx, *tensors):
        out = tuple(t.detach() for t in tensors)
        return out[0] if len(out) == 1 else out

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(_TWICE_MSG)
