"""dtorch.nn.utils.rnn against torch.nn.utils.rnn: packing, padding, their gradients and errors."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import dtorch
from tests.oracle import check_op, rand, raises_like_torch

TOL = {"rtol": 1e-12, "atol": 0}


def _packed_fields(p) -> tuple:
    fields = (p.data, p.batch_sizes)
    return fields + tuple(t for t in (p.sorted_indices, p.unsorted_indices) if t is not None)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence(batch_first, padding_side, torch):
    seqs = [rand(3, 2), rand(5, 2), rand(1, 2)]
    check_op(lambda lib, *s: lib.nn.utils.rnn.pad_sequence(list(s), batch_first=batch_first, padding_value=-1.5,
                                                           padding_side=padding_side), inputs=seqs, **TOL)
    check_op(lambda lib, *s: lib.nn.utils.rnn.pad_sequence(s), inputs=[rand(2), rand(4)], **TOL)


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_padded_and_back(enforce_sorted, batch_first, torch):
    lengths = [4, 3, 3, 1] if enforce_sorted else [3, 4, 1, 3]
    x = rand(4, 5, 2) if batch_first else rand(5, 4, 2)

    def run(lib, x):
        rnn = lib.nn.utils.rnn
        p = rnn.pack_padded_sequence(x, lib.tensor(lengths), batch_first=batch_first, enforce_sorted=enforce_sorted)
        padded, lens = rnn.pad_packed_sequence(p, batch_first=batch_first, padding_value=9.0, total_length=6)
        return _packed_fields(p) + (padded, lens)

    check_op(run, inputs=[x], **TOL)


def test_pack_sequence_unpack_and_unpad(torch):
    seqs = [rand(2, 3), rand(4, 3), rand(3, 3)]
    check_op(lambda lib, *s: _packed_fields(lib.nn.utils.rnn.pack_sequence(list(s), enforce_sorted=False)),
             inputs=seqs, **TOL)
    check_op(lambda lib, *s: tuple(lib.nn.utils.rnn.unpack_sequence(
        lib.nn.utils.rnn.pack_sequence(list(s), enforce_sorted=False))), inputs=seqs, **TOL)
    # torch transposes a time-major input in place (dtorch does not): give it a non-leaf
    check_op(lambda lib, x: tuple(lib.nn.utils.rnn.unpad_sequence(x * 1, lib.tensor([3, 1, 2]))),
             inputs=[rand(3, 3, 2)], **TOL)
    check_op(lambda lib, x: tuple(lib.nn.utils.rnn.unpad_sequence(x, lib.tensor([3, 1]), batch_first=True)),
             inputs=[rand(2, 3, 2)], **TOL)


def test_packed_sequence_object():
    p = dtorch.nn.utils.rnn.pack_sequence([dtorch.randn(3, 2), dtorch.randn(1, 2)])
    assert isinstance(p, tuple) and p.batch_sizes.tolist() == [2, 1, 1] and p.sorted_indices is None
    data, batch_sizes, sorted_indices, unsorted_indices = p
    assert data.shape == (4, 2) and unsorted_indices is None
    d = p.double()
    assert d.data.dtype == dtorch.float64 and d.batch_sizes is p.batch_sizes and p.to(dtorch.float32) is p
    assert not p.is_cuda and p.cpu() is p
    q = dtorch.nn.utils.rnn.PackedSequence(p.data, p.batch_sizes, dtorch.tensor([1, 0]))
    assert q.unsorted_indices.tolist() == [1, 0]
    r = dtorch.nn.utils.rnn.PackedSequence((p.data, p.batch_sizes))
    assert r.data is p.data
    assert dtorch.nn.utils.rnn.invert_permutation(dtorch.tensor([2, 0, 1])).tolist() == [1, 2, 0]
    m = dtorch.nn.LSTM(2, 3)
    m2 = copy.deepcopy(m)
    out1, out2 = m(p)[0].data, m2(p)[0].data
    assert np.array_equal(out1.detach().numpy(), out2.detach().numpy())


def test_errors_like_torch(torch):
    pack = (dtorch.nn.utils.rnn.pack_padded_sequence, torch.nn.utils.rnn.pack_padded_sequence)
    x = rand(4, 3, 2)
    for lengths in ([3, 4, 1], [4, 3, 0], [4, 3]):
        raises_like_torch(lambda x, lengths=lengths: pack[0](x, lengths),
                          lambda x, lengths=lengths: pack[1](x, lengths), x)
    pad = (dtorch.nn.utils.rnn.pad_sequence, torch.nn.utils.rnn.pad_sequence)
    raises_like_torch(lambda: pad[0]([]), lambda: pad[1]([]))
    raises_like_torch(lambda x: pad[0]([x], padding_side="mid"), lambda x: pad[1]([x], padding_side="mid"),
                      rand(2, 3))
    raises_like_torch(lambda a, b: pad[0]([a, b]), lambda a, b: pad[1]([a, b]), rand(2, 3), rand(3, 4))
    p = dtorch.nn.utils.rnn.pack_sequence([dtorch.randn(3, 2)])
    tp = torch.nn.utils.rnn.pack_sequence([torch.randn(3, 2)])
    raises_like_torch(lambda: dtorch.nn.utils.rnn.pad_packed_sequence(p, total_length=2),
                      lambda: torch.nn.utils.rnn.pad_packed_sequence(tp, total_length=2), exc=ValueError)
    with pytest.raises(RuntimeError, match="longer than the padded input"):
        pack[0](x, [5, 3, 1])
