"""The digits MLP's shape (64 -> 16 -> 10) as the one nn.Module class a --model-file defines."""
import dtorch.nn as nn


class TinyMLP(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
