"""Implementation modules of dtorch.nn.functional, one file per family."""
