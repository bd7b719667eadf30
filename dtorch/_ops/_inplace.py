"""In-place ops: leaf checks, casts, and moving a tensor's history after an in-place write.

Without recording, an in-place op updates the array and bumps the version counter. With
recording it computes out of place and :func:`rebase` writes the result into the storage
and moves the history onto the tensor; on a view, the base's history becomes
:class:`CopySlices` and the base's other live views get a fresh ``grad_fn``.
"""
from __future__ import annotations

from .. import _dtype
from .._device import xp_of
from .._dispatch import ARRAY_NS, AUTOCAST, TENSOR_NS, OpDef, apply, device_mismatch, promoted
from ..autograd.grad_mode import STATE
from ..autograd.graph import Node, accumulator_of, grad_edge
from ..tensor import Tensor, _make
from ._helpers import scalar
from .view import _as_strided


def check_inplace_allowed(self: Tensor) -> None:
    if STATE.enabled:
        if self._rg and self.grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        base = self._base
        if base is not None and base._rg and base.grad_fn is None:
            raise RuntimeError(
                "a view of a leaf Variable that requires grad is being used in an in-place operation."
            )


def check_cast(result: _dtype.dtype, self: Tensor) -> None:
    own = _dtype._FROM_NP[self._data.dtype]
    if result._category > own._category:
        raise RuntimeError(
            f"result type {result.scalar_name} can't be cast to the desired output type {own.scalar_name}"
        )


def rebase(self: Tensor, result: Tensor) -> Tensor:
    """Write ``result`` into ``self``'s storage and make ``self`` carry result's history."""
    if AUTOCAST.tracer is not None:
        AUTOCAST.tracer.inplace(self, result)
    self._data[...] = result._data
    self._vc[0] += 1
    if result.grad_fn is not None:
        if self._base is not None:
            rebase_view(self, result)
        else:
            self.grad_fn = result.grad_fn
            self._output_nr = result._output_nr
            self._rg = True
            if self._views:
                refresh_views(self)  # its views now read the new values
    return self


def needs_record(*tensors) -> bool:
    if AUTOCAST.on and AUTOCAST.tracer is not None:
        return True  # a jit trace sees in-place ops as dispatched ops plus rebase
    if not STATE.enabled:
        return False
    for t in tensors:
        if isinstance(t, Tensor) and (t._rg or (t._base is not None and t._base._rg)):
            return True
    return False


def snapshot(self: Tensor) -> Tensor:
    """The pre-modification value of ``self`` with its graph edge, for ops that save their input."""
    t = _make(self._data.copy(), self._rg, self.grad_fn, self._output_nr)
    if AUTOCAST.tracer is not None:
        AUTOCAST.tracer.alias(t, self)
    if self.grad_fn is None and self._rg:
        t._acc = accumulator_of(self)
    return t


def inplace_binary(op: OpDef, self: Tensor, other, params: dict | None, fast) -> Tensor:
    """``self.op_(other)``; ``fast(a, b)`` updates the array ``a`` in place when nothing is recorded."""
    other = scalar(other)
    cast, rdt = promoted(self, other)
    check_cast(rdt, self)
    if not needs_record(self, other):
        b = other._data if isinstance(other, Tensor) else other
        if isinstance(other, Tensor) and type(b) is not type(self._data):
            raise device_mismatch(self, other, f"argument of {op.name}_")
        fast(self._data, b)
        self._vc[0] += 1
        return self
    check_inplace_allowed(self)
    src = snapshot(self) if 0 in op.save else self
    return rebase(self, apply(op, (src, other), params, cast))


def inplace_unary(op: OpDef, self: Tensor, params: dict | None = None) -> Tensor:
    if not needs_record(self):
        self._data[...] = op.array_call(self._data, **(params or {}))
        self._vc[0] += 1
        return self
    check_inplace_allowed(self)
    src = snapshot(self) if 0 in op.save else self
    return rebase(self, apply(op, (src,), params))


# ---- in-place writes into views ---------------------------------------------------------
class CopySlices(Node):
    """History of a base after an in-place op on one of its views (torch's CopySlices)."""

    __slots__ = ("_geo", "_fn", "_in_meta")

    def __init__(self, base_edge, base_meta, geo: dict, fn) -> None:
        Node.__init__(self)
        self._geo = geo
        self._fn = fn
        self.next_functions = (base_edge,) + tuple(fn.next_functions[1:])
        self._in_meta = [base_meta] + list(fn._in_meta[1:])

    def _apply(self, grads, create_graph: bool):
        ns = TENSOR_NS if create_graph else ARRAY_NS
        g = grads[0]
        # the geometry is relative to a contiguous base: an incoming gradient may be a broadcast
        g = g.contiguous() if create_graph else xp_of(g).ascontiguousarray(g)
        region = ns.as_strided(g, **self._geo)
        if not create_graph:
            region = region.copy()
        res = self._fn._apply([region], create_graph)
        gv = res[0]
        if gv is None:
            gv = region * 0
        elif gv.shape != region.shape:
            gv = ns.expand(gv, shape=region.shape) if create_graph else xp_of(gv).broadcast_to(gv, region.shape)
        return (ns.as_strided_scatter(g, gv, **self._geo),) + tuple(res[1:])

    def _release(self) -> None:
        self._fn._release()


def _view_geometry(view_t: Tensor, base: Tensor) -> dict:
    """as_strided arguments (in elements) that give ``view_t`` from its contiguous ``base``."""
    v = view_t._data
    isz = v.itemsize
    offset = (view_t.data_ptr() - base.data_ptr()) // isz
    return {"size": v.shape, "stride": tuple(s // isz for s in v.strides), "storage_offset": offset}


def _regrow(view_t: Tensor, base: Tensor, geo: dict) -> None:
    """Make ``view_t``'s history an as_strided view of ``base``'s current history."""
    as_view = apply(_as_strided, (base,), geo)
    view_t.grad_fn = as_view.grad_fn
    view_t._output_nr = 0
    view_t._rg = True


def refresh_views(base: Tensor, skip: Tensor | None = None) -> None:
    """After an in-place op rewrote ``base``'s history, rebuild the grad_fn of its live views.

    torch regenerates a view's grad_fn lazily when the version counter moved; dtorch does it
    eagerly, for the differentiable views the base registered (``tensor._make_view``).
    """
    refs = base._views
    if not refs or not base._data.flags.c_contiguous:
        return
    alive = []
    for ref in list(refs):  # _regrow registers new (temporary) views: iterate over a copy
        v = ref()
        if v is None or v._base is not base:
            continue
        alive.append(ref)
        if v is not skip:
            _regrow(v, base, _view_geometry(v, base))
    base._views = alive


def rebase_view(view_t: Tensor, result: Tensor) -> None:
    """After ``view_t`` was overwritten in place by ``result`` (recorded), rebase its base's history."""
    base = view_t._base
    b = base._data
    if not b.flags.c_contiguous:
        raise RuntimeError("in-place autograd on a view of a non-contiguous tensor is not supported")
    geo = _view_geometry(view_t, base)
    node = CopySlices(grad_edge(base), (b.shape, b.dtype), geo, result.grad_fn)
    base.grad_fn = node
    base._output_nr = 0
    base._rg = True
    _regrow(view_t, base, geo)  # the view now reads from the new base
    refresh_views(base, skip=view_t)  # and so do its sibling views
