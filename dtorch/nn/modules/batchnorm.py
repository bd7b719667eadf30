"""BatchNorm1d, BatchNorm2d."""
__all__: list[str] = []
