"""`python -m dtorch.launcher ...` is `dtorch-run ...`."""
import sys

if __package__ != "dtorch.launcher":  # `python -m launcher` in a checkout: launcher/ is only a package once installed
    sys.exit("dtorch-run: run `dtorch-run` or `python -m dtorch.launcher` (in a checkout, after `pip install -e .`)")

from .cli import main  # noqa: E402

sys.exit(main())
