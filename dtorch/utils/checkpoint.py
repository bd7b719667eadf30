"""torch.utils.checkpoint: activation checkpointing.

The checkpointed function runs without recording; its node keeps only the inputs (and the RNG state).
In backward the function runs again with recording on, from the same RNG state, and the gradient
flows through that fresh graph: memory for time.

Both of torch's variants go through one custom Function here. ``use_reentrant=False`` also records
the node when no input requires grad (a hidden input that does), so parameters used inside the
function get their gradients, as torch's non-reentrant variant does; keyword arguments are passed
through. Gradients of the recomputed graph reach parameters through ``dtorch.autograd.backward``
(accumulated into ``.grad``), as in torch's reentrant variant.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable

from .._creation import zeros
from ..autograd._api import backward as autograd_backward
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "detach_variable", "noop_context_fn"]


def noop_context_fn() -> tuple:
    return contextlib.nullcontext(), contextlib.nullcontext()


def detach_variable(inputs: tuple) -> tuple:
    """Detached copies of the tensors in ``inputs`` keeping ``requires_grad`` (torch's helper)."""
    if not isinstance(inputs, tuple):
        raise RuntimeError(f"Only tuple of tensors is supported. Got Unsupported input type: {type(inputs).__name__}")
    out = []
    for x in inputs:
        if not isinstance(x, Tensor):
            out.append(x)
            continue
        d = x.detach()
        d.requires_grad_(x.requires_grad)
        out.append(d)
    return tuple(out)


class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, kwargs, n_hidden, *args):
        ctx.run_function, ctx.kwargs, ctx.n_hidden = run_function, kwargs, n_hidden
        ctx.rng_state = get_rng_state() if preserve_rng_state else None
        ctx.tensor_slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.inputs = [None if isinstance(a, Tensor) else a for a in args]
        ctx.save_for_backward(*(args[i] for i in ctx.tensor_slots))
        with no_grad():
            return run_function(*args[n_hidden:], **kwargs)

    @staticmethod
    def backward(ctx, *grads):
        args = list(ctx.inputs)
        saved = detach_variable(tuple(ctx.saved_tensors))
        for slot, t in zip(ctx.tensor_slots, saved):
            args[slot] = t
        if ctx.rng_state is not None:
            outer = get_rng_state()
            set_rng_state(ctx.rng_state)
        try:
            with enable_grad():
                outputs = ctx.run_function(*args[ctx.n_hidden:], **ctx.kwargs)
        finally:
            if ctx.rng_state is not None:
                set_rng_state(outer)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grads) if isinstance(o, Tensor) and o.requires_grad]
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
        autograd_backward([o for o, _ in pairs], [g for _, g in pairs])
        arg_grads = tuple(a.grad if isinstance(a, Tensor) else None for a in args)
        return (None, None, None, None) + arg_grads


def checkpoint(function: Callable, *args, use_reentrant: bool | None = None, context_fn: Callable = noop_context_fn,
               determinism_check: str = "default", debug: bool = False, early_stop: bool = True, **kwargs) -> Any:
    """Run ``function(*args, **kwargs)`` keeping only its inputs; recompute it during backward."""
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. Starting in PyTorch "
            "2.9, calling checkpoint without use_reentrant will raise an exception. use_reentrant=False is "
            "recommended, but if you need to preserve the current default behavior, you can pass "
            "use_reentrant=True. Refer to docs for more details on the differences between the two variants.",
            stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if context_fn is not noop_context_fn or debug is not False:
        if use_reentrant:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
        raise NotImplementedError("dtorch.utils.checkpoint: context_fn and debug are not supported")
    if use_reentrant:
        if is_grad_enabled() and not any(isinstance(a, Tensor) and a.requires_grad for a in args):
            warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)
        return CheckpointFunction.apply(function, preserve, {}, 0, *args)
    if not is_grad_enabled():
        return function(*args, **kwargs)
    hidden = zeros((), requires_grad=True)  # records the node even when no input requires grad
    return CheckpointFunction.apply(function, preserve, kwargs, 1, hidden, *args)


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None, **kwargs):
    """Run a Sequential (or list of modules) in ``segments`` chunks, checkpointing all but the last."""
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be passed explicitly. "
            "In version 2.9 we will raise an exception if use_reentrant is not passed. use_reentrant=False is "
            "recommended, but if you need to preserve the current default behavior, you can pass "
            "use_reentrant=True. Refer to docs for more details on the differences between the two variants.",
            stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if hasattr(functions, "children") and callable(functions.children):
        functions = list(functions.children())

    def run(start: int, end: int) -> Callable:
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x
        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant, preserve_rng_state=preserve)
    return run(end + 1, len(functions) - 1)(input)
