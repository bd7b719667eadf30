"""The digits classifier of ``dtorch-run digits_mlp`` as a ``--model-file`` for dtorch-model-archiver.

One ``nn.Module`` class built with no arguments, whose ``state_dict`` names match the checkpoint's
``model.safetensors`` (README.md, "Serving"; bench/serve_load.py).
"""
import dtorch
from dtorch.jobs.models import mlp
from dtorch.nn.modules.container import Sequential

HIDDEN = 128        # configs/digits_mlp.yaml's model.hidden


class DigitsMLP(Sequential):
    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__(*mlp(dtorch, (64, hidden, hidden, 10)))
