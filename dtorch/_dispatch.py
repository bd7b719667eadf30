"""The op registry: the one place every op goes through.

An op is registered once with :func:`defop`: its forward kernel, written against the
array module of its inputs (numpy or cupy), and its backward formula, side by side.
Per-device kernels override the default with :meth:`OpDef.register_kernel`.
Backward formulas take a namespace ``ns`` as first argument: ``ARRAY_NS`` (the
registered kernels, on raw arrays) or ``TENSOR_NS`` (the public, recorded ops) —
so the same formula runs fast or builds a differentiable graph (create_graph=True).
"""
from __future__ import annotations

import numbers
from types import SimpleNamespace
from typing import Callable

import numpy as np

from . import _dtype
from ._device import device_of, xp_of
from .autograd.grad_mode import STATE
from .autograd.graph import FREED_MSG, NO_EDGE, Node, grad_edge
from .autograd import anomaly_mode
from .tensor import Tensor, _make, _make_view

REGISTRY: dict[str, "OpDef"] = {}


class _Autocast:
    """Interception state read by every op: ``on`` is set while autocast or a tracer is active;
    ``dtypes`` maps device type -> numpy dtype (autocast); ``tracer`` is the active jit tracer,
    called as ``tracer(op, inputs, params, cast)`` in place of the op (dtorch/jit/_tracer.py)."""

    __slots__ = ("on", "dtypes", "tracer")

    def __init__(self) -> None:
        self.on = False
        self.dtypes: dict = {}
        self.tracer = None

    def refresh(self) -> None:
        self.on = self.tracer is not None or any(v is not None for v in self.dtypes.values())


AUTOCAST = _Autocast()
ARRAY_NS = SimpleNamespace()
TENSOR_NS = SimpleNamespace()
_ndarray = np.ndarray


class OpNode(Node):
    """Graph node of a registered op; one subclass per op (``MulBackward0`` ...)."""

    __slots__ = ("_saved", "_saved_ver", "_out_vc", "_in_meta", "_args", "_outs_meta")
    _extra = None  # what an ``extra=True`` kernel returned beside its output (set only then)
    _bw: Callable | None = None
    _save_out = -1  # index in _saved of the saved output, -1 if none
    n_outputs = 1
    # A formula written as g * f'(z) gives torch's complex gradient as conj(bw(conj(g))); ops whose formula
    # already follows torch's convention (dtorch/_ops/complex.py, dtorch/fft.py) set this False.
    _conj_wrap = True

    def _apply(self, grads, create_graph: bool):
        saved = self._saved
        if saved is None:
            raise RuntimeError(FREED_MSG)
        vals = _unpack(self, saved, create_graph) if saved else ()
        g = grads[0] if self.n_outputs == 1 else grads
        if self._conj_wrap and (g.dtype.kind == "c" if type(g) is _ndarray else _is_complex(g)):
            r = self._bw(TENSOR_NS if create_graph else ARRAY_NS, self, _conj(g), *vals)
            return _conj(r)
        if create_graph:
            return self._bw(TENSOR_NS, self, g, *vals)
        return self._bw(ARRAY_NS, self, g, *vals)

    def _release(self) -> None:
        if self._saved:
            self._saved = None

    def _out_meta(self, i: int):
        return self._outs_meta[i]

    @property
    def needs_input_grad(self) -> tuple:
        return tuple(n is not None for n, _ in self.next_functions)

    @property
    def saved_tensors(self) -> tuple:
        if self._saved is None:
            raise RuntimeError(FREED_MSG)
        return tuple(v for v in _unpack(self, self._saved, True) if isinstance(v, Tensor))


def _is_complex(g) -> bool:
    """Whether a gradient (array, Tensor, or a list of them / None) is complex."""
    if type(g) is _ndarray:
        return g.dtype.kind == "c"
    if isinstance(g, (list, tuple)):
        return any(x is not None and _is_complex(x) for x in g)
    return g.is_complex() if isinstance(g, Tensor) else g.dtype.kind == "c"


def _conj(g):
    if isinstance(g, (list, tuple)):
        return tuple(None if x is None else x.conj() for x in g)
    return g.conj()


def _unpack(node: OpNode, saved: tuple, as_tensors: bool) -> tuple:
    vers = node._saved_ver
    out_idx = node._save_out
    out = []
    for i, v in enumerate(saved):
        if i == out_idx:
            vc = node._out_vc
            if vc[0] != vers[i]:
                _raise_modified(node, v, vc[0], vers[i], True)
            if as_tensors:
                t = _make(v, True, node)
                t._vc = vc
                v = t
        elif isinstance(v, Tensor):
            if v._vc[0] != vers[i]:
                _raise_modified(node, v._data, v._vc[0], vers[i], False)
            if not as_tensors:
                v = v._data
        out.append(v)
    return out


def _raise_modified(node: OpNode, arr, now: int, expected: int, is_output: bool):
    which = f"output 0 of {node.name()}" if is_output else f"an input of {node.name()}"
    raise RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{_type_name_of(arr)} {list(arr.shape)}], which is {which}, is at version "
        f"{now}; expected version {expected} instead. Hint: the operation that failed was "
        f"{node.name()}; replace the in-place operation by an out-of-place one."
    )


def _type_name(t: Tensor) -> str:
    return _type_name_of(t._data)


def _type_name_of(arr) -> str:
    prefix = "dtorch." if type(arr) is _ndarray else "dtorch.cuda."
    return f"{prefix}{_dtype._FROM_NP[arr.dtype].scalar_name}Tensor"


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


class OpDef:
    """A registered op: forward kernels per device and the backward formula."""

    __slots__ = ("name", "default", "cuda_kernel", "cpu_kernel", "node_cls", "save", "save_out",
                 "extra", "n_out", "view", "array_call", "simple", "saves", "amp")

    def __init__(self, name: str, fwd: Callable, save, save_out: bool, extra: bool, n_out: int, view: bool):
        self.name = name
        self.default = self.cpu_kernel = self.cuda_kernel = self.array_call = fwd
        self.node_cls = None
        self.save = tuple(save)
        self.save_out = save_out
        self.extra = extra
        self.n_out = n_out
        self.view = view
        self.simple = False  # differentiable, one output, no extra, not a view: the fast paths
        self.saves = bool(self.save) or save_out
        self.amp: dict = {}  # autocast policy per device type ("low", "fp32", "promote"), see amp/policy.py

    def backward(self, fn: Callable, node_name: str | None = None) -> Callable:
        """Register the backward formula ``fn(ns, ctx, grad, *saved) -> grads per input``."""
        attrs = {"__slots__": (), "_bw": staticmethod(fn), "n_outputs": self.n_out,
                 "_save_out": len(self.save) if self.save_out else -1}
        self.node_cls = type(node_name or _camel(self.name) + "Backward0", (OpNode,), attrs)
        self.simple = self.n_out == 1 and not self.extra and not self.view
        return fn

    def register_kernel(self, device_type: str, fn: Callable) -> Callable:
        """Override the default kernel on one device type ('cpu' or 'cuda')."""
        if device_type == "cpu":
            self.cpu_kernel = fn
        elif device_type == "cuda":
            self.cuda_kernel = fn
        else:
            raise ValueError(f"unknown device type {device_type!r}")
        cpu, cuda = self.cpu_kernel, self.cuda_kernel

        def array_call(*arrays, **params):
            return (cpu if type(arrays[0]) is _ndarray else cuda)(*arrays, **params)

        self.array_call = array_call
        setattr(ARRAY_NS, self.name, array_call)
        return fn

    def __call__(self, *inputs, **params):
        return apply(self, inputs, params)

    def __repr__(self) -> str:
        return f"<op {self.name}>"


def defop(name: str, *, save=(), save_out: bool = False, extra: bool = False, n_out: int = 1,
          view: bool = False) -> Callable[[Callable], OpDef]:
    """Register a forward kernel ``fwd(*arrays, **params)``.

    save: indices of inputs the backward needs; save_out: it needs the output too;
    extra: the kernel returns ``(out, extra)`` and ``extra`` (non-differentiable, e.g.
    argmax indices) is kept on the node as ``ctx._extra``; view: the output shares the
    first input's storage.
    """

    def deco(fwd: Callable) -> OpDef:
        if name in REGISTRY:
            raise ValueError(f"op {name!r} registered twice")
        op = OpDef(name, fwd, save, save_out, extra, n_out, view)
        REGISTRY[name] = op
        setattr(ARRAY_NS, name, fwd)
        if not hasattr(TENSOR_NS, name):
            setattr(TENSOR_NS, name, op)
        return op

    return deco


def tensor_fn(name: str, fn: Callable) -> Callable:
    """Make ``fn`` (the public function on Tensors) the TENSOR_NS entry for op ``name``."""
    setattr(TENSOR_NS, name, fn)
    return fn


def device_mismatch(a, b, what: str):
    return RuntimeError(
        f"Expected all tensors to be on the same device, but found at least two devices, "
        f"{device_of(a._data)} and {device_of(b._data)}! (when checking arguments for {what})"
    )


def apply(op: OpDef, inputs: tuple, params: dict | None = None, cast=None):
    """Run ``op`` on ``inputs`` (Tensors or Python scalars) and record it when needed.

    cast: a numpy dtype all tensor inputs are converted to first (type promotion); the
    node remembers the original dtypes so gradients come back in them.
    """
    if AUTOCAST.on and (op.amp or AUTOCAST.tracer is not None):
        return _autocast_apply(op, inputs, params, cast)
    return _apply(op, inputs, params, cast)


def _apply(op: OpDef, inputs: tuple, params: dict | None, cast):
    arrays = []
    first = None
    needs_grad = False
    for t in inputs:
        if isinstance(t, Tensor):
            a = t._data
            if first is None:
                first = t
            elif type(a) is not type(first._data) or (type(a) is not _ndarray and a.device != first._data.device):
                raise device_mismatch(first, t, f"argument of {op.name}")
            if t._rg:
                needs_grad = True
            if cast is not None and a.dtype != cast:
                a = a.astype(cast)
            arrays.append(a)
        else:
            arrays.append(t)
    kern = op.cpu_kernel if type(first._data) is _ndarray else op.cuda_kernel
    out = kern(*arrays, **params) if params else kern(*arrays)
    return finish(op, inputs, out, params, needs_grad, first)


def apply_same(op: OpDef, a: Tensor, b: Tensor, params: dict | None = None):
    """Fast path of :func:`apply` for two tensors of one dtype on one device."""
    if AUTOCAST.on and (op.amp or AUTOCAST.tracer is not None):
        return _autocast_apply(op, (a, b), params, None)
    da = a._data
    if type(da) is _ndarray:
        out = op.cpu_kernel(da, b._data, **params) if params else op.cpu_kernel(da, b._data)
        if type(out) is not _ndarray:
            out = np.asarray(out)
    else:
        db = b._data
        if type(db) is _ndarray or da.device != db.device:
            raise device_mismatch(a, b, f"argument of {op.name}")
        out = op.cuda_kernel(da, db, **params) if params else op.cuda_kernel(da, db)
    if op.simple:
        if (a._rg or b._rg) and STATE.enabled:
            db = b._data
            return _record(op, (a, b), (grad_edge(a), grad_edge(b)), ((da.shape, da.dtype), (db.shape, db.dtype)),
                           out, params, a)
        return _make(out)
    return finish(op, (a, b), out, params, a._rg or b._rg, a)


def apply_scalar(op: OpDef, a: Tensor, s, params: dict | None = None):
    """Fast path of :func:`apply` for ``tensor op python_scalar`` needing no promotion."""
    if AUTOCAST.on and (op.amp or AUTOCAST.tracer is not None):
        return _autocast_apply(op, (a, s), params, None)
    da = a._data
    kern = op.cpu_kernel if type(da) is _ndarray else op.cuda_kernel
    out = kern(da, s, **params) if params else kern(da, s)
    if type(out) is not type(da):
        out = np.asarray(out)
    if op.simple:
        if a._rg and STATE.enabled:
            return _record(op, (a, s), (grad_edge(a), NO_EDGE), ((da.shape, da.dtype), None), out, params, a)
        return _make(out)
    return finish(op, (a, s), out, params, a._rg, a)


def apply_unary(op: OpDef, a: Tensor, params: dict | None = None):
    """Fast path of :func:`apply` for one tensor input."""
    if AUTOCAST.on and (op.amp or AUTOCAST.tracer is not None):
        return _autocast_apply(op, (a,), params, None)
    da = a._data
    if type(da) is _ndarray:
        out = op.cpu_kernel(da, **params) if params else op.cpu_kernel(da)
        if op.n_out == 1 and not op.extra and type(out) is not _ndarray:
            out = np.asarray(out)
    else:
        out = op.cuda_kernel(da, **params) if params else op.cuda_kernel(da)
    if op.extra or op.n_out != 1:
        return finish(op, (a,), out, params, a._rg, a)
    if a._rg and STATE.enabled and op.node_cls is not None:
        return _record(op, (a,), (grad_edge(a),), ((da.shape, da.dtype),), out, params, a)
    if op.view:
        return _make_view(out, a)
    return _make(out)


def _autocast_apply(op: OpDef, inputs: tuple, params: dict | None, cast):
    """Cast the floating inputs (not float64, as torch) by the op's autocast policy, then run it."""
    if AUTOCAST.tracer is not None:
        return AUTOCAST.tracer(op, inputs, params, cast)
    first = next(t for t in inputs if isinstance(t, Tensor))
    device_type = "cpu" if type(first._data) is _ndarray else "cuda"
    kind = op.amp.get(device_type)
    low = AUTOCAST.dtypes.get(device_type)
    if kind is None or low is None:
        return _apply(op, inputs, params, cast)
    eligible = [isinstance(t, Tensor) and t._data.dtype.kind in "fV" and t._data.dtype != np.float64 for t in inputs]
    if kind == "low":
        target = np.dtype(low)
    elif kind == "fp32":
        target = np.dtype(np.float32)
    else:  # promote: the widest floating type among the inputs
        target = max((t._data.dtype for t, e in zip(inputs, eligible) if e), key=lambda d: d.itemsize,
                     default=None)
        if target is None:
            return _apply(op, inputs, params, cast)
    to_copy = REGISTRY["_to_copy"]
    cast_inputs = tuple(_apply(to_copy, (t,), {"dtype": target}, None) if e and t._data.dtype != target else t
                        for t, e in zip(inputs, eligible))
    return _apply(op, cast_inputs, params, None if kind != "promote" else cast)


def _edges_and_meta(inputs: tuple) -> tuple:
    """(graph edge per input, (shape, dtype) per tensor input or None per scalar)."""
    edges = []
    meta = []
    for t in inputs:
        if isinstance(t, Tensor):
            d = t._data
            meta.append((d.shape, d.dtype))
            edges.append(grad_edge(t))
        else:
            meta.append(None)
            edges.append(NO_EDGE)
    return tuple(edges), meta


def _record(op: OpDef, inputs: tuple, edges: tuple, meta, out, params, first: Tensor, extra=None):
    """Build ``op``'s node (edges, input metadata, params, saved values) and wrap its outputs in it."""
    node = op.node_cls()
    node.next_functions = edges
    node._in_meta = meta
    node._args = params
    if extra is not None:
        node._extra = extra
    if anomaly_mode._enabled[0]:
        anomaly_mode.record(node)
    if op.simple:
        res = _make(out, True, node)
    elif op.n_out == 1:
        res = _make_view(out, first, True, node) if op.view else _make(out, True, node)
    else:
        node._outs_meta = [(o.shape, o.dtype, xp_of(o)) for o in out]
        _save(op, node, inputs, None)
        return tuple(_make(o, True, node, i) for i, o in enumerate(out))
    if op.saves:
        _save(op, node, inputs, res)
    else:
        node._saved = ()
    return res


def finish(op: OpDef, inputs: tuple, out, params, needs_grad: bool, first: Tensor):
    """Wrap a kernel's result and, when needed, record the node (general path)."""
    extra = None
    if op.extra:
        out, extra = out
    is_np = type(first._data) is _ndarray
    if op.n_out == 1:
        if is_np and type(out) is not _ndarray:
            out = np.asarray(out)  # numpy turns 0-d results into scalars
    elif is_np:
        out = tuple(o if type(o) is _ndarray else np.asarray(o) for o in out)
    if needs_grad and STATE.enabled and op.node_cls is not None:
        edges, meta = _edges_and_meta(inputs)
        res = _record(op, inputs, edges, meta, out, params, first, extra)
    elif op.n_out == 1:
        res = _make_view(out, first) if op.view else _make(out)
    else:
        res = tuple(_make(o) for o in out)
    if op.extra:
        return res, extra
    return res


def _save(op: OpDef, node: OpNode, inputs: tuple, out: Tensor | None) -> None:
    """Keep what the backward needs: inputs by reference, the output as its raw array
    plus its version counter (a Tensor would make a cycle output -> node -> output)."""
    saved = tuple([inputs[i] for i in op.save])
    vers = tuple([v._vc[0] if isinstance(v, Tensor) else 0 for v in saved])
    if op.save_out:
        node._out_vc = out._vc
        saved += (out._data,)
        vers += (out._vc[0],)
    node._saved = saved
    node._saved_ver = vers


# ---- type promotion for elementwise ops -------------------------------------------
def promoted(a, b) -> tuple:
    """(cast dtype or None, result dtorch dtype) for a binary op between tensors/scalars."""
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            da, db = a._data.dtype, b._data.dtype
            if da == db:
                return None, _dtype._FROM_NP[da]
        else:
            _check_scalar(b)
            k = a._data.dtype.kind
            tb = type(b)
            if (k in "fV" and tb is not complex) or (k in "iu" and tb is int) or (k == "b" and tb is bool):
                return None, _dtype._FROM_NP[a._data.dtype]
    else:
        _check_scalar(a)
    r = _dtype.result_type(a, b)
    return r.np, r


def _check_scalar(x) -> None:
    if not isinstance(x, numbers.Number):
        raise TypeError(f"unsupported operand type: expected a Tensor or a number, got {type(x).__name__}")
