"""dtorch.distributed.checkpoint: crash-safe, checksummed checkpoints that load no code; exact resume.

```python
import dtorch.distributed.checkpoint as dcp

state = dcp.training_state(model=model, optimizer=opt, scheduler=sched, loader=loader, step=step)
dcp.save(state, f"{run}/step_{step:08d}", keep_last=3)          # or AsyncCheckpointer().save(...)
...
if (ckpt := dcp.latest(run)) is not None:
    dcp.load(state, ckpt)                                       # in place; state["step"] is updated
```

A checkpoint is a directory: ``manifest.json`` (format version, world size, per-file blake3
and size, per-tensor dtype and shape, structure, user metadata, its own checksum) and plain
safetensors files. ``<key>.safetensors`` holds a replicated entry, so ``model.safetensors`` is
the model's ``state_dict`` under its own names, readable elsewhere::

    from safetensors.torch import load_file        # PyTorch
    model.load_state_dict(load_file("run/step_00000100/model.safetensors"))
    from safetensors.numpy import load_file        # numpy / JAX / anything: same file
    import dtorch; dtorch.load("run/step_00000100/model.safetensors")

``rank<r>.safetensors`` holds rank r's own state (RNG, data-loader position).

``AsyncCheckpointer().save(...)`` returns after about a millisecond: a background thread (at a
lower CPU priority) copies the model's and optimizer's arrays and writes the checkpoint while
training goes on; every optimizer's ``step`` and the forward of modules with buffers wait for
that copy to finish, so what is saved is the state at the ``save`` call (see ``_async.py``).
See ``_manifest.py`` for the manifest layout and ``dtorch/utils/data/stateful.py`` for the
data position and resharding rules.
"""
from ._dirs import complete_checkpoints, latest  # noqa: F401
from ._errors import CheckpointError  # noqa: F401
from ._load import load  # noqa: F401
from ._resume import training_state  # noqa: F401
from ._rng import RNGState  # noqa: F401
from ._async import AsyncCheckpointer  # noqa: F401
from ._save import save  # noqa: F401
from ._state import PerRank  # noqa: F401

__all__ = ["save", "load", "latest", "complete_checkpoints", "AsyncCheckpointer", "RNGState", "PerRank",
           "CheckpointError", "training_state"]
