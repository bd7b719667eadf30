"""dtorch.ao.quantization: quantized tensors' helpers, observers, qconfigs and dynamic quantization (torch.ao)."""
from ._qtensor import quantize_per_channel, quantize_per_tensor  # noqa: F401
from .observer import (  # noqa: F401
    MinMaxObserver, ObserverBase, PerChannelMinMaxObserver, PlaceholderObserver, default_dynamic_quant_observer,
    default_per_channel_weight_observer, default_placeholder_observer, default_weight_observer,
)
from .qconfig import QConfig, default_dynamic_qconfig, float16_dynamic_qconfig, per_channel_dynamic_qconfig  # noqa: F401
from .quantization_mappings import get_default_dynamic_quant_module_mappings  # noqa: F401
from .quantize import convert, propagate_qconfig_, quantize_dynamic, swap_module  # noqa: F401

__all__ = [
    "quantize_dynamic", "propagate_qconfig_", "convert", "swap_module", "QConfig", "default_dynamic_qconfig",
    "per_channel_dynamic_qconfig", "float16_dynamic_qconfig", "MinMaxObserver", "PerChannelMinMaxObserver",
    "PlaceholderObserver", "ObserverBase", "default_weight_observer", "default_per_channel_weight_observer",
    "default_dynamic_quant_observer", "default_placeholder_observer", "get_default_dynamic_quant_module_mappings",
]
