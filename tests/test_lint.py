"""The code base stays ruff-clean and free of forbidden imports (torch, pickle)."""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_clean():
    # CI runs .venv/bin/python without activating the venv: its ruff sits beside the interpreter, not on PATH
    ruff = shutil.which("ruff", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    r = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_library_never_imports_torch_or_pickle():
    bad = re.compile(r"^\s*(import\s+(torch|pickle)\b|from\s+(torch|pickle)\b)", re.M)
    offenders = [str(p.relative_to(ROOT)) for d in ("dtorch", "launcher", "jobs") for p in (ROOT / d).rglob("*.py")
                 if bad.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_import_has_no_heavy_dependencies():
    code = "import sys, dtorch; print(sorted(m for m in ('cupy', 'mpi4py', 'pynvml', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
