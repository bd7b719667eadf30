"""extends chains, --set typing, ${env:...} interpolation and the YAML 1.2-style scalars."""
from __future__ import annotations

import pytest

from dtorch.launcher import compose, config, yamlio


def test_extends_merges_deeply_and_lists_replace(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  batch_size: 8\n  seed: 3\nmodel:\n  sizes: [1, 2, 3]\n")
    (tmp_path / "mid.yaml").write_text("extends: base.yaml\ntrain:\n  seed: 4\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "top.yaml").write_text("extends: ../mid.yaml\nname: t\njob: j\ntrain:\n  max_steps: 5\nmodel:\n"
                                  "  sizes: [9]\n")
    cfg = compose.compose(sub / "top.yaml", env={})
    assert cfg == {"train": {"batch_size": 8, "seed": 4, "max_steps": 5}, "model": {"sizes": [9]},
                   "name": "t", "job": "j"}


def test_extends_list_in_order_and_null_keeps_base(tmp_path):
    (tmp_path / "a.yaml").write_text("train:\n  seed: 1\n  batch_size: 2\n")
    (tmp_path / "b.yaml").write_text("train:\n  seed: 2\n")
    (tmp_path / "c.yaml").write_text("extends: [a.yaml, b.yaml]\ntrain:\n")
    assert compose.compose(tmp_path / "c.yaml", env={}) == {"train": {"seed": 2, "batch_size": 2}}


@pytest.mark.parametrize("text,value", [
    ("5", 5), ("1e-3", 0.001), ("0.5", 0.5), ("true", True), ("null", None), ("[1, 2]", [1, 2]),
    ("adamw", "adamw"), ("'5'", "5"), ("01:30:00", "01:30:00"), ("30:00", "30:00"), ("yes", "yes"),
    ("010", 10), ("", None), ("{a: 1}", {"a": 1}), ("a: b: c", "a: b: c"),
])
def test_set_values_are_typed(text, value):
    assert compose.apply_set({}, f"x.y={text}") == {"x": {"y": value}}


def test_set_overrides_file_and_creates_sections(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\njob: j\ntrain:\n  max_steps: 5\n  batch_size: 2\n")
    cfg = config.validate(compose.compose(path, ["train.max_steps=7", "model.hidden=32", "optimizer.lr=3e-4"],
                                          env={}))
    assert (cfg["train"]["max_steps"], cfg["model"], cfg["optimizer"]["lr"]) == (7, {"hidden": 32}, 3e-4)


def test_env_interpolation(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: ${env:STEPS}\nb: ${env:ROOT}/data\nc: ${env:MISSING,fallback}\nd: ${env:MISSING,}\n"
                    "e: ['${env:STEPS}']\nf: ${env:FLAG}\n")
    env = {"STEPS": "12", "ROOT": "/d", "FLAG": "false"}
    assert compose.compose(path, env=env) == {"a": 12, "b": "/d/data", "c": "fallback", "d": None, "e": [12],
                                              "f": False}


def test_resolved_config_round_trips(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\njob: j\ntrain:\n  max_steps: 5\n  batch_size: 2\nslurm:\n  time: '30:00'\n")
    cfg = config.validate(compose.compose(path, env={}))
    assert config.validate(yamlio.parse(yamlio.dump(cfg), "dump")) == cfg
