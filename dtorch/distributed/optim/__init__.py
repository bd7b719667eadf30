"""dtorch.distributed.optim: ZeroRedundancyOptimizer (sharded optimizer state, ZeRO-1/2)."""
from .zero_redundancy_optimizer import ZeroRedundancyOptimizer  # noqa: F401
