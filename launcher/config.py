"""Validate a composed config against the schema and fill in the defaults.

Every problem is collected (not just the first) and reported as one line naming the full key
path: unknown keys with the closest valid key, wrong types or ranges with the expectation and
the value given, missing required keys, and cross-key rules (max_steps vs epochs, ranks vs nodes).
"""
from __future__ import annotations

import copy
import difflib
from typing import Any

from .errors import ConfigError
from .schema import REQUIRED, SCHEMA, Key, all_paths


def show(value: Any) -> str:
    """A value as the user wrote it in YAML: strings quoted, true/false/null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _suggest(path: str, valid_here: list[str], prefix: str) -> str:
    """'; did you mean X?' for an unknown key: a close name at the same level, else the same name elsewhere."""
    leaf = path.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, valid_here, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {prefix}{close[0]}?"
    elsewhere = [p for p in all_paths() if p.rsplit(".", 1)[-1] == leaf]
    if elsewhere:
        return f"; did you mean {elsewhere[0]}?"
    return f" (valid keys{' in ' + prefix[:-1] if prefix else ''}: {', '.join(valid_here)})"


def _check_keys(given: dict, spec: dict[str, Any], prefix: str, problems: list[str]) -> dict:
    out: dict[str, Any] = {}
    for k in given:
        if k not in spec:
            problems.append(f"{prefix}{k}: unknown key{_suggest(f'{prefix}{k}', list(spec), prefix)}")
    for name, sub in spec.items():
        path = f"{prefix}{name}"
        if isinstance(sub, dict):
            value = given.get(name)
            if value is None:
                value = {}
            if not isinstance(value, dict):
                problems.append(f"{path}: expected a mapping, got {show(value)}")
                continue
            out[name] = _check_keys(value, sub, path + ".", problems)
        elif name in given and not (given[name] is None and isinstance(sub.default, dict)):
            out[name] = _check_value(path, given[name], sub, problems)
        elif sub.default is REQUIRED:
            problems.append(f"{path}: required key missing")
        else:
            out[name] = copy.deepcopy(sub.default)
    return out


def _check_value(path: str, value: Any, key: Key, problems: list[str]) -> Any:
    if not key.kind.ok(value):
        problems.append(f"{path}: expected {key.kind.expect}, got {show(value)}")
    return value


def _cross_checks(cfg: dict) -> list[str]:
    problems = []
    train, slurm = cfg["train"], cfg["slurm"]
    if train["max_steps"] is None and train["epochs"] is None:
        problems.append("train: set one of max_steps and epochs")
    elif train["max_steps"] is not None and train["epochs"] is not None:
        problems.append(f"train: set only one of max_steps ({train['max_steps']}) and epochs ({train['epochs']})")
    nproc, nodes, per_node = cfg["distributed"]["nproc"], slurm["nodes"], slurm["ntasks_per_node"]
    if per_node is None and nproc % nodes:
        problems.append(f"slurm.nodes: distributed.nproc ({nproc}) is not a multiple of slurm.nodes ({nodes})")
    elif per_node is not None and nodes * per_node != nproc:
        problems.append(f"slurm.ntasks_per_node: slurm.nodes x slurm.ntasks_per_node = {nodes} x {per_node} = "
                        f"{nodes * per_node} ranks, but distributed.nproc is {nproc}")
    return problems


def validate(raw: Any, source: str = "config") -> dict:
    """Check a composed config; return it with every default filled in. Raises ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {show(raw)}")
    problems: list[str] = []
    cfg = _check_keys(raw, SCHEMA, "", problems)
    if not problems:
        problems += _cross_checks(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def ranks_per_node(cfg: dict) -> int:
    slurm = cfg["slurm"]
    return slurm["ntasks_per_node"] or cfg["distributed"]["nproc"] // slurm["nodes"]
