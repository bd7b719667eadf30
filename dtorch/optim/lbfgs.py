"""L-BFGS with torch's two-loop recursion, optional strong-Wolfe line search, and state layout.

The iteration works on flat arrays (the concatenated parameters and gradients); scalars that torch
keeps as 0-d tensors (``ys``, ``ro``, ``H_diag``, ``t``...) are 0-d arrays/numpy scalars of the
parameters' dtype here, so the rounding follows torch's, and they are stored in ``state`` as
Tensors between steps, under torch's keys.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from .._device import xp_of
from ..autograd.grad_mode import enable_grad, no_grad
from ..tensor import Tensor, _make
from ._flat_optimizer import to_scalar
from ._kernel_optimizer import check_lr
from .optimizer import Optimizer

__all__ = ["LBFGS"]

_ARRAY_KEYS = ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "al")


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clipped to ``bounds``."""
    xmin_bound, xmax_bound = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _bracket(obj_func, x, t, d, f, g, gtd, c1, c2, max_ls):
    """Phase one of the strong-Wolfe search: grow the step until an interval brackets a Wolfe point."""
    f_new, g_new = obj_func(x, t, d)
    evals, ls_iter = 1, 0
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            return [t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()], [gtd_prev, gtd_new], False, ls_iter, evals
        if abs(gtd_new) <= -c2 * gtd:
            return [t], [f_new], [g_new], None, True, ls_iter, evals
        if gtd_new >= 0:
            return [t_prev, t], [f_prev, f_new], [g_prev, g_new.copy()], [gtd_prev, gtd_new], False, ls_iter, evals
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    return [0, t], [f, f_new], [g, g_new], None, False, ls_iter, evals


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """torch's strong-Wolfe line search: returns (f_new, g_new, t, function evaluations)."""
    d_norm = abs(d).max()
    g = g.copy()
    bracket, bracket_f, bracket_g, bracket_gtd, done, ls_iter, evals = _bracket(
        obj_func, x, t, d, f, g, gtd, c1, c2, max_ls)
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], evals


def _to_state(v):
    """An internal array/scalar as a state value (Tensors, as torch's state holds)."""
    if isinstance(v, list):
        return [_to_state(x) for x in v]
    if isinstance(v, np.generic):
        return _make(np.asarray(v))
    if v is None or isinstance(v, (bool, int, float)):
        return v
    return _make(v)


def _from_state(v):
    if isinstance(v, list):
        return [_from_state(x) for x in v]
    if isinstance(v, Tensor):
        return v._data[()] if v._data.ndim == 0 and type(v._data) is np.ndarray else v._data
    return v


class LBFGS(Optimizer):
    """Limited-memory BFGS (one parameter group); ``step(closure)`` re-evaluates the loss as it needs."""

    def __init__(self, params: Iterable, lr: float | Tensor = 1, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None) -> None:
        check_lr(lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        self._numel_cache = None

    def _numel(self) -> int:
        if self._numel_cache is None:
            self._numel_cache = sum(p.numel() for p in self._params)
        return self._numel_cache

    def _gather_flat_grad(self):
        xp = xp_of(self._params[0]._data)
        views = [xp.zeros(p._data.size, p._data.dtype) if p._grad is None else p._grad._data.reshape(-1)
                 for p in self._params]
        return xp.concatenate(views)

    def _add_grad(self, step_size, update) -> None:
        offset = 0
        for p in self._params:
            n = p._data.size
            p._data += step_size * update[offset:offset + n].reshape(p._data.shape)
            p._vc[0] += 1
            offset += n

    def _clone_param(self) -> list:
        return [p._data.copy() for p in self._params]

    def _set_param(self, params_data: list) -> None:
        for p, pdata in zip(self._params, params_data):
            p._data[...] = pdata
            p._vc[0] += 1

    def _directional_evaluate(self, closure: Callable, x: list, t, d):
        self._add_grad(t, d)
        with enable_grad():
            loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def _direction(self, s: dict, flat_grad, history_size: int):
        """The search direction: steepest descent first, then the two-loop recursion over the history."""
        if s["n_iter"] == 1:
            s.update(d=-flat_grad, old_dirs=[], old_stps=[], ro=[], H_diag=1)
            return
        y = flat_grad - s["prev_flat_grad"]
        step = s["d"] * s["t"]
        ys = y.dot(step)
        if ys > 1e-10:
            if len(s["old_dirs"]) == history_size:
                for key in ("old_dirs", "old_stps", "ro"):
                    s[key].pop(0)
            s["old_dirs"].append(y)
            s["old_stps"].append(step)
            s["ro"].append(1.0 / ys)
            s["H_diag"] = ys / y.dot(y)
        old_dirs, old_stps, ro = s["old_dirs"], s["old_stps"], s["ro"]
        al = s.setdefault("al", [None] * history_size)
        q = -flat_grad
        for i in range(len(old_dirs) - 1, -1, -1):
            al[i] = old_stps[i].dot(q) * ro[i]
            q += -al[i] * old_dirs[i]
        r = q * s["H_diag"]
        for i in range(len(old_dirs)):
            be_i = old_dirs[i].dot(r) * ro[i]
            r += (al[i] - be_i) * old_stps[i]
        s["d"] = r

    def step(self, closure: Callable):
        """Run up to ``max_iter`` iterations; ``closure()`` clears the gradients, computes and returns the loss."""
        with no_grad():
            return self._step(closure)

    def _step(self, closure: Callable):
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if abs(flat_grad).max() <= group["tolerance_grad"]:
            return orig_loss
        s = {k: _from_state(state[k]) for k in _ARRAY_KEYS if k in state}
        s["prev_loss"] = state.get("prev_loss")
        s["n_iter"] = state["n_iter"]
        self._iterate(closure, group, s, loss, flat_grad)
        state["func_evals"] += s.pop("evals")
        state["n_iter"] = s.pop("n_iter")
        for key in ("al", "d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss"):
            if key in s:
                state[key] = _to_state(s[key])
        return orig_loss

    def _iterate(self, closure: Callable, group: dict, s: dict, loss: float, flat_grad) -> None:
        lr = to_scalar(group["lr"])
        max_iter, max_eval, tol_change = group["max_iter"], group["max_eval"], group["tolerance_change"]
        current_evals, n_iter, s["evals"] = 1, 0, 0
        while n_iter < max_iter:
            n_iter += 1
            s["n_iter"] += 1
            self._direction(s, flat_grad, group["history_size"])
            d = s["d"]
            s["prev_flat_grad"] = flat_grad.copy()
            s["prev_loss"] = loss
            t = min(1.0, 1.0 / abs(flat_grad).sum()) * lr if s["n_iter"] == 1 else lr
            gtd = flat_grad.dot(d)
            if gtd > -tol_change:
                s["t"] = t
                break
            ls_evals = 0
            opt_cond = False
            if group["line_search_fn"] is not None:
                if group["line_search_fn"] != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = self._clone_param()
                loss, flat_grad, t, ls_evals = _strong_wolfe(
                    lambda x, t, d: self._directional_evaluate(closure, x, t, d), x_init, t, d, loss, flat_grad,
                    gtd, max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = abs(flat_grad).max() <= group["tolerance_grad"]
            else:
                self._add_grad(t, d)
                if n_iter != max_iter:
                    with enable_grad():
                        loss = float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = abs(flat_grad).max() <= group["tolerance_grad"]
                    ls_evals = 1
            s["t"] = t
            current_evals += ls_evals
            s["evals"] += ls_evals
            if (n_iter == max_iter or current_evals >= max_eval or opt_cond
                    or abs(d * t).max() <= tol_change or abs(loss - s["prev_loss"]) < tol_change):
                break
