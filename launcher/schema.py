"""The config schema: every key, its type/range, default and meaning, in one table.

``config.validate`` enforces it; ``dtorch-run schema`` prints it as the Markdown
table kept in launcher/README.md (a test checks the two agree).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

REQUIRED = object()  # default of a key that must be given


@dataclass(frozen=True)
class Kind:
    expect: str                      # what the error says was expected: "an integer >= 1"
    ok: Callable[[Any], bool]


@dataclass(frozen=True)
class Key:
    kind: Kind
    default: Any = REQUIRED
    doc: str = ""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def integer(min: int | None = None, max: int | None = None) -> Kind:
    bounds = [f">= {min}"] * (min is not None) + [f"<= {max}"] * (max is not None)
    return Kind(" ".join(["an integer", " and ".join(bounds)]).strip(),
                lambda v: _is_int(v) and (min is None or v >= min) and (max is None or v <= max))


def number(min: float | None = None, gt: float | None = None, lt: float | None = None) -> Kind:
    bounds = [f">= {min}"] * (min is not None) + [f"> {gt}"] * (gt is not None) + [f"< {lt}"] * (lt is not None)
    return Kind(" ".join(["a number", " and ".join(bounds)]).strip(),
                lambda v: _is_num(v) and (min is None or v >= min) and (gt is None or v > gt)
                and (lt is None or v < lt))


def string(pattern: str | None = None, what: str = "a string") -> Kind:
    rx = re.compile(pattern) if pattern else None
    return Kind(what, lambda v: isinstance(v, str) and v != "" and "\0" not in v   # NUL: no path or name holds one
                and (rx is None or rx.fullmatch(v) is not None))


def boolean() -> Kind:
    return Kind("true or false", lambda v: isinstance(v, bool))


def choice(*values: str) -> Kind:
    return Kind("one of " + ", ".join(repr(v) for v in values), lambda v: isinstance(v, str) and v in values)


def nullable(kind: Kind) -> Kind:
    return Kind(kind.expect + " or null", lambda v: v is None or kind.ok(v))


def pair(inner: Kind) -> Kind:
    return Kind(f"a list of two numbers ({inner.expect[2:]})",
                lambda v: isinstance(v, list) and len(v) == 2 and all(inner.ok(x) for x in v))


def mapping() -> Kind:
    return Kind("a mapping", lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v))


SBATCH_OPTION = r"(#SBATCH\s+)?--?[A-Za-z][^\n]*"
SLURM_TIME = r"\d+|\d+:\d\d|\d+:\d\d:\d\d|\d+-\d+|\d+-\d+:\d\d|\d+-\d+:\d\d:\d\d"
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
SEED_MAX = 2**32 - 1      # numpy.random.seed's range (every rank seeds random, numpy and dtorch with it)
NPROC_MAX = 2**20         # mpiexec -n and srun -n read a C int: larger counts wrap around
JOB = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?"

sbatch_lines = Kind("a list of sbatch options such as '--qos=normal'",
                    lambda v: isinstance(v, list) and all(isinstance(x, str) and re.fullmatch(SBATCH_OPTION, x)
                                                          for x in v))

# Top-level keys; a dict value is a section of keys.
SCHEMA: dict[str, Key | dict[str, Key]] = {
    "name": Key(string(NAME, "a name of letters, digits, '_', '.', '-'"), doc="job name: run directory, Slurm job"),
    "job": Key(string(JOB, "a module name such as 'digits_mlp' or 'pkg.module[:function]'"),
               doc="a module of dtorch.jobs (`digits_mlp`, from jobs/) or an importable `pkg.module[:function]`; "
                   "its `main(config) -> dict` runs on every rank"),
    "description": Key(nullable(string()), None, "free text"),
    "output_dir": Key(string(), "runs", "run directories go to OUTPUT_DIR/NAME-ID (relative to the working directory)"),
    "model": Key(mapping(), {}, "free-form, handed to the job"),
    "data": Key(mapping(), {}, "free-form, handed to the job"),
    "optimizer": {
        "name": Key(choice("sgd", "adam", "adamw"), "sgd", "optimizer class"),
        "lr": Key(number(gt=0), 0.01, "learning rate"),
        "momentum": Key(number(min=0, lt=1), 0.0, "SGD momentum"),
        "nesterov": Key(boolean(), False, "SGD Nesterov momentum"),
        "weight_decay": Key(number(min=0), 0.0, "weight decay"),
        "betas": Key(pair(number(min=0, lt=1)), [0.9, 0.999], "Adam betas"),
        "eps": Key(number(gt=0), 1e-8, "Adam epsilon"),
    },
    "scheduler": {
        "name": Key(choice("constant", "cosine", "linear", "step"), "constant", "learning-rate schedule"),
        "warmup_steps": Key(integer(min=0), 0, "linear warm-up steps"),
        "min_lr": Key(number(min=0), 0.0, "final learning rate (cosine, linear)"),
        "step_size": Key(integer(min=1), 1000, "steps between decays (step)"),
        "gamma": Key(number(gt=0), 0.1, "decay factor (step)"),
    },
    "train": {
        "max_steps": Key(nullable(integer(min=1)), None, "optimizer steps; exactly one of max_steps and epochs"),
        "epochs": Key(nullable(integer(min=1)), None, "passes over the data"),
        "batch_size": Key(integer(min=1), doc="samples per rank per micro-batch"),
        "grad_accum_steps": Key(integer(min=1), 1, "micro-batches per optimizer step"),
        "clip_norm": Key(nullable(number(gt=0)), None, "clip the gradient norm to this (null: no clipping)"),
        "seed": Key(integer(min=0, max=SEED_MAX), 0, "seed on every rank (jobs derive per-rank streams from it)"),
        "log_every": Key(integer(min=1), 10, "steps between metric lines"),
    },
    "distributed": {
        "backend": Key(choice("mpi", "nccl"), "mpi", "`mpi` (CPU, numpy) or `nccl` (CUDA, CuPy)"),
        "nproc": Key(integer(min=1, max=NPROC_MAX), 1, "ranks (processes) in total"),
        "bucket_cap_mb": Key(number(gt=0), 25, "DDP gradient bucket size, MB"),
        "timeout": Key(number(gt=0), 600, "seconds a collective may wait before the job aborts"),
    },
    "checkpoint": {
        "dir": Key(string(), "checkpoints", "relative to the run directory"),
        "every_steps": Key(integer(min=0), 0, "steps between checkpoints (0: only at the end and on signals)"),
        "keep_last": Key(integer(min=1), 2, "checkpoints kept"),
        "async": Key(boolean(), False, "write checkpoints in a background thread"),
    },
    "slurm": {
        "partition": Key(nullable(string()), None, "`#SBATCH --partition` (null: the default partition)"),
        "nodes": Key(integer(min=1), 1, "`--nodes`"),
        "ntasks_per_node": Key(nullable(integer(min=1)), None, "`--ntasks-per-node` (null: nproc / nodes)"),
        "cpus_per_task": Key(integer(min=1), 1, "`--cpus-per-task`"),
        "gpus_per_node": Key(integer(min=0), 0, "`--gpus-per-node` (0: none)"),
        "time": Key(string(SLURM_TIME, "a Slurm time such as '30', '01:30:00' or '2-00:00:00'"), "00:30:00",
                    "`--time`"),
        "account": Key(nullable(string()), None, "`--account`"),
        "extra": Key(sbatch_lines, [], "more `#SBATCH` lines, e.g. `['--qos=normal']`"),
    },
}


def all_paths() -> list[str]:
    """Every valid dotted key path: 'name', 'train.max_steps', ..."""
    out = []
    for top, spec in SCHEMA.items():
        out += [f"{top}.{k}" for k in spec] if isinstance(spec, dict) else [top]
    return out


def _default_text(key: Key) -> str:
    if key.default is REQUIRED:
        return "**required**"
    if key.default is None:
        return "null"
    if isinstance(key.default, bool):
        return str(key.default).lower()
    return f"`{key.default}`"


def markdown() -> str:
    """The schema as a Markdown table (documentation generated from the code)."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for top, spec in SCHEMA.items():
        items = [(f"{top}.{k}", key) for k, key in spec.items()] if isinstance(spec, dict) else [(top, spec)]
        for path, key in items:
            rows.append(f"| `{path}` | {key.kind.expect} | {_default_text(key)} | {key.doc} |")
    return "\n".join(rows) + "\n"
