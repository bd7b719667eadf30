"""Generated C for a fused elementwise group: one loop over the output's rows, broadcasting by strides.

A group's body (see ``_fuse.py``) becomes one C function ``dt_fused(const int64_t *p)`` specialized for
the output's rank and, per input, whether it varies along the last dimension (inner stride 1) or is
broadcast along it (inner stride 0). ``p`` holds ``rows, n``, the outer sizes, each input's outer strides
(elements, 0 where broadcast), then the input and output addresses. Each row runs the elementwise chain in
one pass (the inner loop vectorizes), then the group's row op (softmax or layer norm over the last
dimension) on the row while it is in L1. float32 throughout; exp is a Cephes polynomial and GELU's erf
the Abramowitz-Stegun polynomial of ``_ops/unary.py`` in the same operation order as the numpy kernel,
so results stay within a few ulp of eager. Compiled with ``cpp_extension.build_c_library`` (cached by
content hash), loaded with ctypes.
"""
from __future__ import annotations

import ctypes
import math

import numpy as np

from .._ops.unary import _AS_A, _AS_P
from ..utils.cpp_extension import build_c_library

# no -ffast-math: reassociation would change the exp range reduction and contraction the rounding; the row
# reductions say where reordering a sum is fine (omp simd, no OpenMP runtime)
CFLAGS = ("-O3", "-march=native", "-std=c99", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off",
          "-fopenmp-simd")
_LIBS: dict[str, ctypes.CDLL] = {}
_SQRT_2 = math.sqrt(2.0)

_PRELUDE = r"""
#include <stdint.h>
#include <math.h>
typedef int64_t i64;
typedef union { float f; int32_t i; } dt_bits;

static inline float dt_pow2i(int32_t k) { dt_bits b; b.i = (k + 127) << 23; return b.f; }

/* Cephes expf: |x| range reduction by ln 2 in two parts, degree-6 polynomial, 2^k in two halves so
   results down to the denormals are right; +-inf and NaN as libm. */
static inline float dt_exp(float x) {
    float xc = x < -104.0f ? -104.0f : (x > 88.7f ? 88.7f : x);  /* fminf/fmaxf do not vectorize */
    float k = __builtin_rintf(xc * 1.44269504088896341f);
    float r = xc - k * 0.693359375f;
    r = r + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t ki = (int32_t)k;
    int32_t h = ki >> 1;
    y = y * dt_pow2i(h) * dt_pow2i(ki - h);
    y = x > 88.7228f ? INFINITY : y;
    return x != x ? x : y;
}

/* exact GELU as _ops/activation.py's _gelu_erf_float32 computes it: x * (1/2 + sign(x) (1/2 - erfc(|z|)/2)) */
static inline float dt_gelu(float x) {
    float t = fabsf(x) * GELU_P + 1.0f;
    t = 1.0f / t;
    float y = t * GELU_A4;
    y = (y + GELU_A3) * t;
    y = (y + GELU_A2) * t;
    y = (y + GELU_A1) * t;
    y = (y + GELU_A0) * t;
    float e = dt_exp((x * x) * -0.5f) * GELU_GAUSS;
    float h = 0.5f - y * e;
    return x * (copysignf(h, x) + 0.5f);
}

/* tanh GELU: 0.5 x (1 + tanh(c (x + k x^3))), tanh(u) = sign(u) (1 - 2 / (exp(2|u|) + 1)) */
static inline float dt_gelu_tanh(float x) {
    float u = (x * x * 0.0356774081f + 0.7978845608f) * x;
    float t = 1.0f - 2.0f / (dt_exp(2.0f * fabsf(u)) + 1.0f);
    return 0.5f * x + 0.5f * x * copysignf(t, u);
}

static void dt_softmax_row(float *restrict q, i64 n) {
    float mx = -INFINITY, sum = 0.0f;
#pragma omp simd reduction(max:mx)
    for (i64 c = 0; c < n; c++) mx = q[c] > mx ? q[c] : mx;
#pragma omp simd reduction(+:sum)
    for (i64 c = 0; c < n; c++) { float e = dt_exp(q[c] - mx); q[c] = e; sum += e; }
#pragma omp simd
    for (i64 c = 0; c < n; c++) q[c] = q[c] / sum;
}

static void dt_layer_norm_row(float *restrict q, i64 n, const float *restrict w, const float *restrict b,
                              float eps) {
    double sum = 0.0, var = 0.0;
#pragma omp simd reduction(+:sum)
    for (i64 c = 0; c < n; c++) sum += q[c];
    float mean = (float)(sum / (double)n);
#pragma omp simd reduction(+:var)
    for (i64 c = 0; c < n; c++) { float d = q[c] - mean; var += (double)(d * d); }
    float rstd = 1.0f / sqrtf((float)(var / (double)n) + eps);
#pragma omp simd
    for (i64 c = 0; c < n; c++) q[c] = ((q[c] - mean) * rstd) * w[c] + b[c];
}
"""


def _float(v: float) -> str:
    """A C float literal of ``v`` rounded to float32 (infinities and NaN by their macros)."""
    f = float(np.float32(v))
    if math.isnan(f):
        return "NAN"
    if math.isinf(f):
        return "INFINITY" if f > 0 else "(-INFINITY)"
    return f"{f!r}f" if "e" in repr(f) or "." in repr(f) else f"{f!r}.0f"


def _constants() -> str:
    """GELU's polynomial constants as the numpy kernel rounds them (coefficients absorb 1/2 / gauss)."""
    gauss = 1 / math.sqrt(2 * math.pi)
    k = 0.5 / gauss
    lines = [f"#define GELU_P {_float(_AS_P * (1 / _SQRT_2))}", f"#define GELU_GAUSS {_float(gauss)}"]
    lines += [f"#define GELU_A{i} {_float(a * k)}" for i, a in enumerate(_AS_A)]
    return "\n".join(lines)


# the C form of each elementwise entry without parameters, over its operands' expressions {0}, {1}, {2}
_FORMS = {"mul": "({0} * {1})", "div": "({0} / {1})", "neg": "(-{0})", "relu": "({0} < 0.0f ? 0.0f : {0})",
          "exp": "dt_exp({0})", "masked_fill": "({1} ? {2} : {0})", "where": "({0} ? {1} : {2})"}


def _expr(op: str, a: list[str], params: dict) -> str:
    """The C expression of one elementwise entry over its operands' expressions."""
    if op in ("add", "sub"):
        alpha = params.get("alpha", 1)
        b = a[1] if alpha == 1 else f"({_float(alpha)} * {a[1]})"
        return f"({a[0]} {'+' if op == 'add' else '-'} {b})"
    if op == "gelu":
        return f"dt_gelu_tanh({a[0]})" if params.get("approximate", "none") == "tanh" else f"dt_gelu({a[0]})"
    form = _FORMS.get(op)
    if form is None:
        raise ValueError(f"no C form for {op!r}")
    return form.format(*a)


def _literal(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    return _float(value)


def source(body: tuple, n_in: int, outputs: tuple, kinds: tuple, classes: tuple, ndim: int) -> str:
    """The C source of one group for one rank and one pattern of inner strides (see the module docstring)."""
    nd, k, m = ndim - 1, n_in, len(outputs)
    lines = [_constants(), _PRELUDE, "void dt_fused(const i64 *restrict p) {",
             f"    const i64 rows = p[0], n = p[1]; const i64 *shape = p + 2; const i64 *st = p + {2 + nd};",
             f"    const i64 *ptr = p + {2 + nd + k * nd};"]
    for j in range(k):
        ctype = "unsigned char" if kinds[j] == "b" else "float"
        lines.append(f"    const {ctype} *in{j} = (const {ctype} *)(intptr_t)ptr[{j}]; i64 o{j} = 0;")
    for j in range(m):
        lines.append(f"    float *out{j} = (float *)(intptr_t)ptr[{k + j}];")
    lines.append(f"    i64 idx[{nd + 1}]; for (int j = 0; j < {nd + 1}; j++) idx[j] = 0; (void)shape; (void)st;")
    lines.append("    for (i64 r = 0; r < rows; r++) {")
    for j in range(k):
        ctype = "unsigned char" if kinds[j] == "b" else "float"
        lines.append(f"        const {ctype} *restrict a{j} = in{j} + o{j};")
    for j in range(m):
        lines.append(f"        float *restrict q{j} = out{j} + r * n;")
    lines += _row_body(body, n_in, outputs, kinds, classes)
    if nd:
        lines.append(f"        for (int j = {nd - 1}; j >= 0; j--) {{")
        lines.append("            idx[j]++; " + " ".join(f"o{i} += st[{i * nd} + j];" for i in range(k)))
        lines.append("            if (idx[j] < shape[j]) break;")
        lines.append("            idx[j] = 0; " + " ".join(f"o{i} -= st[{i * nd} + j] * shape[j];" for i in range(k)))
        lines.append("        }")
    lines += ["    }", "}", ""]
    return "\n".join(lines)


def _row_body(body: tuple, n_in: int, outputs: tuple, kinds: tuple, classes: tuple) -> list[str]:
    """The per-row statements: the elementwise loop, then the row op (if the group ends with one)."""
    row_op = body[-1] if body[-1][0] in ("softmax", "native_layer_norm") else None
    row_index = n_in + len(body) - 1 if row_op is not None else -1
    expr: dict[int, str] = {}
    loop, used = [], set()

    def operand(i: int) -> str:
        if i < n_in:
            used.add(i)
            return f"v{i}"
        return expr[i]

    for e, (op, args, params) in enumerate(body):
        vid = n_in + e
        if op == "prim::Constant":
            expr[vid] = _literal(dict(params)["value"])
        elif vid != row_index:
            loop.append(f"            const float t{vid} = {_expr(op, [operand(i) for i in args], dict(params))};")
            expr[vid] = f"t{vid}"
    stores = [f"            q{j}[c] = {operand(v)};" for j, v in enumerate(outputs) if v != row_index]
    if row_op is not None:
        scratch = outputs.index(row_index)
        stores.append(f"            q{scratch}[c] = {operand(row_op[1][0])};")
    loads = []
    for i in sorted(used):
        ctype = "unsigned char" if kinds[i] == "b" else "float"
        loads.append(f"            const {ctype} v{i} = a{i}[{'c' if classes[i] else '0'}];")
    out = ["        for (i64 c = 0; c < n; c++) {", *loads, *loop, *stores, "        }"]
    if row_op is not None:
        q = f"q{outputs.index(row_index)}"
        if row_op[0] == "softmax":
            out.append(f"        dt_softmax_row({q}, n);")
        else:
            _, w, b = row_op[1]
            eps = _float(dict(row_op[2])["eps"])
            out.append(f"        dt_layer_norm_row({q}, n, a{w}, a{b}, {eps});")
    return out


def load_kernel(text: str):
    """The compiled ``dt_fused`` of ``text`` (built once per content, then from the cache)."""
    path = str(build_c_library("dtorch_fused", text, CFLAGS))
    lib = _LIBS.get(path)
    if lib is None:
        lib = _LIBS[path] = ctypes.CDLL(path)
    fn = lib.dt_fused
    fn.argtypes = [ctypes.c_void_p]
    fn.restype = None
    return fn


def layout(arrays: list, shape: tuple, keep_last: bool):
    """(arrays, sizes, element strides per array, inner-stride classes) with the output's dimensions coalesced
    where every operand steps through them as one (size-1 dimensions dropped; the last kept for a row op),
    or None when an input's innermost stride is neither 0 nor 1 after that."""
    d = len(shape)
    arrs, strides = [], []
    for a in arrays:
        if (a.ndim and a.shape[-1] != 1 and a.strides[-1] != a.itemsize) or any(s % a.itemsize for s in a.strides):
            a = np.ascontiguousarray(a)
        lead = d - a.ndim
        arrs.append(a)
        strides.append([0] * lead + [0 if a.shape[k] == 1 else a.strides[k] // a.itemsize for k in range(a.ndim)])
    out = [math.prod(shape[j + 1:]) for j in range(d)]
    keep = [j for j in range(d) if shape[j] != 1 or (keep_last and j == d - 1)] or [d - 1]
    sizes = [shape[j] for j in keep]
    sts = [[s[j] for j in keep] for s in strides + [out]]
    j = len(sizes) - (3 if keep_last else 2)
    while j >= 0:
        if all(s[j] == s[j + 1] * sizes[j + 1] for s in sts):
            sizes[j + 1] *= sizes[j]
            del sizes[j]
            for s in sts:
                del s[j]
        j -= 1
    if any(s[-1] not in (0, 1) for s in sts[:-1]):
        return None
    classes = tuple(0 if sizes[-1] != 1 and s[-1] == 0 else 1 for s in sts[:-1])
    return arrs, tuple(sizes), sts[:-1], classes


def call(fn, arrays: list, sizes: tuple, strides: list, shape: tuple, n_out: int) -> list:
    """Run a compiled group: ``arrays`` laid out by :func:`layout` over ``sizes``; outputs of ``shape``."""
    nd = len(sizes) - 1
    outs = [np.empty(shape, np.float32) for _ in range(n_out)]
    p = np.empty(2 + nd + len(arrays) * nd + len(arrays) + n_out, np.int64)
    p[0], p[1] = math.prod(sizes[:-1]), sizes[-1]
    p[2:2 + nd] = sizes[:-1]
    at = 2 + nd
    for st in strides:
        p[at:at + nd] = st[:-1]
        at += nd
    p[at:] = [a.ctypes.data for a in arrays] + [o.ctypes.data for o in outs]
    fn(p.ctypes.data)
    return outs
