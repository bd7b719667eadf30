"""Short training runs in the style of well-known example programs, each against torch from the same weights:
sub-pixel super-resolution (PixelShuffle, Adam), a style-transfer net (ReflectionPad2d, InstanceNorm2d, Upsample),
an MNIST-style CNN with Adadelta and StepLR, an EmbeddingBag text classifier with SGD, and a sine-wave
LSTMCell predictor trained with LBFGS."""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.oracle import load_from_torch


@pytest.fixture(autouse=True)
def _one_torch_thread(torch):
    """torch's thread pool on a loaded 2-core machine makes these small float64 runs ~100x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _super_resolution(nn):
    return nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1), nn.PixelShuffle(2))


def _style(nn):
    return nn.Sequential(nn.ReflectionPad2d(2), nn.Conv2d(3, 6, 5), nn.InstanceNorm2d(6, affine=True), nn.ReLU(),
                         nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(6, 3, 3),
                         nn.InstanceNorm2d(3, affine=True, track_running_stats=True))


def _mnist(nn):
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 5 * 5, 10),
                         nn.LogSoftmax(dim=1))


PROGRAMS = {
    # name: (model, input shape, loss, optimizer, scheduler)
    "super_resolution": (_super_resolution, (2, 1, 6, 6), "mse", ("Adam", dict(lr=0.01)), None),
    # SGD: the conv biases right before an InstanceNorm get a zero gradient up to rounding, which Adam would
    # turn into unit steps of either sign (they move running_mean)
    "fast_neural_style": (_style, (2, 3, 6, 6), "mse", ("SGD", dict(lr=0.1, momentum=0.9)), None),
    "mnist_adadelta": (_mnist, (8, 1, 12, 12), "nll", ("Adadelta", dict(lr=1.0)), dict(step_size=1, gamma=0.7)),
}


def _train(lib, name, model, x, y, steps: int = 4):
    _, _, loss_kind, (opt_name, opt_kw), sched = PROGRAMS[name]
    opt = getattr(lib.optim, opt_name)(model.parameters(), **opt_kw)
    scheduler = lib.optim.lr_scheduler.StepLR(opt, **sched) if sched else None
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = model(lib.tensor(x))
        target = lib.tensor(y)
        loss = (lib.nn.functional.mse_loss(out, target) if loss_kind == "mse"
                else lib.nn.functional.nll_loss(out, target))
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_program_trains_like_torch(name, torch) -> None:
    make, shape, loss_kind, _, _ = PROGRAMS[name]
    torch.manual_seed(0)
    theirs = make(torch.nn).double()
    ours = make(dtorch.nn).double()
    load_from_torch(ours, theirs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    if loss_kind == "mse":
        with torch.no_grad():  # in eval mode: the running statistics stay as they are
            y = rng.standard_normal(tuple(theirs.eval()(torch.tensor(x)).shape))
        theirs.train()
    else:
        y = rng.integers(0, 10, shape[0])
    losses, tlosses = _train(dtorch, name, ours, x, y), _train(torch, name, theirs, x, y)
    np.testing.assert_allclose(losses, tlosses, rtol=1e-9)
    assert losses[-1] < losses[0]
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10, err_msg=k)


def _text_classifier(lib):
    class Classifier(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = lib.nn.EmbeddingBag(30, 8)
            self.fc = lib.nn.Linear(8, 3)

        def forward(self, text, offsets):
            return self.fc(self.embedding(text, offsets))
    return Classifier()


def test_embedding_bag_text_classifier(torch) -> None:
    theirs = _text_classifier(torch).double()
    ours = _text_classifier(dtorch).double()
    load_from_torch(ours, theirs)
    runs = []
    for lib, model in ((dtorch, ours), (torch, theirs)):
        opt = lib.optim.SGD(model.parameters(), lr=5.0)
        sched = lib.optim.lr_scheduler.StepLR(opt, 1, gamma=0.1)
        losses = []
        for step in range(3):
            r = np.random.default_rng(step)
            lengths = r.integers(1, 6, 4)
            text = lib.tensor(r.integers(0, 30, lengths.sum()))
            offsets = lib.tensor(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
            label = lib.tensor(r.integers(0, 3, 4))
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(text, offsets), label)
            loss.backward()
            lib.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        runs.append(losses)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-10)
    assert runs[0][-1] < runs[0][0]


def _sequence(lib):
    class Sequence(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = lib.nn.LSTMCell(1, 6)
            self.linear = lib.nn.Linear(6, 1)

        def forward(self, input):
            h = lib.zeros(input.size(0), 6, dtype=lib.double)
            c = lib.zeros(input.size(0), 6, dtype=lib.double)
            outputs = []
            for x in input.split(1, dim=1):
                h, c = self.lstm1(x, (h, c))
                outputs.append(self.linear(h))
            return lib.cat(outputs, dim=1)
    return Sequence()


def test_time_sequence_lstm_cell_with_lbfgs(torch) -> None:
    if not hasattr(dtorch.nn, "LSTMCell"):
        pytest.skip("nn.LSTMCell is not in this tree yet")
    torch.manual_seed(0)
    theirs = _sequence(torch).double()
    ours = _sequence(dtorch).double()
    load_from_torch(ours, theirs)
    t = np.arange(12) / 3.0
    data = np.sin(t[None, :] + np.arange(3)[:, None])
    ours_losses = _fit_sequence(dtorch, ours, data)
    np.testing.assert_allclose(ours_losses, _fit_sequence(torch, theirs, data), rtol=1e-8)
    assert ours_losses[-1] < ours_losses[0]


def _fit_sequence(lib, model, data) -> list:
    """Two LBFGS steps predicting each next sample; the loss of every closure call."""
    inp, target = lib.tensor(data[:, :-1]), lib.tensor(data[:, 1:])
    opt = lib.optim.LBFGS(model.parameters(), lr=0.8, max_iter=5)
    losses = []

    def closure():
        opt.zero_grad()
        loss = lib.nn.functional.mse_loss(model(inp), target)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss
    for _ in range(2):
        opt.step(closure)
    return losses
