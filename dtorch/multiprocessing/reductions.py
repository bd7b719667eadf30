"""Tensors through multiprocessing pickles: moved to named shared memory, rebuilt as views of the same pages.

A segment is a POSIX shared-memory object mapped by ``_Segment`` (an ``mmap`` that knows its name); arrays
over it keep it mapped. The root process (no multiprocessing parent) unlinks every segment it has mapped
once its mapping is collected or at exit, whoever made it; children never unlink, so a tensor a child puts
on a queue and then exits is still there for the parent to map.
"""
from __future__ import annotations

import atexit
import mmap
import multiprocessing
import weakref
from multiprocessing import resource_tracker
from multiprocessing.reduction import ForkingPickler
from multiprocessing.shared_memory import SharedMemory, _posixshmem

import numpy as np

from .._creation import from_numpy
from ..tensor import Tensor, _buffer_owner

_MAPPED: dict = {}  # name -> weakref of this process's _Segment
_ROOT_NAMES: set = set()  # names the root process will unlink


class _Segment(mmap.mmap):
    """A mapping of a named shared-memory object (``name`` set after creation)."""

    name = ""


def _map(shm: SharedMemory) -> _Segment:
    resource_tracker.unregister(shm._name, "shared_memory")  # lifetime is ours, see the module docstring
    seg = _Segment(shm._fd, shm.size)
    seg.name = shm.name
    shm.close()
    _MAPPED[seg.name] = weakref.ref(seg)
    if _is_root():
        _ROOT_NAMES.add(seg.name)
        weakref.finalize(seg, _unlink, seg.name)
    return seg


def _is_root() -> bool:
    # a spawned child unpickles its arguments before multiprocessing records its parent, but after its name is set
    return multiprocessing.parent_process() is None and multiprocessing.current_process().name == "MainProcess"


def _unlink(name: str) -> None:
    if name in _ROOT_NAMES:
        _ROOT_NAMES.discard(name)
        try:
            _posixshmem.shm_unlink(name if name.startswith("/") else "/" + name)
        except OSError:
            pass


@atexit.register
def _unlink_all() -> None:
    for name in list(_ROOT_NAMES):
        _unlink(name)


def _to_shared(arr: np.ndarray) -> np.ndarray:
    seg = _map(SharedMemory(create=True, size=max(arr.nbytes, 1)))
    out = np.frombuffer(seg, np.uint8, count=arr.nbytes).view(arr.dtype).reshape(arr.shape)
    out[...] = arr
    return out


def _rebuild(name: str, offset: int, shape: tuple, strides: tuple, dtype: str, requires_grad: bool,
             is_param: bool) -> Tensor:
    ref = _MAPPED.get(name)
    seg = ref() if ref is not None else None
    if seg is None:
        seg = _map(SharedMemory(name=name))
    arr = np.ndarray(shape, np.dtype(dtype), buffer=seg, offset=offset, strides=strides)
    t = from_numpy(arr)
    if is_param:
        from ..nn.parameter import Parameter

        return Parameter(t, requires_grad=requires_grad)
    return t.requires_grad_(requires_grad) if requires_grad else t


def reduce_tensor(t: Tensor):
    """Move ``t`` to shared memory if needed and describe it by segment name, offset, shape and strides."""
    if not isinstance(t._data, np.ndarray):
        raise RuntimeError("dtorch.multiprocessing: CUDA tensors cannot be shared between processes here; "
                           "move them to the CPU first")
    if t.grad_fn is not None and t.requires_grad:
        raise RuntimeError("Cowardly refusing to serialize non-leaf tensor which requires_grad, since autograd "
                           "does not support crossing process boundaries.  If you just want to transfer the data, "
                           "call detach() on the tensor before serializing (e.g., putting it on the queue).")
    if _segment_of(t._data) is None:
        t._data = _to_shared(t._data)
    a = t._data
    seg = _segment_of(a)
    offset = a.__array_interface__["data"][0] - np.frombuffer(seg, np.uint8, count=1).__array_interface__["data"][0]
    from ..nn.parameter import Parameter

    return _rebuild, (seg.name, offset, a.shape, a.strides, a.dtype.str, t.requires_grad, isinstance(t, Parameter))


def _segment_of(arr: np.ndarray) -> _Segment | None:
    owner = _buffer_owner(arr)
    owner = owner.obj if isinstance(owner, memoryview) else owner
    return owner if isinstance(owner, _Segment) else None


def init_reductions() -> None:
    from ..nn.parameter import Parameter

    ForkingPickler.register(Tensor, reduce_tensor)
    ForkingPickler.register(Parameter, reduce_tensor)
