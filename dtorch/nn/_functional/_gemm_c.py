"""Thin float32 GEMMs in C for the convolutions' channels-last products: ``a @ b`` and ``out += a.T @ b``, where
the result has a multiple of 16 columns and at least ``MIN_ROWS`` rows of the long side, on the CPU.

A convolution layer's GEMMs are thin: DCGAN's and the CNNs' layers have 16-64 output channels, so one side is a
few dozen wide while the other runs to thousands of pixels. OpenBLAS packs both operands for that little work.
These kernels do not pack: a tile of the result (``MR`` rows by 16-64 columns) stays in vector registers for
the whole inner product, one float of ``a`` broadcast against a row of ``b`` per step. The vectors are GCC's
generic ones, 16 floats: one AVX-512 register where the CPU has them, split by the compiler elsewhere.

The kernels run on one core, so they serve only while numpy's BLAS runs on one thread (``set_num_threads(1)``);
with more, BLAS splits the product across cores. The library is built on first use by
``cpp_extension.CFunctions``; without a compiler, or for arrays it does not take, the products go to BLAS. Sums
run in order with fused multiply-adds (the long sums of ``a.T @ b`` in chunks of 512 rows), so results differ from
BLAS's in rounding only.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ...utils.cpp_extension import KERNEL_CFLAGS, CFunctions
from . import _blas

# GCC's generic vectors of 16 floats and their unaligned loads and stores, for every tile kernel
VECTORS = r"""
#include <stdint.h>
typedef int64_t i64;
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
#define LD(p) (*(const v16u *)(p))
#define ST(p, v) (*(v16u *)(p) = (v))
#define UNROLL _Pragma("GCC unroll 32")
"""

_SOURCE = VECTORS + r"""
/* C[MR x 16NV] (+)= the sum (added to C as one partial sum) over i1 < n1, i2 < n2 of the outer product of a column
   of MR floats, float r at A[ro[r] + i1 * a1 + i2 * a2], and the row of 16NV floats at B + i1 * b1 + i2 * b2.
   A plain product has n1 = 1: NN walks k (a2 = 1, ro[r] = r * lda, b2 = ldb), TN walks m (a2 = lda, ro[r] = r,
   b2 = ldb); a convolution's channels-last receptive fields are the two-level walks of dt_conv_rows_*. */
#define TILE(MR, NV) \
static void tile_##MR##_##NV(i64 n1, i64 n2, const float *restrict A, const i64 *restrict ro, i64 a1, i64 a2, \
                             const float *restrict B, i64 b1, i64 b2, float *restrict C, i64 ldc, int acc) { \
    v16 c[MR][NV]; \
    const float *restrict Ar[MR]; \
    UNROLL for (int r = 0; r < MR; r++) { \
        Ar[r] = A + ro[r]; \
        UNROLL for (int v = 0; v < NV; v++) c[r][v] = (v16){0}; \
    } \
    for (i64 i1 = 0; i1 < n1; i1++) { \
        const float *restrict Bi = B + i1 * b1; \
        const i64 o1 = i1 * a1; \
        for (i64 i2 = 0; i2 < n2; i2++) { \
            v16 b[NV]; \
            UNROLL for (int v = 0; v < NV; v++) b[v] = LD(Bi + i2 * b2 + 16 * v); \
            UNROLL for (int r = 0; r < MR; r++) { \
                const float a = Ar[r][o1 + i2 * a2]; \
                UNROLL for (int v = 0; v < NV; v++) c[r][v] += a * b[v]; \
            } \
        } \
    } \
    UNROLL for (int r = 0; r < MR; r++) UNROLL for (int v = 0; v < NV; v++) \
        ST(C + r * ldc + 16 * v, acc ? LD(C + r * ldc + 16 * v) + c[r][v] : c[r][v]); \
}
typedef void (*tile_fn)(i64, i64, const float *, const i64 *, i64, i64, const float *, i64, i64, float *, i64,
                        int);
typedef struct { int mr; tile_fn f; } tile;
TILE(24, 1) TILE(16, 1) TILE(8, 1) TILE(4, 1) TILE(2, 1) TILE(1, 1)
TILE(12, 2) TILE(8, 2) TILE(4, 2) TILE(2, 2) TILE(1, 2)
TILE(6, 4) TILE(4, 4) TILE(2, 4) TILE(1, 4)
/* per vector count, the tile heights from the tallest (24 accumulators) down; 0 ends */
static const tile T1[] = {{24, tile_24_1}, {16, tile_16_1}, {8, tile_8_1}, {4, tile_4_1}, {2, tile_2_1},
                          {1, tile_1_1}, {0, 0}};
static const tile T2[] = {{12, tile_12_2}, {8, tile_8_2}, {4, tile_4_2}, {2, tile_2_2}, {1, tile_1_2}, {0, 0}};
static const tile T4[] = {{6, tile_6_4}, {4, tile_4_4}, {2, tile_2_4}, {1, tile_1_4}, {0, 0}};

/* the tiles for n columns (16NV at a time); floats of a tile's column ar apart, a multiple of 1 KiB, share L1
   sets: more than 8 of them evict each other */
static const tile *tiles(i64 n, i64 ar, int *nv) {
    *nv = n % 64 == 0 ? 4 : n % 32 == 0 ? 2 : 1;
    const tile *t = *nv == 4 ? T4 : *nv == 2 ? T2 : T1;
    if (ar % 256 == 0) while (t->mr > 8) t++;
    return t;
}

/* ro[r] = r * step for r < 24 */
static void steps(i64 *ro, i64 step) {
    for (int r = 0; r < 24; r++) ro[r] = r * step;
}

/* C[M x N] (+)= A[M x K] @ B[K x N], N a multiple of 16: row tiles of the greatest height that fits, each across
   every column block */
void dt_gemm_nn(i64 M, i64 N, i64 K, const float *A, i64 lda, const float *B, i64 ldb, float *C, i64 ldc, int acc) {
    int nv;
    i64 m = 0, ro[24];
    steps(ro, lda);
    for (const tile *t = tiles(N, lda, &nv); t->mr; t++)
        for (; m + t->mr <= M; m += t->mr)
            for (i64 n0 = 0; n0 < N; n0 += 16 * nv)
                t->f(1, K, A + m * lda, ro, 0, 1, B + n0, 0, ldb, C + m * ldc + n0, ldc, acc);
}

/* C[K x N] (+)= A[M x K]^T @ B[M x N], N a multiple of 16; M in chunks of 512 rows, which stay in L2 while
   every tile of C sums over them (and C sums the chunks' partial sums: rounding grows with 512 + M / 512) */
void dt_gemm_tn(i64 M, i64 N, i64 K, const float *A, i64 lda, const float *B, i64 ldb, float *C, i64 ldc, int acc) {
    int nv;
    i64 ro[24];
    steps(ro, 1);
    const tile *t0 = tiles(N, 1, &nv);
    for (i64 m0 = 0; m0 < M; m0 += 512) {
        const i64 mm = M - m0 < 512 ? M - m0 : 512;
        i64 k = 0;
        for (const tile *t = t0; t->mr; t++)
            for (; k + t->mr <= K; k += t->mr)
                for (i64 n0 = 0; n0 < N; n0 += 16 * nv)
                    t->f(1, mm, A + m0 * lda + k, ro, 0, lda, B + m0 * ldb + n0, 0, ldb, C + k * ldc + n0, ldc,
                         acc || m0);
    }
}

/* A 2-D convolution (dilation 1 along the width) on xp, the zero-padded input channels-last (n, hp, wp, c), with
   the weight wt as rows (kh, kw, c) x o: the receptive fields' rows are never gathered, the tiles read xp in
   place. The int64 parameters, in the order conv_geom lists them. */
typedef struct { i64 n, hp, wp, c, kh, kw, sh, sw, dh, oh, ow, o; } conv_geom;

/* the offset in xp of output pixel m's receptive field (its first kernel row) */
static i64 field(const conv_geom *g, i64 m) {
    const i64 s = m / (g->oh * g->ow), y = m / g->ow % g->oh, x = m % g->ow;
    return ((s * g->hp + y * g->sh) * g->wp + x * g->sw) * g->c;
}

/* out[m, :] = the receptive field of output pixel m (sample, y, x) @ wt; row tiles of any pixels in turn */
void dt_conv_rows_forward(const float *xp, const float *wt, float *out, const conv_geom *gp) {
    const conv_geom g = *gp;
    const i64 run = g.kw * g.c, pixels = g.n * g.oh * g.ow;
    int nv;
    i64 m = 0, ro[24];
    for (const tile *t = tiles(g.o, g.sw * g.c, &nv); t->mr; t++)
        for (; m + t->mr <= pixels; m += t->mr) {
            const i64 base = field(&g, m);
            for (int r = 0; r < t->mr; r++) ro[r] = field(&g, m + r) - base;
            for (i64 n0 = 0; n0 < g.o; n0 += 16 * nv)
                t->f(g.kh, run, xp + base, ro, g.dh * g.wp * g.c, 1, wt + n0, run * g.o, g.o, out + m * g.o + n0,
                     g.o, 0);
        }
}

/* gwt[(kh, kw, c), :] += sum over output pixels of the receptive field's entry times gr[pixel, :] (gr: the output
   gradient as rows); per sample, tiles of adjacent (kw, c) entries within one kernel row */
void dt_conv_rows_weight_grad(const float *xp, const float *gr, float *gwt, const conv_geom *gp) {
    const conv_geom g = *gp;
    const i64 run = g.kw * g.c;
    int nv;
    i64 ro[24];
    steps(ro, 1);
    const tile *t0 = tiles(g.o, 1, &nv);
    for (i64 s = 0; s < g.n; s++)
        for (i64 a = 0; a < g.kh; a++) {
            const float *xs = xp + (s * g.hp + a * g.dh) * g.wp * g.c;
            i64 j = 0;
            for (const tile *t = t0; t->mr; t++)
                for (; j + t->mr <= run; j += t->mr)
                    for (i64 n0 = 0; n0 < g.o; n0 += 16 * nv)
                        t->f(g.oh, g.ow, xs + j, ro, g.sh * g.wp * g.c, g.sw * g.c,
                             gr + s * g.oh * g.ow * g.o + n0, g.ow * g.o, g.o, gwt + (a * run + j) * g.o + n0, g.o, 1);
        }
}
"""

# below this many rows on the long side BLAS is as fast (its packing is paid back)
MIN_ROWS = 256

_P, _N, _I = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
_ARGS = [_N, _N, _N, _P, _N, _P, _N, _P, _N, _I]
_CONV_ARGS = [_P, _P, _P, _P]
# contraction on: the tiles are multiply-adds by design (the numpy-rounding kernels keep KERNEL_CFLAGS' "off")
TILE_CFLAGS = [f for f in KERNEL_CFLAGS if not f.startswith("-ffp-contract")] + ["-ffp-contract=fast"]
KERNELS = CFunctions("dtorch_gemm", lambda: _SOURCE, TILE_CFLAGS,
                     {"dt_gemm_nn": _ARGS, "dt_gemm_tn": _ARGS,
                      "dt_conv_rows_forward": _CONV_ARGS, "dt_conv_rows_weight_grad": _CONV_ARGS})


def single_core(kernels: CFunctions = KERNELS) -> bool:
    """Whether numpy's BLAS runs on one thread (the tile kernels' condition) and ``kernels`` are built."""
    return _blas.threads() == 1 and bool(kernels.get())


def _rows(a) -> int | None:
    """The row stride in floats of 2-D float32 ``a`` with unit column stride and rows that do not overlap, or None."""
    if type(a) is not np.ndarray or a.dtype != np.float32 or a.ndim != 2 or a.strides[1] != 4 or a.strides[0] % 4:
        return None
    if a.shape[0] <= 1:
        return a.shape[1]
    return a.strides[0] // 4 if a.strides[0] >= 4 * a.shape[1] else None


def _serves(a, b, long: int, out_cols: int) -> bool:
    """``a`` in place (unit column stride), ``b`` float32 (copied to rows where it is not)."""
    return (long >= MIN_ROWS and out_cols % 16 == 0 and _rows(a) is not None and type(b) is np.ndarray
            and b.dtype == np.float32 and single_core())


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D arrays."""
    m, k = a.shape
    n = b.shape[1]
    if not (k and _serves(a, b, m, n)):
        return a @ b
    b = b if _rows(b) is not None else np.ascontiguousarray(b)
    out = np.empty((m, n), np.float32)
    KERNELS.get()["dt_gemm_nn"](m, n, k, a.ctypes.data, _rows(a), b.ctypes.data, _rows(b), out.ctypes.data, n, 0)
    return out


def add_tn(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out += a.T @ b`` for 2-D arrays, ``out`` C-contiguous."""
    m, k = a.shape
    n = b.shape[1]
    if not (m and out.flags.c_contiguous and out.dtype == np.float32 and _serves(a, b, m, n)):
        out += a.T @ b
        return
    b = b if _rows(b) is not None else np.ascontiguousarray(b)
    KERNELS.get()["dt_gemm_tn"](m, n, k, a.ctypes.data, _rows(a), b.ctypes.data, _rows(b), out.ctypes.data, n, 1)


# ---- convolutions on channels-last input, the receptive fields read in place --------------------------------------
def conv_serves(x, out_channels: int, dilation) -> bool:
    """Whether :func:`conv_forward` and :func:`conv_weight_grad_add` take a 2-D convolution of ``x``."""
    return (type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 4 and out_channels % 16 == 0
            and dilation[1] == 1 and single_core())


def _geometry(xp, kernel, stride, dilation, out, channels: int) -> np.ndarray:
    return np.array([*xp.shape, *kernel, *stride, dilation[0], *out, channels], np.int64)


def conv_forward(xp: np.ndarray, wt: np.ndarray, kernel, stride, dilation, out) -> np.ndarray:
    """The convolution's output as rows ``(N * L, O)``: ``xp`` the zero-padded input channels-last ``(N, H, W, C)``,
    ``wt`` the weight as ``(prod(kernel) * C, O)`` rows, both C-contiguous."""
    o = wt.shape[1]
    rows = np.empty((xp.shape[0] * out[0] * out[1], o), np.float32)
    geom = _geometry(xp, kernel, stride, dilation, out, o)
    KERNELS.get()["dt_conv_rows_forward"](xp.ctypes.data, wt.ctypes.data, rows.ctypes.data, geom.ctypes.data)
    return rows


def conv_weight_grad_add(xp: np.ndarray, gr: np.ndarray, gwt: np.ndarray, kernel, stride, dilation, out) -> None:
    """``gwt`` ``(prod(kernel) * C, O)`` += the weight gradient for the output gradient as rows ``gr``
    ``(N * L, O)``; ``xp`` as :func:`conv_forward` takes it; all C-contiguous."""
    geom = _geometry(xp, kernel, stride, dilation, out, gr.shape[1])
    KERNELS.get()["dt_conv_rows_weight_grad"](xp.ctypes.data, gr.ctypes.data, gwt.ctypes.data, geom.ctypes.data)
