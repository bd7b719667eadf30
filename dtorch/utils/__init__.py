"""dtorch.utils: data loading (and, later, extensions)."""
from . import data  # noqa: F401
