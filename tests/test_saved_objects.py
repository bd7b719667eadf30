"""dtorch.save of what torch users save besides tensors: numpy arrays, argparse.Namespace and whole modules,
stored as data (no pickle); a module's class must already be imported at load, nothing a file names is run."""
from __future__ import annotations

import argparse
import io
import sys
import types

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch._safetensors import SafetensorsError


class TiedLM(nn.Module):
    def __init__(self, vocab: int = 11, dim: int = 6) -> None:
        super().__init__()
        self.dim = dim
        self.wte = nn.Embedding(vocab, dim)
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.wte.weight  # tied, as nanoGPT's lm_head
        self.register_buffer("scale", dtorch.tensor(2.0))
        self.register_buffer("cache", dtorch.zeros(2), persistent=False)

    def forward(self, idx):
        return self.head(self.ln(self.wte(idx))) * self.scale


def _round_trip(obj):
    buf = io.BytesIO()
    dtorch.save(obj, buf)
    return dtorch.load(io.BytesIO(buf.getvalue()))


def test_arrays_and_namespaces():
    args = argparse.Namespace(lr=3e-4, out_dir="out", layers=[2, 4], compile=True, seed=None)
    arrays = {"i": np.arange(6, dtype=np.int32).reshape(2, 3), "f": np.linspace(0, 1, 5), "b": np.array([True])}
    back = _round_trip({"args": args, **arrays})
    assert back["args"] == args and isinstance(back["args"], argparse.Namespace)
    for k, v in arrays.items():
        assert type(back[k]) is np.ndarray and back[k].dtype == v.dtype
        np.testing.assert_array_equal(back[k], v)


def test_whole_module_round_trip_keeps_ties_buffers_and_mode():
    dtorch.manual_seed(0)
    model = TiedLM().eval()
    back = _round_trip({"model": model, "step": 4})
    m = back["model"]
    assert type(m) is TiedLM and m.dim == 6 and m.training is False and back["step"] == 4
    assert m.head.weight is m.wte.weight and isinstance(m.head.weight, nn.Parameter) and m.head.weight.requires_grad
    assert list(m.state_dict()) == list(model.state_dict()) and "cache" in dict(m.named_buffers())
    idx = dtorch.tensor([[1, 2, 3]])
    assert dtorch.equal(m(idx), model(idx))
    opt = dtorch.optim.SGD(m.parameters(), lr=0.1)  # it trains: parameters are real, ties shared
    m(idx).sum().backward()
    opt.step()
    assert dtorch.equal(m.head.weight, m.wte.weight) and not dtorch.equal(m.wte.weight, model.wte.weight)


def test_module_whose_class_is_not_imported_is_refused():
    mod = types.ModuleType("dtorch_test_models_tmp")
    exec("import dtorch\nclass Small(dtorch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
         "        self.fc = dtorch.nn.Linear(2, 2)\n", mod.__dict__)
    sys.modules[mod.__name__] = mod
    try:
        buf = io.BytesIO()
        dtorch.save(mod.Small(), buf)
    finally:
        del sys.modules[mod.__name__]
    with pytest.raises(SafetensorsError, match="import dtorch_test_models_tmp before dtorch.load"):
        dtorch.load(io.BytesIO(buf.getvalue()))


def test_unstorable_module_attribute_and_objects_are_named():
    model = nn.Linear(2, 2)
    model.act = lambda x: x
    with pytest.raises(TypeError, match="attribute 'act' of type function.*save its state_dict"):
        dtorch.save(model, io.BytesIO())
    with pytest.raises(TypeError, match="cannot store an object of type set"):
        dtorch.save({"s": {1}}, io.BytesIO())
