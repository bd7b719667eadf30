"""pad, interpolate."""
__all__: list[str] = []
