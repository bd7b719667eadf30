"""torch's autocast op lists, per device type, mapped to dtorch's registered op names.

"low": floating inputs are cast to the autocast dtype; "fp32": to float32; "promote":
to the widest floating dtype among the inputs. Ops not listed run in their inputs' dtypes.
"""
from __future__ import annotations

_LOW = ("convolution", "linear", "mm", "bmm", "mv", "dot", "matmul", "addmm", "addmv", "baddbmm",
        "scaled_dot_product_attention")

CUDA = {
    **{name: "low" for name in _LOW},
    **{name: "fp32" for name in (
        "pow", "pow_tensor_scalar", "pow_scalar_tensor", "acos", "asin", "cosh", "sinh", "tan", "exp", "expm1",
        "log", "log2", "log10", "log1p", "reciprocal", "rsqrt", "softplus", "softmax", "log_softmax", "sum",
        "prod", "cumsum", "cumprod", "norm", "native_layer_norm", "native_group_norm", "nll_loss",
        "cross_entropy_loss", "cross_entropy_probs", "binary_cross_entropy_with_logits")},
    **{name: "promote" for name in ("cat", "stack", "where")},
}

CPU = {
    **{name: "low" for name in _LOW},
    **{name: "fp32" for name in (
        "prod", "trace", "nll_loss", "cross_entropy_loss", "cross_entropy_probs",
        "binary_cross_entropy_with_logits")},
    **{name: "promote" for name in ("cat", "stack")},
}

POLICIES = {"cuda": CUDA, "cpu": CPU}
