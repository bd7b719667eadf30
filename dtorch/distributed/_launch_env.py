"""torchrun's environment under mpiexec and srun.

torchrun sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` before the script starts, and torch programs read them before
(or instead of) asking the process group (nanoGPT: ``ddp = int(os.environ.get('RANK', -1)) != -1``).
Under MPICH's hydra and under Slurm steps the same facts are in PMI/Slurm variables; ``import dtorch``
copies them over (never overwriting a variable that is already set), so such programs see the launch
they are in. A Slurm batch script that is not a step (no ``srun``) is left alone: its ``SLURM_NTASKS``
describes the allocation, not this process.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping

DEFAULT_MASTER_PORT = "29500"  # torchrun's


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        if env.get(name, "") != "":
            return env[name]
    return None


def expand_hostlist(hostlist: str) -> list[str]:
    """Slurm's compressed host list (``node[01-03,7],gpu1``) as names, in order."""
    hosts: list[str] = []
    for prefix, ranges, tail in re.findall(r"([^,\[]+)(?:\[([^\]]*)\])?([^,]*)", hostlist):
        if not ranges:
            hosts.append(prefix + tail)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            if not hi:
                hosts.append(prefix + lo + tail)
                continue
            hosts.extend(f"{prefix}{i:0{len(lo)}d}{tail}" for i in range(int(lo), int(hi) + 1))
    return hosts


def _slurm_tasks_on_node(tasks_per_node: str, node_id: int) -> int | None:
    """Tasks on node ``node_id`` from ``SLURM_STEP_TASKS_PER_NODE`` (``2(x3),1``)."""
    counts: list[int] = []
    for item in tasks_per_node.split(","):
        m = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", item.strip())
        if m is None:
            return None
        counts.extend([int(m.group(1))] * int(m.group(2) or 1))
    return counts[node_id] if 0 <= node_id < len(counts) else None


def launch_env(env: Mapping[str, str]) -> dict[str, str]:
    """The torchrun variables this launch implies (empty outside mpiexec/srun)."""
    if _first(env, "PMI_RANK", "OMPI_COMM_WORLD_RANK") is not None:
        out = {"RANK": _first(env, "PMI_RANK", "OMPI_COMM_WORLD_RANK"),
               "WORLD_SIZE": _first(env, "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"),
               "LOCAL_RANK": _first(env, "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"),
               "LOCAL_WORLD_SIZE": _first(env, "MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")}
    elif _first(env, "SLURM_STEP_NUM_TASKS") is not None and _first(env, "SLURM_PROCID") is not None:
        out = {"RANK": env["SLURM_PROCID"], "WORLD_SIZE": env["SLURM_STEP_NUM_TASKS"],
               "LOCAL_RANK": _first(env, "SLURM_LOCALID")}
    else:
        return {}
    if out.get("LOCAL_WORLD_SIZE") is None:
        per_node, node = _first(env, "SLURM_STEP_TASKS_PER_NODE"), _first(env, "SLURM_NODEID")
        if per_node is not None and node is not None and node.isdigit():
            n = _slurm_tasks_on_node(per_node, int(node))
            out["LOCAL_WORLD_SIZE"] = None if n is None else str(n)
    node_id = _first(env, "SLURM_NODEID")
    nodelist = _first(env, "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST")
    if nodelist is not None and expand_hostlist(nodelist):
        out["MASTER_ADDR"] = expand_hostlist(nodelist)[0]
    elif out.get("LOCAL_WORLD_SIZE") is not None and out["LOCAL_WORLD_SIZE"] == out["WORLD_SIZE"]:
        out["MASTER_ADDR"] = "127.0.0.1"  # every rank on this host
    if node_id is not None:
        out["GROUP_RANK"] = node_id
    elif out.get("LOCAL_WORLD_SIZE") is not None and out["LOCAL_WORLD_SIZE"] == out["WORLD_SIZE"]:
        out["GROUP_RANK"] = "0"
    out["MASTER_PORT"] = DEFAULT_MASTER_PORT
    return {k: v for k, v in out.items() if v is not None}


def apply_launch_env(env: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set the torchrun variables this launch implies where they are unset; returns what was set."""
    added = {k: v for k, v in launch_env(env).items() if k not in env}
    env.update(added)
    return added


def is_torchelastic_launched() -> bool:
    """torch's test: whether torchrun (torch elastic) started this process."""
    return os.getenv("TORCHELASTIC_RUN_ID") is not None


def get_default_backend_for_device(device) -> str:
    """torch's default backend per device type: 'gloo' for cpu (MPI here), 'nccl' for cuda."""
    kind = device if isinstance(device, str) else getattr(device, "type", None)
    kind = None if kind is None else kind.split(":")[0]
    backends = {"cpu": "gloo", "cuda": "nccl"}
    if kind not in backends:
        raise ValueError(f"Default backend not registered for device : {device}")
    return backends[kind]
