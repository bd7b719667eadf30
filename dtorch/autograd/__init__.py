"""dtorch.autograd: backward, grad, custom Functions, grad modes, gradcheck, anomaly detection.

``dtorch.autograd.functional`` (jacobian, hessian, vjp) is built on the ops, which sit above this
package: ``dtorch/__init__`` imports it once they are loaded.
"""
from __future__ import annotations

from . import graph  # noqa: F401
from ._api import backward, grad  # noqa: F401
from .anomaly_mode import detect_anomaly, set_detect_anomaly, is_anomaly_enabled  # noqa: F401
from .function import Function, FunctionCtx, InplaceFunction, once_differentiable  # noqa: F401
from .grad_mode import (  # noqa: F401
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad, set_grad_enabled,
)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: F401

__all__ = ["backward", "grad", "Function", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "gradcheck", "gradgradcheck", "detect_anomaly", "set_detect_anomaly", "once_differentiable"]
