"""A DCGAN pair trained as pytorch/examples' dcgan writes it, on dtorch and torch from the same weights and noise.

The program's patterns: Generator of ConvTranspose2d + BatchNorm2d + ReLU ending in Tanh, Discriminator of
strided Conv2d + LeakyReLU(0.2, inplace=True) + BatchNorm2d ending in Sigmoid, ``weights_init`` applied with
``module.apply`` and ``classname.find('Conv')``, ``nn.init.normal_`` on ``.weight.data``, BCELoss, Adam with
betas (0.5, 0.999), ``label.fill_(real_label)``, ``netD(fake.detach()).view(-1)``, the D(x)/D(G(z)) means.
Both libraries must produce the same losses step by step (BatchNorm in training mode, no dropout: deterministic).
"""
from __future__ import annotations

import numpy as np

import dtorch
from tests.programs._weights import copy_weights

NZ, NGF, NDF, NC, BATCH, STEPS = 8, 8, 8, 3, 4, 3


def make_models(lib):
    nn = lib.nn

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(NZ, NGF * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
                nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
                nn.ConvTranspose2d(NGF * 2, NC, 4, 2, 1, bias=False), nn.Tanh())

        def forward(self, input):
            return self.main(input)

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(
                nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF * 2, 1, 4, 1, 0, bias=False), nn.Sigmoid())

        def forward(self, input):
            return self.main(input).view(-1, 1).squeeze(1)

    def weights_init(m):
        classname = m.__class__.__name__
        if classname.find("Conv") != -1:
            lib.nn.init.normal_(m.weight.data, 0.0, 0.02)
        elif classname.find("BatchNorm") != -1:
            lib.nn.init.normal_(m.weight.data, 1.0, 0.02)
            lib.nn.init.zeros_(m.bias.data)

    netG, netD = Generator(), Discriminator()
    netG.apply(weights_init)
    netD.apply(weights_init)
    return netG, netD


def train(lib, netG, netD, real_batches, noises) -> list[tuple[float, float, float, float]]:
    criterion = lib.nn.BCELoss()
    optD = lib.optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optG = lib.optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    history = []
    for real_np, noise_np in zip(real_batches, noises):
        netD.zero_grad()
        real = lib.from_numpy(real_np)
        label = lib.full((real.size(0),), real_label, dtype=real.dtype)
        output = netD(real)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = lib.from_numpy(noise_np)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        optD.step()
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        optG.step()
        history.append((errD.item(), errG.item(), D_x, D_G_z1))
    return history


def test_dcgan_losses_match_torch(torch):
    rng = np.random.default_rng(0)
    real = [np.tanh(rng.standard_normal((BATCH, NC, 16, 16))).astype(np.float32) for _ in range(STEPS)]
    noise = [rng.standard_normal((BATCH, NZ, 1, 1)).astype(np.float32) for _ in range(STEPS)]
    torch.manual_seed(0)
    tG, tD = make_models(torch)
    dG, dD = make_models(dtorch)
    copy_weights(tG, dG, dtorch)
    copy_weights(tD, dD, dtorch)
    theirs = train(torch, tG, tD, real, noise)
    ours = train(dtorch, dG, dD, real, noise)
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=2e-4, atol=2e-5)
    for (name, a), b in zip(dG.state_dict().items(), tG.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-5, err_msg=name)
