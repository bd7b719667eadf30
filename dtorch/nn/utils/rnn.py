"""torch.nn.utils.rnn: PackedSequence and packing/padding of variable-length sequences.

Packing and unpacking are single gathers (``index_select``), so gradients flow back to the padded
input and to the packed data.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from ... import _dtype
from ..._creation import full, tensor
from ..._ops.joining import cat, stack
from ...tensor import Tensor

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence", "pack_sequence", "unpack_sequence"]


class PackedSequence_(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(PackedSequence_):
    """The rows of every sequence step by step (``data``) and how many sequences each step has (``batch_sizes``).

    Made by :func:`pack_padded_sequence` / :func:`pack_sequence`; every RNN module accepts one.
    """

    def __new__(cls, data: Tensor, batch_sizes: Tensor | None = None, sorted_indices: Tensor | None = None,
                unsorted_indices: Tensor | None = None) -> PackedSequence:
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        elif batch_sizes.device.type != "cpu":
            raise ValueError("batch_sizes should always be on CPU. Instances of PackedSequence should never be created "
                             "manually. They should be instantiated by functions like pack_sequence and "
                             "pack_padded_sequences in nn.utils.rnn. "
                             "https://pytorch.org/docs/stable/nn.html#torch.nn.utils.rnn.pack_sequence")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """``data`` converted as ``Tensor.to`` would; the index tensors follow it to its device."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        move = (lambda t: None if t is None else t.to(data.device))
        return type(self)(data, self.batch_sizes, move(self.sorted_indices), move(self.unsorted_indices))

    def cuda(self, *args, **kwargs) -> PackedSequence:
        return self.to("cuda" if not args else args[0], **kwargs)

    def cpu(self, *args, **kwargs) -> PackedSequence:
        return self.to("cpu", **kwargs)

    def _as(self, name: str) -> PackedSequence:
        return self.to(dtype=getattr(_dtype, name))

    def double(self) -> PackedSequence:
        return self._as("float64")

    def float(self) -> PackedSequence:
        return self._as("float32")

    def half(self) -> PackedSequence:
        return self._as("float16")

    def long(self) -> PackedSequence:
        return self._as("int64")

    def int(self) -> PackedSequence:
        return self._as("int32")

    def short(self) -> PackedSequence:
        return self._as("int16")

    def char(self) -> PackedSequence:
        return self._as("int8")

    def byte(self) -> PackedSequence:
        return self._as("uint8")

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return self.data.is_pinned()


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of ``permutation`` (None stays None)."""
    if permutation is None:
        return None
    perm = permutation.cpu().numpy()
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size, dtype=perm.dtype)
    return tensor(inv, device=permutation.device)


def _lengths_list(lengths) -> list:
    if isinstance(lengths, Tensor):
        lengths = lengths.cpu().numpy()
    arr = np.asarray(lengths)
    if arr.ndim != 1:
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {arr.ndim}D tensor")
    return [int(v) for v in arr]


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (``T x B x *``, or ``B x T x *``) of sequences of the given lengths."""
    lens = _lengths_list(lengths)
    sorted_indices = None
    batch_dim = 0 if batch_first else 1
    if enforce_sorted:
        if any(a < b for a, b in zip(lens, lens[1:])):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You "
                               "can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to "
                               "sidestep this requirement if you do not need ONNX exportability.")
    else:
        order = np.argsort(-np.asarray(lens, dtype=np.int64), kind="stable")
        lens = [lens[i] for i in order]
        sorted_indices = tensor(order.astype(np.int64), device=input.device)
        input = input.index_select(batch_dim, sorted_indices)
    if batch_first:
        input = input.transpose(0, 1)
    steps, batch = input.shape[0], input.shape[1]
    if len(lens) != batch:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {len(lens)} "
                           f"(batch_size={batch})")
    if lens and lens[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' that "
                           "is <= 0")
    if lens and lens[0] > steps:
        raise RuntimeError(f"a sequence length ({lens[0]}) is longer than the padded input ({steps} steps)")
    lens_arr = np.asarray(lens, dtype=np.int64)
    batch_sizes = np.array([(lens_arr > t).sum() for t in range(lens[0] if lens else 0)], dtype=np.int64)
    idx = np.concatenate([t * batch + np.arange(bs) for t, bs in enumerate(batch_sizes)])
    flat = input.reshape((steps * batch,) + tuple(input.shape[2:]))
    data = flat.index_select(0, tensor(idx.astype(np.int64), device=input.device))
    return PackedSequence(data, tensor(batch_sizes), sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple:
    """The padded batch of a PackedSequence and each sequence's length (as ``pack_padded_sequence`` took them)."""
    bs = sequence.batch_sizes.tolist()
    max_len = len(bs)
    if total_length is not None:
        if total_length < max_len:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, but "
                             f"got total_length={total_length} and max sequence length being {max_len}")
    else:
        total_length = max_len
    data = sequence.data
    batch = bs[0] if bs else 0
    n = data.shape[0]
    idx = np.full((total_length, batch), n, dtype=np.int64)
    off = 0
    for t, b in enumerate(bs):
        idx[t, :b] = np.arange(off, off + b)
        off += b
    trail = tuple(data.shape[1:])
    ext = cat([data, full((1,) + trail, padding_value, dtype=data.dtype, device=data.device)], 0)
    padded = ext.index_select(0, tensor(idx.reshape(-1), device=data.device)).reshape((total_length, batch) + trail)
    lengths = np.array([sum(1 for b in bs if b > i) for i in range(batch)], dtype=np.int64)
    batch_dim = 0 if batch_first else 1
    if batch_first:
        padded = padded.transpose(0, 1)
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(batch_dim, sequence.unsorted_indices)
        lengths = lengths[sequence.unsorted_indices.cpu().numpy()]
    return padded, tensor(lengths)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences of sizes ``L_i x *`` into ``T x B x *`` (``B x T x *``), padded with ``padding_value``."""
    if isinstance(sequences, Tensor):
        sequences = sequences.unbind(0)
    if not isinstance(sequences, Iterable):
        raise RuntimeError(f"pad_sequence: Expected iterable for input sequences, but got arg of type: "
                           f"{type(sequences)}")
    sequences = tuple(sequences)
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    trail = tuple(sequences[0].shape[1:])
    for s in sequences[1:]:
        if tuple(s.shape[1:]) != trail:
            dim = next(i for i, (a, b) in enumerate(zip(s.shape[1:], trail)) if a != b) + 1 \
                if len(s.shape) == len(trail) + 1 else len(trail) + 1
            raise RuntimeError(f"The size of tensor a ({trail[dim - 1] if dim - 1 < len(trail) else 1}) must match "
                               f"the size of tensor b ({s.shape[dim] if dim < len(s.shape) else 1}) at "
                               f"non-singleton dimension {dim}")
    max_len = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        gap = max_len - s.shape[0]
        if gap:
            pad = full((gap,) + trail, padding_value, dtype=s.dtype, device=s.device)
            s = cat([s, pad] if padding_side == "right" else [pad, s], 0)
        rows.append(s)
    return stack(rows, 0 if batch_first else 1)


def unpad_sequence(padded_sequences: Tensor, lengths: Tensor, batch_first: bool = False) -> list:
    """The list of sequences ``padded[:length_i, i]`` (``padded[i, :length_i]`` with ``batch_first``)."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [seq[:int(n)] for seq, n in zip(padded_sequences, _lengths_list(lengths))]


def pack_sequence(sequences: list, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences of sizes ``L_i x *`` (longest first unless ``enforce_sorted=False``)."""
    lengths = [v.size(0) for v in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of sequences a PackedSequence holds, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
