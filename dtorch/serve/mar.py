"""Model archives (.mar): TorchServe's zip layout, written by the archiver and checked before anything in one runs.

A ``.mar`` is a zip with ``MAR-INF/MANIFEST.json`` (TorchServe's fields: ``createdOn``, ``runtime``,
``model.{modelName, modelVersion, serializedFile, handler, modelFile, configFile}``, ``archiverVersion``) and
the model's files at the top level. ``extract`` refuses, naming the archive and the member: paths that are
absolute or climb out (``..``), links, more than ``MAX_MEMBERS`` members, a total size over the limit or a
compression ratio no real model has (a zip bomb), and a handler written in Python unless custom handlers are
allowed.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST = "MAR-INF/MANIFEST.json"
BUILTIN_HANDLERS = ("classifier", "tensor")
MAX_MEMBERS = 10_000
MAX_RATIO = 200            # uncompressed / compressed; weights compress ~1.1x, text ~10x
DEFAULT_MAX_BYTES = 8 << 30


class ArchiveError(Exception):
    """A .mar that cannot be served; the message names the archive and what is wrong."""


def is_custom_handler(handler: str) -> bool:
    return handler not in BUILTIN_HANDLERS


def _check_member(source: str, info: zipfile.ZipInfo) -> None:
    name = info.filename
    path = PurePosixPath(name)
    if name.startswith("/") or "\\" in name or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ArchiveError(f"{source}: member {name!r} has a path outside the archive (absolute or '..')")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveError(f"{source}: member {name!r} is a symbolic link")


def _check_sizes(source: str, infos: list[zipfile.ZipInfo], max_bytes: int) -> None:
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"{source}: {len(infos)} members (at most {MAX_MEMBERS})")
    total = sum(i.file_size for i in infos)
    if total > max_bytes:
        raise ArchiveError(f"{source}: {total} bytes uncompressed (at most {max_bytes})")
    for i in infos:
        if i.file_size > 1 << 20 and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise ArchiveError(f"{source}: member {i.filename!r} expands {i.compress_size} -> {i.file_size} bytes "
                               f"(ratio over {MAX_RATIO}: a zip bomb?)")
    packed = sum(i.compress_size for i in infos)
    if total > 1 << 20 and total > MAX_RATIO * max(packed, 1):
        raise ArchiveError(f"{source}: {len(infos)} members expand {packed} -> {total} bytes (ratio over {MAX_RATIO}: "
                           "a zip bomb?)")


def _manifest(source: str, zf: zipfile.ZipFile, names: set[str]) -> dict[str, Any]:
    if MANIFEST not in names:
        raise ArchiveError(f"{source}: no {MANIFEST} (not a model archive)")
    try:
        manifest = json.loads(zf.read(MANIFEST))
        model = manifest["model"]
        for key in ("modelName", "serializedFile", "handler"):
            if not isinstance(model.get(key), str) or not model[key]:
                raise KeyError(key)
    except (ValueError, KeyError, TypeError) as e:
        raise ArchiveError(f"{source}: {MANIFEST} is not a valid manifest (missing or bad {e})") from None
    for key in ("serializedFile", "modelFile", "configFile"):
        if model.get(key) and model[key] not in names:
            raise ArchiveError(f"{source}: manifest model.{key} {model[key]!r} is not in the archive")
    handler = model["handler"]
    if is_custom_handler(handler) and handler not in names:
        raise ArchiveError(f"{source}: handler {handler!r} is neither a built-in handler "
                           f"({', '.join(BUILTIN_HANDLERS)}) nor a file in the archive")
    return manifest


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Check an archive's members and manifest without extracting it."""
    return _open_checked(Path(path), DEFAULT_MAX_BYTES)[1]


def _open_checked(path: Path, max_bytes: int) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    source = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise ArchiveError(f"{source}: not a readable zip archive ({e})") from None
    try:
        infos = zf.infolist()
        for info in infos:
            _check_member(source, info)
        _check_sizes(source, infos, max_bytes)
        names = {i.filename for i in infos}
        return zf, _manifest(source, zf, names)
    except BaseException:
        zf.close()
        raise


def extract(path: str | os.PathLike, dest: str | os.PathLike, *, allow_custom_handlers: bool = False,
            max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Check ``path`` and extract it into the new directory ``dest``; return its manifest."""
    zf, manifest = _open_checked(Path(path), max_bytes)
    handler = manifest["model"]["handler"]
    with zf:
        if is_custom_handler(handler) and not allow_custom_handlers:
            raise ArchiveError(f"{path}: custom handler {handler!r} (Python code in the archive) runs only with "
                               "--allow-custom-handlers")
        dest = Path(dest)
        dest.mkdir(parents=True)
        try:
            for info in zf.infolist():
                target = dest / info.filename
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            shutil.rmtree(dest, ignore_errors=True)
            raise ArchiveError(f"{path}: cannot extract ({e})") from None
    return manifest
