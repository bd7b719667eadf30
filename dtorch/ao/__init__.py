"""dtorch.ao: torch.ao's quantization (quantized tensors, dynamic quantization) and quantized modules."""
from . import quantization  # noqa: F401  (first: it imports ao.nn's quantized modules for its mappings)
from . import nn  # noqa: F401
