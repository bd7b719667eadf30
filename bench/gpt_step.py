"""Training steps/s of a small GPT (jobs.models.gpt: 4 layers, 4 heads, width 128, context 64, vocab 65).

Batch 16, float32, AdamW (lr 1e-3, weight decay 0.1), gradient clipping at 1.0, pre-LN blocks with causal
attention and a 4x exact-GELU MLP, untied head. Two attentions, both reported: ``manual`` (the default
report) is nanoGPT's as written (``q @ k.transpose(-2, -1) * scale``, ``masked_fill`` where a ``tril``
buffer ``== 0`` to ``-inf``, ``F.softmax``, dropout, ``@ v``), ``sdpa`` is F.scaled_dot_product_attention.
The model is the SAME code for dtorch and torch (``jobs.models.gpt(lib, ...)``, its blocks' forward
swapped for the manual one), started from the same weights (copied through numpy) and fed the same batch.
A hand-written numpy step (below) is the floor for a numpy framework: its GELU uses a float32-accurate erf
polynomial, and its stacked attention products are plain np.matmul. Each thread
count runs in its own subprocess so the thread variables are set before numpy loads. glibc's mmap
threshold is set to 64 MiB in the workers (MALLOC_MMAP_THRESHOLD_), so that the three implementations
taking turns in one process do not page-fault each other's temporaries (docs/performance.md). Steps are
timed one at a time, the implementations taking turns; a figure is the median over ``rounds * steps``
steps. Prints ONE JSON line: steps/s, dtorch/torch and dtorch/numpy, and each implementation's loss
after the timed steps (they should agree to float32 precision).

Usage: ``python bench/gpt_step.py [--rounds 5] [--steps 6] [--threads 1 2] [--clock wall|cpu]
[--attn manual sdpa]``; ``python bench/gpt_step.py --profile 20 [--attn sdpa]`` prints a cProfile table of
20 dtorch steps at 1 thread instead (manual attention unless told).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
from _interleave import profile_steps, step_arguments

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
CONFIG = {"vocab": 65, "context": 64, "layers": 4, "heads": 4, "width": 128}
BATCH, LR, WEIGHT_DECAY, CLIP = 16, 1e-3, 0.1, 1.0
EPS = 1e-5  # LayerNorm
MMAP_THRESHOLD = 64 << 20



# ---- the step by hand in numpy: forward, backward, clipping, AdamW ------------------------------------
def _gelu_cdf(f: np.ndarray) -> np.ndarray:
    """Phi(f) = (1 + erf(f / sqrt 2)) / 2 with erf from Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7, float32
    level; torch's own GELU rounds worse in the far negative tail). scipy's erf is ~20x slower."""
    z = np.abs(f) * (1 / math.sqrt(2))
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    erf_z = 1.0 - poly * np.exp(-z * z)
    return 0.5 + 0.5 * np.copysign(erf_z, f)


def _ln(x, w, b):
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True) + EPS)
    xh = xc * rstd
    return xh * w + b, (xh, rstd)


def _ln_bw(g, w, cache):
    xh, rstd = cache
    gh = g * w
    gx = rstd * (gh - gh.mean(-1, keepdims=True) - xh * (gh * xh).mean(-1, keepdims=True))
    return gx, (g * xh).sum(0), g.sum(0)


class NumpyGPT:
    def __init__(self, params: dict[str, np.ndarray], layers: int, heads: int, lr: float, weight_decay: float,
                 clip: float) -> None:
        self.p = {k: v.copy() for k, v in params.items()}
        self.layers, self.heads = layers, heads
        self.lr, self.wd, self.clip = lr, weight_decay, clip
        self.m = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.t = 0

    def step(self, idx: np.ndarray, targets: np.ndarray) -> float:
        loss, grads = self._loss_and_grads(idx, targets)
        self._clip(grads)
        self._adamw(grads)
        return loss

    # ---- forward + backward ------------------------------------------------------------------
    def _loss_and_grads(self, idx, targets):
        p, g = self.p, {}
        b, t = idx.shape
        n = b * t
        x = p["tok.weight"][idx.reshape(-1)] + np.tile(p["pos.weight"][:t], (b, 1))
        caches = []
        for i in range(self.layers):
            x, c = self._block_fwd(x, f"blocks.{i}.", b, t)
            caches.append(c)
        h, lnf = _ln(x, p["ln_f.weight"], p["ln_f.bias"])
        z = h @ p["head.weight"].T
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        s = e.sum(1, keepdims=True)
        rows, ty = np.arange(n), targets.reshape(-1)
        loss = float(np.log(s).mean() - z[rows, ty].mean())
        dz = e / s
        dz[rows, ty] -= 1
        dz /= n
        g["head.weight"] = dz.T @ h
        dx, g["ln_f.weight"], g["ln_f.bias"] = _ln_bw(dz @ p["head.weight"], p["ln_f.weight"], lnf)
        for i in reversed(range(self.layers)):
            dx = self._block_bw(dx, f"blocks.{i}.", caches[i], g, b, t)
        onehot = np.zeros((n, p["tok.weight"].shape[0]), dx.dtype)
        onehot[rows, idx.reshape(-1)] = 1
        g["tok.weight"] = onehot.T @ dx
        g["pos.weight"] = np.zeros_like(p["pos.weight"])
        g["pos.weight"][:t] = dx.reshape(b, t, -1).sum(0)
        return loss, g

    def _split_heads(self, a, b, t):
        return a.reshape(b, t, self.heads, -1).transpose(0, 2, 1, 3)

    def _block_fwd(self, x, pre, b, t):
        p = self.p
        c = x.shape[1]
        h1, ln1 = _ln(x, p[pre + "ln1.weight"], p[pre + "ln1.bias"])
        qkv = h1 @ p[pre + "qkv.weight"].T + p[pre + "qkv.bias"]
        q, k, v = (np.ascontiguousarray(self._split_heads(qkv[:, j * c:(j + 1) * c], b, t)) for j in range(3))
        scale = 1.0 / math.sqrt(q.shape[-1])
        s = np.matmul(q, k.transpose(0, 1, 3, 2)) * scale
        s += np.triu(np.full((t, t), -np.inf, x.dtype), 1)
        s -= s.max(-1, keepdims=True)
        att = np.exp(s)
        att /= att.sum(-1, keepdims=True)
        y = np.matmul(att, v).transpose(0, 2, 1, 3).reshape(b * t, c)
        x = x + y @ p[pre + "proj.weight"].T + p[pre + "proj.bias"]
        h2, ln2 = _ln(x, p[pre + "ln2.weight"], p[pre + "ln2.bias"])
        f = h2 @ p[pre + "fc.weight"].T + p[pre + "fc.bias"]
        cdf = _gelu_cdf(f)
        a = f * cdf
        x = x + a @ p[pre + "out.weight"].T + p[pre + "out.bias"]
        return x, (h1, ln1, q, k, v, att, y, h2, ln2, f, cdf, a, scale)

    def _block_bw(self, dx, pre, cache, g, b, t):
        p = self.p
        h1, ln1, q, k, v, att, y, h2, ln2, f, cdf, a, scale = cache
        c = dx.shape[1]
        # MLP branch
        g[pre + "out.weight"], g[pre + "out.bias"] = dx.T @ a, dx.sum(0)
        da = dx @ p[pre + "out.weight"]
        df = da * (cdf + f * np.exp(-0.5 * f * f) * (1 / math.sqrt(2 * math.pi)))
        g[pre + "fc.weight"], g[pre + "fc.bias"] = df.T @ h2, df.sum(0)
        dh2, g[pre + "ln2.weight"], g[pre + "ln2.bias"] = _ln_bw(df @ p[pre + "fc.weight"], p[pre + "ln2.weight"], ln2)
        dx = dx + dh2
        # attention branch
        g[pre + "proj.weight"], g[pre + "proj.bias"] = dx.T @ y, dx.sum(0)
        dy = np.ascontiguousarray(self._split_heads(dx @ p[pre + "proj.weight"], b, t))
        dv = np.matmul(att.transpose(0, 1, 3, 2), dy)
        dp = np.matmul(dy, v.transpose(0, 1, 3, 2))
        ds = (dp - (dp * att).sum(-1, keepdims=True)) * att * scale
        dq, dk = np.matmul(ds, k), np.matmul(ds.transpose(0, 1, 3, 2), q)
        dqkv = np.concatenate([z.transpose(0, 2, 1, 3).reshape(b * t, c) for z in (dq, dk, dv)], axis=1)
        g[pre + "qkv.weight"], g[pre + "qkv.bias"] = dqkv.T @ h1, dqkv.sum(0)
        dh1, g[pre + "ln1.weight"], g[pre + "ln1.bias"] = _ln_bw(dqkv @ p[pre + "qkv.weight"],
                                                                 p[pre + "ln1.weight"], ln1)
        return dx + dh1

    # ---- clipping and AdamW (torch's formulas, default betas and eps) --------------------------------
    def _clip(self, grads):
        total = math.sqrt(sum(float(np.vdot(gr, gr)) for gr in grads.values()))
        coef = min(self.clip / (total + 1e-6), 1.0)
        for gr in grads.values():
            gr *= coef

    def _adamw(self, grads, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
        self.t += 1
        bc1, bc2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for k, w in self.p.items():
            gr, m, v = grads[k], self.m[k], self.v[k]
            w *= 1 - self.lr * self.wd
            m *= b1
            m += (1 - b1) * gr
            v *= b2
            v += (1 - b2) * gr * gr
            denom = np.sqrt(v) / math.sqrt(bc2) + eps
            w -= (self.lr / bc1) * m / denom


# ---- dtorch / torch: the shared model, F.cross_entropy, clip_grad_norm_, optim.AdamW -------------------
def _manual_attention(lib, block, dropout: float = 0.0) -> None:
    """Give ``block`` (a jobs.models.gpt Block) nanoGPT's CausalSelfAttention forward as written."""
    nn, F = lib.nn, lib.nn.functional
    t = CONFIG["context"]
    block.register_buffer("bias", lib.tril(lib.ones(t, t)).view(1, 1, t, t))
    block.attn_dropout, block.resid_dropout = nn.Dropout(dropout), nn.Dropout(dropout)
    block.mlp_dropout = nn.Dropout(dropout)

    def forward(x):
        b, t, c = x.size()
        q, k, v = block.qkv(block.ln1(x)).split(c, dim=2)
        k = k.view(b, t, block.heads, c // block.heads).transpose(1, 2)
        q = q.view(b, t, block.heads, c // block.heads).transpose(1, 2)
        v = v.view(b, t, block.heads, c // block.heads).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(block.bias[:, :, :t, :t] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        att = block.attn_dropout(att)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        x = x + block.resid_dropout(block.proj(y))
        return x + block.mlp_dropout(block.out(block.gelu(block.fc(block.ln2(x)))))

    block.forward = forward


class LibGPT:
    def __init__(self, lib, params: dict[str, np.ndarray], attn: str = "manual") -> None:
        from dtorch.jobs.models import gpt

        self.lib = lib
        self.model = gpt(lib, **CONFIG)
        if attn == "manual":
            for block in self.model.blocks:
                _manual_attention(lib, block)
        with lib.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(lib.from_numpy(params[name].copy()))
        self.opt = lib.optim.AdamW(self.model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)

    def step(self, idx, targets) -> float:
        F = self.lib.nn.functional
        self.opt.zero_grad()
        logits = self.model(idx)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
        loss.backward()
        self.lib.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.opt.step()
        return loss


def initial_params() -> dict[str, np.ndarray]:
    """The model's own init (GPT-2 style), drawn once by dtorch and shared by every implementation."""
    import dtorch
    from dtorch.jobs.models import gpt

    dtorch.manual_seed(0)
    return {k: v.numpy().copy() for k, v in gpt(dtorch, **CONFIG).state_dict().items()}


def make_impls(threads: int, attn: str = "manual") -> dict:
    import dtorch

    rng = np.random.default_rng(1)
    tokens = rng.integers(0, CONFIG["vocab"], (BATCH, CONFIG["context"] + 1))
    x, y = tokens[:, :-1], np.ascontiguousarray(tokens[:, 1:])
    x = np.ascontiguousarray(x)
    params = initial_params()
    impls = {"dtorch": (LibGPT(dtorch, params, attn), dtorch.from_numpy(x), dtorch.from_numpy(y))}
    try:
        import torch

        torch.set_num_threads(threads)
        impls["torch"] = (LibGPT(torch, params, attn), torch.from_numpy(x), torch.from_numpy(y))
    except ImportError:
        pass
    impls["numpy"] = (NumpyGPT(params, CONFIG["layers"], CONFIG["heads"], LR, WEIGHT_DECAY, CLIP), x, y)
    return impls


# ---- one thread count (a subprocess) -------------------------------------------------------------------
def worker(threads: int, rounds: int, steps: int, clock_name: str = "wall", attn: str = "manual") -> dict:
    import time

    from _interleave import steps_per_s

    clock = time.perf_counter if clock_name == "wall" else time.thread_time
    return steps_per_s(make_impls(threads, attn), rounds, steps, clock)


def profile(steps: int, attn: str) -> None:
    import dtorch

    print(f"dtorch {dtorch.__file__}: {steps} steps, {attn} attention", file=sys.stderr)
    profile_steps(*make_impls(1, attn)["dtorch"], steps)


def main() -> None:
    ap = step_arguments(__doc__, rounds=5, steps=6)
    ap.add_argument("--attn", nargs="+", choices=("manual", "sdpa"), default=["manual", "sdpa"],
                    help="attention implementations, each its own subprocess; the first is the top-level report")
    args = ap.parse_args()
    if args.worker is not None:
        if args.profile:
            profile(args.profile, args.attn[0])
        else:
            print(json.dumps(worker(args.worker, args.rounds, args.steps, args.clock, args.attn[0])))
        return
    result = {"bench": "gpt_step", "model": CONFIG, "batch": BATCH, "dtype": "float32",
              "optimizer": "AdamW + clip_grad_norm_(1.0)", "clock": args.clock,
              "malloc_mmap_threshold": int(os.environ.get("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD))}
    for n in [1] if args.profile else args.threads:
        env = dict(os.environ, **{v: str(n) for v in THREAD_VARS})
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
        report = {}
        for attn in args.attn:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(n), "--rounds", str(args.rounds),
                   "--steps", str(args.steps), "--clock", args.clock, "--attn", attn]
            if args.profile:
                subprocess.run(cmd + ["--profile", str(args.profile)], env=env, check=True)
                return
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            report[attn] = json.loads(proc.stdout.strip().splitlines()[-1])
        top = report.pop(args.attn[0])
        result[f"threads_{n}"] = dict(top, attn=args.attn[0], **report)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
