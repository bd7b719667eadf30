"""torch.ao.quantization.qconfig: which observers make a module's activation and weight quantization."""
from __future__ import annotations

from collections import namedtuple

from ...nn.modules.module import Module
from .observer import (
    default_dynamic_quant_observer, default_per_channel_weight_observer, default_weight_observer,
    float16_dynamic_observer, float16_weight_observer,
)

__all__ = ["QConfig", "default_dynamic_qconfig", "per_channel_dynamic_qconfig", "float16_dynamic_qconfig"]


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    """A pair of observer factories (classes or ``Observer.with_args(...)``), not instances."""

    __slots__ = ()

    def __new__(cls, activation, weight):
        if isinstance(activation, Module) or isinstance(weight, Module):
            raise ValueError("QConfig received observer instance, please pass observer class instead. "
                             "Use MyObserver.with_args(x=1) to override arguments to constructor if needed")
        return super().__new__(cls, activation, weight)


default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer, weight=default_weight_observer)
per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                      weight=default_per_channel_weight_observer)
float16_dynamic_qconfig = QConfig(activation=float16_dynamic_observer, weight=float16_weight_observer)
