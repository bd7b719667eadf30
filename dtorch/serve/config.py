"""dtorch-serve's YAML config and an archive's model-config.yaml, checked with the launcher's validation.

Unknown keys are reported with their path and the nearest valid key, wrong types with what was expected; all
problems at once, as ``ConfigError`` (the command line exits 2 without a traceback).
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from dtorch.launcher.config import _check_keys, show
from dtorch.launcher.errors import ConfigError
from dtorch.launcher.schema import Key, Kind, boolean, integer, mapping, nullable, number, string
from dtorch.launcher.yamlio import parse

ADDRESS = r"(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+):\d{1,5}"
address = string(ADDRESS, "an address such as '127.0.0.1:8080'")
name_list = Kind("a list of model names or NAME=FILE.mar entries",
                 lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v))

MODEL: dict[str, Key] = {
    "batch_size": Key(integer(min=1), 1, "requests per forward (a batch closes at this size...)"),
    "max_batch_delay": Key(number(min=0), 100, "...or this many milliseconds after its first request"),
    "min_workers": Key(integer(min=0), 1, "worker processes started with the model"),
    "max_workers": Key(integer(min=1), 4, "upper bound for scaling"),
    "response_timeout": Key(number(gt=0), 120, "seconds a request may wait and run before it is answered 504"),
}

SCHEMA: dict[str, Any] = {
    "inference_address": Key(address, "127.0.0.1:8080", "inference API"),
    "management_address": Key(address, "127.0.0.1:8081", "management API (token auth by default)"),
    "metrics_address": Key(address, "127.0.0.1:8082", "Prometheus metrics"),
    "model_store": Key(nullable(string()), None, "directory of .mar files (--model-store)"),
    "load_models": Key(name_list, [], "models to register at start (--models)"),
    "state_dir": Key(string(), "~/.dtorch-serve", "pid file, token file, extracted archives"),
    "job_queue_size": Key(integer(min=1), 100, "queued requests per model before 503"),
    "max_request_size": Key(integer(min=1), 6553500, "largest request body in bytes (413 above)"),
    "max_archive_size": Key(integer(min=1), 8 << 30, "largest uncompressed .mar in bytes"),
    "retry_on_crash": Key(boolean(), True, "retry a crashed worker's requests once on a fresh worker"),
    "token_auth": Key(boolean(), True, "require the management token (Authorization: Bearer ...)"),
    "allow_custom_handlers": Key(boolean(), False, "run Python handlers shipped in archives"),
    "default": MODEL,
    "models": Key(mapping(), {}, "per model name: the keys of `default`"),
}

# model-config.yaml inside an archive: TorchServe's camelCase names
ARCHIVE_KEYS = {"batchSize": "batch_size", "maxBatchDelay": "max_batch_delay", "minWorkers": "min_workers",
                "maxWorkers": "max_workers", "responseTimeout": "response_timeout"}
ARCHIVE_SCHEMA: dict[str, Any] = {camel: Key(MODEL[snake].kind, None, MODEL[snake].doc)
                                  for camel, snake in ARCHIVE_KEYS.items()}
ARCHIVE_SCHEMA["handler"] = Key(mapping(), {}, "handed to the handler as context.model_yaml_config")


def split_address(address: str) -> tuple[str, int]:
    """('127.0.0.1', 8080) from '127.0.0.1:8080' ('[::1]:8080' gives '::1')."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _unknown(given: dict, valid: dict, prefix: str, problems: list[str]) -> dict:
    """Report keys not in ``valid`` (with the nearest serve key: the launcher's fallback knows only its own
    paths); return the known ones."""
    paths = [f"{prefix}{k}" for k in valid] + [f"default.{k}" for k in MODEL] * (prefix == "")
    for k in given:
        if k not in valid:
            close = difflib.get_close_matches(f"{prefix}{k}", paths, n=1, cutoff=0.6) or \
                [p for p in paths if p.rsplit(".", 1)[-1] == k]
            hint = f"; did you mean {close[0]}?" if close else f" (valid keys: {', '.join(valid)})"
            problems.append(f"{prefix}{k}: unknown key{hint}")
    return {k: v for k, v in given.items() if k in valid}


def _model_sections(models: Any, problems: list[str]) -> dict[str, dict]:
    out = {}
    for name, section in models.items():
        if not isinstance(section, dict):
            problems.append(f"models.{name}: expected a mapping, got {show(section)}")
            continue
        known = _unknown(section, MODEL, f"models.{name}.", problems)
        _check_keys(known, {k: Key(v.kind, None) for k, v in MODEL.items()}, f"models.{name}.", problems)
        out[name] = known
    return out


def validate(raw: Any, source: str = "config") -> dict[str, Any]:
    """The server config with defaults filled in; raises ConfigError naming every problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {show(raw)}")
    problems: list[str] = []
    cfg = _check_keys(_unknown(raw, SCHEMA, "", problems), SCHEMA, "", problems)
    cfg["models"] = _model_sections(cfg["models"], problems) if isinstance(cfg["models"], dict) else {}
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    return cfg


def load(path: str | Path | None) -> dict[str, Any]:
    """Read and check a config file (None: the defaults)."""
    if path is None:
        return validate({})
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror})") from None
    return validate(parse(text, str(path)), str(path))


def archive_model_config(text: str, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model settings in the server's names, the handler section) from a model-config.yaml."""
    raw = parse(text, source)
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping, got {show(raw)}")
    problems: list[str] = []
    cfg = _check_keys(raw, ARCHIVE_SCHEMA, "", problems)
    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    settings = {ARCHIVE_KEYS[k]: v for k, v in cfg.items() if k in ARCHIVE_KEYS and v is not None}
    return settings, cfg["handler"]


def model_settings(cfg: dict[str, Any], name: str, archive: dict[str, Any], overrides: dict[str, Any]) -> dict:
    """A model's settings: API/CLI overrides > the server config's models.NAME > the archive's > default."""
    out = dict(cfg["default"])
    out.update(archive)
    out.update(cfg["models"].get(name, {}))
    out.update({k: v for k, v in overrides.items() if v is not None})
    problems: list[str] = []
    _check_keys(out, MODEL, f"model {name}: ", problems)
    if out["max_workers"] < out["min_workers"]:
        problems.append(f"model {name}: max_workers ({out['max_workers']}) < min_workers ({out['min_workers']})")
    if problems:
        raise ConfigError(problems)
    return out
