"""torchrun's variables under mpiexec and srun: `import dtorch` sets RANK, LOCAL_RANK, WORLD_SIZE... from PMI/Slurm,
so a script written for torchrun (nanoGPT's `ddp = int(os.environ.get('RANK', -1)) != -1`, the DDP tutorial's
`int(os.environ["LOCAL_RANK"])`) really runs as DDP under plain `mpiexec -n 2`."""
from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import dtorch.distributed as dist
from dtorch.distributed._launch_env import apply_launch_env, expand_hostlist, launch_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))

HYDRA = {"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2", "PMI_FD": "9"}
SRUN = {"SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "4", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2)", "SLURM_STEP_NODELIST": "gpu[07-08]", "SLURM_STEP_ID": "0",
        "SLURM_JOB_NODELIST": "gpu[07-08]"}


def test_hydra_launch_sets_torchrun_variables():
    assert launch_env(HYDRA) == {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                                 "MASTER_ADDR": "127.0.0.1", "GROUP_RANK": "0", "MASTER_PORT": "29500"}


def test_srun_step_sets_torchrun_variables():
    assert launch_env(SRUN) == {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                                "MASTER_ADDR": "gpu07", "GROUP_RANK": "1", "MASTER_PORT": "29500"}


def test_srun_with_pmi2_prefers_pmi_ranks():
    env = dict(SRUN, PMI_RANK="2", PMI_SIZE="4")
    got = launch_env(env)
    assert (got["RANK"], got["WORLD_SIZE"], got["LOCAL_RANK"], got["LOCAL_WORLD_SIZE"]) == ("2", "4", "1", "2")


def test_open_mpi_launch():
    env = {"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_LOCAL_RANK": "0",
           "OMPI_COMM_WORLD_LOCAL_SIZE": "3"}
    assert launch_env(env)["WORLD_SIZE"] == "3" and launch_env(env)["MASTER_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize("env", [{}, {"SLURM_JOB_ID": "5", "SLURM_NTASKS": "4", "SLURM_PROCID": "0"}],
                         ids=["no-launch", "sbatch-script-not-a-step"])
def test_outside_a_launch_nothing_is_set(env):
    assert launch_env(env) == {}


def test_variables_already_set_are_kept():
    env = dict(HYDRA, MASTER_PORT="12355", RANK="1")
    added = apply_launch_env(env)
    assert env["MASTER_PORT"] == "12355" and "MASTER_PORT" not in added and "RANK" not in added
    assert env["LOCAL_RANK"] == "1" and added["WORLD_SIZE"] == "2"


@pytest.mark.parametrize("hostlist,hosts", [
    ("node1", ["node1"]), ("a[1-3]", ["a1", "a2", "a3"]), ("n[08-10,15],gpu", ["n08", "n09", "n10", "n15", "gpu"]),
    ("r1n[1-2]-ib", ["r1n1-ib", "r1n2-ib"]),
])
def test_expand_hostlist(hostlist, hosts):
    assert expand_hostlist(hostlist) == hosts


def test_default_backend_for_device_and_elastic():
    assert dist.get_default_backend_for_device("cpu") == "gloo"
    assert dist.get_default_backend_for_device("cuda:1") == "nccl"
    with pytest.raises(ValueError, match="Default backend not registered for device : meta"):
        dist.get_default_backend_for_device("meta")
    assert dist.is_torchelastic_launched() is (os.environ.get("TORCHELASTIC_RUN_ID") is not None)


TORCHRUN_SCRIPT = '''
import os
import dtorch as torch
import dtorch.distributed as dist
from dtorch.nn.parallel import DistributedDataParallel as DDP

ddp = int(os.environ.get("RANK", -1)) != -1
assert ddp, "RANK is not set under mpiexec"
local_rank = int(os.environ["LOCAL_RANK"])
dist.init_process_group(backend=dist.get_default_backend_for_device("cpu"), init_method="env://")
assert dist.get_rank() == int(os.environ["RANK"]) and dist.get_world_size() == int(os.environ["WORLD_SIZE"])
torch.manual_seed(0)
model = DDP(torch.nn.Linear(8, 4))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
torch.manual_seed(100 + dist.get_rank())  # each rank its own data: only gradient averaging keeps them equal
for _ in range(3):
    opt.zero_grad()
    model(torch.randn(16, 8)).pow(2).mean().backward()
    opt.step()
w = model.module.weight.detach().clone()
gathered = [torch.zeros_like(w) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, w)
assert all(torch.equal(g, gathered[0]) for g in gathered), "ranks diverged: not DDP"
print(f"rank {dist.get_rank()} local {local_rank} of {os.environ['LOCAL_WORLD_SIZE']} ok", flush=True)
dist.destroy_process_group()
'''


@pytest.mark.skipif(MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
                    reason="needs mpi4py and mpiexec (pip install 'dtorch[mpi]')")
def test_torchrun_style_script_is_ddp_under_plain_mpiexec(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TORCHRUN_SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR")}
    p = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120, env=dict(env, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, p.stdout + p.stderr
    found = sorted(re.findall(r"rank \d local \d of \d ok", p.stdout))  # the ranks' lines may interleave
    assert found == ["rank 0 local 0 of 2 ok", "rank 1 local 1 of 2 ok"], p.stdout
