"""Module full backward hooks: identity autograd Functions around a module's inputs and outputs.

The output Function's backward sees grad_output (and runs the pre-hooks); the input Function's
backward sees grad_input and runs the hooks, whose result replaces grad_input. When no input
requires grad, the hooks run from the output side with grad_input all None, as torch.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from ...autograd.function import Function
from ...autograd.grad_mode import STATE
from ...tensor import Tensor


class _HookState:
    def __init__(self, module, hooks: list[Callable], pre_hooks: list[Callable], n_args: int) -> None:
        self.module = module
        self.hooks = hooks
        self.pre_hooks = pre_hooks
        self.n_args = n_args
        self.input_positions: tuple[int, ...] = ()
        self.grad_outputs: tuple | None = None

    def run_hooks(self, grad_inputs: tuple) -> tuple:
        for hook in self.hooks:
            res = hook(self.module, grad_inputs, self.grad_outputs)
            if res is None:
                continue
            res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
            if len(res) != len(grad_inputs):
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, got {len(res)}, but "
                                   f"expected {len(grad_inputs)}")
            grad_inputs = res
        return grad_inputs


class _PassThrough(Function):
    """Returns its tensors unchanged; the subclass's backward runs the module's hooks on their grads."""

    @staticmethod
    def forward(ctx, state: _HookState, *tensors: Tensor):
        ctx.state = state
        ctx.set_materialize_grads(False)
        return tensors


class _InputHook(_PassThrough):
    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        full = [None] * state.n_args
        for pos, g in zip(state.input_positions, grads):
            full[pos] = g
        full = state.run_hooks(tuple(full))
        return (None, *[full[pos] for pos in state.input_positions])


class _OutputHook(_PassThrough):
    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        for hook in state.pre_hooks:
            res = hook(state.module, grads)
            if res is not None:
                res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
                if len(res) != len(grads):
                    raise RuntimeError(f"Backward pre hook returned an invalid number of grad_output, got "
                                       f"{len(res)}, but expected {len(grads)}")
                grads = res
        state.grad_outputs = grads
        if not state.input_positions:  # no input needs grad: the hooks run now, with grad_input all None
            if state.hooks:
                warnings.warn("Full backward hook is firing when gradients are computed with respect to module "
                              "outputs since no inputs require gradients. See https://docs.pytorch.org/docs/main/"
                              "generated/torch.nn.Module.html#torch.nn.Module.register_full_backward_hook for more "
                              "details.", stacklevel=2)
            state.run_hooks((None,) * state.n_args)
        return (None, *grads)


class BackwardHook:
    """Set up around one module call: ``args = h.setup_input_hook(args)``, ``out = h.setup_output_hook(out)``."""

    def __init__(self, module, hooks: list[Callable], pre_hooks: list[Callable]) -> None:
        self.state = _HookState(module, hooks, pre_hooks, 0)

    def setup_input_hook(self, args: tuple) -> tuple:
        self.state.n_args = len(args)
        positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad)
        if not positions or not STATE.enabled:
            return args
        self.state.input_positions = positions
        wrapped = _InputHook.apply(self.state, *(args[i] for i in positions))
        wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
        new_args = list(args)
        for pos, t in zip(positions, wrapped):
            new_args[pos] = t
        return tuple(new_args)

    def setup_output_hook(self, result: Any) -> Any:
        single = isinstance(result, Tensor)
        outs = (result,) if single else result
        if not isinstance(outs, tuple) or not STATE.enabled or not any(
                isinstance(o, Tensor) and o.requires_grad for o in outs):
            return result
        tensors = [o for o in outs if isinstance(o, Tensor)]
        wrapped = _OutputHook.apply(self.state, *tensors)
        wrapped = iter(wrapped if isinstance(wrapped, tuple) else (wrapped,))
        new = tuple(next(wrapped) if isinstance(o, Tensor) else o for o in outs)
        return new[0] if single else new
