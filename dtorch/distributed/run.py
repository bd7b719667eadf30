"""``python -m dtorch.distributed.run`` (torchrun's module name): hands the command line to dtorch-run's
script mode, which starts the ranks under mpiexec or srun. torchrun's rendezvous flags are accepted and left
to MPI (``--nproc-per-node``, ``--nnodes``, ``--standalone``, ``--node-rank``, ``--master-addr/port``)."""
from __future__ import annotations

import os
import sys

_DROPPED_WITH_VALUE = ("--rdzv-backend", "--rdzv_backend", "--rdzv-endpoint", "--rdzv_endpoint", "--rdzv-id",
                       "--rdzv_id", "--max-restarts", "--max_restarts", "--monitor-interval", "--monitor_interval")


_KEPT_WITH_VALUE = ("--nproc-per-node", "--nproc_per_node", "--nproc", "-n", "--nnodes", "--node-rank", "--node_rank",
                    "--master-addr", "--master_addr", "--master-port", "--master_port")


def command(argv: list[str]) -> list[str]:
    """The dtorch-run command for a torchrun command line."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        name = a.split("=", 1)[0]
        takes_value = "=" not in a and name in _DROPPED_WITH_VALUE + _KEPT_WITH_VALUE
        if not a.startswith("-"):
            return [sys.executable, "-m", "dtorch.launcher", *out, *argv[i:]]
        if name not in _DROPPED_WITH_VALUE:
            out += argv[i:i + 2] if takes_value else [a]
        i += 2 if takes_value else 1
    return [sys.executable, "-m", "dtorch.launcher", *out]


def main(argv: list[str] | None = None) -> None:
    cmd = command(sys.argv[1:] if argv is None else argv)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
