"""The example models, written once for any torch-like library.

Each builder takes the library module (``dtorch``, or ``torch`` for parity tests and benchmarks) as
its first argument, so the very same architecture runs on both. Jobs pass ``dtorch``.
"""
from __future__ import annotations

import functools
import math
from typing import Any


def mlp(lib: Any, sizes: tuple[int, ...] = (64, 128, 10)) -> Any:
    """Linear/ReLU layers through ``sizes`` (no activation after the last)."""
    nn = lib.nn
    layers: list = [nn.Flatten()]
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def cnn(lib: Any, channels: tuple[int, int] = (16, 32), classes: int = 10, side: int = 8) -> Any:
    """Two conv(3x3)/ReLU/max-pool(2) stages and a linear head, for ``(N, 1, side, side)`` images."""
    nn = lib.nn
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * (side // 4) ** 2, classes),
    )


def gpt(lib: Any, vocab: int, context: int = 64, layers: int = 4, heads: int = 4, width: int = 128,
        tied: bool = False) -> Any:
    """A nanoGPT-style decoder: pre-LN blocks of causal self-attention and a 4x GELU MLP.

    ``model(idx)`` maps token ids ``(B, T)`` to logits ``(B, T, vocab)``. Weights start as GPT-2's:
    normal(0, 0.02), residual projections scaled by ``1/sqrt(2 * layers)``, zero biases.
    """
    return _gpt_class(lib)(vocab, context, layers, heads, width, tied)


@functools.cache
def _gpt_class(lib: Any) -> type:
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self, width: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.ln1 = nn.LayerNorm(width)
            self.qkv = nn.Linear(width, 3 * width)
            self.proj = nn.Linear(width, width)
            self.ln2 = nn.LayerNorm(width)
            self.fc = nn.Linear(width, 4 * width)
            self.gelu = nn.GELU()
            self.out = nn.Linear(4 * width, width)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
            q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
            return x + self.out(self.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self, vocab: int, context: int, layers: int, heads: int, width: int, tied: bool) -> None:
            super().__init__()
            self.context = context
            self.tok = nn.Embedding(vocab, width)
            self.pos = nn.Embedding(context, width)
            self.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
            self.ln_f = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab, bias=False)
            if tied:
                self.head.weight = self.tok.weight
            self._init_weights(layers)

        def _init_weights(self, layers: int) -> None:
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    nn.init.zeros_(p)
                elif "ln" in name:
                    nn.init.ones_(p)
                else:
                    std = 0.02 / math.sqrt(2 * layers) if name.endswith(("proj.weight", "out.weight")) else 0.02
                    nn.init.normal_(p, 0.0, std)

        def forward(self, idx):
            t = idx.shape[1]
            pos = lib.arange(t, device=idx.device)
            x = self.tok(idx) + self.pos(pos)
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_f(x))

    return GPT
