"""torch.ao.quantization.quantization_mappings: which quantized module replaces which float module.

Modules that dynamic quantization can swap register here (``DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS``)
and, when ``quantize_dynamic`` should swap them by default, in ``DEFAULT_DYNAMIC_QCONFIG_TYPES``.
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
    _nn.LSTM: nnqd.LSTM,
    _nn.GRU: nnqd.GRU,
    _nn.LSTMCell: nnqd.LSTMCell,
    _nn.RNNCell: nnqd.RNNCell,
    _nn.GRUCell: nnqd.GRUCell,
}

# the float module types quantize_dynamic gives a qconfig by default (torch's list)
DEFAULT_DYNAMIC_QCONFIG_TYPES: tuple = (_nn.Linear, _nn.LSTM, _nn.GRU, _nn.LSTMCell, _nn.RNNCell, _nn.GRUCell)


def get_default_dynamic_quant_module_mappings() -> dict:
    """A copy of the float -> dynamic quantized module mapping."""
    return copy.deepcopy(DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS)
