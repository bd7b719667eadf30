"""The wheel built from this checkout, installed into a fresh virtual environment outside it, runs
`dtorch-run digits_mlp` (a config bundled by name) and `dtorch-run schema`.

The venv has no access to the checkout or the project's venv (no --system-site-packages, no PYTHONPATH): a file
missing from the wheel, or a dependency missing from pyproject.toml, fails here. tests/run.py runs it in its
`wheel` phase; pip's cache keeps the install to seconds after the first run.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from launcher_helpers import LAUNCH_VARS, ROOT

pytestmark = pytest.mark.wheel
SOURCES = ("pyproject.toml", "README.md", "dtorch", "launcher", "jobs", "configs", "slurm")
STEPS = ["--set", "train.epochs=null", "--set", "train.max_steps=3", "--set", "train.log_every=1"]


def _run(cmd: list, cwd: pathlib.Path, env: dict[str, str] | None = None, timeout: float = 300,
         ) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> pathlib.Path:
    """A fresh venv holding the dtorch wheel with its `mpi` and `examples` extras (and nothing of the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: setuptools builds in the source tree, and files left in its build/ go into wheels
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    # no PYTHONPATH (tests/run.py sets it to the checkout): the new venv's pip would take the checkout's
    # dtorch.egg-info for an installed dtorch and skip the wheel
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", src], cwd=tmp, env=env)
    (wheel,) = (tmp / "dist").glob("dtorch-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", tmp / "venv"], cwd=tmp, env=env)
    python = tmp / "venv" / "bin" / "python"
    # this venv's pip installs into the new one (--python): no second pip to bootstrap; compiling the
    # dependencies' .pyc files would take longer than the test
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-compile", f"{wheel}[mpi,examples]"],
         cwd=tmp, env=env)
    return tmp / "venv"


def _user_env(venv: pathlib.Path) -> dict[str, str]:
    """A user's shell with the venv activated: no launch variables, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCH_VARS) and k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    env["VIRTUAL_ENV"] = str(venv)
    return env


def test_the_wheel_holds_the_launcher_jobs_and_configs(venv, tmp_path):
    code = ("import dtorch, dtorch.launcher.cli as cli, dtorch.jobs.training, dtorch.launcher.submit as s; "
            "print(dtorch.__file__); print(sorted(p.name for p in cli.BUNDLED_CONFIGS.glob('*.yaml'))); "
            "print(s.TEMPLATE.is_file())")
    out = _run([venv / "bin" / "python", "-c", code], cwd=tmp_path, env=_user_env(venv)).stdout.splitlines()
    assert pathlib.Path(out[0]).is_relative_to(venv), out
    assert out[1] == str(sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
    assert out[2] == "True"


def test_dtorch_run_a_bundled_config_outside_the_checkout(venv, tmp_path):
    env = _user_env(venv)
    schema = _run(["dtorch-run", "schema"], cwd=tmp_path, env=env).stdout
    assert "| `train.max_steps` |" in schema
    r = _run(["dtorch-run", "digits_mlp", *STEPS], cwd=tmp_path, env=env, timeout=120)
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    assert result["world_size"] == 2 and result["result"]["step"] == 3, r.stdout + r.stderr
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert (run_dir / "checkpoints" / "step_00000003").is_dir()
    assert (run_dir / "loss.png").is_file()  # matplotlib comes with the examples extra
    assert not (run_dir / "tb").exists()  # tensorboard does not (an extra of its own)
    assert "[rank 0] summary: step 3/3" in r.stdout
