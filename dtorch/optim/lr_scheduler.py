"""Learning-rate schedulers, as ``torch.optim.lr_scheduler``."""
from ._sched_base import LRScheduler
from ._sched_compose import ChainedScheduler, SequentialLR
from ._sched_cyclic import CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from ._sched_plateau import ReduceLROnPlateau
from ._sched_simple import (
    ConstantLR, ExponentialLR, LambdaLR, LinearLR, MultiplicativeLR, MultiStepLR, PolynomialLR, StepLR,
)

_LRScheduler = LRScheduler  # the old name, still importable in torch

__all__ = [
    "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
    "SequentialLR", "CosineAnnealingLR", "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR",
    "CosineAnnealingWarmRestarts", "OneCycleLR", "PolynomialLR", "LRScheduler",
]
