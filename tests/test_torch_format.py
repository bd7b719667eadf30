"""Checkpoints written by torch.save read without running pickle, files torch.load(weights_only=True) reads, and
crafted torch archives refused by name (a pickle's code never runs)."""
from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np
import pytest

import dtorch
from dtorch._torch_format import TorchFormatError, load_torch_zip, save_torch_zip


def _torch_bytes(torch, obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_reads_torch_model_and_optimizer_checkpoints(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "iter_num": 7, "best_val_loss": 1.25,
            "config": {"n_layer": 2, "bias": False, "name": "gpt"}, "view": torch.arange(12.0).view(3, 4)[:, 1]}
    got = load_torch_zip(_torch_bytes(torch, ckpt), "ckpt.pt")
    assert list(got["model"]) == list(model.state_dict()) and isinstance(got["model"], collections.OrderedDict)
    for k, v in model.state_dict().items():
        assert got["model"][k].dtype.name == str(v.dtype).split(".")[-1]
        np.testing.assert_array_equal(got["model"][k].numpy(), v.numpy())
    assert got["iter_num"] == 7 and got["best_val_loss"] == 1.25 and got["config"]["bias"] is False
    assert got["view"].tolist() == [1.0, 5.0, 9.0]
    state = got["optimizer"]["state"][0]
    np.testing.assert_array_equal(state["exp_avg"].numpy(), opt.state_dict()["state"][0]["exp_avg"].numpy())
    ours = dtorch.nn.Sequential(dtorch.nn.Linear(3, 4), dtorch.nn.BatchNorm1d(4), dtorch.nn.Linear(4, 2))
    ours.load_state_dict(got["model"])
    ours.eval(), model.eval()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(dtorch.tensor(x)).detach().numpy(), model(torch.tensor(x)).detach().numpy(),
                               rtol=1e-6)


def test_torch_loads_our_file_with_weights_only(torch):
    dtorch.manual_seed(0)
    model = dtorch.nn.Linear(3, 2)
    obj = {"model": model.state_dict(), "step": 3, "lr": 0.5, "names": ["a", "b"], "shape": (2, 3), "none": None,
           "big": 2 ** 40, "ints": dtorch.arange(4), "mask": dtorch.tensor([True, False]),
           "half": dtorch.ones(2, dtype=dtorch.float16)}
    back = torch.load(io.BytesIO(save_torch_zip(obj)), weights_only=True)
    assert back["step"] == 3 and back["names"] == ["a", "b"] and back["shape"] == (2, 3) and back["big"] == 2 ** 40
    np.testing.assert_array_equal(back["model"]["weight"].numpy(), model.weight.detach().numpy())
    assert back["ints"].dtype == torch.int64 and back["mask"].dtype == torch.bool and back["half"].dtype == torch.half
    with pytest.raises(TypeError, match="writes tensors, dicts, lists, tuples, numbers and strings, not set"):
        save_torch_zip({"s": {1, 2}})


class _Evil:
    def __reduce__(self):
        return (open, ("/tmp/dtorch_torch_format_marker", "w"))


def _archive(pkl: bytes, storages: dict | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        for k, v in (storages or {}).items():
            zf.writestr(f"archive/data/{k}", v)
    return buf.getvalue()


CRAFTED = [
    ("code_via_reduce", lambda: _archive(pickle.dumps(_Evil(), protocol=2)), "refusing to load global"),
    ("os_system_global", lambda: _archive(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R."), "os.system"),
    ("text_opcode", lambda: _archive(b"(I1\nI2\nl."), "opcode INT is not allowed"),
    ("no_stop", lambda: _archive(b"\x80\x02K\x01"), "malformed pickle"),
    ("memo_before_set", lambda: _archive(b"\x80\x02h\x05."), "memo entry 5"),
    ("two_data_pkl", lambda: _archive(b".") + b"", "one data.pkl"),
    ("missing_storage", lambda: save_torch_zip({"w": dtorch.ones(3)}).replace(b"archive/data/0", b"archive/data/9"),
     "storage '0' is missing"),
    ("short_storage", lambda: _archive(save_torch_zip({"w": dtorch.ones(3)}).split(b"data.pkl")[0][:0] or
                                       _pkl_of(save_torch_zip({"w": dtorch.ones(3)})), {"0": b"\x00" * 4}),
     "holds 4 bytes"),
    ("not_a_zip", lambda: b"PK\x03\x04 garbage", "not a readable zip"),
]


def _pkl_of(data: bytes) -> bytes:
    return zipfile.ZipFile(io.BytesIO(data)).read("archive/data.pkl")


@pytest.mark.parametrize("name,make,message", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_archives_are_refused(name, make, message, tmp_path):
    import os

    marker = "/tmp/dtorch_torch_format_marker"
    if os.path.exists(marker):
        os.unlink(marker)
    data = make()
    if name == "two_data_pkl":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("a/data.pkl", b".")
            zf.writestr("b/data.pkl", b".")
        data = buf.getvalue()
    with pytest.raises(TorchFormatError, match=message) as e:
        load_torch_zip(data, "crafted.pt")
    assert "crafted.pt" in str(e.value) and not os.path.exists(marker)


def test_dtorch_load_reads_torch_checkpoints_by_path_and_file_object(torch, tmp_path):
    model = torch.nn.Linear(3, 2)
    torch.save({"model": model.state_dict(), "iter_num": 5}, tmp_path / "ckpt.pt")
    for src in (tmp_path / "ckpt.pt", str(tmp_path / "ckpt.pt"), io.BytesIO((tmp_path / "ckpt.pt").read_bytes())):
        ckpt = dtorch.load(src, map_location="cpu")
        assert ckpt["iter_num"] == 5
        np.testing.assert_array_equal(ckpt["model"]["weight"].numpy(), model.weight.detach().numpy())
    (tmp_path / "ours.pt").write_bytes(save_torch_zip({"w": dtorch.ones(2)}))
    assert dtorch.load(tmp_path / "ours.pt")["w"].tolist() == [1.0, 1.0]


def test_save_torch_writes_what_torch_loads(torch, tmp_path):
    from dtorch.serialization import save_torch

    dtorch.manual_seed(0)
    model = dtorch.nn.Linear(4, 2)
    save_torch({"model": model.state_dict(), "epoch": 2}, tmp_path / "for_torch.pt")
    back = torch.load(tmp_path / "for_torch.pt", weights_only=True)
    ref = torch.nn.Linear(4, 2)
    ref.load_state_dict(back["model"])
    np.testing.assert_array_equal(ref.weight.detach().numpy(), model.weight.detach().numpy())
    buf = io.BytesIO()
    save_torch([dtorch.zeros(1)], buf)
    assert torch.load(io.BytesIO(buf.getvalue()), weights_only=True)[0].tolist() == [0.0]
