"""Two pytorch/examples programs in their own style on a small digits set: the MNIST CNN (Conv2d, Dropout,
max_pool2d, flatten, log_softmax + nll_loss, Adadelta with StepLR, DataLoader over a TensorDataset, a test()
pass with argmax/eq/sum) and the VAE (fc encoder to mu/logvar, reparameterize with randn_like, BCE(sum) + KLD).

Dropout and the VAE's sampling draw from each library's own generator, so trajectories cannot be compared
step by step; what is compared with torch is everything deterministic from the same weights (the eval pass,
the loss functions and their gradients), and both libraries must learn.
"""
from __future__ import annotations

import numpy as np
import pytest

import dtorch
from tests.programs._weights import copy_weights

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def digits():
    d = sklearn_datasets.load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # N, 1, 8, 8 in [0, 1]
    return x, d.target.astype(np.int64)


def mnist_net(lib):
    nn, F = lib.nn, lib.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, 1)
            self.conv2 = nn.Conv2d(8, 16, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(64, 32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = F.relu(x)
            x = self.conv2(x)
            x = F.relu(x)
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = lib.flatten(x, 1)
            x = self.fc1(x)
            x = F.relu(x)
            x = self.dropout2(x)
            x = self.fc2(x)
            return F.log_softmax(x, dim=1)

    return Net()


def evaluate(lib, model, loader) -> tuple[float, int]:
    model.eval()
    test_loss, correct = 0.0, 0
    with lib.no_grad():
        for data, target in loader:
            output = model(data)
            test_loss += lib.nn.functional.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    return test_loss / len(loader.dataset), correct


def train_mnist(lib, model, loader, epochs: int) -> None:
    optimizer = lib.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = lib.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    for _ in range(epochs):
        model.train()
        for data, target in loader:
            optimizer.zero_grad()
            loss = lib.nn.functional.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
        scheduler.step()
    return optimizer.param_groups[0]["lr"]


def test_mnist_cnn(torch):
    x, y = digits()
    x, y = x[:720], y[:720]
    results = {}
    torch.manual_seed(1)
    ref = mnist_net(torch)
    for lib in (torch, dtorch):
        lib.manual_seed(1)
        model = mnist_net(lib)
        copy_weights(ref, model, lib)
        ds = lib.utils.data.TensorDataset(lib.from_numpy(x), lib.from_numpy(y))
        train_loader = lib.utils.data.DataLoader(ds, batch_size=32, shuffle=True)
        test_loader = lib.utils.data.DataLoader(ds, batch_size=500)
        before = evaluate(lib, model, test_loader)
        lr = train_mnist(lib, model, train_loader, epochs=3)
        results[lib.__name__] = before, evaluate(lib, model, test_loader), lr
    (t_before, t_after, t_lr), (d_before, d_after, d_lr) = results["torch"], results["dtorch"]
    assert d_before[0] == pytest.approx(t_before[0], rel=1e-5) and d_before[1] == t_before[1]
    assert d_lr == pytest.approx(t_lr) == pytest.approx(0.343)
    for before, after in ((t_before, t_after), (d_before, d_after)):  # both learned, about equally
        assert after[0] < 0.85 * before[0] and after[1] > 0.5 * len(y), results
    assert abs(d_after[0] - t_after[0]) < 0.25 * t_after[0], results


def vae(lib):
    nn, F = lib.nn, lib.nn.functional

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(64, 32)
            self.fc21 = nn.Linear(32, 4)
            self.fc22 = nn.Linear(32, 4)
            self.fc3 = nn.Linear(4, 32)
            self.fc4 = nn.Linear(32, 64)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = lib.exp(0.5 * logvar)
            eps = lib.randn_like(std)
            return mu + eps * std

        def decode(self, z):
            h3 = F.relu(self.fc3(z))
            return lib.sigmoid(self.fc4(h3))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 64))
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    return VAE()


def loss_function(lib, recon_x, x, mu, logvar):
    BCE = lib.nn.functional.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")
    KLD = -0.5 * lib.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def test_vae(torch):
    x, _ = digits()
    torch.manual_seed(0)
    ref = vae(torch)
    model = vae(dtorch)
    copy_weights(ref, model, dtorch)
    batch = x[:32]
    # deterministic part: decode(mu) and the loss with its gradients, from the same weights
    outs = []
    for lib, m in ((torch, ref), (dtorch, model)):
        data = lib.from_numpy(batch)
        mu, logvar = m.encode(data.view(-1, 64))
        loss = loss_function(lib, m.decode(mu), data, mu, logvar)
        loss.backward()
        outs.append((loss.item(), m.fc1.weight.grad.numpy().copy(), m.fc4.bias.grad.numpy().copy()))
        m.zero_grad()
    assert outs[1][0] == pytest.approx(outs[0][0], rel=1e-5)
    for a, b in zip(outs[1][1:], outs[0][1:]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # training as the example does: the per-sample loss falls
    dtorch.manual_seed(0)
    loader = dtorch.utils.data.DataLoader(dtorch.from_numpy(x), batch_size=128, shuffle=True)
    optimizer = dtorch.optim.Adam(model.parameters(), lr=1e-2)
    epoch_losses = []
    for _ in range(4):
        model.train()
        train_loss = 0.0
        for data in loader:
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(dtorch, recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        epoch_losses.append(train_loss / len(loader.dataset))
    assert epoch_losses[-1] < 0.8 * epoch_losses[0], epoch_losses
    with dtorch.no_grad():
        sample = model.decode(dtorch.randn(16, 4))
    assert tuple(sample.shape) == (16, 64) and 0 <= sample.min().item() and sample.max().item() <= 1
