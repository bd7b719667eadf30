"""dtorch.backends.cuda: ``matmul.allow_tf32`` / ``matmul.fp32_precision`` and the float32 matmul precision.

TF32 is the one flag with an effect: on a GPU of compute capability 8.0 or newer it switches CuPy's
float32 matmul compute type (``cupy._core._routines_linalg.set_compute_type``, the setting the
``CUPY_TF32=1`` environment variable makes at start) to TF32, or back to the default. A flag set
before CuPy is loaded takes effect when it is; one never set leaves ``CUPY_TF32`` in charge.
"""
from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from .._device import when_cupy_loaded

# torch.backends.cuda's names; set/get_float32_matmul_precision live here too but are dtorch.* names
__all__ = ["cudnn_sdp_enabled", "enable_cudnn_sdp", "enable_flash_sdp", "enable_math_sdp", "enable_mem_efficient_sdp",
           "flash_sdp_enabled", "is_built", "math_sdp_enabled", "matmul", "mem_efficient_sdp_enabled"]

_FP32_PRECISIONS = ("none", "ieee", "tf32")
_MATMUL_PRECISIONS = ("highest", "high", "medium")
_precision = ["highest"]  # set_float32_matmul_precision's word; TF32 unless "highest"


def is_built() -> bool:
    """Whether CuPy is installed (a GPU may still be missing: see ``dtorch.cuda.is_available``)."""
    return importlib.util.find_spec("cupy") is not None


def _apply_tf32(cp) -> None:
    from cupy._core import _routines_linalg as linalg

    tf32 = matmul.fp32_precision == "tf32" and int(cp.cuda.Device().compute_capability) >= 80
    linalg.set_compute_type(np.dtype(np.float32), linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise RuntimeError(f"set_{name} expects a bool, but got {type(value).__name__}")
    return value


class cuBLASModule:
    """``dtorch.backends.cuda.matmul``: cuBLAS flags; unknown names raise ``AttributeError`` as in torch."""

    _FLAGS = ("allow_tf32", "allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction",
              "allow_fp16_accumulation", "fp32_precision")

    def __init__(self) -> None:
        object.__setattr__(self, "_values", {"fp32_precision": "none", "allow_fp16_reduced_precision_reduction": True,
                                             "allow_bf16_reduced_precision_reduction": True,
                                             "allow_fp16_accumulation": False})

    def __getattr__(self, name: str):
        if name == "allow_tf32":
            return self._values["fp32_precision"] == "tf32"
        if name in self._FLAGS:
            return self._values[name]
        raise AttributeError("Unknown attribute " + name)

    def __setattr__(self, name: str, value) -> None:
        if name == "allow_tf32":
            _set_fp32_precision("tf32" if _check_bool("allow_tf32_cublas", value) else "ieee")
        elif name == "fp32_precision":
            if value not in _FP32_PRECISIONS:
                raise RuntimeError(f"Unknown precision: {value}")
            _set_fp32_precision(value)
        elif name in self._FLAGS:
            self._values[name] = _check_bool(name, value)
        else:
            raise AttributeError("Unknown attribute " + name)


matmul = cuBLASModule()


def _set_fp32_precision(value: str, word: str | None = None) -> None:
    matmul._values["fp32_precision"] = value
    _precision[0] = word or ("high" if value == "tf32" else "highest")
    when_cupy_loaded(_apply_tf32)


def set_float32_matmul_precision(precision: str) -> None:
    """torch's words: "highest" (float32 throughout), "high" and "medium" (TF32 allowed)."""
    if precision not in _MATMUL_PRECISIONS:
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      "setFloat32MatmulPrecision call has no effect.", UserWarning, stacklevel=2)
        return
    _set_fp32_precision("ieee" if precision == "highest" else "tf32", precision)


def get_float32_matmul_precision() -> str:
    return _precision[0]


# scaled_dot_product_attention's kernel choices: dtorch has one implementation, so these only hold the flags
_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def flash_sdp_enabled() -> bool:
    return _sdp["flash"]


def enable_flash_sdp(enabled: bool) -> None:
    _sdp["flash"] = enabled


def mem_efficient_sdp_enabled() -> bool:
    return _sdp["mem_efficient"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    _sdp["mem_efficient"] = enabled


def math_sdp_enabled() -> bool:
    return _sdp["math"]


def enable_math_sdp(enabled: bool) -> None:
    _sdp["math"] = enabled


def cudnn_sdp_enabled() -> bool:
    return _sdp["cudnn"]


def enable_cudnn_sdp(enabled: bool) -> None:
    _sdp["cudnn"] = enabled
