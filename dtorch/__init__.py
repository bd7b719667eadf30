"""dtorch: a PyTorch-compatible deep-learning framework on numpy (CPU) and CuPy (CUDA).

``import dtorch as torch`` and write torch code: tensors, autograd, nn, optim, data,
distributed training over MPI/NCCL.
"""
from __future__ import annotations

from . import _allocator, _dtype
from ._dtype import (  # noqa: F401
    bfloat16, bool_ as bool, complex64, complex128, dtype, finfo, float16, float32, float64, get_default_dtype, iinfo,
    int8, int16, int32, int64, promote_types, qint8, qint32, quint8, set_default_dtype, uint8,
)
from ._device import device  # noqa: F401
from .tensor import Size, Tensor, typename  # noqa: F401
from . import _ops
from ._creation import (  # noqa: F401
    arange, as_tensor, asarray, empty, empty_like, eye, from_numpy, full, full_like, linspace, logspace, ones,
    ones_like, scalar_tensor, tensor, zeros, zeros_like,
)
from ._creation import range_ as range  # noqa: F401
from ._creation import (  # noqa: F401
    BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor, LongTensor, ShortTensor,
)
from .random import (  # noqa: F401
    Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state,
)
from . import autograd  # noqa: F401
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from .autograd import is_anomaly_enabled, set_detect_anomaly  # noqa: F401
from .autograd.grad_mode import is_inference_mode_enabled  # noqa: F401
from . import cuda  # noqa: F401
from . import accelerator, backends  # noqa: F401
from .backends._threads import get_num_threads, set_num_threads  # noqa: F401
from .backends.cuda import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: F401
from . import futures  # noqa: F401
from . import linalg  # noqa: F401
from . import fft  # noqa: F401
from . import distributions  # noqa: F401
from . import multiprocessing  # noqa: F401

globals().update(_ops.public_names())
globals().update({n: _ops.with_out(n, globals()[n], factory=True)  # out=
                  for n in ("arange", "empty", "eye", "full", "linspace", "logspace", "ones", "zeros")})
from .autograd import functional as _autograd_functional  # noqa: E402,F401  (built on the ops above)

half, float, double = float16, float32, float64
cfloat, cdouble = complex64, complex128
long, int, short = int64, int32, int16
__version__ = "0.1.0"
_allocator.keep_heap()


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(t: Tensor) -> bool:
    return t.is_floating_point()


def numel(t: Tensor) -> int:
    return t.numel()


def result_type(tensor1, tensor2) -> dtype:
    return _dtype.result_type(tensor1, tensor2)


def can_cast(from_: dtype, to: dtype) -> bool:
    return from_._category <= to._category


from .serialization import load, save  # noqa: E402,F401
from . import nn, optim, utils  # noqa: E402,F401  (after the core: they build on it)
from .utils import checkpoint as _checkpoint, data as _data, hooks as _hooks  # noqa: E402,F401  (as after import torch)
from . import amp  # noqa: E402,F401
from . import jit  # noqa: E402,F401
from . import onnx  # noqa: E402,F401  (torch.onnx; the onnx package is imported by export)
from .jit._compile import compile  # noqa: E402,F401
from .amp import autocast  # noqa: E402,F401
from .cuda import amp as _cuda_amp  # noqa: E402,F401
from . import ao, quantization  # noqa: E402,F401  (torch.ao: quantized tensors, dynamic quantization)
from .ao.quantization._qtensor import (  # noqa: E402,F401
    per_channel_affine, per_channel_affine_float_qparams, per_channel_symmetric, per_tensor_affine,
    per_tensor_symmetric, qscheme, quantize_per_channel, quantize_per_tensor,
)
