"""Op modules. Importing this package registers every op and attaches Tensor methods.

Every module here that does not start with an underscore is imported; its ``__all__``
names become ``dtorch.<name>``. A new op family is one new file.
"""
from __future__ import annotations

import importlib
import pkgutil

MODULES = []
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        MODULES.append(importlib.import_module(f"{__name__}.{_info.name}"))


def public_names() -> dict:
    names = {}
    for m in MODULES:
        for n in getattr(m, "__all__", ()):
            names[n] = getattr(m, n)
    return names
