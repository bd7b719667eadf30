"""gradcheck / gradgradcheck: analytic gradients against central finite differences (float64)."""
from __future__ import annotations

import warnings

import numpy as np

from .._device import move_array
from ..random import generator_for
from ..tensor import Tensor, _make
from ._api import grad
from .grad_mode import enable_grad, no_grad


class GradcheckError(RuntimeError):
    pass


def _outputs(fn, inputs) -> tuple:
    out = fn(*inputs)
    return (out,) if isinstance(out, Tensor) else tuple(o for o in out if isinstance(o, Tensor))


def _host(a):
    return a if type(a) is np.ndarray else a.get()


def _size(a) -> int:
    """Real degrees of freedom: a complex element counts twice (real part, then imaginary part)."""
    return a.size * 2 if a.dtype.kind == "c" else a.size


def _flat(a) -> np.ndarray:
    a = _host(a).ravel()
    if a.dtype.kind == "c":
        return np.concatenate((a.real, a.imag)).astype(np.float64)
    return a.astype(np.float64)


def _numerical_jacobian(fn, inputs, i: int, eps: float) -> list[np.ndarray]:
    """d(outputs)/d(inputs[i]) by central differences; one (n_in, n_out_k) matrix per output."""
    x = inputs[i]
    a = x._data  # perturbed in place, element by element in row-major order (any strides)
    steps = (eps, eps * 1j) if a.dtype.kind == "c" else (eps,)
    with no_grad():
        base = _outputs(fn, inputs)
        jac = [np.zeros((_size(a), _size(o._data))) for o in base]
        for p, step in enumerate(steps):
            for k, idx in enumerate(np.ndindex(*a.shape)):
                orig = a[idx].item()
                a[idx] = orig + step
                plus = [_flat(o._data) for o in _outputs(fn, inputs)]
                a[idx] = orig - step
                minus = [_flat(o._data) for o in _outputs(fn, inputs)]
                a[idx] = orig
                for j in range(len(base)):
                    jac[j][p * a.size + k] = (plus[j] - minus[j]) / (2 * eps)
    return jac


def _analytic_jacobian(fn, inputs, diff_idx: list[int]) -> tuple[list, list]:
    outs = _outputs(fn, inputs)
    diff_inputs = [inputs[i] for i in diff_idx]
    jac = {(i, j): np.zeros((_size(inputs[i]._data), _size(o._data))) for i in diff_idx for j, o in enumerate(outs)}
    for j, o in enumerate(outs):
        if not o._rg or o._data.dtype.kind not in "fVc":
            continue
        n = o._data.size
        for m in range(_size(o._data)):  # a complex output's imaginary parts: a seed of 1j (torch's convention)
            g = np.zeros(n, o._data.dtype)
            g[m % n] = 1 if m < n else 1j
            g = g.reshape(o._data.shape)
            gt = _make(g if type(o._data) is np.ndarray else type(o._data)(g.shape, g.dtype) * 0 + g)
            grads = grad(o, diff_inputs, gt, retain_graph=True, allow_unused=True)
            for i, gr in zip(diff_idx, grads):
                if gr is not None:
                    jac[(i, j)][:, m] = _flat(gr._data)
    return outs, jac


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0, check_undefined_grad: bool = True,
              fast_mode: bool = False, **_ignored) -> bool:
    """Check ``func``'s gradients w.r.t. the float64 inputs that require grad."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    diff_idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    for i in diff_idx:
        if inputs[i].dtype.name not in ("float64", "complex128"):
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point. "
                          "This check will likely fail if all the inputs are not of double precision floating point.",
                          stacklevel=2)
    outs, analytic = _analytic_jacobian(func, inputs, diff_idx)
    for i in diff_idx:
        numeric = _numerical_jacobian(func, inputs, i, eps)
        for j in range(len(outs)):
            a, n = analytic[(i, j)], numeric[j]
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                msg = (f"Jacobian mismatch for output {j} with respect to input {i},\n"
                       f"numerical:{n}\nanalytical:{a}\n")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True, **_ignored) -> bool:
    """Check second derivatives: gradcheck of (inputs, grad_outputs) -> grad(func(inputs), inputs, grad_outputs)."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    outs = _outputs(func, inputs)
    outs = tuple(o for o in outs if o.requires_grad)
    if grad_outputs is None:
        grad_outputs = tuple(_randn_like(o).requires_grad_() for o in outs)
    else:
        grad_outputs = (grad_outputs,) if isinstance(grad_outputs, Tensor) else tuple(grad_outputs)
    n_in = len(inputs)
    diff_idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]

    def first_grads(*args):
        ins, gos = args[:n_in], args[n_in:]
        with enable_grad():  # also under the finite differences' no_grad
            o = tuple(t for t in _outputs(func, ins) if t.requires_grad)
            gs = grad(o, [ins[i] for i in diff_idx], gos, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_grads, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)


def _randn_like(t: Tensor) -> Tensor:
    """Standard-normal values shaped like ``t`` from its device's generator (drawn on the host)."""
    draw = generator_for(t.device, None)._np.standard_normal(t._data.shape).astype(t._data.dtype)
    return _make(move_array(draw, t.device))
