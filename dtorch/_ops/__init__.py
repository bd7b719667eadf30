"""Op modules. Importing this package registers every op and attaches Tensor methods.

Every module here that does not start with an underscore is imported; its ``__all__``
names become ``dtorch.<name>``, and it attaches its Tensor methods with one
``_helpers.attach`` call at its end. A new op family is one new file. The map:

  _helpers.py    what op modules share: attach(), scalar/dim/shape arguments, broadcast shapes
  _out.py        torch's out= for the dtorch.<name> functions that take it
  _inplace.py    in-place machinery: leaf checks, casts, rebasing history, CopySlices for views
  view.py        views: view/reshape, permute/transpose, expand, squeeze, narrow/select/split/chunk, as_strided
  indexing.py    x[i], x[i] = v, iter(x), index_put; the take/put kernels scatter.py builds on
  scatter.py     gather/scatter, index_select/add/copy/fill, take, masked_*, where, nonzero, one_hot
  joining.py     cat/stack and the h/v/d/column stacks, meshgrid, broadcast_tensors, cartesian_prod
  layout.py      flip/roll, repeat/tile/repeat_interleave, tril/triu, diag/diagonal/diag_embed, trace
  convert.py     to(dtype/device), type, float()/long()/..., cpu/cuda, clone, contiguous
  fill.py        copy_, fill_, zero_ and new_zeros/ones/full/empty/tensor
  arithmetic.py  add/sub/mul/div/remainder/fmod/pow with promotion, their operators and in-place forms
  compare.py     eq/lt/..., maximum/minimum/fmax/fmin, isclose/allclose/equal, bitwise and logical ops
  unary.py       elementwise math: exp/log, roots, trigonometry, erf, sign, rounding, clamp, isnan & co
  complex.py     complex/polar, view_as_real/view_as_complex, real/imag views, conj, angle
  activation.py  relu, gelu, silu, softplus, elu, leaky_relu, hardtanh
  softmax.py     softmax, log_softmax
  reduction.py   sum/mean/prod/var/std, logsumexp, norm, cumsum/cumprod, all/any/count_nonzero
  extrema.py     max/min/amax/amin/aminmax/argmax/argmin; gradients through saved indices
  sorting.py     sort/argsort/msort, topk, kthvalue, median/nanmedian
  linalg.py      matmul and its family (mm, bmm, mv, dot, outer, addmm, baddbmm...), tensordot
  decomposition.py  inv, det/slogdet, solve, cholesky, qr, eigh, svd (dtorch/linalg.py is torch.linalg over them)
  einsum.py      einsum
  sampling.py    random tensors (rand, randn, randint, normal, bernoulli, multinomial...) and random fills
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings

from ._out import OUT_OPS, with_out

# numpy warns on log(0), x/0, overflow in exp...; torch returns inf/nan silently, and so do dtorch's kernels
# (only warnings raised from dtorch's own modules are filtered, never the user's numpy)
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"dtorch\.")

MODULES = []
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        MODULES.append(importlib.import_module(f"{__name__}.{_info.name}"))


def public_names() -> dict:
    """``dtorch.<name>`` for every op module's ``__all__``; torch's ``out=`` functions wrapped (``_out.py``)."""
    names = {n: getattr(m, n) for m in MODULES for n in getattr(m, "__all__", ())}
    wrapped = {id(fn): with_out(n, fn) for n, fn in names.items() if n in OUT_OPS and callable(fn)}
    return {n: wrapped.get(id(fn), fn) for n, fn in names.items()}  # aliases (ger/outer) stay one function
