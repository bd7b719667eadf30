"""embedding, one_hot."""
__all__: list[str] = []
