"""Copy one library's module weights into the other's (through numpy) so both start from the same point."""
from __future__ import annotations

import numpy as np


def copy_weights(src, dst, dst_lib) -> None:
    """``dst.load_state_dict`` from ``src``'s state dict (either library to either)."""
    state = {k: dst_lib.tensor(np.asarray(v.detach().cpu().numpy())) for k, v in src.state_dict().items()}
    dst.load_state_dict(state)
