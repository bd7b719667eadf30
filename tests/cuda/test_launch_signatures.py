"""CPU check that every fused CUDA kernel launch passes what the kernel's C signature takes.

The launchers in ``dtorch.cuda.fused`` run here on numpy arrays: ``require_cupy`` returns a small
numpy-backed stand-in and ``raw_kernel`` returns a recorder, so each launch is kept as (kernel,
grid, block, args) instead of running. Each launch is then checked against the parameter list
parsed from the kernel's source: the arity, the dtype of every pointer argument, the exact numpy
type of every scalar (CuPy passes a scalar by its numpy type, so np.int64 for an ``int`` would
shift every later argument), and the grid/block shape. No GPU and no CuPy needed (the last test,
which builds the GELU ElementwiseKernels, runs where CuPy is installed).
"""
from __future__ import annotations

import math
import re
import subprocess
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest

import dtorch
from dtorch.cuda import _compile
from dtorch.cuda.fused import amp as fused_amp
from dtorch.cuda.fused import gelu as fused_gelu
from dtorch.cuda.fused import layer_norm as fused_layer_norm
from dtorch.cuda.fused import optim as fused_optim
from dtorch.cuda.fused import softmax as fused_softmax
from dtorch.cuda.kernels import gelu as gelu_src
from dtorch.optim import _flat
from dtorch.tensor import _make
from dtorch.utils.cuda_extension import parse_kernels

DTYPES = ("float32", "float64")
# a C type -> the numpy type CuPy needs: the pointee's dtype for a pointer, the scalar's type otherwise
C_TO_NUMPY = {"float": np.float32, "double": np.float64, "int": np.int32, "long long": np.int64}
RAW_LAUNCHERS = (fused_amp, fused_layer_norm, fused_optim, fused_softmax)


# ---- the stand-ins ----------------------------------------------------------------------------------
class _DeviceArray(np.ndarray):
    """A numpy array with cupy's ``.get()`` (the amp launcher reads its flag back with it)."""

    def get(self):
        return np.array(self)


def _device(fn):
    return lambda *a, **k: fn(*a, **k).view(_DeviceArray)


# only what the launchers call: anything else fails with AttributeError, naming what to add
STAND_IN = types.SimpleNamespace(
    empty=_device(np.empty), empty_like=_device(np.empty_like), zeros=_device(np.zeros),
    ascontiguousarray=_device(np.ascontiguousarray), isfinite=np.isfinite, int32=np.int32)


@dataclass
class Launch:
    source: str
    name: str
    grid: tuple
    block: tuple
    args: tuple


def _no_cupy():
    raise AssertionError("a launcher reached the real require_cupy()")


@pytest.fixture
def launches(monkeypatch) -> list[Launch]:
    """The raw-kernel launches made during the test, recorded instead of run."""
    recorded: list[Launch] = []

    def raw_kernel(source, name):
        def kernel(grid, block, args):
            recorded.append(Launch(source, name, grid, block, args))
        return kernel

    monkeypatch.setattr(_compile, "require_cupy", _no_cupy)
    for mod in RAW_LAUNCHERS:
        monkeypatch.setattr(mod, "require_cupy", lambda: STAND_IN)
        monkeypatch.setattr(mod, "raw_kernel", raw_kernel)
    return recorded


def check_launch(launch: Launch) -> list:
    """Assert that ``launch`` matches its kernel's C signature; returns the args (for per-kernel checks)."""
    kernels = parse_kernels(launch.source)
    name, args = launch.name, launch.args
    assert name in kernels, f"no kernel {name} in its source (has {sorted(kernels)})"
    params = kernels[name]
    assert len(args) == len(params), f"{name}: {len(params)} parameters, {len(args)} arguments"
    for i, (arg, (ctype, is_ptr)) in enumerate(zip(args, params)):
        assert ctype in C_TO_NUMPY, f"{name} argument {i}: C type {ctype!r} not in the table"
        want = C_TO_NUMPY[ctype]
        if is_ptr:
            assert isinstance(arg, np.ndarray), f"{name} argument {i} ({ctype}*): got {type(arg).__name__}"
            assert arg.dtype == want, f"{name} argument {i} ({ctype}*): got a {arg.dtype} array"
            assert arg.flags.c_contiguous, f"{name} argument {i} ({ctype}*): the array is not contiguous"
        else:
            assert type(arg) is want, f"{name} argument {i} ({ctype}): got {type(arg).__name__}, needs {want.__name__}"
    for what, dims in (("grid", launch.grid), ("block", launch.block)):
        assert isinstance(dims, tuple) and 1 <= len(dims) <= 3, f"{name}: {what} {dims!r}"
        assert all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in dims), \
            f"{name}: {what} {dims!r}"
    assert math.prod(launch.block) <= 1024, f"{name}: block {launch.block}"
    body = launch.source[launch.source.index(f" {name}("):].split('extern "C"')[0]
    shared = re.search(r"__shared__\s+\w+\s+\w+\[(\d+)\]", body)
    if shared:  # the block reductions index buf[threadIdx.x] and halve blockDim.x: block must be the buffer
        assert launch.block == (int(shared.group(1)),), f"{name}: block {launch.block}, buffer {shared.group(1)}"
    return list(args)


def _rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---- imports ---------------------------------------------------------------------------------------
def test_fused_modules_import_without_cupy():
    code = ("import sys; sys.modules['cupy'] = None\n"  # any `import cupy` now raises ImportError
            "import dtorch\n"
            "from dtorch.cuda.fused import amp, gelu, layer_norm, optim, softmax\n"
            "import dtorch._device as d; assert not d._cupy_checked, 'cupy looked up at import'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# ---- row kernels -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_mode", [False, True])
def test_softmax_launches(launches, dtype, log_mode):
    x = _rand((2, 3, 5), dtype)
    y = fused_softmax.forward(x, (2,), log_mode)
    g = _rand((5, 3, 2), "float64").transpose()  # another dtype, not contiguous: the launcher converts it
    gx = fused_softmax.backward(g, y, log_mode)
    assert (y.shape, gx.shape, gx.dtype) == (x.shape, x.shape, x.dtype)
    fwd, bwd = launches
    assert (fwd.name, bwd.name) == fused_softmax.src.names(dtype)
    a, out, n, log = check_launch(fwd)
    assert a is x and out is y and (n, log) == (5, log_mode) and fwd.grid == (6,)
    g_arg, y_arg, gx_arg, n, log = check_launch(bwd)
    assert y_arg is y and gx_arg is gx and (n, log) == (5, log_mode) and bwd.grid == (6,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
@pytest.mark.parametrize("n_axes", [1, 2])
def test_layer_norm_launches(launches, dtype, affine, n_axes):
    x = _rand((4, 3, 5), dtype)
    shape = x.shape[3 - n_axes:]
    w = _rand(shape, dtype, 1) if affine in ("weight", "both") else None
    b = _rand(shape, dtype, 2) if affine in ("bias", "both") else None
    y, (xhat, rstd) = fused_layer_norm.forward(x, w, b, n_axes, 1e-5)
    rows, n = x.size // math.prod(shape), math.prod(shape)
    assert y.shape == xhat.shape == x.shape and rstd.shape == (rows, 1)
    gx = fused_layer_norm.input_grad(_rand(x.shape, "float64", 3), xhat, rstd, w)
    assert gx.shape == x.shape and gx.dtype == x.dtype
    fwd, bwd = launches
    assert (fwd.name, bwd.name) == fused_layer_norm.src.names(dtype)
    *arrays, n_arg, eps, has_w, has_b = check_launch(fwd)
    assert (n_arg, eps, has_w, has_b) == (n, 1e-5, w is not None, b is not None) and fwd.grid == (rows,)
    assert arrays[0] is x and arrays[3:] == [y, xhat, rstd]
    *arrays, n_arg, has_w = check_launch(bwd)
    assert (n_arg, has_w) == (n, w is not None) and bwd.grid == (rows,) and arrays[4] is gx


# ---- optimizers, driven through their step() on a bucket the stand-in passes for a GPU one --------------
def _step_twice(monkeypatch, make, dtype, sizes=((3, 4), (5,)), shared_grads=False) -> list:
    """Two steps (the first creates the state) of ``make(params)`` on numpy parameters whose
    flat bucket reports the stand-in as its array module, so ``_flat_update`` takes the CUDA path.
    ``shared_grads``: the gradients are views of one flat buffer, as DDP leaves them."""
    monkeypatch.setattr(_flat, "xp_of", lambda a: STAND_IN)
    params = [dtorch.nn.Parameter(dtorch.tensor(_rand(s, dtype, i))) for i, s in enumerate(sizes)]
    opt = make(params)
    offsets = np.cumsum([0] + [p.numel() for p in params])
    for step in range(2):
        if shared_grads:
            flat = _rand(offsets[-1], dtype, 10 + step)
            for p, lo, hi in zip(params, offsets, offsets[1:]):
                p._grad = _make(flat[lo:hi].reshape(p.shape))
        else:
            for i, p in enumerate(params):
                p.grad = dtorch.tensor(_rand(p.shape, dtype, 10 + 2 * step + i))
        opt.step()
    return params


SGD_VARIANTS = {
    "plain": {}, "weight_decay": {"weight_decay": 0.1}, "maximize": {"maximize": True},
    "momentum": {"momentum": 0.9}, "dampening": {"momentum": 0.9, "dampening": 0.3},
    "nesterov": {"momentum": 0.9, "nesterov": True},
    "all": {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "maximize": True},
    "tensor_lr": {"momentum": 0.5, "lr_tensor": True},
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", SGD_VARIANTS)
def test_sgd_launches(launches, monkeypatch, dtype, variant):
    kw = dict(SGD_VARIANTS[variant])
    lr = dtorch.tensor(0.01) if kw.pop("lr_tensor", False) else 0.01
    params = _step_twice(monkeypatch, lambda ps: dtorch.optim.SGD(ps, lr=lr, **kw), dtype)
    momentum = kw.get("momentum", 0)
    plain, with_momentum = fused_optim.src.sgd_names(dtype)
    assert [launch.name for launch in launches] == [with_momentum if momentum else plain] * 4
    for i, launch in enumerate(launches):
        args = check_launch(launch)
        size = params[i % 2].numel()
        if momentum:
            *_, n, lr_arg, m, damp, wd, first, nesterov, maximize = args
            assert (m, damp, first, nesterov) == (momentum, kw.get("dampening", 0), i < 2, kw.get("nesterov", False))
        else:
            *_, n, lr_arg, wd, maximize = args
        assert (n, wd, maximize) == (size, kw.get("weight_decay", 0), kw.get("maximize", False))
        assert lr_arg == pytest.approx(0.01, rel=1e-6) and args[0].size == size  # a tensor lr is float32


ADAM_VARIANTS = {
    "adam": {}, "amsgrad": {"amsgrad": True}, "l2": {"weight_decay": 0.1}, "maximize": {"maximize": True},
    "adamw": {"adamw": True, "weight_decay": 0.1}, "adamw_amsgrad": {"adamw": True, "amsgrad": True},
    "tensor_lr": {"lr_tensor": True, "adamw": True, "weight_decay": 0.1},
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", ADAM_VARIANTS)
def test_adam_launches(launches, monkeypatch, dtype, variant):
    kw = dict(ADAM_VARIANTS[variant])
    lr = dtorch.tensor(1e-3) if kw.pop("lr_tensor", False) else 1e-3
    cls = dtorch.optim.AdamW if kw.pop("adamw", False) else dtorch.optim.Adam
    params = _step_twice(monkeypatch, lambda ps: cls(ps, lr=lr, **kw), dtype)
    amsgrad = kw.get("amsgrad", False)
    assert [launch.name for launch in launches] == [fused_optim.src.adam_name(dtype, amsgrad)] * 4
    for i, launch in enumerate(launches):
        args = check_launch(launch)
        n_state = 4 if amsgrad else 3  # p, m, v (, vmax)
        p, g, n = args[0], args[n_state], args[n_state + 1]
        beta1, beta2, eps, l2, decay, step_size, bc2_sqrt, maximize = args[n_state + 2:]
        size = params[i % 2].numel()
        assert n == size and p.size == g.size == size
        assert (beta1, beta2, eps, maximize) == (0.9, 0.999, 1e-8, kw.get("maximize", False))
        step = 1 + i // 2
        assert step_size == pytest.approx(1e-3 / (1 - 0.9 ** step), rel=1e-6)
        assert bc2_sqrt == pytest.approx((1 - 0.999 ** step) ** 0.5)
        wd = kw.get("weight_decay", 1e-2 if cls is dtorch.optim.AdamW else 0)
        decoupled = cls is dtorch.optim.AdamW
        assert l2 == (0 if decoupled else wd)
        assert decay == pytest.approx(1 - 1e-3 * wd if decoupled else 1.0, rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam_amsgrad"])
def test_optimizer_launch_over_a_shared_gradient_buffer(launches, monkeypatch, dtype, optimizer):
    """Gradients that are views of one buffer laid out like the parameters: one launch per bucket."""
    make = ((lambda ps: dtorch.optim.SGD(ps, lr=0.1, momentum=0.9)) if optimizer == "sgd_momentum"
            else (lambda ps: dtorch.optim.Adam(ps, amsgrad=True)))
    params = _step_twice(monkeypatch, make, dtype, shared_grads=True)
    total = sum(p.numel() for p in params)
    assert len(launches) == 2
    for launch in launches:
        args = check_launch(launch)
        n = next(a for a in args if type(a) is np.int64)
        assert n == total and all(a.size == total for a in args if isinstance(a, np.ndarray))


# ---- GradScaler's unscale --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_unscale_launches(launches, dtype):
    grads = [_rand((3, 4), dtype).view(_DeviceArray), _rand((7,), dtype).view(_DeviceArray),
             np.empty((0, 3), dtype).view(_DeviceArray),          # empty: skipped
             _rand((4, 3), dtype).view(_DeviceArray).T,           # strided: array ops, no kernel
             _rand((5,), "float16").view(_DeviceArray)]           # no raw kernel: array ops
    assert fused_amp.unscale_(grads, 0.25) is False
    assert [launch.name for launch in launches] == [fused_amp.src.name(dtype)] * 2
    flags = set()
    for launch, g in zip(launches, grads):
        g_arg, n, inv, found = check_launch(launch)
        assert g_arg is g and n == g.size and inv == 0.25 and found.shape == (1,)
        flags.add(id(found))
    assert len(flags) == 1  # one flag for all gradients: one host read


# ---- GELU: cupy ElementwiseKernels, called with one array per input parameter --------------------------
def _in_dtypes(spec) -> list[str]:
    return [p.split()[0] for p in spec.in_params.split(",")]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", ["float16", *DTYPES])
def test_gelu_launches(monkeypatch, dtype, approximate):
    calls = []

    def elementwise_kernel(spec):
        return lambda *args: calls.append((spec, args)) or np.empty_like(args[-1])

    monkeypatch.setattr(fused_gelu, "elementwise_kernel", elementwise_kernel)
    a = _rand((2, 3), dtype)
    fused_gelu.forward(a, approximate)
    fused_gelu.backward(_rand((2, 3), "float64"), a, approximate)  # g of another dtype: cast first
    assert [spec for spec, _ in calls] == [gelu_src.forward(dtype, approximate), gelu_src.backward(dtype, approximate)]
    for spec, args in calls:
        assert [x.dtype.name for x in args] == _in_dtypes(spec), spec.name


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", ["float16", *DTYPES])
def test_gelu_specs_build_cupy_elementwise_kernels(dtype, approximate):
    """CuPy parses the parameter lists when the kernel is built (no GPU needed; compiled on first call)."""
    cupy = pytest.importorskip("cupy")
    for spec in (gelu_src.forward(dtype, approximate), gelu_src.backward(dtype, approximate)):
        k = cupy.ElementwiseKernel(spec.in_params, spec.out_params, spec.operation, spec.name)
        assert (k.name, k.nin, k.nout) == (spec.name, len(_in_dtypes(spec)), 1)
        assert [p.dtype for p in k.params[:k.nin + k.nout]] == [np.dtype(dtype)] * (k.nin + 1)
