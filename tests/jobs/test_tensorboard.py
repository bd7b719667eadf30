"""dtorch.utils.tensorboard.SummaryWriter: what it writes, read back with TensorBoard's own EventAccumulator."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

import dtorch

pytest.importorskip("tensorboard", reason="pip install 'dtorch[tensorboard]'")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # noqa: E402

from dtorch.utils.tensorboard import SummaryWriter  # noqa: E402


def _read(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_scalars_read_back_with_their_steps_and_tags(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(5):
            w.add_scalar("train/loss", 1.0 / (step + 1), step)
            w.add_scalar("train/lr", dtorch.tensor(0.1 * step), step, walltime=1000.0 + step)
        w.add_scalar("np", np.float32(2.5), 7, new_style=True)
    acc = _read(tmp_path)
    assert sorted(acc.Tags()["scalars"]) == ["train/loss", "train/lr"]
    assert acc.Tags()["tensors"] == ["np"]  # new_style: a tensor with the scalars plugin's metadata
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [0, 1, 2, 3, 4]
    assert [e.value for e in loss] == pytest.approx([1.0, 0.5, 1 / 3, 0.25, 0.2])
    lr = acc.Scalars("train/lr")
    assert [e.value for e in lr] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert [e.wall_time for e in lr] == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
    (new,) = acc.Tensors("np")
    assert (new.step, new.tensor_proto.float_val[0]) == (7, 2.5)


def test_a_scalar_must_be_one_value(tmp_path):
    with SummaryWriter(tmp_path) as w, pytest.raises(AssertionError, match="Tensor should contain one element"):
        w.add_scalar("x", dtorch.ones(3), 0)


def test_add_scalars_writes_one_run_per_series(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(3):
            w.add_scalars("run/loss", {"train": step, "val": 2 * step}, step)
    for name, scale in (("run_loss_train", 1), ("run_loss_val", 2)):
        events = _read(tmp_path / name).Scalars("run/loss")
        assert [(e.step, e.value) for e in events] == [(s, scale * s) for s in range(3)]


def test_histogram_of_a_tensor_and_an_array(tmp_path):
    values = np.random.default_rng(0).normal(size=1000)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("weights", dtorch.from_numpy(values), 3)
        w.add_histogram("ints", np.arange(10), 4, bins=5)
    acc = _read(tmp_path)
    (h,) = acc.Histograms("weights")
    hv = h.histogram_value
    assert (h.step, hv.num, sum(hv.bucket)) == (3, 1000, 1000)
    assert (hv.min, hv.max, hv.sum, hv.sum_squares) == pytest.approx(
        (values.min(), values.max(), values.sum(), values.dot(values)))
    assert hv.bucket_limit[-1] >= values.max()
    (ints,) = acc.Histograms("ints")
    assert list(ints.histogram_value.bucket) == [0, 2, 2, 2, 2, 2] and ints.histogram_value.bucket_limit[-1] == 9


def test_text_and_hparams(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("config", "lr: 0.1", 2)
        w.add_hparams({"lr": 0.1, "optimizer": "adamw", "layers": 2}, {"hparam/accuracy": 0.97}, run_name="trial")
    (t,) = _read(tmp_path).Tensors("config/text_summary")
    assert (t.step, t.tensor_proto.string_val) == (2, [b"lr: 0.1"])
    trial = _read(tmp_path / "trial")
    assert [e.value for e in trial.Scalars("hparam/accuracy")] == pytest.approx([0.97])
    start = HParamsPluginData.FromString(trial.SummaryMetadata("_hparams_/session_start_info").plugin_data.content)
    hp = start.session_start_info.hparams
    assert (hp["lr"].number_value, hp["optimizer"].string_value, hp["layers"].number_value) == (0.1, "adamw", 2)
    exp = HParamsPluginData.FromString(trial.SummaryMetadata("_hparams_/experiment").plugin_data.content)
    assert [m.name.tag for m in exp.experiment.metric_infos] == ["hparam/accuracy"]
    with pytest.raises(TypeError, match="hparam_dict and metric_dict should be dictionary."):
        SummaryWriter(tmp_path / "x").add_hparams([("lr", 1)], {})


def test_purge_step_hides_the_steps_of_a_crashed_run(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(10):
            w.add_scalar("loss", float(step), step)
    # event files sort by name, "events.out.tfevents.SECONDS.HOST.PID.N": the restarted run starts a second later
    time.sleep(1.05)
    with SummaryWriter(tmp_path, purge_step=5) as w:  # restarted from a checkpoint at step 4
        for step in range(5, 8):
            w.add_scalar("loss", 100.0 + step, step)
    events = _read(tmp_path).Scalars("loss")
    assert [(e.step, e.value) for e in events] == [(s, float(s)) for s in range(5)] + [(5, 105.0), (6, 106.0),
                                                                                      (7, 107.0)]


def test_flush_close_and_reopen(tmp_path):
    w = SummaryWriter(tmp_path, flush_secs=3600)
    w.add_scalar("a", 1.0, 0)
    w.flush()
    assert [e.value for e in _read(tmp_path).Scalars("a")] == [1.0]
    w.close()
    w.close()  # a second close does nothing
    w.add_scalar("a", 2.0, 1)  # opens a new event file
    w.close()
    assert [e.value for e in _read(tmp_path).Scalars("a")] == [1.0, 2.0]
    assert w.get_logdir() == str(tmp_path)


def test_default_log_dir_is_runs_date_host_comment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with SummaryWriter(comment="_lr0.1") as w:
        assert w.get_logdir().startswith("runs/") and w.get_logdir().endswith("_lr0.1")
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_no_torch_and_a_clear_error_without_tensorboard():
    code = "import sys, dtorch.utils.tensorboard; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr
    code = "import sys; sys.modules['tensorboard'] = None; import dtorch.utils.tensorboard"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1
    assert ("ImportError: dtorch.utils.tensorboard needs the tensorboard package: pip install 'dtorch[tensorboard]'"
            in r.stderr)
