"""`dtorch-run submit|status|cancel|logs`: render slurm/job.sbatch (installed with dtorch), call sbatch, wrap
squeue/scancel.

A submission leaves three files in OUTPUT_DIR/slurm/: the resolved config and the rendered
script (NAME-TIMESTAMP.yaml/.sbatch), then the job's logs (NAME-JOBID.out/.err).
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import slurm, yamlio
from .config import ranks_per_node
from .errors import ConfigError

TEMPLATE = Path(slurm.__file__).parent / "job.sbatch"


def check_for_slurm(cfg: dict) -> None:
    """Rules that only matter when the config goes to Slurm."""
    slurm = cfg["slurm"]
    if cfg["distributed"]["backend"] == "nccl" and slurm["gpus_per_node"] < ranks_per_node(cfg):
        raise ConfigError(f"slurm.gpus_per_node: backend 'nccl' needs one GPU per rank "
                          f"({ranks_per_node(cfg)} per node), got {slurm['gpus_per_node']}")


def _option_line(option: str) -> str:
    return option if option.startswith("#SBATCH") else f"#SBATCH {option}"


def render(cfg: dict, config_path: Path, log_dir: Path, workdir: Path, template: Path = TEMPLATE) -> str:
    """The sbatch script for a validated config (paths absolute: the job may start anywhere)."""
    slurm = cfg["slurm"]
    optional = [f"--partition={slurm['partition']}" if slurm["partition"] else "",
                f"--account={slurm['account']}" if slurm["account"] else "",
                f"--gpus-per-node={slurm['gpus_per_node']}" if slurm["gpus_per_node"] else ""]
    values = {
        "job_name": cfg["name"], "nodes": slurm["nodes"], "ntasks_per_node": ranks_per_node(cfg),
        "cpus_per_task": slurm["cpus_per_task"], "time": slurm["time"],
        "optional_lines": "".join(_option_line(o) + "\n" for o in optional if o),
        "extra_lines": "\n".join(_option_line(o) for o in slurm["extra"]),
        "log_dir": log_dir, "workdir": workdir,
        "python": shlex.quote(sys.executable), "config": shlex.quote(str(config_path)),
    }
    text = template.read_text(encoding="utf-8")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(values[m.group(1)]), text)


def plan(cfg: dict, cwd: Path, now: float | None = None) -> tuple[Path, Path, str]:
    """Where the resolved config and the script go, and the script's text."""
    log_dir = (cwd / cfg["output_dir"] / "slurm").resolve()
    stem = f"{cfg['name']}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
    config_path, script_path = log_dir / f"{stem}.yaml", log_dir / f"{stem}.sbatch"
    return config_path, script_path, render(cfg, config_path, log_dir, cwd.resolve())


def _slurm_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"{name} not found: is Slurm installed here? (slurm/dev-cluster.sh start sets up a "
                          "single-node cluster)")
    return path


def submit(cfg: dict, config_path: Path, script_path: Path, script: str) -> str:
    """Write the files and sbatch the script; the job id. Raises RuntimeError when sbatch refuses."""
    sbatch = _slurm_tool("sbatch")
    script_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yamlio.dump(cfg), encoding="utf-8")
    script_path.write_text(script, encoding="utf-8")
    r = subprocess.run([sbatch, "--parsable", str(script_path)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"sbatch failed: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout.strip().split(";")[0]


def status(job_id: str) -> int:
    r = subprocess.run([_slurm_tool("squeue"), "-h", "-j", job_id, "-o", "%i %j %T %M %D %R"],
                       capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        print("JOBID NAME STATE TIME NODES REASON")
        print(r.stdout.strip())
        return 0
    state = _scontrol_fields(job_id).get("JobState")
    if state:
        print(f"{job_id} {state}")
        return 0
    print(f"dtorch-run: job {job_id} is not known to Slurm (finished long ago, or never existed)", file=sys.stderr)
    return 1


def cancel(job_id: str) -> int:
    r = subprocess.run([_slurm_tool("scancel"), job_id])
    return 0 if r.returncode == 0 else 1


def _scontrol_fields(job_id: str) -> dict[str, str]:
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        return {}
    r = subprocess.run([scontrol, "show", "job", job_id], capture_output=True, text=True)
    return dict(re.findall(r"(\w+)=(\S+)", r.stdout)) if r.returncode == 0 else {}


def log_files(job_id: str, output_dir: Path) -> list[Path]:
    """The job's stdout/stderr files: from Slurm while it knows the job, else OUTPUT_DIR/slurm/*-JOBID.*"""
    fields = _scontrol_fields(job_id)
    found = [Path(fields[k]) for k in ("StdOut", "StdErr") if k in fields]
    if not found:
        found = sorted((output_dir / "slurm").glob(f"*-{job_id}.out")) + sorted(
            (output_dir / "slurm").glob(f"*-{job_id}.err"))
    return list(dict.fromkeys(p for p in found if p.is_file()))


def logs(job_id: str, output_dir: Path) -> int:
    files = log_files(job_id, output_dir)
    if not files:
        print(f"dtorch-run: no log files for job {job_id} (looked in {output_dir / 'slurm'})", file=sys.stderr)
        return 1
    for path in files:
        print(f"==> {path} <==")
        print(path.read_text(encoding="utf-8", errors="replace"), end="")
    return 0
