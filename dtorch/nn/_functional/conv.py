"""conv1d, conv2d, conv_transpose2d, unfold, fold."""
__all__: list[str] = []
