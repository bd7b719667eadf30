"""The test oracle: dtorch against real PyTorch (skipped where torch is missing), and float64 gradchecks.

``check_op`` is the one parity check, in the spirit of tinygrad's ``helper_test_op``: the same inputs go to
dtorch and to torch; forward values, dtypes and ``requires_grad`` must agree, then (``grad``) the input gradients
for the same random output gradients, then (``gradgrad``) the second derivatives. ``check_grads`` is the
numerical float64 gradcheck/gradgradcheck, which needs no torch.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pytest

import dtorch


# elementwise results against torch's, by dtype
TOL = {"float16": {"rtol": 2e-3, "atol": 2e-3}, "float32": {"rtol": 2e-5, "atol": 2e-6},
       "float64": {"rtol": 1e-10, "atol": 1e-12}}
# float32 results that sum in another order than torch's (matmul, convolution, pooling)
F32_TOL = {"rtol": 1e-4, "atol": 1e-5}


def torch_or_skip():
    """torch, on one thread: its default pool made the oracle ~100x slower on a busy 2-core machine."""
    torch = pytest.importorskip("torch")
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return torch


def to_torch(t: dtorch.Tensor, requires_grad: bool | None = None):
    """A torch CPU leaf with ``t``'s values (requiring grad as ``t`` does unless told)."""
    torch = torch_or_skip()
    out = torch.from_numpy(t.detach().cpu().numpy().copy())
    if t.requires_grad if requires_grad is None else requires_grad:
        out.requires_grad_(True)
    return out


def to_numpy(x) -> np.ndarray:
    """A dtorch or torch tensor's values on the host (torch's ZeroTensor gradients as zeros)."""
    if isinstance(x, dtorch.Tensor):
        return x.detach().cpu().numpy()
    return x.detach().numpy(force=True)


def same_values(a, b) -> bool:
    """Whether two tensors (dtorch, torch or numpy) hold exactly the same values in the same shape."""
    return bool(np.array_equal(a if isinstance(a, np.ndarray) else to_numpy(a),
                               b if isinstance(b, np.ndarray) else to_numpy(b)))


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-6, check_dtype: bool = True) -> None:
    """Compare a dtorch tensor with a torch tensor (or numpy array): values, shape and dtype."""
    a = to_numpy(actual)
    e = expected if isinstance(expected, np.ndarray) else to_numpy(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    if check_dtype:
        assert a.dtype == e.dtype, f"dtype {a.dtype} != {e.dtype}"
    np.testing.assert_allclose(a.astype(np.float64) if a.dtype != np.bool_ else a,
                               e.astype(np.float64) if e.dtype != np.bool_ else e, rtol=rtol, atol=atol)


def load_from_torch(module: dtorch.nn.Module, torch_module) -> None:
    """Give a dtorch module the parameters and buffers of the torch module of the same structure."""
    module.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()})


# ---- inputs ------------------------------------------------------------------------------------
def rand(*shape, dtype: dtorch.dtype = dtorch.float64, device: str = "cpu",
         requires_grad: bool = True) -> dtorch.Tensor:
    """A standard-normal leaf (float64 unless told: gradcheck's dtype), drawn on ``device``."""
    return dtorch.randn(*shape, dtype=dtype, device=device).requires_grad_(requires_grad)


def leaf(data, device: str = "cpu", dtype: dtorch.dtype | None = dtorch.float64,
         requires_grad: bool | None = None) -> dtorch.Tensor:
    """A leaf holding ``data`` (float64 unless told; ``None`` infers it), requiring grad if floating."""
    t = dtorch.tensor(data, dtype=dtype, device=device)
    return t.requires_grad_(t.is_floating_point() if requires_grad is None else requires_grad)


def distinct(*shape, device: str = "cpu") -> dtorch.Tensor:
    """float64 leaf with distinct, well-separated, nonzero values (no ties, no kinks)."""
    n = math.prod(shape)
    rng = np.random.default_rng(1)
    vals = (rng.permutation(n) + 1.0) * rng.choice([-1.0, 1.0], n) / n + rng.uniform(0.001, 0.01, n)
    return leaf(vals.reshape(shape), device=device)


def normal(rng: np.random.Generator, shape) -> np.ndarray:
    """The standard-normal input factory for ``make_inputs`` / ``check_op(make=...)``."""
    return rng.standard_normal(shape)


def make_inputs(shapes: Iterable, *, make: Callable | Sequence[Callable] | None = None, low: float = -2.0,
                high: float = 2.0, dtype: dtorch.dtype = dtorch.float64, device: str = "cpu",
                requires_grad: bool = True, seed: int = 0) -> list[dtorch.Tensor]:
    """One leaf per shape: ``make(rng, shape)`` values (``make`` may be one factory per shape), or uniform in
    [low, high); requiring grad if floating and ``requires_grad``."""
    rng = np.random.default_rng(seed)
    makes = make if isinstance(make, (list, tuple)) else [make] * len(shapes)
    out = []
    for shape, make in zip(shapes, makes):
        vals = np.asarray(make(rng, shape)) if make is not None else rng.uniform(low, high, shape)
        t = dtorch.tensor(vals, dtype=dtype, device=device)
        out.append(t.requires_grad_(requires_grad and t.is_floating_point()))
    return out


# ---- the parity check --------------------------------------------------------------------------
def check_op(dtorch_fn: Callable, torch_fn: Callable | None = None, shapes: Sequence = (), *,
             inputs: Sequence | None = None, grad: bool = True, gradgrad: bool = False,
             atol: float = 1e-6, rtol: float = 1e-5, grad_atol: float | None = None, grad_rtol: float | None = None,
             dtype: dtorch.dtype = dtorch.float64, device: str = "cpu",
             make: Callable | Sequence[Callable] | None = None, low: float = -2.0, high: float = 2.0,
             params: tuple | None = None,
             as_leaves: bool = False, check_dtype: bool = True, check_indices: bool = True, check_grad_fn: bool = False,
             errors: bool = False, seed: int = 0):
    """Run an op on dtorch and on torch with the same inputs and compare everything observable.

    ``dtorch_fn(*inputs)`` is compared with ``torch_fn(*torch_inputs)``; without ``torch_fn``, ``dtorch_fn(lib,
    *inputs)`` runs once with ``lib=dtorch`` and once with ``lib=torch``. The inputs are ``inputs`` as given (dtorch
    tensors go to torch as leaves with the same values, anything else as it is), or one leaf per shape in
    ``shapes`` (see ``make_inputs``); ``as_leaves`` makes each given tensor a fresh leaf, requiring grad when
    floating and ``grad``. ``params=(ours, theirs)`` adds further leaves (a module's parameters) to the
    gradient comparison, done with ``grad_rtol``/``grad_atol`` (default: ``rtol``/``atol``).
    ``check_indices=False`` compares only the dtype and shape of int64 outputs (ties); ``check_grad_fn`` also
    compares the outputs' ``grad_fn`` names. With ``errors``, torch raising is an outcome too: dtorch must raise
    an exception of the same type. Returns dtorch's output (None after an expected error).
    """
    torch = torch_or_skip()
    if inputs is None:
        inputs = make_inputs(shapes, make=make, low=low, high=high, dtype=dtype, device=device, requires_grad=grad,
                             seed=seed)
    ours = [_as_leaf(x, grad) if as_leaves else x for x in inputs]
    theirs = [to_torch(x) if isinstance(x, dtorch.Tensor) else x for x in ours]
    if torch_fn is None:
        run_ours, run_theirs = (lambda: dtorch_fn(dtorch, *ours)), (lambda: dtorch_fn(torch, *theirs))
    else:
        run_ours, run_theirs = (lambda: dtorch_fn(*ours)), (lambda: torch_fn(*theirs))
    try:
        t_out = run_theirs()
    except Exception as e:
        if not errors:
            raise
        with pytest.raises(Exception) as ours_raised:
            run_ours()
        assert type(ours_raised.value) is type(e), f"{ours_raised.value!r} where torch raises {e!r}"
        return None
    out = run_ours()
    outs, t_outs = _as_tuple(out), _as_tuple(t_out)
    assert len(outs) == len(t_outs), f"{len(outs)} outputs != {len(t_outs)}"
    for a, b in zip(outs, t_outs):
        _check_output(torch, a, b, rtol, atol, check_dtype, check_indices)
        if check_grad_fn and isinstance(b, torch.Tensor) and b.grad_fn is not None:
            assert a.grad_fn is not None and a.grad_fn.name() == b.grad_fn.name()
    if grad:
        leaves = [x for x in ours if isinstance(x, dtorch.Tensor)]
        t_leaves = [x for x in theirs if isinstance(x, torch.Tensor)]
        if params is not None:
            leaves, t_leaves = leaves + list(params[0]), t_leaves + list(params[1])
        tol = {"rtol": rtol if grad_rtol is None else grad_rtol, "atol": atol if grad_atol is None else grad_atol}
        _check_backward(torch, outs, t_outs, leaves, t_leaves, tol, gradgrad, seed)
    return out


def _as_leaf(x, grad: bool):
    return x.detach().requires_grad_(grad and x.is_floating_point()) if isinstance(x, dtorch.Tensor) else x


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _check_output(torch, a, b, rtol, atol, check_dtype, check_indices) -> None:
    if not isinstance(b, torch.Tensor):
        assert not isinstance(a, dtorch.Tensor) and a == b, f"{a!r} != {b!r}"
        return
    assert isinstance(a, dtorch.Tensor), f"{type(a).__name__} where torch gives a Tensor"
    assert a.requires_grad == b.requires_grad, f"requires_grad {a.requires_grad} != {b.requires_grad}"
    if not check_indices and b.dtype == torch.int64 and b.ndim:
        assert a.dtype == dtorch.int64 and a.shape == tuple(b.shape)
        return
    assert_close(a, b, rtol=rtol, atol=atol, check_dtype=check_dtype)


def _check_backward(torch, outs, t_outs, leaves, t_leaves, tol, gradgrad, seed) -> None:
    """The same random output gradients through both graphs: the leaves' gradients (and second derivatives)."""
    diff = [k for k, x in enumerate(leaves) if x.requires_grad]
    pairs = [(a, b) for a, b in zip(outs, t_outs) if isinstance(b, torch.Tensor) and b.requires_grad]
    if not diff or not pairs:
        return
    xs, t_xs = [leaves[k] for k in diff], [t_leaves[k] for k in diff]
    rng = np.random.default_rng(seed + 1)
    gos = [rng.standard_normal(tuple(b.shape)) for _, b in pairs]
    go = [dtorch.tensor(g, dtype=a.dtype, device=a.device) for (a, _), g in zip(pairs, gos)]
    t_go = [torch.tensor(g, dtype=b.dtype) for (_, b), g in zip(pairs, gos)]
    grads = dtorch.autograd.grad([a for a, _ in pairs], xs, go, allow_unused=True, create_graph=gradgrad)
    t_grads = torch.autograd.grad([b for _, b in pairs], t_xs, t_go, allow_unused=True, create_graph=gradgrad)
    for k, (g, tg) in enumerate(zip(grads, t_grads)):
        if tg is None:
            assert g is None, f"input {k}: a gradient where torch has none"
        else:
            assert g is not None, f"input {k}: no gradient where torch has one"
            assert_close(g, tg, **tol)
    if gradgrad:
        _check_second(torch, grads, t_grads, xs, t_xs, rng, tol)


def _check_second(torch, grads, t_grads, xs, t_xs, rng, tol) -> None:
    """d/dx of sum(v * dL/dx) for a random v: the second derivatives, an absent graph counting as zeros."""
    vs = [None if tg is None else rng.standard_normal(tuple(tg.shape)) for tg in t_grads]
    results = []
    for lib, gs, inputs in ((dtorch, grads, xs), (torch, t_grads, t_xs)):
        terms = [(g * lib.tensor(v, dtype=g.dtype, device=g.device)).sum() for g, v in zip(gs, vs)
                 if v is not None and g.requires_grad]
        second = lib.autograd.grad(sum(terms), inputs, allow_unused=True) if terms else [None] * len(inputs)
        results.append([lib.zeros_like(x) if s is None else lib.zeros_like(x) + s for x, s in zip(inputs, second)])
    for s, ts in zip(*results):
        assert_close(s, ts, **tol)


# ---- numerical float64 checks and errors -------------------------------------------------------
def check_grads(fn: Callable, *inputs, gradgrad: bool = True) -> None:
    """float64 gradcheck (and gradgradcheck) of ``fn`` at ``inputs``: finite differences, no torch needed."""
    assert dtorch.autograd.gradcheck(fn, inputs)
    if gradgrad:
        assert dtorch.autograd.gradgradcheck(fn, inputs)


def raises_like_torch(fn: Callable, tfn: Callable, *inputs, exc: type = RuntimeError) -> None:
    """Same exception type and the same (first line of the) message as torch."""
    torch_or_skip()
    with pytest.raises(exc) as ours:
        fn(*inputs)
    t_inputs = [to_torch(x) if isinstance(x, dtorch.Tensor) else x for x in inputs]
    with pytest.raises(exc) as theirs:
        tfn(*t_inputs)
    assert str(ours.value) == str(theirs.value).split("\n")[0]
