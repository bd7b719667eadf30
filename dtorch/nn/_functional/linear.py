"""linear, bilinear."""
__all__: list[str] = []
