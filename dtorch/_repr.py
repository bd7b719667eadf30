"""A repr like torch's: ``tensor([1.5000, 2.0000], requires_grad=True)``."""
from __future__ import annotations

import numpy as np

from . import _dtype

_DEFAULT_SHOWN = ("int64", "bool")


def _float_formatter(values: np.ndarray):
    finite = values[np.isfinite(values)]
    nonzero = np.abs(finite[finite != 0]) if finite.size else finite
    if finite.size and np.all(finite == np.round(finite)):
        if nonzero.size and nonzero.max() >= 1e8:
            return lambda v: f"{v:.4e}"
        return lambda v: f"{v:.0f}." if np.isfinite(v) else f"{v}"
    if nonzero.size and (nonzero.max() / nonzero.min() > 1000 or nonzero.max() >= 1e8 or nonzero.min() < 1e-4):
        return lambda v: f"{v:.4e}"
    return lambda v: f"{v:.4f}"


def tensor_repr(t) -> str:
    a = t._data
    if type(a) is not np.ndarray:
        a = a.get()
    suffix = []
    if t.is_cuda:
        suffix.append(f"device='{t.device}'")
    dt = _dtype._FROM_NP[a.dtype]
    prefix = "tensor("
    if a.size == 0 and a.ndim == 1:
        body = "[]"
    elif a.dtype.kind == "f":
        summarize = a.size > 1000
        shown = a if not summarize else a  # numpy summarises below
        fmt = _float_formatter(shown.astype(np.float64).ravel())
        width = max((len(fmt(v)) for v in np.asarray(shown, dtype=np.float64).ravel()[:2000]), default=1)
        body = np.array2string(a.astype(np.float64), separator=", ", prefix=prefix, threshold=1000, edgeitems=3,
                               max_line_width=80, formatter={"float_kind": lambda v: fmt(v).rjust(width)})
    elif a.dtype.kind == "b":
        body = np.array2string(a, separator=", ", prefix=prefix, threshold=1000, edgeitems=3, max_line_width=80,
                               formatter={"bool": lambda v: "True" if v else "False"})
    else:
        body = np.array2string(a, separator=", ", prefix=prefix, threshold=1000, edgeitems=3, max_line_width=80)
    if a.size == 0 and a.ndim != 1:
        suffix.append(f"size={tuple(a.shape)}")
    if dt is not _dtype.get_default_dtype() and dt.name not in _DEFAULT_SHOWN:
        suffix.append(f"dtype={dt!r}")
    elif a.size == 0 and dt.name == "int64":
        suffix.append(f"dtype={dt!r}")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        suffix.append("requires_grad=True")
    if suffix:
        body += ", " + ", ".join(suffix)
    return prefix + body + ")"
