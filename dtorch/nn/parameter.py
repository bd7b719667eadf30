"""dtorch.nn.Parameter."""
__all__ = []
