"""pyproject.toml's package list (written out because of the package-dir mapping) names every package."""
from __future__ import annotations

import pytest
from launcher_helpers import ROOT

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_directory_is_in_the_wheel():
    cfg = _setuptools()
    dirs = {p.parent for p in (ROOT / "dtorch").rglob("*.py") if "__pycache__" not in p.parts}
    no_init = sorted(str(d.relative_to(ROOT)) for d in dirs if not (d / "__init__.py").is_file())
    assert no_init == [], "directories of modules without __init__.py (not packaged)"
    on_disk = {".".join(d.relative_to(ROOT).parts) for d in dirs}
    mapped = {name for name, path in cfg["package-dir"].items() if (ROOT / path / "__init__.py").is_file()}
    assert sorted(set(cfg["packages"]) ^ (on_disk | mapped)) == [], "pyproject.toml [tool.setuptools] packages"


def test_mapped_directories_have_no_subpackages():
    """launcher/, jobs/, configs/ and slurm/ are one package each: a subdirectory would need a line of its own."""
    for path in _setuptools()["package-dir"].values():
        assert [p for p in (ROOT / path).glob("*/__init__.py")] == [], path
