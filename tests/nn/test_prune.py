"""nn.utils.prune: masks, gradients, state_dict keys and remove against torch; random counts; compact."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
import dtorch.nn as nn
from dtorch.nn.utils import prune


def _linear(lib, out_f: int = 6, in_f: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    m = lib.nn.Linear(in_f, out_f)
    with lib.no_grad():
        m.weight.copy_(lib.tensor(rng.standard_normal((out_f, in_f)).astype(np.float32)))
        m.bias.copy_(lib.tensor(rng.standard_normal(out_f).astype(np.float32)))
    return m


def _conv(lib):
    rng = np.random.default_rng(1)
    m = lib.nn.Conv2d(3, 4, 3)
    with lib.no_grad():
        m.weight.copy_(lib.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32)))
        m.bias.copy_(lib.tensor(rng.standard_normal(4).astype(np.float32)))
    return m


STEPS = {
    "identity": lambda P, m: P.identity(m, "weight"),
    "l1_fraction": lambda P, m: P.l1_unstructured(m, "weight", amount=0.3),
    "l1_count_twice": lambda P, m: (P.l1_unstructured(m, "weight", 0.3), P.l1_unstructured(m, "weight", 5)),
    "ln_rows": lambda P, m: P.ln_structured(m, "weight", 0.5, n=2, dim=0),
    "ln_cols_inf": lambda P, m: P.ln_structured(m, "weight", 2, n=float("inf"), dim=-1),
    "mixed": lambda P, m: (P.ln_structured(m, "weight", 2, 1, 1), P.l1_unstructured(m, "weight", 0.2),
                           P.ln_structured(m, "weight", 0.34, 2, 0)),
    "custom": lambda P, m: P.custom_from_mask(m, "weight", mask=(m.weight > 0)),
    "custom_then_l1": lambda P, m: (P.custom_from_mask(m, "bias", mask=(m.bias > 0)), P.l1_unstructured(m, "bias", 1)),
    "l1_importance": lambda P, m: P.l1_unstructured(m, "weight", 0.5, importance_scores=m.weight.detach() ** 3 + 1),
}


@pytest.mark.parametrize("make", [_linear, _conv], ids=["linear", "conv"])
@pytest.mark.parametrize("step", sorted(STEPS))
def test_masks_grads_state_dict_and_remove_match_torch(torch, make, step):
    import torch.nn.utils.prune as tprune

    md, mt = make(dtorch), make(torch)
    p_orig = md.weight
    STEPS[step](prune, md)
    STEPS[step](tprune, mt)
    assert list(md.state_dict()) == list(mt.state_dict())
    assert [n for n, _ in md.named_parameters()] == [n for n, _ in mt.named_parameters()]
    name = "bias" if step == "custom_then_l1" else "weight"
    np.testing.assert_array_equal(getattr(md, name + "_mask").numpy(), getattr(mt, name + "_mask").numpy())
    assert getattr(md, name + "_orig") is (p_orig if name == "weight" else getattr(md, name + "_orig"))
    assert prune.is_pruned(md)
    x = np.random.default_rng(2).standard_normal((2, 5) if make is _linear else (2, 3, 5, 5)).astype(np.float32)
    yd, yt = md(dtorch.tensor(x)), mt(torch.tensor(x))
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    (yd ** 2).sum().backward()
    (yt ** 2).sum().backward()
    g = getattr(md, name + "_orig").grad.numpy()
    np.testing.assert_allclose(g, getattr(mt, name + "_orig").grad.numpy(), rtol=1e-4, atol=1e-5)
    assert not g[getattr(md, name + "_mask").numpy() == 0].any()
    prune.remove(md, name)
    tprune.remove(mt, name)
    assert isinstance(getattr(md, name), nn.Parameter) and not prune.is_pruned(md)
    assert list(md.state_dict()) == list(mt.state_dict())
    np.testing.assert_array_equal(getattr(md, name).detach().numpy(), getattr(mt, name).detach().numpy())


def test_optimizer_keeps_training_the_same_parameter():
    m = _linear(dtorch)
    opt = dtorch.optim.SGD(m.parameters(), lr=0.1)
    prune.l1_unstructured(m, "weight", 0.5)
    mask = m.weight_mask.numpy().astype(bool)
    before = m.weight_orig.detach().numpy().copy()
    m(dtorch.ones(4, 5)).sum().backward()
    opt.step()
    after = m.weight_orig.detach().numpy()
    assert np.array_equal(before[~mask], after[~mask]) and not np.array_equal(before[mask], after[mask])
    m(dtorch.ones(1, 5))
    np.testing.assert_array_equal(m.weight.detach().numpy(), after * mask)


def test_random_methods_prune_the_right_counts():
    m = _linear(dtorch, 10, 8)
    prune.random_unstructured(m, "weight", amount=0.25)
    assert int((m.weight_mask == 0).sum()) == 20
    prune.random_unstructured(m, "weight", amount=7)  # compounds on the 60 left
    assert int((m.weight_mask == 0).sum()) == 27
    m2 = _linear(dtorch, 10, 8)
    prune.random_structured(m2, "weight", amount=0.3, dim=0)
    rows = m2.weight_mask.numpy().sum(axis=1)
    assert sorted(set(rows.tolist())) == [0.0, 8.0] and int((rows == 0).sum()) == 3
    prune.random_structured(m2, "weight", amount=2, dim=0)  # two more of the seven live rows
    assert int((m2.weight_mask.numpy().sum(axis=1) == 0).sum()) == 5


def test_global_unstructured_matches_torch(torch):
    import torch.nn.utils.prune as tprune

    md = [_linear(dtorch, 6, 5, 0), _linear(dtorch, 4, 6, 3)]
    mt = [_linear(torch, 6, 5, 0), _linear(torch, 4, 6, 3)]
    prune.l1_unstructured(md[0], "weight", 3)
    tprune.l1_unstructured(mt[0], "weight", 3)
    prune.global_unstructured([(m, "weight") for m in md], prune.L1Unstructured, amount=0.4)
    tprune.global_unstructured([(m, "weight") for m in mt], tprune.L1Unstructured, amount=0.4)
    for a, b in zip(md, mt):
        np.testing.assert_array_equal(a.weight_mask.numpy(), b.weight_mask.numpy())
        assert len(a._forward_pre_hooks) == 1


def test_errors_have_torchs_wording():
    m = _linear(dtorch)
    with pytest.raises(ValueError, match=r"amount=1.5 should either be a float in the range \[0, 1\]"):
        prune.l1_unstructured(m, "weight", 1.5)
    with pytest.raises(TypeError, match="Invalid type for amount"):
        prune.l1_unstructured(m, "weight", "half")
    with pytest.raises(ValueError, match="amount=31 should be smaller than the number of parameters to prune=30"):
        prune.l1_unstructured(m, "weight", 31)
    assert "weight" in m._parameters and not prune.is_pruned(m)  # a failed prune leaves the module as it was
    with pytest.raises(ValueError, match="Structured pruning can only be applied to multidimensional tensors"):
        prune.ln_structured(m, "bias", 0.5, 2, 0)
    with pytest.raises(IndexError, match="Invalid index 2 for tensor of size"):
        prune.random_structured(m, "weight", 0.5, 2)
    with pytest.raises(ValueError, match="Parameter 'weight' of module .* has to be pruned before"):
        prune.remove(m, "weight")
    with pytest.raises(TypeError, match="not a BasePruningMethod subclass"):
        prune.PruningContainer().add_pruning_method(3)


def test_prune_method_on_a_bare_tensor():
    t = dtorch.tensor([[1.0, -5.0, 2.0], [0.5, 4.0, -3.0]])
    out = prune.L1Unstructured(amount=2).prune(t)
    np.testing.assert_array_equal(out.numpy(), [[0.0, -5.0, 2.0], [0.0, 4.0, -3.0]])


def test_compact_mlp_is_smaller_with_the_same_outputs():
    m = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 16), nn.GELU(),
                      nn.Linear(16, 4)).eval()
    prune.ln_structured(m[0], "weight", 0.5, 2, 0)
    prune.ln_structured(m[3], "weight", 0.5, 1, 0)
    prune.l1_unstructured(m[5], "weight", 0.3)
    x = dtorch.randn(8, 20)
    y = m(x).detach().numpy()
    prune.compact(m)
    assert not prune.is_pruned(m)
    assert (m[0].out_features, m[3].in_features, m[3].out_features, m[5].in_features) == (16, 16, 8, 8)
    assert tuple(m[0].weight.shape) == (16, 20) and tuple(m[5].weight.shape) == (4, 8)
    np.testing.assert_allclose(m(x).detach().numpy(), y, rtol=1e-5, atol=1e-6)


def test_compact_conv_keeps_channels_it_cannot_fold():
    c = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
                      nn.Conv2d(8, 6, 3, padding=1), nn.Flatten(), nn.Linear(6 * 4 * 4, 5)).eval()
    with dtorch.no_grad():
        c[2].bias.copy_(dtorch.tensor([1.0, -1.0] * 4))  # ReLU keeps half the dead channels' constants
    for i in (0, 2, 4):
        prune.ln_structured(c[i], "weight", 0.5, 2, 0)
    dead = c[2].weight_mask.numpy().sum(axis=(1, 2, 3)) == 0
    removable = int((dead & (c[2].bias.detach().numpy() < 0)).sum())
    x = dtorch.randn(2, 1, 6, 6)
    y = c(x).detach().numpy()
    prune.compact(c)
    assert c[0].out_channels == 4 and c[2].in_channels == 4  # next conv unpadded: constants folded
    assert 0 < removable < 4 and c[2].out_channels == c[4].in_channels == 8 - removable  # padded: ReLU(1) stays
    assert c[4].out_channels == 3 and c[6].in_features == 48
    np.testing.assert_allclose(c(x).detach().numpy(), y, rtol=1e-5, atol=1e-6)


def test_compact_drops_inputs_the_next_layer_ignores():
    m = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3)).eval()
    prune.ln_structured(m[2], "weight", 4, n=1, dim=1)  # 4 input columns of the last layer
    x = dtorch.randn(5, 6)
    y = m(x).detach().numpy()
    prune.compact(m)
    assert (m[0].out_features, m[2].in_features) == (6, 6)
    np.testing.assert_allclose(m(x).detach().numpy(), y, rtol=1e-6, atol=1e-6)
