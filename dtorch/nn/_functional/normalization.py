"""batch_norm, layer_norm, group_norm, normalize."""
__all__: list[str] = []
