"""dtorch-model-archiver: torch-model-archiver's command line, writing ``EXPORT_PATH/NAME.mar``.

``--serialized-file`` is a ``dtorch.jit.save`` archive, an ``.onnx`` model, or (with ``--model-file``, a Python
file defining one ``nn.Module`` class built with no arguments) a ``dtorch.save`` state dict. ``--handler`` is a
built-in name (``classifier``, ``tensor``) or a Python file with TorchServe's handler shape.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import zipfile
from pathlib import Path

from .mar import BUILTIN_HANDLERS, MANIFEST, ArchiveError

ARCHIVER_VERSION = "0.1.0"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dtorch-model-archiver", description="Pack a model into a .mar archive.")
    p.add_argument("--model-name", required=True, help="the name the model is served under")
    p.add_argument("--version", required=True, help="model version, e.g. 1.0")
    p.add_argument("--serialized-file", required=True, help="weights: jit archive, .onnx, or a state dict")
    p.add_argument("--model-file", help="Python file defining the model class (eager models)")
    p.add_argument("--handler", default="tensor", help=f"{' or '.join(BUILTIN_HANDLERS)}, or a handler .py file")
    p.add_argument("--extra-files", default="", help="comma-separated files to include (e.g. index_to_name.json)")
    p.add_argument("--config-file", help="model-config.yaml: batchSize, maxBatchDelay, minWorkers, ...")
    p.add_argument("--export-path", default=".", help="directory to write NAME.mar to")
    p.add_argument("--runtime", default="python", help="kept for TorchServe compatibility")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing archive")
    return p


def _file(arg: str, what: str) -> Path:
    path = Path(arg)
    if not path.is_file():
        raise ArchiveError(f"{what} {arg!r}: no such file")
    return path


def _members(args: argparse.Namespace) -> tuple[dict[str, Path], dict[str, str]]:
    files: dict[str, Path] = {}
    model: dict[str, str] = {"modelName": args.model_name, "modelVersion": args.version}

    def add(key: str | None, arg: str, what: str) -> None:
        path = _file(arg, what)
        if path.name in files or path.name == "MAR-INF":
            raise ArchiveError(f"{what} {arg!r}: a file named {path.name!r} is already in the archive")
        files[path.name] = path
        if key:
            model[key] = path.name

    add("serializedFile", args.serialized_file, "--serialized-file")
    if args.model_file:
        add("modelFile", args.model_file, "--model-file")
    if args.handler in BUILTIN_HANDLERS:
        model["handler"] = args.handler
    elif args.handler.endswith(".py"):
        add("handler", args.handler, "--handler")
    else:
        raise ArchiveError(f"--handler {args.handler!r}: not a built-in handler ({', '.join(BUILTIN_HANDLERS)}) "
                           "nor a .py file")
    if args.config_file:
        add("configFile", args.config_file, "--config-file")
    for extra in filter(None, (s.strip() for s in args.extra_files.split(","))):
        add(None, extra, "--extra-files")
    return files, model


def archive(args: argparse.Namespace) -> Path:
    """Write the archive the parsed arguments describe; return its path."""
    if not args.model_name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ArchiveError(f"--model-name {args.model_name!r}: use letters, digits, '_', '-', '.'")
    files, model = _members(args)
    out = Path(args.export_path) / f"{args.model_name}.mar"
    if out.exists() and not args.force:
        raise ArchiveError(f"{out} exists; use -f to overwrite it")
    manifest = {"createdOn": datetime.datetime.now().strftime("%d/%m/%Y %H:%M:%S"), "runtime": args.runtime,
                "model": model, "archiverVersion": ARCHIVER_VERSION}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".mar.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2))
        for name, path in files.items():
            zf.write(path, name)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(archive(args))
    except ArchiveError as e:
        print(f"dtorch-model-archiver: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
