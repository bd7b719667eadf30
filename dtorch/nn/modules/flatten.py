"""Flatten, Unflatten, Identity."""
__all__: list[str] = []
