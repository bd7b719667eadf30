"""Training steps/s of minGPT as written (karpathy/minGPT's mingpt/model.py and trainer.py) on its adder project.

The model is minGPT's code, the library passed in: ``NewGELU`` (``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x +
0.044715 * torch.pow(x, 3.0))))``), the manual causal attention (``q @ k.transpose(-2, -1) * scale``,
``masked_fill`` with a ``tril`` buffer, ``F.softmax``, dropout, ``@ v``), dropout 0.1 everywhere, GPT-2 init,
``F.cross_entropy(..., ignore_index=-1)``; the trainer's step: ``zero_grad(set_to_none=True)``, backward,
``clip_grad_norm_(1.0)``, AdamW (lr 5e-4, betas (0.9, 0.95), weight decay 0.1 on the Linear weights only).
The workload is projects/adder: 'gpt-nano' (3 layers, 3 heads, width 48), 2-digit sums, block 6, vocab 10,
batch 64, the first 3 targets of each row ignored. dtorch and torch start from the same weights and see the
same batch; their losses differ by their dropout draws. Each thread count runs in its own subprocess (thread
variables set before numpy loads); steps are timed one at a time, the implementations taking turns, and a
figure is the median over ``rounds * steps`` steps. Prints ONE JSON line with the ratio to torch.

Usage: ``python bench/mingpt_step.py [--rounds 5] [--steps 20] [--threads 1 2] [--clock wall|cpu]
[--width 48 --layers 3 --heads 3]``; ``--profile 50`` prints a cProfile table of dtorch's steps at 1 thread.
"""
from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys

import numpy as np

from _interleave import profile_steps, step_arguments, steps_per_s
from gpt_step import MMAP_THRESHOLD, ROOT, THREAD_VARS

NDIGIT, BATCH, VOCAB = 2, 64, 10
BLOCK = 3 * NDIGIT  # a, b and the reversed sum's NDIGIT + 1 digits, less the last
LR, BETAS, WEIGHT_DECAY, CLIP, PDROP = 5e-4, (0.9, 0.95), 0.1, 1.0, 0.1


@functools.cache
def _mingpt(lib):
    """minGPT's GPT class, written against ``lib`` (torch or dtorch)."""
    nn, F = lib.nn, lib.nn.functional

    class NewGELU(nn.Module):
        def forward(self, x):
            return 0.5 * x * (1.0 + lib.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * lib.pow(x, 3.0))))

    class CausalSelfAttention(nn.Module):
        def __init__(self, n_embd, n_head):
            super().__init__()
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)
            self.c_proj = nn.Linear(n_embd, n_embd)
            self.attn_dropout = nn.Dropout(PDROP)
            self.resid_dropout = nn.Dropout(PDROP)
            self.register_buffer("bias", lib.tril(lib.ones(BLOCK, BLOCK)).view(1, 1, BLOCK, BLOCK))
            self.n_head, self.n_embd = n_head, n_embd

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.resid_dropout(self.c_proj(y))

    class Block(nn.Module):
        def __init__(self, n_embd, n_head):
            super().__init__()
            self.ln_1 = nn.LayerNorm(n_embd)
            self.attn = CausalSelfAttention(n_embd, n_head)
            self.ln_2 = nn.LayerNorm(n_embd)
            self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(n_embd, 4 * n_embd), c_proj=nn.Linear(4 * n_embd, n_embd),
                                          act=NewGELU(), dropout=nn.Dropout(PDROP)))
            m = self.mlp
            self.mlpf = lambda x: m.dropout(m.c_proj(m.act(m.c_fc(x))))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlpf(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self, n_layer, n_head, n_embd):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(VOCAB, n_embd), wpe=nn.Embedding(BLOCK, n_embd), drop=nn.Dropout(PDROP),
                h=nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)]), ln_f=nn.LayerNorm(n_embd)))
            self.lm_head = nn.Linear(n_embd, VOCAB, bias=False)
            self.apply(self._init_weights)
            for pn, p in self.named_parameters():
                if pn.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

        def _init_weights(self, module):
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            elif isinstance(module, nn.LayerNorm):
                nn.init.zeros_(module.bias)
                nn.init.ones_(module.weight)

        def configure_optimizers(self):
            decay = {f"{mn}.{pn}" for mn, m in self.named_modules() for pn, _ in m.named_parameters()
                     if pn.endswith("weight") and isinstance(m, nn.Linear)}
            params = dict(self.named_parameters())
            groups = [{"params": [params[n] for n in sorted(decay)], "weight_decay": WEIGHT_DECAY},
                      {"params": [params[n] for n in sorted(set(params) - decay)], "weight_decay": 0.0}]
            return lib.optim.AdamW(groups, lr=LR, betas=BETAS)

        def forward(self, idx, targets=None):
            b, t = idx.size()
            pos = lib.arange(0, t, dtype=lib.long, device=idx.device).unsqueeze(0)
            x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            return logits, loss

    return GPT


class Trainer:
    """minGPT's trainer step on one fixed batch."""

    def __init__(self, lib, params: dict[str, np.ndarray], shape: tuple[int, int, int]) -> None:
        self.lib = lib
        lib.manual_seed(0)
        self.model = _mingpt(lib)(*shape)
        with lib.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(lib.from_numpy(params[name].copy()))
        self.opt = self.model.configure_optimizers()

    def step(self, x, y):
        _, loss = self.model(x, y)
        self.model.zero_grad(set_to_none=True)
        loss.backward()
        self.lib.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.opt.step()
        return loss


def adder_batch(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """projects/adder's AdditionDataset rows: a, b, then the sum's digits reversed; targets before the sum -1."""
    rng = np.random.default_rng(seed)
    rows_x, rows_y = [], []
    for a, b in rng.integers(0, 10 ** NDIGIT, (BATCH, 2)):
        digits = [int(d) for d in f"{a:0{NDIGIT}d}{b:0{NDIGIT}d}" + f"{a + b:0{NDIGIT + 1}d}"[::-1]]
        rows_x.append(digits[:-1])
        rows_y.append([-1] * (2 * NDIGIT - 1) + digits[2 * NDIGIT:])
    return np.array(rows_x, np.int64), np.array(rows_y, np.int64)


def make_impls(threads: int, shape: tuple[int, int, int]) -> dict:
    import dtorch

    dtorch.manual_seed(0)
    params = {k: v.numpy().copy() for k, v in _mingpt(dtorch)(*shape).state_dict().items()}
    x, y = adder_batch()
    impls = {"dtorch": (Trainer(dtorch, params, shape), dtorch.from_numpy(x), dtorch.from_numpy(y))}
    try:
        import torch

        torch.set_num_threads(threads)
        impls["torch"] = (Trainer(torch, params, shape), torch.from_numpy(x), torch.from_numpy(y))
    except ImportError:
        pass
    return impls


def profile(steps: int, shape) -> None:
    profile_steps(*make_impls(1, shape)["dtorch"], steps, top=25)


def main() -> None:
    import time

    ap = step_arguments(__doc__, rounds=5, steps=20)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--width", type=int, default=48)
    args = ap.parse_args()
    shape = (args.layers, args.heads, args.width)
    if args.worker is not None:
        if args.profile:
            profile(args.profile, shape)
        else:
            clock = time.perf_counter if args.clock == "wall" else time.thread_time
            print(json.dumps(steps_per_s(make_impls(args.worker, shape), args.rounds, args.steps, clock)))
        return
    result = {"bench": "mingpt_step", "model": dict(zip(("layers", "heads", "width"), shape)), "block": BLOCK,
              "batch": BATCH, "dtype": "float32", "clock": args.clock}
    for n in [1] if args.profile else args.threads:
        env = dict(os.environ, **{v: str(n) for v in THREAD_VARS})
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(n), "--rounds", str(args.rounds),
               "--steps", str(args.steps), "--clock", args.clock, "--layers", str(args.layers),
               "--heads", str(args.heads), "--width", str(args.width)]
        if args.profile:
            subprocess.run(cmd + ["--profile", str(args.profile)], env=env, check=True)
            return
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        result[f"threads_{n}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
