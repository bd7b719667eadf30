"""dtorch.distributed.algorithms: Join for uneven inputs, DDP communication hooks, futures."""
from ...futures import Future, work_future  # noqa: F401
from .join import Join, Joinable, JoinHook  # noqa: F401
