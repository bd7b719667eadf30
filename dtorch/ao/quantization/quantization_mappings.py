"""torch.ao.quantization.quantization_mappings: which quantized module replaces which float module.

Modules that dynamic quantization can swap register here (``DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS``)
and, when ``quantize_dynamic`` should swap them by default, in ``DEFAULT_DYNAMIC_QCONFIG_TYPES``
(a quantized LSTM/GRU adds ``nn.LSTM: nnqd.LSTM`` to the first and is already in the second).
"""
from __future__ import annotations

import copy

from ...nn import modules as _nn
from ...nn.modules.activation import NonDynamicallyQuantizableLinear
from ...nn.modules.linear import Linear
from ..nn.quantized import dynamic as nnqd

__all__ = ["DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS", "get_default_dynamic_quant_module_mappings"]

DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS: dict = {
    Linear: nnqd.Linear,
    NonDynamicallyQuantizableLinear: nnqd.Linear,
}

# the float module types quantize_dynamic gives a qconfig by default (torch's list); a type swaps
# only once DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS has a quantized module for it
DEFAULT_DYNAMIC_QCONFIG_TYPES: tuple = tuple(
    getattr(_nn, name) for name in ("Linear", "LSTM", "GRU", "LSTMCell", "RNNCell", "GRUCell") if hasattr(_nn, name))


def get_default_dynamic_quant_module_mappings() -> dict:
    """A copy of the float -> dynamic quantized module mapping."""
    return copy.deepcopy(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS)
