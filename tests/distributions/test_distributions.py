"""dtorch.distributions against torch.distributions: log_prob, cdf, entropy, moments and KL (values and gradients,
float64), sample shapes and statistics, reparameterized gradients, and torch's validation errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dtorch
import dtorch.distributions as D
from tests.oracle import check_op


def _probs(lib, x):
    return x.softmax(-1)


CASES = {
    "normal_log_prob": (lambda lib, m, s, v: lib.distributions.Normal(m, s.exp()).log_prob(v), [(3,), (3,), (2, 3)]),
    "normal_cdf": (lambda lib, m, s, v: lib.distributions.Normal(m, s.exp()).cdf(v), [(3,), (3,), (3,)]),
    "normal_entropy": (lambda lib, m, s: lib.distributions.Normal(m, s.exp()).entropy(), [(3,), (3,)]),
    "normal_moments": (lambda lib, m, s: (lib.distributions.Normal(m, s.exp()).variance,
                                          lib.distributions.Normal(m, s.exp()).stddev), [(3,), (3,)]),
    "uniform_log_prob": (lambda lib, lo, v: lib.distributions.Uniform(lo - 3, lo + 3).log_prob(v), [(4,), (4,)]),
    "uniform_entropy_cdf": (lambda lib, lo, v: (lib.distributions.Uniform(lo - 3, lo + 3).entropy(),
                                                lib.distributions.Uniform(lo - 3, lo + 3).cdf(v)), [(4,), (4,)]),
    "bernoulli_logits": (lambda lib, lg: lib.distributions.Bernoulli(logits=lg).log_prob(lib.tensor(
        [1.0, 0.0, 1.0], dtype=lg.dtype)), [(3,)]),
    "bernoulli_probs_entropy": (lambda lib, lg: lib.distributions.Bernoulli(probs=lg.sigmoid()).entropy(), [(3,)]),
    "categorical_logits": (lambda lib, lg: lib.distributions.Categorical(logits=lg).log_prob(lib.tensor([0, 2])),
                           [(2, 3)]),
    "categorical_probs": (lambda lib, lg: (lib.distributions.Categorical(probs=_probs(lib, lg)).log_prob(
        lib.tensor([[1], [0]])), lib.distributions.Categorical(probs=_probs(lib, lg)).entropy()), [(2, 3)]),
    "mvn_log_prob": (lambda lib, m, a, v: lib.distributions.MultivariateNormal(
        m, a @ a.mT + lib.eye(3, dtype=a.dtype)).log_prob(v), [(3,), (3, 3), (2, 3)]),
    "mvn_scale_tril_entropy": (lambda lib, m, a: lib.distributions.MultivariateNormal(
        m, scale_tril=a.tril(-1) + lib.diag_embed(a.diagonal(dim1=-2, dim2=-1).exp())).entropy(), [(3,), (2, 3, 3)]),
    "kl_normal": (lambda lib, a, b: lib.distributions.kl_divergence(
        lib.distributions.Normal(a, b.exp()), lib.distributions.Normal(b, a.exp())), [(3,), (3,)]),
    "kl_categorical": (lambda lib, a, b: lib.distributions.kl_divergence(
        lib.distributions.Categorical(logits=a), lib.distributions.Categorical(logits=b)), [(2, 4), (2, 4)]),
    "kl_bernoulli": (lambda lib, a, b: lib.distributions.kl_divergence(
        lib.distributions.Bernoulli(logits=a), lib.distributions.Bernoulli(logits=b)), [(3,), (3,)]),
    "kl_mvn": (lambda lib, m, a, b: lib.distributions.kl_divergence(
        lib.distributions.MultivariateNormal(m, a @ a.mT + lib.eye(2, dtype=a.dtype)),
        lib.distributions.MultivariateNormal(-m, b @ b.mT + lib.eye(2, dtype=a.dtype))), [(2,), (2, 2), (2, 2)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity_with_torch(name):
    fn, shapes = CASES[name]
    check_op(fn, shapes=shapes, seed=2)


def test_kl_uniform_and_its_infinite_case(torch):
    for lo_q in (-1.0, 0.5):
        ours = D.kl_divergence(D.Uniform(0.0, 1.0), D.Uniform(lo_q, 2.0))
        theirs = torch.distributions.kl_divergence(torch.distributions.Uniform(0.0, 1.0),
                                                   torch.distributions.Uniform(lo_q, 2.0))
        assert float(ours) == pytest.approx(float(theirs))


@pytest.mark.parametrize("make,mean,var", [
    (lambda: D.Normal(dtorch.tensor([1.0, -2.0]), dtorch.tensor([0.5, 2.0])), [1.0, -2.0], [0.25, 4.0]),
    (lambda: D.Uniform(dtorch.tensor([0.0]), dtorch.tensor([3.0])), [1.5], [0.75]),
    (lambda: D.Bernoulli(probs=dtorch.tensor([0.2, 0.9])), [0.2, 0.9], [0.16, 0.09]),
    (lambda: D.Categorical(probs=dtorch.tensor([0.2, 0.3, 0.5])), [1.3], [0.61]),
    (lambda: D.MultivariateNormal(dtorch.tensor([1.0, 0.0]), dtorch.tensor([[2.0, 0.5], [0.5, 1.0]])),
     [1.0, 0.0], [2.0, 1.0]),
])
def test_sample_shapes_and_statistics(make, mean, var):
    dtorch.manual_seed(0)
    d = make()
    draws = d.sample((20000,))
    assert tuple(draws.shape) == (20000,) + tuple(d.batch_shape) + tuple(d.event_shape)
    x = draws.double().numpy()
    np.testing.assert_allclose(x.mean(0).reshape(-1), mean, atol=0.06)
    np.testing.assert_allclose(x.var(0).reshape(-1), var, rtol=0.06, atol=0.01)
    assert draws.requires_grad is False


def test_rsample_gradients_are_reparameterized():
    loc = dtorch.tensor([0.5, -1.0], requires_grad=True)
    scale = dtorch.tensor([1.0, 2.0], requires_grad=True)
    d = D.Normal(loc, scale)
    dtorch.manual_seed(1)
    x = d.rsample((4,))
    x.sum().backward()
    assert loc.grad.tolist() == [4.0, 4.0]
    eps = (x.detach() - loc.detach()) / scale.detach()
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0).numpy(), rtol=1e-6)
    assert D.Normal(0.0, 1.0).has_rsample and not D.Categorical(logits=dtorch.zeros(2)).has_rsample


def test_reinforce_style_update_moves_probabilities():
    """pytorch/examples' reinforce pattern: sample an action, -log_prob * return, step."""
    logits = dtorch.zeros(3, requires_grad=True)
    opt = dtorch.optim.SGD([logits], lr=0.5)
    dtorch.manual_seed(0)
    for _ in range(30):
        m = D.Categorical(logits=logits)
        action = m.sample()
        reward = 1.0 if int(action) == 2 else 0.0
        loss = -m.log_prob(action) * reward
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert int(logits.argmax()) == 2


ERRORS = [
    ("negative_scale", lambda m: m.distributions.Normal(m.tensor([0.0, 1.0]), m.tensor([1.0, -1.0]))),
    ("probs_not_simplex", lambda m: m.distributions.Categorical(probs=m.tensor([0.5, -0.1]))),
    ("outside_support", lambda m: m.distributions.Categorical(logits=m.zeros(3)).log_prob(m.tensor(5))),
    ("both_parametrizations", lambda m: m.distributions.Categorical(probs=m.ones(2), logits=m.ones(2))),
    ("uniform_bounds", lambda m: m.distributions.Uniform(1.0, 0.0)),
    ("uniform_support", lambda m: m.distributions.Uniform(0.0, 1.0).log_prob(m.tensor(2.0))),
    ("bernoulli_probs", lambda m: m.distributions.Bernoulli(probs=m.tensor([1.5]))),
    ("mvn_two_matrices", lambda m: m.distributions.MultivariateNormal(m.zeros(2), m.eye(2), scale_tril=m.eye(2))),
    ("mvn_not_pd", lambda m: m.distributions.MultivariateNormal(m.zeros(2), m.tensor([[1.0, 2.0], [2.0, 1.0]]))),
]


@pytest.mark.parametrize("name,fn", ERRORS, ids=[e[0] for e in ERRORS])
def test_validation_errors_like_torch(name, fn, torch):
    with pytest.raises(Exception) as theirs:
        fn(torch)
    with pytest.raises(Exception) as ours:
        fn(dtorch)
    assert type(ours.value) is type(theirs.value)
    if name != "mvn_not_pd":  # torch fails in its own cholesky there
        assert str(ours.value).replace("dtorch.", "torch.") == str(theirs.value)


def test_validate_args_false_skips_checks_and_constraints_repr():
    D.Normal(dtorch.tensor([0.0]), dtorch.tensor([-1.0]), validate_args=False)
    c = D.constraints
    assert [repr(x) for x in (c.real, c.positive, c.simplex, c.unit_interval, c.integer_interval(0, 2))] == [
        "Real()", "GreaterThan(lower_bound=0.0)", "Simplex()", "Interval(lower_bound=0.0, upper_bound=1.0)",
        "IntegerInterval(lower_bound=0, upper_bound=2)"]
    assert D.Normal(0.0, 1.0).entropy().item() == pytest.approx(0.5 + 0.5 * math.log(2 * math.pi))
