"""The Tensor: an n-d array (numpy or cupy) plus autograd metadata.

This file holds storage, metadata, views bookkeeping and devices only. Every op
(``x.add``, ``x.sum``, ``x @ y``, indexing...) is attached by the op modules in
``dtorch/_ops`` when they register, so ``tensor.py`` imports no op.
"""
from __future__ import annotations

import mmap
import warnings
import weakref
from collections import OrderedDict
from typing import Callable

import numpy as np

from . import _dtype
from ._device import cupy_module, device, device_of
from ._repr import tensor_repr
from .utils.hooks import RemovableHandle, add_hook

_FROM_NP = _dtype._FROM_NP


class Size(tuple):
    """``x.shape``: a tuple of ints, printed as ``dtorch.Size([2, 3])``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"dtorch.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, i):
        r = tuple.__getitem__(self, i)
        return Size(r) if isinstance(i, slice) else r

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))


class Tensor:
    """A multi-dimensional array with autograd, on CPU (numpy) or CUDA (cupy)."""

    # Only what every tensor sets lives in slots; the rest are class-level defaults that
    # a tensor overrides in its __dict__ when needed (leaves, views, hooks) — fewer writes per op.
    __slots__ = (
        "_data",       # numpy.ndarray or cupy.ndarray
        "_rg",         # requires grad (leaf flag or part of a graph)
        "grad_fn",     # Node that produced this tensor, None for leaves
        "_vc",         # version counter, a one-item list shared with views
        "__weakref__",
        "__dict__",
    )
    _output_nr = 0          # which output of grad_fn this is
    _base = None            # the tensor whose storage a view shares
    _grad = None            # accumulated gradient (a Tensor)
    _hooks = None           # dict of gradient hooks on a leaf
    _post_acc_hooks = None
    _retains_grad = False
    _views = None           # weakrefs to the differentiable views of a non-leaf base (see _ops/_inplace.refresh_views)
    _acc = None             # this leaf's AccumulateGrad node (autograd.graph.accumulator_of)
    # The array of ``Tensor(2, 3)`` / ``Tensor(data)``: made by the creation functions, which sit
    # above this file, so dtorch._creation installs it here when it is imported.
    _legacy_array: Callable = None

    def __init__(self, *args, dtype=None, device=None) -> None:
        """Legacy constructor: ``Tensor(2, 3)`` (uninitialised) or ``Tensor(data)``."""
        if len(args) == 1 and isinstance(args[0], Tensor):  # shares the data, as torch.Tensor(t) does
            _init_from(self, args[0]._data)
            return
        _init_from(self, Tensor._legacy_array(args, dtype, device))

    # ---- metadata ------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    nelement = numel

    @property
    def dtype(self) -> _dtype.dtype:
        return _FROM_NP[self._data.dtype]

    @property
    def device(self) -> device:
        return device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return type(self._data) is not np.ndarray

    @property
    def is_cpu(self) -> bool:
        return type(self._data) is np.ndarray

    is_xpu = is_mps = is_meta = False  # dtorch has no XPU, MPS or meta tensors
    is_quantized = False    # dtorch.ao.quantization.QTensor says True

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind in "fV"

    def is_complex(self) -> bool:
        return self._data.dtype.kind == "c"

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def stride(self, dim: int | None = None):
        isz = self._data.itemsize
        st = tuple(s // isz for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self._data.ndim)]

    def data_ptr(self) -> int:
        a = self._data
        if type(a) is np.ndarray:
            return a.__array_interface__["data"][0]
        return a.data.ptr

    def storage_offset(self) -> int:
        """Elements between the start of the underlying storage and this tensor's first one."""
        if self._base is not None:
            return (self.data_ptr() - self._base.data_ptr()) // self._data.itemsize + self._base.storage_offset()
        root = self._data
        while True:  # through numpy/cupy views (as_strided's base is a wrapper holding the array)
            b = root.base
            if b is not None and not hasattr(b, "dtype"):
                b = getattr(b, "base", None)
            if b is None or not hasattr(b, "dtype") or getattr(b, "ndim", -1) < 0:
                break
            root = b
        if root is self._data:
            return 0
        start = root.__array_interface__["data"][0] if type(root) is np.ndarray else root.data.ptr
        return (self.data_ptr() - start) // self._data.itemsize

    # ---- host memory: pinned, shared ------------------------------------------
    def pin_memory(self, device=None) -> "Tensor":
        """A copy in page-locked host memory (fast asynchronous copies to the GPU); needs a GPU, as in torch."""
        cp = cupy_module()
        if cp is None:
            raise RuntimeError("Cannot access accelerator device when none is available.")
        if type(self._data) is not np.ndarray:
            raise RuntimeError(f"cannot pin '{self.type()}' only dense CPU tensors can be pinned")
        if self.is_pinned():
            return self
        import cupyx

        out = cupyx.empty_pinned(self._data.shape, self._data.dtype)
        out[...] = self._data
        return _make(out)

    def is_pinned(self, device=None) -> bool:
        if type(self._data) is not np.ndarray or cupy_module() is None:
            return False
        return isinstance(_buffer_owner(self._data), cupy_module().cuda.PinnedMemoryPointer)

    def share_memory_(self) -> "Tensor":
        """Move the data into shared memory, which processes forked afterwards share (CUDA tensors: no-op).

        Views taken before keep the old memory (torch moves the storage under them).
        """
        if type(self._data) is np.ndarray and not self.is_shared():
            a = self._data
            shared = np.ndarray(a.shape, a.dtype, buffer=_SharedMemory(-1, max(a.nbytes, 1)))
            shared[...] = a
            self._data = shared
        return self

    def is_shared(self) -> bool:
        """In shared memory: ``share_memory_``'s mapping or a named segment (dtorch.multiprocessing); CUDA: True."""
        owner = _buffer_owner(self._data)
        owner = owner.obj if isinstance(owner, memoryview) else owner
        return type(self._data) is not np.ndarray or isinstance(owner, mmap.mmap)

    def is_contiguous(self, memory_format=None) -> bool:
        a = self._data
        if a.flags.c_contiguous:
            return True
        # torch ignores strides of size-1 dimensions
        expected = 1
        for n, s in zip(reversed(a.shape), reversed(a.strides)):
            if n != 1 and s // a.itemsize != expected:
                return False
            expected *= n
        return True

    @property
    def _version(self) -> int:
        return self._vc[0]

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to use a "
                    "computed variable in a subgraph that doesn't require differentiation use "
                    "var_no_grad = var.detach()."
                )
            return self
        if requires_grad and self._data.dtype.kind not in "fVc":
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        self._rg = bool(requires_grad)
        return self

    @property
    def grad(self) -> "Tensor | None":
        if self._grad is None and self.grad_fn is not None and not self._retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
                "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
                "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor.",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value: "Tensor | None") -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}"
                )
            if value._data.shape != self._data.shape:
                raise RuntimeError(
                    f"assigned grad has data of a different size: grad {list(value.shape)}, "
                    f"tensor {list(self.shape)}"
                )
            if value._data.dtype != self._data.dtype:
                raise RuntimeError(f"assigned grad has data of type {value.dtype}, tensor is {self.dtype}")
            if device_of(value._data) != device_of(self._data):
                raise RuntimeError(f"assigned grad has data located on {value.device}, tensor is on {self.device}")
        self._grad = value

    @property
    def data(self) -> "Tensor":
        """The same storage without autograd history or version tracking (prefer ``detach()``)."""
        return _make(self._data)

    @data.setter
    def data(self, value: "Tensor") -> None:
        self._data = value._data

    def retain_grad(self) -> None:
        if self.grad_fn is None:
            if not self._rg:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        self._retains_grad = True
        self.grad_fn._retain_grad_for(self)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook: Callable) -> RemovableHandle:
        """Run ``hook(grad)`` when the gradient for this tensor is computed; it may return a new grad."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            return self.grad_fn._register_tensor_hook(self._output_nr, hook)
        if self._hooks is None:
            self._hooks = OrderedDict()
        return add_hook(self._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable) -> RemovableHandle:
        """Run ``hook(tensor)`` after this leaf's ``.grad`` has been accumulated."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if self._post_acc_hooks is None:
            self._post_acc_hooks = OrderedDict()
        return add_hook(self._post_acc_hooks, hook)

    def detach(self) -> "Tensor":
        """The same storage and version counter, outside the graph (not a view for autograd, as torch)."""
        t = _make(self._data)
        t._vc = self._vc
        return t

    def detach_(self) -> "Tensor":
        if self._base is not None and self.grad_fn is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self.grad_fn = None
        self._rg = False
        return self

    # ---- conversion to Python / numpy ----------------------------------------
    def item(self):
        a = self._data
        if a.size != 1:
            raise RuntimeError(f"a Tensor with {a.size} elements cannot be converted to Scalar")
        return a.item()

    def tolist(self):
        return self._data.tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        if type(self._data) is not np.ndarray:
            if force:
                return self._data.get()
            raise TypeError(
                f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy "
                "the tensor to host memory first."
            )
        if self._rg and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        a = self.numpy(force=True) if type(self._data) is np.ndarray else self._data.get()
        return a if dtype is None else a.astype(dtype)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    __hash__ = object.__hash__  # by identity, as torch's (the ops give tensors an elementwise __eq__)

    def __repr__(self) -> str:
        return tensor_repr(self)

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __deepcopy__(self, memo):
        with_grad = self._rg
        t = _make(self._data.copy(), False)
        t._rg = with_grad and self.grad_fn is None
        if self._grad is not None:
            t._grad = _make(self._grad._data.copy(), False)
        if type(self) is not Tensor:
            t.__class__ = type(self)
            t.__dict__.update(self.__dict__)
        memo[id(self)] = t
        return t

    def __reduce_ex__(self, proto):
        raise TypeError(
            "dtorch tensors are not picklable by design: use dtorch.save (safetensors + JSON) instead"
        )


class _SharedMemory(mmap.mmap):
    """An anonymous shared mapping (``MAP_SHARED``) made by ``share_memory_``."""


def _buffer_owner(arr: np.ndarray):
    """The object at the end of ``arr``'s chain of bases: the buffer that owns the memory (None: numpy does)."""
    b = arr.base
    while isinstance(b, np.ndarray):
        b = b.base
    return b


def typename(obj) -> str:
    """torch.typename: ``dtorch.FloatTensor`` for tensors, the qualified name otherwise."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module = obj.__class__.__module__ or ""
        qualname = obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


def _init_from(t: Tensor, data, rg: bool = False) -> None:
    t._data = data
    t._rg = rg
    t.grad_fn = None
    t._vc = [0]


_new = object.__new__


def _make(data, rg: bool = False, grad_fn=None, output_nr: int = 0) -> Tensor:
    """Wrap an array (the hot path of every op: no checks)."""
    t = _new(Tensor)
    t._data = data
    t._rg = rg
    t.grad_fn = grad_fn
    t._vc = [0]
    if output_nr:
        t._output_nr = output_nr
    return t


def _make_view(data, base: Tensor, rg: bool = False, grad_fn=None) -> Tensor:
    """A tensor sharing ``base``'s storage and version counter."""
    t = _make(data, rg, grad_fn)
    t._vc = base._vc
    root = t._base = base._base if base._base is not None else base
    if rg and root.grad_fn is not None:
        # an in-place op through another view (or the base) rewrites the base's history: this view's
        # grad_fn must then be rebuilt from it, so the base remembers its differentiable views
        views = root._views
        if views is None:
            views = root._views = []
        elif len(views) >= 64 and not len(views) & (len(views) - 1):  # at 64, 128, 256...: drop dead refs
            views[:] = [r for r in views if r() is not None]
        views.append(weakref.ref(t))
    return t


def _wrap_dim(dim: int, ndim: int) -> int:
    lo = -ndim if ndim else -1
    hi = ndim - 1 if ndim else 0
    if not lo <= dim <= hi:
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return dim + ndim if dim < 0 else dim

