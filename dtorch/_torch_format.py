"""torch.save's zip format, read and written without running pickle.

Reading: ``archive/data.pkl``'s opcodes are interpreted here (``pickletools.genops`` only parses), building
only what torch's ``weights_only=True`` allows: tensors (``_rebuild_tensor_v2`` over the ``archive/data/<key>``
storages), parameters (as tensors that require grad), dicts, OrderedDicts, lists, tuples, numbers, strings,
None. Any other global or opcode is refused by name. Writing: the same subset is emitted as protocol-2 opcodes,
so ``torch.load(f, weights_only=True)`` reads dtorch's file.
"""
from __future__ import annotations

import collections
import io
import pickletools
import struct
import zipfile

import numpy as np

from ._dtype import from_numpy_dtype
from .tensor import Tensor, _make

_STORAGES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
             "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
             "ByteStorage": np.uint8, "BoolStorage": np.bool_, "BFloat16Storage": "bfloat16"}
_ALLOWED = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
            ("torch._utils", "_rebuild_parameter"), *(("torch", s) for s in _STORAGES)}


class TorchFormatError(ValueError):
    """A torch checkpoint this reader refuses (names the file and what is wrong)."""


def is_torch_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04" and b"data.pkl" in data[:4096]


class _Storage:
    def __init__(self, dtype, key: str, numel: int) -> None:
        self.dtype, self.key, self.numel = dtype, key, numel


def _np_dtype(dtype) -> np.dtype:
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _rebuild_tensor(where: str, read_storage, storage, offset, size, stride, requires_grad, *_):
    if not isinstance(storage, _Storage):
        raise TorchFormatError(f"{where}: a tensor without a storage")
    arr = read_storage(storage)
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
        raise TorchFormatError(f"{where}: bad tensor size {size} / stride {stride} / offset {offset}")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
    if last >= arr.size:
        raise TorchFormatError(f"{where}: tensor of size {size} reads past its storage of {arr.size} elements")
    view = np.lib.stride_tricks.as_strided(arr[offset:], size, tuple(s * arr.itemsize for s in stride))
    t = _make(np.array(view))
    return t.requires_grad_(True) if requires_grad and t.is_floating_point() else t


class _Reader:
    def __init__(self, zf: zipfile.ZipFile, prefix: str, where: str) -> None:
        self.zf, self.prefix, self.where = zf, prefix, where
        self.arrays: dict[str, np.ndarray] = {}

    def storage(self, s: _Storage) -> np.ndarray:
        if s.key not in self.arrays:
            name = f"{self.prefix}data/{s.key}"
            try:
                info = self.zf.getinfo(name)
            except KeyError:
                raise TorchFormatError(f"{self.where}: storage {s.key!r} is missing from the archive") from None
            dt = _np_dtype(s.dtype)
            if info.file_size != s.numel * dt.itemsize:
                raise TorchFormatError(f"{self.where}: storage {s.key!r} holds {info.file_size} bytes, "
                                       f"expected {s.numel} x {dt.itemsize}")
            self.arrays[s.key] = np.frombuffer(self.zf.read(name), dt)
        return self.arrays[s.key]

    def call(self, fn, args):
        if fn is collections.OrderedDict:
            return collections.OrderedDict(*args)
        if fn == "rebuild_tensor":
            return _rebuild_tensor(self.where, self.storage, *args)
        if fn == "rebuild_parameter":
            t = args[0]
            return t.requires_grad_(bool(args[1])) if isinstance(t, Tensor) and t.is_floating_point() else t
        raise TorchFormatError(f"{self.where}: refusing to call {fn!r}")

    def run(self, data: bytes):
        stack: list = []
        marks: list[int] = []
        memo: dict[int, object] = {}
        for op, arg, _pos in pickletools.genops(data):
            name = op.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                return stack.pop()
            if name == "MARK":
                marks.append(len(stack))
            elif name in ("EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE"):
                stack.append({"EMPTY_DICT": {}, "EMPTY_LIST": [], "EMPTY_TUPLE": ()}[name])
            elif name in ("TUPLE", "LIST", "DICT"):
                items = stack[marks.pop():]
                del stack[len(stack) - len(items):]
                stack.append(tuple(items) if name == "TUPLE" else list(items) if name == "LIST" else
                             dict(zip(items[::2], items[1::2])))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif name in ("APPEND", "APPENDS", "SETITEM", "SETITEMS"):
                self._fill(name, stack, marks)
            elif name in ("BININT", "BININT1", "BININT2", "LONG1", "LONG4", "BINFLOAT", "BINUNICODE",
                          "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES"):
                stack.append(arg)
            elif name in ("NEWTRUE", "NEWFALSE", "NONE"):
                stack.append({"NEWTRUE": True, "NEWFALSE": False, "NONE": None}[name])
            elif name in ("BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise TorchFormatError(f"{self.where}: pickle refers to memo entry {arg} before setting it")
                stack.append(memo[arg])
            elif name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    module, attr = arg.split(" ", 1)
                else:
                    module, attr = stack[-2], stack[-1]
                    del stack[-2:]
                stack.append(self._global(module, attr))
            elif name == "REDUCE":
                args = stack.pop()
                stack.append(self.call(stack.pop(), args))
            elif name == "BUILD":
                stack.pop()  # an OrderedDict's attributes (a state_dict's _metadata): not items, not needed
            elif name == "BINPERSID":
                stack.append(self._persistent(stack.pop()))
            else:
                raise TorchFormatError(f"{self.where}: pickle opcode {name} is not allowed (only tensors, dicts, "
                                       "lists, tuples, numbers and strings are read)")
        raise TorchFormatError(f"{self.where}: the pickle ends without STOP")

    @staticmethod
    def _fill(name: str, stack: list, marks: list) -> None:
        if name in ("APPENDS", "SETITEMS"):
            items = stack[marks.pop():]
            del stack[len(stack) - len(items):]
        else:
            items = stack[-2 if name == "SETITEM" else -1:]
            del stack[-len(items):]
        target = stack[-1]
        if name.startswith("APPEND"):
            target.extend(items)
        else:
            for k, v in zip(items[::2], items[1::2]):
                target[k] = v

    def _global(self, module: str, attr: str):
        if (module, attr) not in _ALLOWED:
            raise TorchFormatError(f"{self.where}: refusing to load global {module}.{attr} (as torch's "
                                   "weights_only=True: only tensors, dicts, lists, tuples, numbers and strings)")
        if module == "collections":
            return collections.OrderedDict
        if attr == "_rebuild_tensor_v2":
            return "rebuild_tensor"
        if attr == "_rebuild_parameter":
            return "rebuild_parameter"
        return ("storage_type", _STORAGES[attr])

    def _persistent(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise TorchFormatError(f"{self.where}: unknown persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid
        if not (isinstance(stype, tuple) and stype[0] == "storage_type") or not isinstance(numel, int):
            raise TorchFormatError(f"{self.where}: bad storage record {pid!r:.80}")
        return _Storage(stype[1], str(key), numel)


def load_torch_zip(data, where: str):
    """The object a torch.save zip holds: ``data`` its bytes or a seekable binary file (``where`` names it)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data)
        names = zf.namelist()
    except zipfile.BadZipFile as e:
        raise TorchFormatError(f"{where}: not a readable zip archive ({e})") from None
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkl) != 1:
        raise TorchFormatError(f"{where}: a torch archive has one data.pkl, found {len(pkl)}")
    prefix = pkl[0][: -len("data.pkl")]
    if zf.getinfo(pkl[0]).file_size > 1 << 30:
        raise TorchFormatError(f"{where}: data.pkl claims more than 1 GiB")
    try:
        return _Reader(zf, prefix, where).run(zf.read(pkl[0]))
    except (IndexError, KeyError, TypeError, ValueError, struct.error) as e:
        if isinstance(e, TorchFormatError):
            raise
        raise TorchFormatError(f"{where}: malformed pickle in data.pkl ({type(e).__name__}: {e})") from None


# ---- writing -------------------------------------------------------------------------------------------
_STORAGE_OF = {np.dtype(v) if v != "bfloat16" else None: k for k, v in _STORAGES.items() if v != "bfloat16"}


class _Writer:
    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.storages: list[np.ndarray] = []

    def emit(self, obj) -> None:
        w = self.out.write
        if obj is None:
            w(b"N")
        elif obj is True or obj is False:
            w(b"\x88" if obj else b"\x89")
        elif isinstance(obj, int):
            if -(1 << 31) <= obj < (1 << 31):
                w(b"J" + struct.pack("<i", obj))
            else:
                raw = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
                w(b"\x8a" + bytes([len(raw)]) + raw)
        elif isinstance(obj, float):
            w(b"G" + struct.pack(">d", obj))
        elif isinstance(obj, str):
            raw = obj.encode("utf-8")
            w(b"X" + struct.pack("<I", len(raw)) + raw)
        elif isinstance(obj, Tensor):
            self._tensor(obj)
        elif isinstance(obj, (list, tuple)):
            w(b"]" if isinstance(obj, list) else b"(")
            if isinstance(obj, list):
                w(b"(")
            for v in obj:
                self.emit(v)
            w(b"e" if isinstance(obj, list) else b"t")
        elif isinstance(obj, dict):
            w(b"ccollections\nOrderedDict\n)R" if isinstance(obj, collections.OrderedDict) else b"}")
            w(b"(")
            for k, v in obj.items():
                self.emit(k)
                self.emit(v)
            w(b"u")
        else:
            raise TypeError(f"dtorch.save(_use_torch_format=True) writes tensors, dicts, lists, tuples, numbers and "
                            f"strings, not {type(obj).__name__}")

    def _tensor(self, t: Tensor) -> None:
        arr = np.ascontiguousarray(t.detach().cpu()._data)
        stype = _STORAGE_OF.get(arr.dtype)
        if stype is None:
            raise TypeError(f"dtorch.save(_use_torch_format=True): no torch storage for {from_numpy_dtype(arr.dtype)}")
        key = str(len(self.storages))
        self.storages.append(arr)
        w = self.out.write
        w(b"ctorch._utils\n_rebuild_tensor_v2\n((")
        for v in ("storage",):
            self.emit(v)
        w(f"ctorch\n{stype}\n".encode())
        self.emit(key)
        self.emit("cpu")
        self.emit(int(arr.size))
        w(b"tQ")  # the storage tuple, then BINPERSID
        self.emit(0)
        self.emit(tuple(int(s) for s in arr.shape))
        self.emit(tuple(int(s) // arr.itemsize for s in arr.strides) if arr.size else (1,) * arr.ndim)
        self.emit(bool(t.requires_grad))
        w(b"ccollections\nOrderedDict\n)R")
        w(b"tR")


def save_torch_zip(obj, name: str = "archive") -> bytes:
    """``obj`` as torch.save writes it (zip, protocol-2 pickle, raw little-endian storages)."""
    wr = _Writer()
    wr.out.write(b"\x80\x02")
    wr.emit(obj)
    wr.out.write(b".")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{name}/data.pkl", wr.out.getvalue())
        zf.writestr(f"{name}/byteorder", "little")
        for i, arr in enumerate(wr.storages):
            zf.writestr(f"{name}/data/{i}", arr.tobytes())
        zf.writestr(f"{name}/version", "3\n")
    return buf.getvalue()
