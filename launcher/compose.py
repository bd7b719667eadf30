"""Compose a config: read the YAML file and the files it `extends`, apply `--set` overrides,
resolve `${env:VAR}` / `${env:VAR,default}`.

Merging is deep for mappings; lists and scalars replace. A null value never erases a base
section (an empty `train:` whose keys are all commented out keeps the base's train keys).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

from . import yamlio
from .errors import ConfigError

_INTERP = re.compile(r"\$\{([^}]*)\}")
_ENV = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)(?:,(.*))?", re.S)
_SET = re.compile(r"([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)=(.*)", re.S)


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(out.get(k), dict) and (isinstance(v, dict) or v is None):
            out[k] = merge(out[k], v or {})
        else:
            out[k] = v
    return out


def load_file(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """One file with its `extends` chain merged in (bases first, relative to the extending file)."""
    if not path.is_file():
        where = f"{chain[-1]}: extends: " if chain else ""
        raise ConfigError(f"{where}{path}: no such config file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    data = yamlio.parse(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got a {type(data).__name__}")
    bases = data.pop("extends", None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not (isinstance(bases, list) and bases and all(isinstance(b, str) and b for b in bases)):
        raise ConfigError(f"{path}: extends: expected a file name or a list of file names, got {bases!r}")
    merged: dict = {}
    for name in bases:
        base = (path.parent / name).resolve()
        if base in chain or base == path.resolve():
            cycle = " -> ".join(p.name for p in (*chain, path, base))
            raise ConfigError(f"{path}: extends: cycle {cycle}")
        merged = merge(merged, load_file(base, (*chain, path.resolve())))
    return merge(merged, data)


def apply_set(cfg: dict, assignment: str) -> dict:
    """`--set a.b.c=VALUE`: VALUE typed as YAML (`3` int, `1e-3` float, `true`, `[1, 2]`, `null`)."""
    m = _SET.fullmatch(assignment)
    if not m:
        raise ConfigError(f"--set {assignment!r}: expected KEY.PATH=VALUE, e.g. train.max_steps=100")
    path, text = m.group(1), m.group(2)
    if path == "extends":
        raise ConfigError(f"--set {assignment}: extends can only be given in a config file")
    parts = path.split(".")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"--set {assignment}: {where} is {child!r}, not a mapping")
        node = child
    node[parts[-1]] = yamlio.parse_scalar(text)
    return cfg


def _interpolate_str(text: str, path: str, env: Mapping[str, str]) -> Any:
    def value(m: re.Match) -> str:
        e = _ENV.fullmatch(m.group(1))
        if not e:
            raise ConfigError(f"{path}: unsupported interpolation {m.group(0)!r} "
                              "(only ${env:VAR} and ${env:VAR,default})")
        if e.group(1) in env:
            return env[e.group(1)]
        if e.group(2) is not None:
            return e.group(2)
        raise ConfigError(f"{path}: environment variable {e.group(1)} is not set (used in {m.group(0)})")

    whole = _INTERP.fullmatch(text)
    if whole:  # the whole value: type it (`max_steps: ${env:STEPS}` is an integer)
        return yamlio.parse_scalar(value(whole))
    return _INTERP.sub(value, text)


def interpolate(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    if isinstance(node, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        return _interpolate_str(node, path, env)
    return node


def compose(path: str | Path, sets: list[str] = (), env: Mapping[str, str] | None = None) -> dict:
    """The raw (not yet validated) config: file + extends, then --set overrides, then ${env:...}."""
    cfg = load_file(Path(path))
    for assignment in sets:
        cfg = apply_set(cfg, assignment)
    return interpolate(cfg, os.environ if env is None else env)
