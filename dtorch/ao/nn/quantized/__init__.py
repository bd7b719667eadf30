"""torch.ao.nn.quantized (dtorch has its dynamic modules)."""
from . import dynamic  # noqa: F401
