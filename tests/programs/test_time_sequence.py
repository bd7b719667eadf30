"""Sine-wave prediction as pytorch/examples' time_sequence_prediction writes it, run on dtorch and torch.

The program's patterns: two stacked ``LSTMCell`` stepped by hand over ``input.split(1, dim=1)`` with float64
zero states, a ``Linear`` head, ``future`` steps fed back from the model's own output, ``model.double()``,
MSELoss, ``optim.LBFGS`` with a ``closure``, prediction under ``no_grad``. From the same weights and data,
the losses and predictions must match torch's, and training must lower the loss.
"""
from __future__ import annotations

import numpy as np

import dtorch

HIDDEN, N, LENGTH, PERIOD = 8, 4, 24, 5


def sine_waves(seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.arange(LENGTH) + rng.integers(-4 * PERIOD, 4 * PERIOD, N).reshape(N, 1)
    return np.sin(x / PERIOD)


def sequence_model(lib):
    nn = lib.nn

    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = nn.LSTMCell(1, HIDDEN)
            self.lstm2 = nn.LSTMCell(HIDDEN, HIDDEN)
            self.linear = nn.Linear(HIDDEN, 1)

        def forward(self, input, future=0):
            outputs = []
            h_t = lib.zeros(input.size(0), HIDDEN, dtype=lib.double)
            c_t = lib.zeros(input.size(0), HIDDEN, dtype=lib.double)
            h_t2 = lib.zeros(input.size(0), HIDDEN, dtype=lib.double)
            c_t2 = lib.zeros(input.size(0), HIDDEN, dtype=lib.double)
            for input_t in input.split(1, dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            for _ in range(future):
                h_t, c_t = self.lstm1(output, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            return lib.cat(outputs, dim=1)

    return Sequence()


def run(lib, seq, data: np.ndarray, steps: int) -> tuple:
    input, target = lib.from_numpy(data[1:, :-1]), lib.from_numpy(data[1:, 1:])
    test_input, test_target = lib.from_numpy(data[:1, :-1]), lib.from_numpy(data[:1, 1:])
    criterion = lib.nn.MSELoss()
    optimizer = lib.optim.LBFGS(seq.parameters(), lr=0.8, max_iter=4, line_search_fn="strong_wolfe")
    losses = []
    for _ in range(steps):
        def closure():
            optimizer.zero_grad()
            loss = criterion(seq(input), target)
            losses.append(loss.item())
            loss.backward()
            return loss
        optimizer.step(closure)
    with lib.no_grad():
        future = 5
        pred = seq(test_input, future=future)
        test_loss = criterion(pred[:, :-future], test_target).item()
    return losses, test_loss, pred.detach().numpy()


def test_time_sequence_prediction_tracks_torch(torch):
    torch.manual_seed(0)
    ts = sequence_model(torch).double()
    ds = sequence_model(dtorch).double()
    assert list(ds.state_dict()) == list(ts.state_dict())
    ds.load_state_dict({k: dtorch.tensor(v.numpy()) for k, v in ts.state_dict().items()})
    data = sine_waves()
    d_losses, d_test, d_pred = run(dtorch, ds, data, 2)
    t_losses, t_test, t_pred = run(torch, ts, data, 2)
    assert len(d_losses) == len(t_losses)
    np.testing.assert_allclose(d_losses, t_losses, rtol=1e-7)
    np.testing.assert_allclose(d_test, t_test, rtol=1e-7)
    np.testing.assert_allclose(d_pred, t_pred, rtol=1e-7, atol=1e-9)
    assert d_pred.shape == (1, LENGTH - 1 + 5)
    assert d_losses[-1] < d_losses[0]
