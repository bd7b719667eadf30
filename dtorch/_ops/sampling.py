"""Random tensors: rand/randn/randint/randperm/normal (and *_like), bernoulli/multinomial, and the in-place
random fills nn.init builds on (uniform_, normal_, ...). The generators and their state are dtorch/random.py."""
from __future__ import annotations

import numpy as np

from .._creation import _dt, _size_arg
from .._device import as_device, device_of
from .._dtype import _FROM_NP
from ..random import Generator, generator_for
from ..tensor import Tensor, _make
from ._helpers import attach

__all__ = [
    "rand",
    "randn",
    "randint",
    "randperm",
    "rand_like",
    "randn_like",
    "randint_like",
    "normal",
    "bernoulli",
    "multinomial",
]


def _draw(kind: str, shape, dtype: np.dtype, device, gen: Generator | None, **kw):
    dev = as_device(device)
    g = generator_for(dev, gen)
    if dev.type == "cuda":
        import cupy

        with cupy.cuda.Device(dev.index or 0):
            rs = g._cupy_random_state()
            if kind == "uniform":
                return (rs.random_sample(shape, dtype=np.float64) * (kw["high"] - kw["low"]) + kw["low"]).astype(dtype)
            if kind == "normal":
                return (rs.standard_normal(shape, dtype=np.float64) * kw["std"] + kw["mean"]).astype(dtype)
            if kind == "integers":
                return rs.randint(kw["low"], kw["high"], size=shape).astype(dtype)
            if kind == "permutation":
                return rs.permutation(kw["n"]).astype(dtype)
            raise ValueError(kind)
    r = g._np
    if kind == "uniform":
        if dtype in (np.float32, np.float64) and kw["low"] == 0 and kw["high"] == 1:
            return r.random(shape, dtype=dtype)
        return (r.random(shape) * (kw["high"] - kw["low"]) + kw["low"]).astype(dtype)
    if kind == "normal":
        if dtype in (np.float32, np.float64):
            x = r.standard_normal(shape, dtype=dtype)
        else:
            x = r.standard_normal(shape).astype(dtype)
        if kw["std"] != 1 or kw["mean"] != 0:
            x = x * np.asarray(kw["std"], dtype) + np.asarray(kw["mean"], dtype)
        return x.astype(dtype, copy=False)
    if kind == "integers":
        return r.integers(kw["low"], kw["high"], size=shape).astype(dtype)
    if kind == "permutation":
        return r.permutation(kw["n"]).astype(dtype)
    raise ValueError(kind)


def _new(arr, requires_grad: bool) -> Tensor:
    t = _make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_dt(dtype, kernel: str) -> np.dtype:
    dt = _dt(dtype)
    if dt.kind not in "fV":
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_FROM_NP[dt].scalar_name}\'')
    return dt


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = _float_dt(dtype, "check_uniform_bounds")
    return _new(_draw("uniform", _size_arg(size), dt, device, generator, low=0.0, high=1.0), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is not None and _dt(dtype).kind == "c":  # torch: real and imaginary parts each N(0, 1/2)
        dt = _dt(dtype)
        parts = _draw("normal", _size_arg(size) + (2,), np.dtype(dt.char.lower()), device, generator, mean=0.0,
                      std=0.5 ** 0.5)
        return _new(parts.view(dt)[..., 0], requires_grad)
    dt = _float_dt(dtype, "normal_kernel_cpu")
    return _new(_draw("normal", _size_arg(size), dt, device, generator, mean=0.0, std=1.0), requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    dt = np.dtype(np.int64) if dtype is None else _dt(dtype)
    return _new(_draw("integers", _size_arg((size,)), dt, device, generator, low=low, high=high), requires_grad)


def randperm(n: int, *, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = np.dtype(np.int64) if dtype is None else _dt(dtype)
    return _new(_draw("permutation", (n,), dt, device, generator, n=n), requires_grad)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return rand(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return randn(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def randint_like(input: Tensor, low=0, high=None, *, dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, input.shape, dtype=dtype or input.dtype, device=device or input.device)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """torch.normal: tensor or float mean/std (broadcast), or floats with ``size``."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        like = mean if isinstance(mean, Tensor) else std
        if isinstance(std, Tensor) and (std._data < 0).any():
            raise RuntimeError("normal expects all elements of std >= 0.0")
        shape = np.broadcast_shapes(np.shape(getattr(mean, "_data", mean)), np.shape(getattr(std, "_data", std)))
        z = _make(_draw("normal", shape, like._data.dtype, device_of(like._data), generator, mean=0.0, std=1.0))
        return z * std + mean
    if size is None:
        raise TypeError("normal() with float mean and std needs a size")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    arr = _draw("normal", _size_arg((size,)), _float_dt(dtype, "normal_kernel_cpu"), device, generator, mean=mean,
                std=std)
    return _new(arr, requires_grad)


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    probs = input._data if p is None else np.full(input._data.shape, p)
    if (probs < 0).any() or (probs > 1).any():
        raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    u = _draw("uniform", input._data.shape, np.dtype(np.float64), device_of(input._data), generator, low=0.0, high=1.0)
    return _make((u < probs).astype(input._data.dtype))


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    probs = input._data if type(input._data) is np.ndarray else input._data.get()
    if probs.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if (probs < 0).any() or not np.isfinite(probs).all():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    rows = probs.reshape(-1, probs.shape[-1]).astype(np.float64)
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    r = generator_for("cpu", generator)._np
    out = np.empty((rows.shape[0], num_samples), np.int64)
    for i, row in enumerate(rows):
        s = row.sum()
        if s <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if replacement:
            out[i] = r.choice(row.size, size=num_samples, replace=True, p=row / s)
        else:
            # torch's way: the top num_samples of p / Exponential(1) keys; categories of probability
            # zero come last (so asking for more samples than non-zero categories is allowed)
            keys = row / r.exponential(1.0, row.size)
            out[i] = np.argsort(-keys, kind="stable")[:num_samples]
    out = out.reshape(probs.shape[:-1] + (num_samples,))
    return _make(out).to(input.device)


# ---- in-place fills (nn.init builds on these) ---------------------------------------------------
def _fill_inplace(self: Tensor, arr) -> Tensor:
    self._data[...] = arr
    self._vc[0] += 1
    return self


def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    return _fill_inplace(self, _draw("uniform", self._data.shape, self._data.dtype, device_of(self._data), generator,
                                     low=a, high=b))


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    return _fill_inplace(self, _draw("normal", self._data.shape, self._data.dtype, device_of(self._data), generator,
                                     mean=mean, std=std))


def bernoulli_(self: Tensor, p=0.5, *, generator=None) -> Tensor:
    pa = p._data if isinstance(p, Tensor) else p
    u = _draw("uniform", self._data.shape, np.dtype(np.float64), device_of(self._data), generator, low=0.0, high=1.0)
    return _fill_inplace(self, u < pa)


def random_(self: Tensor, from_: int = 0, to: int | None = None, *, generator=None) -> Tensor:
    if to is None:  # random_(to) draws from [0, to); random_() from the dtype's range
        if from_:
            from_, to = 0, from_
        elif self._data.dtype.kind in "fV":
            to = 2 ** 24 if self._data.dtype == np.float32 else 2 ** 53
        else:
            to = 2 if self._data.dtype.kind == "b" else int(np.iinfo(self._data.dtype).max) + 1
    return _fill_inplace(self, _draw("integers", self._data.shape, self._data.dtype, device_of(self._data),
                                     generator, low=from_, high=to))


def exponential_(self: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    g = generator_for(device_of(self._data), generator)
    return _fill_inplace(self, g._np.exponential(1.0 / lambd, self._data.shape).astype(self._data.dtype))


attach(__name__, {
    "bernoulli": lambda self, p=None, *, generator=None: bernoulli(self, p, generator=generator),
    "bernoulli_": bernoulli_, "multinomial": multinomial, "uniform_": uniform_, "normal_": normal_,
    "random_": random_, "exponential_": exponential_,
})
