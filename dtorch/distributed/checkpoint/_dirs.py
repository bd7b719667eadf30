"""A run directory's checkpoints: finding the newest complete one, the ``latest`` pointer, retention."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import _manifest
from ._errors import CheckpointError
from ._files import fsync_dir, replace_atomically
from ._load import read_file

POINTER = "latest"
_TMP, _OLD, _TRASH = ".tmp-", ".old-", ".trash-"


def tmp_dir(target: Path, nonce: str) -> Path:
    return target.with_name(f".{target.name}{_TMP}{nonce}")


def _created(ckpt: Path, verify: bool = False) -> int | None:
    """created_ns of a complete checkpoint (manifest valid, files present; with ``verify`` every
    file's checksum checked too), else None."""
    try:
        doc = _manifest.read(ckpt)
        _manifest.check_files_present(ckpt, doc)
        if verify:
            for name in doc["files"]:
                read_file(ckpt, name, doc)
    except (CheckpointError, OSError):   # CheckpointError: any refused manifest or file (a ValueError)
        return None
    return int(doc.get("created_ns", 0))


def complete_checkpoints(run_dir: Path, verify: bool = False) -> list[Path]:
    """Complete checkpoints under ``run_dir``, newest first (by the time recorded in their manifests).

    Directories set aside while a checkpoint of the same name was being replaced
    (``.<name>.old-*``) count too, so a crash in that window loses nothing.
    """
    found = []
    try:
        children = list(Path(run_dir).iterdir())
    except FileNotFoundError:
        return []
    for p in children:
        if not p.is_dir() or _TMP in p.name or p.name.startswith(_TRASH):
            continue
        if p.name.startswith(".") and _OLD not in p.name:
            continue
        created = _created(p, verify)
        if created is not None:
            found.append((created, not p.name.startswith("."), p))
    found.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [p for _, _, p in found]


def latest(run_dir: str | os.PathLike, verify: bool = False) -> Path | None:
    """The newest complete checkpoint directory under ``run_dir``, or None when there is none.

    Complete: a valid manifest and every file present with its recorded size; ``verify=True``
    also reads every file and checks its checksum (slow for big checkpoints; ``load`` always does).
    The ``latest`` pointer file names the newest checkpoint written; this function still checks
    every candidate's manifest, so a stale or dangling pointer (a crash between the rename of a
    new checkpoint and the pointer update) never hides a complete checkpoint.
    """
    found = complete_checkpoints(Path(run_dir), verify)
    return found[0] if found else None


def update_pointer(run_dir: Path, name: str) -> None:
    replace_atomically(run_dir / POINTER, (name + "\n").encode())


def move_into_place(tmp: Path, target: Path, nonce: str) -> None:
    """Rename the finished temporary directory to ``target`` (replacing an old one safely)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}{_OLD}{nonce}")
        os.rename(target, old)
    os.rename(tmp, target)
    fsync_dir(target.parent)
    if old is not None:
        _remove(old)


def _remove(path: Path) -> None:
    trash = path.with_name(f"{_TRASH}{path.name.lstrip('.')}")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def clean_and_retain(run_dir: Path, keep_last: int | None, current: Path, nonce: str) -> None:
    """Remove leftovers of crashed saves, then keep the ``keep_last`` newest complete checkpoints.

    Runs only after ``current`` is complete and in place, so a good checkpoint always remains;
    ``current`` itself is never removed.
    """
    superseded = f".{current.name}{_OLD}"      # set aside by a crashed save of the same name
    for p in run_dir.iterdir():
        stale_tmp = p.name.startswith(".") and _TMP in p.name and not p.name.endswith(nonce)
        if p.is_dir() and (p.name.startswith(_TRASH) or stale_tmp or p.name.startswith(superseded)):
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(f".{POINTER}{_TMP}") and p.is_file():
            p.unlink(missing_ok=True)
    if keep_last is None:
        return
    if keep_last < 1:
        raise ValueError("keep_last must be at least 1")
    kept = 0
    for p in complete_checkpoints(run_dir):
        if p == current or kept < keep_last:
            kept += 1
            continue
        _remove(p)
    fsync_dir(run_dir)
