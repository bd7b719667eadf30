"""torch.ao.nn.quantized.dynamic: modules with quantized weights whose activations are quantized per call."""
from .linear import Linear  # noqa: F401

__all__ = ["Linear"]
