"""Every kind of bad config gives one exact, self-contained message (and the good configs pass)."""
from __future__ import annotations

import pathlib

import pytest

from dtorch.launcher import compose, config
from dtorch.launcher.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOOD = """\
name: t
job: digits_mlp
train:
  max_steps: 10
  batch_size: 8
"""

# (YAML that extends GOOD, or a whole file when it starts with "#whole"; the exact message)
BAD = [
    ("train:\n  max_step: 5\n  batch_size: 8\n", "train.max_step: unknown key; did you mean train.max_steps?"),
    ("distributed:\n  nprocs: 2\n", "distributed.nprocs: unknown key; did you mean distributed.nproc?"),
    ("checkpoint:\n  keep_lst: 2\n", "checkpoint.keep_lst: unknown key; did you mean checkpoint.keep_last?"),
    ("slurm:\n  gpus_per_nodes: 1\n", "slurm.gpus_per_nodes: unknown key; did you mean slurm.gpus_per_node?"),
    ("trian:\n  seed: 1\n", "trian: unknown key; did you mean train?"),
    ("train:\n  nproc: 2\n", "train.nproc: unknown key; did you mean distributed.nproc?"),
    ("optimizer:\n  learning_rate: 0.1\n",
     "optimizer.learning_rate: unknown key (valid keys in optimizer: name, lr, momentum, nesterov, weight_decay, "
     "betas, eps)"),
    ("zzz: 1\n", "zzz: unknown key (valid keys: name, job, description, output_dir, model, data, optimizer, "
     "scheduler, train, distributed, checkpoint, slurm)"),
    ("train:\n  batch_size: 0\n  max_steps: 10\n", "train.batch_size: expected an integer >= 1, got 0"),
    ("train:\n  batch_size: '8'\n  max_steps: 10\n", "train.batch_size: expected an integer >= 1, got '8'"),
    ("train:\n  batch_size: 8.0\n  max_steps: 10\n", "train.batch_size: expected an integer >= 1, got 8.0"),
    ("train:\n  batch_size: true\n  max_steps: 10\n", "train.batch_size: expected an integer >= 1, got true"),
    ("train:\n  batch_size: 8\n  max_steps: -3\n", "train.max_steps: expected an integer >= 1 or null, got -3"),
    ("train:\n  batch_size: 8\n  max_steps: 10\n  grad_accum_steps: 0\n",
     "train.grad_accum_steps: expected an integer >= 1, got 0"),
    ("train:\n  batch_size: 8\n  max_steps: 10\n  seed: -1\n",
     "train.seed: expected an integer >= 0 and <= 4294967295, got -1"),
    ("train:\n  batch_size: 8\n  max_steps: 10\n  log_every: 0\n", "train.log_every: expected an integer >= 1, got 0"),
    ("train:\n  max_steps: null\n", "train: set one of max_steps and epochs"),
    ("train:\n  batch_size: 8\n  max_steps: 10\n  epochs: 2\n", "train: set only one of max_steps (10) and epochs (2)"),
    ("#whole\nname: t\njob: x\ntrain:\n  max_steps: 10\n", "train.batch_size: required key missing"),
    ("#whole\nname: t\ntrain:\n  max_steps: 10\n  batch_size: 1\n", "job: required key missing"),
    ("#whole\n", "name: required key missing\njob: required key missing\ntrain.batch_size: required key missing"),
    ("train: 5\n", "train: expected a mapping, got 5"),
    ("name: null\n", "name: expected a name of letters, digits, '_', '.', '-', got null"),
    ("name: my job\n", "name: expected a name of letters, digits, '_', '.', '-', got 'my job'"),
    ("job: 'jobs/mlp.py'\n",
     "job: expected a module name such as 'digits_mlp' or 'pkg.module[:function]', got 'jobs/mlp.py'"),
    ("model: [1, 2]\n", "model: expected a mapping, got [1, 2]"),
    ("optimizer:\n  lr: 0\n", "optimizer.lr: expected a number > 0, got 0"),
    ("optimizer:\n  lr: .nan\n", "optimizer.lr: expected a number > 0, got nan"),
    ("optimizer:\n  lr: fast\n", "optimizer.lr: expected a number > 0, got 'fast'"),
    ("optimizer:\n  name: lamb\n", "optimizer.name: expected one of 'sgd', 'adam', 'adamw', got 'lamb'"),
    ("optimizer:\n  momentum: 1.0\n", "optimizer.momentum: expected a number >= 0 and < 1, got 1.0"),
    ("optimizer:\n  betas: [0.9]\n",
     "optimizer.betas: expected a list of two numbers (number >= 0 and < 1), got [0.9]"),
    ("optimizer:\n  nesterov: yes\n", "optimizer.nesterov: expected true or false, got 'yes'"),
    ("scheduler:\n  name: exp\n", "scheduler.name: expected one of 'constant', 'cosine', 'linear', 'step', got 'exp'"),
    ("scheduler:\n  warmup_steps: 1.5\n", "scheduler.warmup_steps: expected an integer >= 0, got 1.5"),
    ("distributed:\n  backend: gloo\n", "distributed.backend: expected one of 'mpi', 'nccl', got 'gloo'"),
    ("distributed:\n  nproc: 0\n", "distributed.nproc: expected an integer >= 1 and <= 1048576, got 0"),
    ("distributed:\n  timeout: -1\n", "distributed.timeout: expected a number > 0, got -1"),
    ("distributed:\n  bucket_cap_mb: 0\n", "distributed.bucket_cap_mb: expected a number > 0, got 0"),
    ("checkpoint:\n  every_steps: -5\n", "checkpoint.every_steps: expected an integer >= 0, got -5"),
    ("checkpoint:\n  async: 1\n", "checkpoint.async: expected true or false, got 1"),
    ("checkpoint:\n  dir: ''\n", "checkpoint.dir: expected a string, got ''"),
    ("slurm:\n  time: 1h\n", "slurm.time: expected a Slurm time such as '30', '01:30:00' or '2-00:00:00', got '1h'"),
    ("slurm:\n  time: 90\n", "slurm.time: expected a Slurm time such as '30', '01:30:00' or '2-00:00:00', got 90"),
    ("slurm:\n  gpus_per_node: -1\n", "slurm.gpus_per_node: expected an integer >= 0, got -1"),
    ("slurm:\n  extra: --qos=high\n",
     "slurm.extra: expected a list of sbatch options such as '--qos=normal', got '--qos=high'"),
    ("slurm:\n  extra: ['qos=high']\n",
     "slurm.extra: expected a list of sbatch options such as '--qos=normal', got ['qos=high']"),
    ("train:\n  batch_size: 8\n  max_steps: 10\n  seed: 1099511627776\n",
     "train.seed: expected an integer >= 0 and <= 4294967295, got 1099511627776"),
    ("distributed:\n  nproc: 100000000000000000000\n",
     "distributed.nproc: expected an integer >= 1 and <= 1048576, got 100000000000000000000"),
    ("output_dir: \"runs\\0x\"\n", "output_dir: expected a string, got 'runs\\x00x'"),
    ("data: {1: 2}\n", "data: expected a mapping, got a mapping"),
    ("slurm:\n  nodes: 3\n", "slurm.nodes: distributed.nproc (1) is not a multiple of slurm.nodes (3)"),
    ("slurm:\n  nodes: 2\ndistributed:\n  nproc: 3\n",
     "slurm.nodes: distributed.nproc (3) is not a multiple of slurm.nodes (2)"),
    ("slurm:\n  nodes: 2\n  ntasks_per_node: 2\ndistributed:\n  nproc: 2\n",
     "slurm.ntasks_per_node: slurm.nodes x slurm.ntasks_per_node = 2 x 2 = 4 ranks, but distributed.nproc is 2"),
]


def _write(tmp_path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: pathlib.Path, sets: list[str] = (), env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config.validate(compose.compose(path, sets, env={} if env is None else env), str(path))
    return info.value.problems


@pytest.mark.parametrize("override,message", BAD, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_config_message(tmp_path, override, message):
    _write(tmp_path, "good.yaml", GOOD)
    bad = _write(tmp_path, "bad.yaml", override if override.startswith("#whole") else "extends: good.yaml\n" + override)
    assert _problems(bad) == message.split("\n")


def test_table_is_big_enough():
    assert len(BAD) >= 30


def test_all_problems_reported_at_once(tmp_path):
    path = _write(tmp_path, "c.yaml", "name: t\ntrain:\n  max_step: 1\n  batch_size: 0\nslurm:\n  nodez: 1\n")
    assert _problems(path) == [
        "job: required key missing",
        "train.max_step: unknown key; did you mean train.max_steps?",
        "train.batch_size: expected an integer >= 1, got 0",
        "slurm.nodez: unknown key; did you mean slurm.nodes?",
    ]


@pytest.mark.parametrize("text,message", [
    ("name: t\ntrain: [1, 2\n", "{p}:3:1: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
    ("name: t\n  job: x\n", "{p}:2:6: YAML syntax error: mapping values are not allowed here"),
    ("name: t\nname: u\n", "{p}:2:1: YAML syntax error: duplicate key 'name' (first at line 1)"),
    ("name: t\n\tjob: x\n", "{p}:2:1: YAML syntax error: found character '\\t' that cannot start any token"),
    ("- a\n- b\n", "{p}: expected a mapping of keys at the top level, got a list"),
    ("a: !!python/object:os.system x\n", "{p}:1:4: YAML syntax error: could not determine a constructor for the tag "
                                          "'tag:yaml.org,2002:python/object:os.system'"),
    ("? [a, b]\n: 1\n", "{p}:1:3: YAML syntax error: a mapping key must be a scalar (a name or a number), not a "
                         "list or a mapping"),
    ("name: t\n? {a: 1}\n: 1\n", "{p}:2:3: YAML syntax error: a mapping key must be a scalar (a name or a number), "
                                 "not a list or a mapping"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "{p}: YAML document refused: nested more than 100 levels deep"),
    ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 120)),
     "{p}:21:41: YAML document refused: nested more than 100 levels deep"),
    ("a: &a [*a]\n", "{p}:1:4: YAML document refused: an alias refers to a node that contains it (recursive alias)"),
    ("a: &a\n  b: *a\n", "{p}:1:4: YAML document refused: an alias refers to a node that contains it (recursive "
                        "alias)"),
    ("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
     "{p}:6:4: YAML document refused: more than 100000 values once its aliases are expanded (an alias bomb?)"),
])
def test_malformed_yaml_names_file_line_column(tmp_path, text, message):
    path = _write(tmp_path, "m.yaml", text)
    assert _problems(path) == [message.format(p=path)]


def test_alias_bomb_is_refused_quickly(tmp_path, capsys):
    import time

    from dtorch.launcher import cli

    layers = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 30))
    path = _write(tmp_path, "bomb.yaml", GOOD + "data:\n  l0: &l0 lol\n" + layers.replace("\nl", "\n  l")
                  .replace("l1:", "  l1:", 1))
    start = time.monotonic()
    assert cli.main([str(path), "--dry-run"]) == 2
    assert time.monotonic() - start < 2
    assert "an alias bomb?" in capsys.readouterr().err


def test_aliases_within_the_limit_still_work(tmp_path):
    path = _write(tmp_path, "alias.yaml", GOOD + "model:\n  dims: &d [4, 8]\ndata:\n  dims: *d\n")
    cfg = config.validate(compose.compose(path, env={}), str(path))
    assert cfg["model"]["dims"] == cfg["data"]["dims"] == [4, 8]


def test_huge_nproc_on_the_command_line_exits_2(tmp_path, capsys):
    from dtorch.launcher import cli

    path = _write(tmp_path, "g.yaml", GOOD)
    assert cli.main([str(path), "--nproc", "100000000000000000000", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err == ("dtorch-run: distributed.nproc: expected an integer >= 1 and <= 1048576, "
                   "got 100000000000000000000\n")


def test_every_seed_the_schema_accepts_seeds_a_rank():
    """The worker seeds random, numpy and dtorch with train.seed: the schema's bound is numpy's."""
    from dtorch.launcher import schema
    from dtorch.launcher.worker import _seed

    kind = schema.SCHEMA["train"]["seed"].kind
    assert kind.ok(0) and kind.ok(schema.SEED_MAX) and not kind.ok(schema.SEED_MAX + 1)
    _seed(schema.SEED_MAX)
    with pytest.raises(ValueError):
        _seed(schema.SEED_MAX + 1)


@pytest.mark.parametrize("sets,message", [
    (["train.max_steps"], "--set 'train.max_steps': expected KEY.PATH=VALUE, e.g. train.max_steps=100"),
    (["=3"], "--set '=3': expected KEY.PATH=VALUE, e.g. train.max_steps=100"),
    (["train.max_steps.x=1"], "--set train.max_steps.x=1: train.max_steps is 10, not a mapping"),
    (["extends=a.yaml"], "--set extends=a.yaml: extends can only be given in a config file"),
    (["train.max_steps=ten"], "train.max_steps: expected an integer >= 1 or null, got 'ten'"),
])
def test_bad_set(tmp_path, sets, message):
    assert _problems(_write(tmp_path, "g.yaml", GOOD), sets) == [message]


def test_env_errors(tmp_path):
    path = _write(tmp_path, "e.yaml", GOOD + "data:\n  root: ${env:NO_SUCH_VAR}\n  other: ${foo}\n")
    assert _problems(path) == ["data.root: environment variable NO_SUCH_VAR is not set (used in ${env:NO_SUCH_VAR})"]
    path = _write(tmp_path, "f.yaml", GOOD + "data:\n  other: x${foo}\n")
    assert _problems(path) == [
        "data.other: unsupported interpolation '${foo}' (only ${env:VAR} and ${env:VAR,default})"]


def test_extends_errors(tmp_path):
    a = _write(tmp_path, "a.yaml", "extends: b.yaml\n")
    b = _write(tmp_path, "b.yaml", "extends: a.yaml\n")
    assert _problems(a) == [f"{b.resolve()}: extends: cycle a.yaml -> b.yaml -> a.yaml"]
    c = _write(tmp_path, "c.yaml", "extends: missing.yaml\n")
    assert _problems(c) == [f"{c.resolve()}: extends: {tmp_path.resolve() / 'missing.yaml'}: no such config file"]
    d = _write(tmp_path, "d.yaml", "extends: 3\n")
    assert _problems(d) == [f"{d}: extends: expected a file name or a list of file names, got 3"]
    assert _problems(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: no such config file"]


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "configs").glob("*.yaml") if p.name != "base.yaml"),
                         ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    cfg = config.validate(compose.compose(path, env={}), str(path))
    assert cfg["name"] and cfg["job"]
