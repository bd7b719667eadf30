"""Activation modules (ReLU, GELU, Softmax, ...) and MultiheadAttention."""
__all__: list[str] = []
