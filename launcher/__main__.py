"""`python -m dtorch.launcher ...` is `dtorch-run ...`."""
import sys

from .cli import main

sys.exit(main())
