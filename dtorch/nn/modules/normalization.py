"""LayerNorm, GroupNorm."""
__all__: list[str] = []
