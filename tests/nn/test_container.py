"""Containers (Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict) and Flatten/Unflatten/Identity."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import dtorch
import dtorch.nn as nn
from tests.oracle import check_op, rand


def _same_repr(d, t) -> None:
    assert repr(d) == repr(t).replace("torch.", "dtorch.")


def test_sequential_runs_in_order_and_indexes():
    seq = nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Tanh())
    x = dtorch.randn(2, 3, 4)
    out = seq(x)
    np.testing.assert_allclose(out.numpy(), np.tanh(np.maximum(x.numpy().reshape(2, 12), 0)), rtol=1e-6)
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Tanh)
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and list(sub._modules) == ["1", "2"]
    assert [type(m).__name__ for m in seq] == ["Flatten", "ReLU", "Tanh"]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        seq[3]
    seq[0] = nn.Identity()
    assert isinstance(seq[0], nn.Identity)
    del seq[0]
    assert list(seq._modules) == ["0", "1"] and isinstance(seq[0], nn.ReLU)
    assert isinstance(seq.pop(0), nn.ReLU) and len(seq) == 1


def test_sequential_append_insert_extend_ordereddict():
    seq = nn.Sequential(OrderedDict([("a", nn.ReLU()), ("b", nn.Tanh())]))
    assert list(seq._modules) == ["a", "b"] and seq.a is seq[0]
    seq = nn.Sequential(nn.ReLU())
    seq.append(nn.Tanh()).extend([nn.Sigmoid()])
    seq.insert(0, nn.Identity())
    seq.insert(-1, nn.GELU())
    assert [type(m).__name__ for m in seq] == ["Identity", "ReLU", "Tanh", "GELU", "Sigmoid"]
    with pytest.raises(IndexError, match="Index out of range"):
        seq.insert(9, nn.ReLU())
    both = nn.Sequential(nn.ReLU()) + nn.Sequential(nn.Tanh())
    assert [type(m).__name__ for m in both] == ["ReLU", "Tanh"]
    rep = nn.Sequential(nn.ReLU(), nn.Tanh()) * 2
    assert len(rep) == 4 and rep[0] is rep[2]
    with pytest.raises(ValueError, match="add operator supports only objects of Sequential"):
        nn.Sequential() + [nn.ReLU()]


def test_nested_sequential_repr_matches_torch(torch):

    def build(lib):
        n = lib.nn
        return n.Sequential(
            n.Flatten(), n.Unflatten(1, (2, 6)), n.ReLU(inplace=True),
            n.Sequential(n.LeakyReLU(0.2), n.GELU(approximate="tanh"), n.Sequential(n.Softmax(dim=1))),
            n.ModuleList([n.ELU(), n.ELU(), n.ELU(alpha=0.5), n.Hardtanh(-2.0, 2.0)]),
            n.ModuleDict({"a": n.Softplus(beta=2.0), "b": n.Identity()}),
            n.Sequential(),
        )

    _same_repr(build(dtorch), build(torch))
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList())


def test_module_list():
    ml = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    ml.append(nn.Sigmoid())
    ml += [nn.GELU()]
    ml.insert(1, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["ReLU", "Identity", "Tanh", "Sigmoid", "GELU"]
    assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    assert ml[-1] is ml[4]
    del ml[1]
    assert list(ml._modules) == ["0", "1", "2", "3"]
    assert isinstance(ml.pop(-1), nn.GELU)
    with pytest.raises(IndexError):
        ml[10]
    with pytest.raises(TypeError, match="ModuleList.extend should be called with an iterable"):
        ml.extend(3)
    parent = nn.Module()
    parent.layers = ml
    assert [n for n, _ in parent.named_modules()] == ["", "layers", "layers.0", "layers.1", "layers.2"]


def test_module_dict():
    md = nn.ModuleDict({"relu": nn.ReLU()})
    md["tanh"] = nn.Tanh()
    md.update([("gelu", nn.GELU())])
    assert list(md.keys()) == ["relu", "tanh", "gelu"] and "tanh" in md and len(md) == 3
    assert isinstance(md.pop("relu"), nn.ReLU) and list(md) == ["tanh", "gelu"]
    assert [type(v).__name__ for v in md.values()] == ["Tanh", "GELU"]
    with pytest.raises(ValueError, match="has length 3; 2 is required"):
        md.update([("a", nn.ReLU(), 1)])
    md.clear()
    assert len(md) == 0


def test_parameter_list_and_dict_register_and_repr(torch):
    a = np.ones((2, 3), np.float32)
    b = np.zeros(4, np.float64)
    pl = nn.ParameterList([dtorch.from_numpy(a), nn.Parameter(dtorch.from_numpy(b))])
    tpl = torch.nn.ParameterList([torch.from_numpy(a), torch.nn.Parameter(torch.from_numpy(b))])
    assert all(isinstance(p, nn.Parameter) for p in pl)
    _same_repr(pl, tpl)
    pl.append(dtorch.zeros(1))
    assert len(pl) == 3 and [n for n, _ in pl.named_parameters()] == ["0", "1", "2"]
    assert isinstance(pl[0:2], nn.ParameterList) and len(pl[0:2]) == 2
    with pytest.raises(RuntimeError, match="ParameterList should not be called"):
        pl()
    pd = nn.ParameterDict({"w": dtorch.from_numpy(a), "b": dtorch.from_numpy(b)})
    tpd = torch.nn.ParameterDict({"w": torch.from_numpy(a), "b": torch.from_numpy(b)})
    _same_repr(pd, tpd)
    assert list(pd.keys()) == list(tpd.keys()) == ["b", "w"]  # plain dicts are taken in sorted order
    assert isinstance(pd["w"], nn.Parameter) and "w" in pd and pd.get("x") is None
    pd["x"] = dtorch.zeros(2)
    assert [n for n, _ in pd.named_parameters()] == ["b", "w", "x"]
    assert pd.pop("x").shape == (2,) and "x" not in pd
    k, v = pd.popitem()
    assert k == "w" and len(pd) == 1
    with pytest.raises(TypeError, match="not a string"):
        pd[1]


def test_containers_state_dict_keys_match_torch(torch):

    def build(lib):
        m = lib.nn.Module()
        m.seq = lib.nn.Sequential(lib.nn.PReLU(2), lib.nn.ModuleList([lib.nn.PReLU(3)]))
        m.pl = lib.nn.ParameterList([lib.zeros(2)])
        m.pd = lib.nn.ParameterDict({"k": lib.zeros(1)})
        return m

    assert list(build(dtorch).state_dict()) == list(build(torch).state_dict())


def test_flatten_unflatten_identity(device, torch):
    x = rand(2, 3, 4, 5, device=device, dtype=dtorch.float32)
    for args in [(), (0,), (1, 2), (-3, -1), (2,)]:
        check_op(nn.Flatten(*args), torch.nn.Flatten(*args), inputs=[x])
    check_op(nn.Unflatten(1, (3, 1)), torch.nn.Unflatten(1, (3, 1)), inputs=[x])
    check_op(nn.Unflatten(-1, [5, 1]), torch.nn.Unflatten(-1, [5, 1]), inputs=[x])
    assert nn.Identity(3, unused=True)(x) is x
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.Unflatten(1, (2, 2))) == "Unflatten(dim=1, unflattened_size=(2, 2))"
    with pytest.raises(TypeError, match="unflattened_size must be tuple of ints"):
        nn.Unflatten(1, (2, 2.0))
    with pytest.raises(TypeError, match="unflattened_size must be a tuple of ints, but found type int"):
        nn.Unflatten(1, 4)


def test_flatten_backward():
    x = dtorch.randn(2, 3, 4, requires_grad=True)
    (nn.Flatten()(x) * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3, 4), 2.0))
