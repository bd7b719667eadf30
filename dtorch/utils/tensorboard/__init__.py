"""``dtorch.utils.tensorboard.SummaryWriter``: torch's TensorBoard writer, on the tensorboard package's event file
writer (the optional ``tensorboard`` extra: ``pip install 'dtorch[tensorboard]'``); ``tensorboard --logdir runs``
shows what it wrote."""
try:
    import tensorboard  # noqa: F401
except ImportError as e:
    raise ImportError("dtorch.utils.tensorboard needs the tensorboard package: pip install 'dtorch[tensorboard]' "
                      "(or pip install tensorboard)") from e

from .writer import FileWriter, SummaryWriter

__all__ = ["FileWriter", "SummaryWriter"]
