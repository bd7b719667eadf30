"""The test models, written once for any torch-like library (dtorch, or torch as the oracle)."""
from __future__ import annotations

import math


def mlp(lib, sizes=(8, 16, 4)):
    nn = lib.nn
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


# a function with data-dependent control flow, for jit.script and its ONNX If
def branchy(x, y):
    if x.sum() > 0:
        z = x * 2
    else:
        z = -y
    return z + 1


def cnn(lib):
    nn = lib.nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(8 * 4 * 4, 5)

        def forward(self, x):
            x = self.pool(self.bn(self.conv(x)).relu())
            return self.fc(x.flatten(1))

    return CNN()


def gpt_block(lib, width=16, heads=2, context=8, sdpa=False):
    """nanoGPT's Block: LayerNorm, causal self-attention (manual masked_fill+softmax, or SDPA), MLP with GELU."""
    nn, F = lib.nn, lib.nn.functional

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(width, 3 * width)
            self.c_proj = nn.Linear(width, width)
            self.attn_dropout = nn.Dropout(0.1)
            self.register_buffer("bias", lib.tril(lib.ones(context, context)).view(1, 1, context, context))

        def forward(self, x):
            b, t, c = x.size()
            q, k, v = self.c_attn(x).split(c, dim=2)
            k = k.view(b, t, heads, c // heads).transpose(1, 2)
            q = q.view(b, t, heads, c // heads).transpose(1, 2)
            v = v.view(b, t, heads, c // heads).transpose(1, 2)
            if sdpa:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf"))
                att = self.attn_dropout(F.softmax(att, dim=-1))
                y = att @ v
            y = y.transpose(1, 2).contiguous().view(b, t, c)
            return self.c_proj(y)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(width)
            self.attn = Attention()
            self.ln_2 = nn.LayerNorm(width)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width),
                                     nn.Dropout(0.1))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    return Block()


def copy_weights(src, dst, lib_dst) -> None:
    """Give ``dst`` (a model of ``lib_dst``) ``src``'s parameters and buffers."""
    import numpy as np

    state = {k: np.array(v.detach().cpu().numpy()) for k, v in src.state_dict().items()}
    with lib_dst.no_grad():
        for k, v in dst.state_dict().items():
            v.copy_(lib_dst.from_numpy(state[k]))
