"""jit.freeze folds nn.utils.prune's masks: the traced `weight_orig * weight_mask` becomes one constant weight with
the pruned entries zero, and the frozen graph has no mask multiply left (issue 17)."""
from __future__ import annotations

import dtorch
from dtorch.nn.utils import prune


def test_freeze_folds_pruning_masks():
    dtorch.manual_seed(0)
    model = dtorch.nn.Sequential(dtorch.nn.Linear(8, 6), dtorch.nn.ReLU(), dtorch.nn.Linear(6, 2)).eval()
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    prune.ln_structured(model[2], "weight", amount=0.5, n=2, dim=0)
    x = dtorch.randn(3, 8)
    traced = dtorch.jit.trace(model, x)
    assert traced.graph.count("mul") == 2  # the two pre-hooks' orig * mask
    frozen = dtorch.jit.freeze(traced)
    assert frozen.graph.count("mul") == 0 and frozen.graph.count("linear") == 2
    weights = [n.attrs["value"] for n in frozen.graph.nodes
               if n.op == "prim::Constant" and getattr(n.attrs["value"], "ndim", 0) == 2]
    assert sorted(int((w == 0).sum()) for w in weights) == [6, 24]  # 24 of 48 entries; 1 of 2 rows of 6
    assert dtorch.equal(frozen(x), model(x))
