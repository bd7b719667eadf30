"""dtorch.utils.data: datasets, samplers, collation and the DataLoader, as torch.utils.data."""
from ._collate import default_collate, default_convert  # noqa: F401
from .dataloader import DataLoader, get_worker_info  # noqa: F401
from .dataset import (  # noqa: F401
    ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split,
)
from .sampler import (  # noqa: F401
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler,
)
from .distributed import DistributedSampler  # noqa: F401
from .stateful import StatefulDataLoader  # noqa: F401
