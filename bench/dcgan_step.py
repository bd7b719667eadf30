"""Training steps/s of pytorch/examples' DCGAN as written (dcgan/main.py), dtorch against torch in the same run.

The models are the example's code with the library passed in: the Generator is ConvTranspose2d (4x4, stride 2,
padding 1 after a first stride-1 layer from the noise) + BatchNorm2d + ReLU(True), ending in Tanh; the
Discriminator is Conv2d (4x4, stride 2, padding 1) + BatchNorm2d + LeakyReLU(0.2, inplace=True), ending in a
4x4 Conv2d and Sigmoid; ``weights_init`` with ``classname.find('Conv')``; BCELoss; two Adam optimizers, lr 2e-4,
betas (0.5, 0.999). One step is the example's iteration: D on the real batch, G on the noise, D on
``fake.detach()``, ``optimizerD.step()``, then D on the fake with real labels and ``optimizerG.step()``.
64x64 images, 3 channels, nz 100, ngf = ndf = 16, batch 64 (the example's default batch size). dtorch and torch
start from the same weights (copied through numpy) and see the same real batch and noise; BatchNorm runs in
training mode and there is no dropout, so their losses agree to float32 rounding.

Each thread count runs in its own subprocess (thread variables set before numpy loads); steps are timed one at
a time, the implementations taking turns, and a figure is the median over ``rounds * steps`` steps. Prints ONE
JSON line with the ratio to torch.

Usage: ``python bench/dcgan_step.py [--rounds 5] [--steps 4] [--threads 1 2] [--clock wall|cpu] [--ngf 16]
[--batch 64]``; ``--profile 10`` prints a cProfile table of dtorch's steps at 1 thread.
"""
from __future__ import annotations

import functools
import json

import numpy as np

from _interleave import run_per_thread, run_worker, step_arguments

NZ, NC, IMAGE, LR, BETAS = 100, 3, 64, 2e-4, (0.5, 0.999)


@functools.cache
def _dcgan(lib):
    """dcgan/main.py's Generator, Discriminator and weights_init, written against ``lib``."""
    nn = lib.nn

    class Generator(nn.Module):
        def __init__(self, ngf):
            super().__init__()
            self.main = nn.Sequential(
                nn.ConvTranspose2d(NZ, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
                nn.ConvTranspose2d(ngf, NC, 4, 2, 1, bias=False), nn.Tanh())

        def forward(self, input):
            return self.main(input)

    class Discriminator(nn.Module):
        def __init__(self, ndf):
            super().__init__()
            self.main = nn.Sequential(
                nn.Conv2d(NC, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

        def forward(self, input):
            return self.main(input).view(-1, 1).squeeze(1)

    def weights_init(m):
        classname = m.__class__.__name__
        if classname.find("Conv") != -1:
            lib.nn.init.normal_(m.weight.data, 0.0, 0.02)
        elif classname.find("BatchNorm") != -1:
            lib.nn.init.normal_(m.weight.data, 1.0, 0.02)
            lib.nn.init.zeros_(m.bias.data)

    return Generator, Discriminator, weights_init


class DCGAN:
    """The example's training iteration on a fixed real batch and fixed noise; ``step`` returns errD + errG."""

    def __init__(self, lib, states: tuple[dict, dict] | None, width: int) -> None:
        self.lib = lib
        lib.manual_seed(0)
        gen, disc, weights_init = _dcgan(lib)
        self.netG, self.netD = gen(width), disc(width)
        for net, state in zip((self.netG, self.netD), states or (None, None)):
            net.apply(weights_init)
            if state is not None:
                net.load_state_dict({k: lib.from_numpy(v.copy()) for k, v in state.items()})
        self.criterion = lib.nn.BCELoss()
        self.optD = lib.optim.Adam(self.netD.parameters(), lr=LR, betas=BETAS)
        self.optG = lib.optim.Adam(self.netG.parameters(), lr=LR, betas=BETAS)

    def states(self) -> tuple[dict, dict]:
        return tuple({k: v.numpy().copy() for k, v in net.state_dict().items()} for net in (self.netG, self.netD))

    def step(self, real, noise):
        lib, netD, netG, criterion = self.lib, self.netD, self.netG, self.criterion
        netD.zero_grad()
        label = lib.full((real.size(0),), 1.0, dtype=real.dtype)
        errD_real = criterion(netD(real), label)
        errD_real.backward()
        fake = netG(noise)
        label.fill_(0.0)
        errD_fake = criterion(netD(fake.detach()), label)
        errD_fake.backward()
        errD = errD_real + errD_fake
        self.optD.step()
        netG.zero_grad()
        label.fill_(1.0)
        errG = criterion(netD(fake), label)
        errG.backward()
        self.optG.step()
        return errD.item() + errG.item()


def make_impls(threads: int, width: int, batch: int) -> dict:
    import dtorch

    rng = np.random.default_rng(1)
    real = rng.uniform(-1, 1, (batch, NC, IMAGE, IMAGE)).astype(np.float32)
    noise = rng.standard_normal((batch, NZ, 1, 1)).astype(np.float32)
    ours = DCGAN(dtorch, None, width)
    impls = {"dtorch": (ours, dtorch.from_numpy(real), dtorch.from_numpy(noise))}
    try:
        import torch

        torch.set_num_threads(threads)
        impls["torch"] = (DCGAN(torch, ours.states(), width), torch.from_numpy(real), torch.from_numpy(noise))
    except ImportError:
        pass
    return impls


def main() -> None:
    ap = step_arguments(__doc__, rounds=5, steps=4)
    ap.add_argument("--ngf", type=int, default=16, help="ngf = ndf, the models' base width")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    if args.worker is not None:
        impls = make_impls(args.worker, args.ngf, args.batch)
        run_worker(impls, args)
        return
    result = {"bench": "dcgan_step", "image": IMAGE, "nz": NZ, "ngf": args.ngf, "ndf": args.ngf,
              "batch": args.batch, "dtype": "float32", "optimizer": "Adam(0.5, 0.999) x2", "clock": args.clock}
    argv = ["--rounds", str(args.rounds), "--steps", str(args.steps), "--clock", args.clock,
            "--ngf", str(args.ngf), "--batch", str(args.batch)]
    result.update(run_per_thread(__file__, args.threads, argv, args.profile))
    if not args.profile:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
