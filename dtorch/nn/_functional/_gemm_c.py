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

_SOURCE = r"""
#include <stdint.h>
typedef int64_t i64;
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
#define LD(p) (*(const v16u *)(p))
#define ST(p, v) (*(v16u *)(p) = (v))
#define UNROLL _Pragma("GCC unroll 32")

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

/* C[MR x 16NV] (+)= the sum over i < n of the outer product of the column A[ro[r] + i] and the row B + bo[i] */
#define TAB_TILE(MR, NV) \
static void tab_##MR##_##NV(i64 n, const float *restrict A, const i64 *restrict ro, const float *restrict B, \
                            const i64 *restrict bo, float *restrict C, i64 ldc) { \
    v16 c[MR][NV]; \
    UNROLL for (int r = 0; r < MR; r++) UNROLL for (int v = 0; v < NV; v++) c[r][v] = (v16){0}; \
    for (i64 i = 0; i < n; i++) { \
        v16 b[NV]; \
        UNROLL for (int v = 0; v < NV; v++) b[v] = LD(B + bo[i] + 16 * v); \
        UNROLL for (int r = 0; r < MR; r++) { \
            const float a = A[ro[r] + i]; \
            UNROLL for (int v = 0; v < NV; v++) c[r][v] += a * b[v]; \
        } \
    } \
    UNROLL for (int r = 0; r < MR; r++) UNROLL for (int v = 0; v < NV; v++) ST(C + r * ldc + 16 * v, c[r][v]); \
}
typedef void (*tab_fn)(i64, const float *, const i64 *, const float *, const i64 *, float *, i64);
typedef struct { int mr; tab_fn f; } tab_tile;
TAB_TILE(24, 1) TAB_TILE(16, 1) TAB_TILE(8, 1) TAB_TILE(4, 1) TAB_TILE(2, 1) TAB_TILE(1, 1)
TAB_TILE(12, 2) TAB_TILE(8, 2) TAB_TILE(4, 2) TAB_TILE(2, 2) TAB_TILE(1, 2)
static const tab_tile U1[] = {{24, tab_24_1}, {16, tab_16_1}, {8, tab_8_1}, {4, tab_4_1}, {2, tab_2_1},
                              {1, tab_1_1}, {0, 0}};
static const tab_tile U2[] = {{12, tab_12_2}, {8, tab_8_2}, {4, tab_4_2}, {2, tab_2_2}, {1, tab_1_2}, {0, 0}};

/* xq[s, ch, r, p, q] = the zero-padded input at row r, column q * sw + p - pad_w: each padded row split into its sw
   column phases, wq columns each; g: n, c, h, w, x's element strides (n, c, h, w), pad_h, pad_w, hp, sw, wq */
void dt_phase_split(const float *restrict x, float *restrict xq, const i64 *g) {
    const i64 n = g[0], c = g[1], h = g[2], w = g[3], sn = g[4], sc = g[5], sh = g[6], sw_ = g[7];
    const i64 ph = g[8], pw = g[9], hp = g[10], sw = g[11], wq = g[12];
    for (i64 s = 0; s < n; s++)
        for (i64 ch = 0; ch < c; ch++)
            for (i64 r = 0; r < hp; r++) {
                float *o = xq + ((s * c + ch) * hp + r) * sw * wq;
                const i64 y = r - ph;
                const float *xr = x + s * sn + ch * sc + y * sh;
                for (i64 p = 0; p < sw; p++) {
                    float *op = o + p * wq;
                    /* the columns q whose input column q * sw + p - pw lies in [0, w) */
                    i64 lo = pw - p > 0 ? (pw - p + sw - 1) / sw : 0, hi = (w - 1 + pw - p) / sw + 1;
                    if (y < 0 || y >= h || w - 1 + pw - p < 0) lo = hi = 0;
                    if (hi > wq) hi = wq;
                    if (lo > hi) lo = hi;
                    for (i64 q = 0; q < lo; q++) op[q] = 0.0f;
                    const float *xp = xr + (p - pw) * sw_;
                    for (i64 q = lo; q < hi; q++) op[q] = xp[q * sw * sw_];
                    for (i64 q = hi; q < wq; q++) op[q] = 0.0f;
                }
            }
}

/* y (n, o, oh, ow) = the convolution of xq (dt_phase_split's layout: c channels, hp rows, sw phases of wq) with
   w (o, c, kh, kw), stride (sh, sw), dilation 1; ow a multiple of 16: tiles of output channels by 16-32 output
   columns of one row, the taps' inputs found through an offset table. g: n, c, hp, wq, o, kh, kw, sh, sw, oh, ow
   and ldw, the floats from one output channel's weights to the next */
void dt_conv_nchw_forward(const float *xq, const float *w, float *y, const i64 *g) {
    const i64 n = g[0], c = g[1], hp = g[2], wq = g[3], o = g[4], kh = g[5], kw = g[6], sh = g[7], sw = g[8];
    const i64 oh = g[9], ow = g[10], ldw = g[11], taps = c * kh * kw, row = sw * wq;
    i64 bo[taps > 0 ? taps : 1], ro[24];
    for (i64 ch = 0, i = 0; ch < c; ch++)
        for (i64 a = 0; a < kh; a++)
            for (i64 b = 0; b < kw; b++, i++) bo[i] = (ch * hp + a) * row + (b % sw) * wq + b / sw;
    for (int r = 0; r < 24; r++) ro[r] = r * ldw;
    const int nv = ow % 32 == 0 && o > 16 ? 2 : 1;
    for (i64 s = 0; s < n; s++)
        for (i64 yo = 0; yo < oh; yo++) {
            const float *xs = xq + (s * c * hp + yo * sh) * row;
            for (i64 x0 = 0; x0 < ow; x0 += 16 * nv) {
                i64 m = 0;
                for (const tab_tile *t = nv == 2 ? U2 : U1; t->mr; t++)
                    for (; m + t->mr <= o; m += t->mr)
                        t->f(taps, w + m * ldw, ro, xs + x0, bo, y + ((s * o + m) * oh + yo) * ow + x0, oh * ow);
            }
        }
}

/* gw[a, b] += the dot product of the runs G + go[a] + gi[i] and X + bo[b] + xi[i] (16 floats each) over i < n,
   for MO rows a by MT columns b: 16-lane partial sums, the lanes added at the end */
#define DOT_TILE(MO, MT) \
static void dot_##MO##_##MT(i64 n, const float *restrict G, const i64 *restrict go, const i64 *restrict gi, \
                            const float *restrict X, const i64 *restrict bo, const i64 *restrict xi, \
                            float *restrict gw, i64 ldw) { \
    v16 c[MO][MT]; \
    UNROLL for (int a = 0; a < MO; a++) UNROLL for (int b = 0; b < MT; b++) c[a][b] = (v16){0}; \
    for (i64 i = 0; i < n; i++) { \
        v16 g[MO]; \
        UNROLL for (int a = 0; a < MO; a++) g[a] = LD(G + go[a] + gi[i]); \
        UNROLL for (int b = 0; b < MT; b++) { \
            const v16 x = LD(X + bo[b] + xi[i]); \
            UNROLL for (int a = 0; a < MO; a++) c[a][b] += g[a] * x; \
        } \
    } \
    UNROLL for (int a = 0; a < MO; a++) UNROLL for (int b = 0; b < MT; b++) { \
        float t = 0; \
        UNROLL for (int l = 0; l < 16; l++) t += c[a][b][l]; \
        gw[a * ldw + b] += t; \
    } \
}
DOT_TILE(4, 6) DOT_TILE(4, 1) DOT_TILE(1, 6) DOT_TILE(1, 1)

/* gw (o, c * kh * kw) += the weight gradient of dt_conv_nchw_forward for its output gradient gy (n, o, oh, ow):
   tiles of 4 output channels by 6 taps, each summing over every 16 output columns of the batch. g as there. */
void dt_conv_nchw_weight_grad(const float *xq, const float *gy, float *gw, const i64 *g) {
    const i64 n = g[0], c = g[1], hp = g[2], wq = g[3], o = g[4], kh = g[5], kw = g[6], sh = g[7], sw = g[8];
    const i64 oh = g[9], ow = g[10], taps = c * kh * kw, row = sw * wq, rows = n * oh * (ow / 16);
    i64 bo[taps > 0 ? taps : 1], go[4], gi[rows > 0 ? rows : 1], xi[rows > 0 ? rows : 1];
    for (i64 ch = 0, i = 0; ch < c; ch++)
        for (i64 a = 0; a < kh; a++)
            for (i64 b = 0; b < kw; b++, i++) bo[i] = (ch * hp + a) * row + (b % sw) * wq + b / sw;
    for (int a = 0; a < 4; a++) go[a] = a * oh * ow;
    for (i64 s = 0, i = 0; s < n; s++)
        for (i64 y = 0; y < oh; y++)
            for (i64 x0 = 0; x0 < ow; x0 += 16, i++) {
                gi[i] = s * o * oh * ow + y * ow + x0;
                xi[i] = (s * c * hp + y * sh) * row + x0;
            }
    for (i64 m = 0; m < o; ) {
        const int mo = o - m >= 4 ? 4 : 1;
        const float *G = gy + m * oh * ow;
        i64 t = 0;
        for (; t + 6 <= taps; t += 6)
            (mo == 4 ? dot_4_6 : dot_1_6)(rows, G, go, gi, xq, bo + t, xi, gw + m * taps + t, taps);
        for (; t < taps; t++)
            (mo == 4 ? dot_4_1 : dot_1_1)(rows, G, go, gi, xq, bo + t, xi, gw + m * taps + t, taps);
        m += mo;
    }
}
"""

# below this many rows on the long side BLAS is as fast (its packing is paid back)
MIN_ROWS = 256

_P, _N, _I = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
_ARGS = [_N, _N, _N, _P, _N, _P, _N, _P, _N, _I]
_CONV_ARGS = [_P, _P, _P, _P]
# contraction on: the tiles are multiply-adds by design (the numpy-rounding kernels keep KERNEL_CFLAGS' "off")
KERNELS = CFunctions("dtorch_gemm", lambda: _SOURCE,
                     [f for f in KERNEL_CFLAGS if not f.startswith("-ffp-contract")] + ["-ffp-contract=fast"],
                     {"dt_gemm_nn": _ARGS, "dt_gemm_tn": _ARGS,
                      "dt_conv_rows_forward": _CONV_ARGS, "dt_conv_rows_weight_grad": _CONV_ARGS,
                      "dt_phase_split": [_P] * 3, "dt_conv_nchw_forward": _CONV_ARGS,
                      "dt_conv_nchw_weight_grad": _CONV_ARGS})


def _single_core() -> bool:
    return _blas.threads() == 1 and bool(KERNELS.get())


def _rows(a) -> int | None:
    """The row stride in floats of 2-D float32 ``a`` with unit column stride, or None."""
    if type(a) is not np.ndarray or a.dtype != np.float32 or a.ndim != 2 or a.strides[1] != 4 or a.strides[0] % 4:
        return None
    return max(a.strides[0] // 4, a.shape[1])


def _serves(a, b, long: int, out_cols: int) -> bool:
    """``a`` in place (unit column stride), ``b`` float32 (copied to rows where it is not)."""
    return (long >= MIN_ROWS and out_cols % 16 == 0 and _rows(a) is not None and type(b) is np.ndarray
            and b.dtype == np.float32 and _single_core())


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
            and dilation[1] == 1 and _single_core())


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


def nchw_serves(x, dilation, out) -> bool:
    """Whether :func:`conv_nchw` and :func:`conv_nchw_weight_grad` take a 2-D convolution of ``x``: float32,
    output rows a multiple of 16 wide, no dilation."""
    return (type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 4 and out[1] % 16 == 0
            and tuple(dilation) == (1, 1) and _single_core())


def _phase_split(x, stride, padding) -> tuple[np.ndarray, list]:
    """The input's zero-padded rows split into their ``stride`` column phases, ``(N, C, H, stride, Wq)``, and the
    geometry's first entries for the kernels (``n, c, hp, wq``)."""
    n, c, h, wd = x.shape
    (top, bottom), (left, right) = padding
    sw = stride[1]
    hp, wq = h + top + bottom, -(-(wd + left + right) // sw)
    xq = np.empty((n, c, hp, sw, wq), np.float32)
    split = np.array([n, c, h, wd, *(s // 4 for s in x.strides), top, left, hp, sw, wq], np.int64)
    KERNELS.get()["dt_phase_split"](x.ctypes.data, xq.ctypes.data, split.ctypes.data)
    return xq, [n, c, hp, wq]


def conv_nchw(x: np.ndarray, w: np.ndarray, y: np.ndarray, stride, padding) -> None:
    """``y`` (contiguous NCHW) = the convolution of ``x`` with ``w`` (dilation 1), computed in NCHW: 16 output
    columns per vector, the input's padded rows split into their ``stride`` column phases first."""
    xq, geom = _phase_split(x, stride, padding)
    taps = w[0].size
    ldw = taps + 16 if taps % 256 == 0 else taps  # rows a multiple of 1 KiB apart would share L1 sets
    wc = np.empty((w.shape[0], ldw), np.float32)
    wc[:, :taps] = w.reshape(w.shape[0], -1)
    geom = np.array(geom + [w.shape[0], *w.shape[2:], *stride, *y.shape[2:], ldw], np.int64)
    KERNELS.get()["dt_conv_nchw_forward"](xq.ctypes.data, wc.ctypes.data, y.ctypes.data, geom.ctypes.data)


def conv_nchw_weight_grad(x: np.ndarray, gy: np.ndarray, gw: np.ndarray, stride, padding) -> None:
    """``gw`` (contiguous ``(O, C, *kernel)``) += the weight gradient of :func:`conv_nchw` for output gradient
    ``gy``."""
    xq, geom = _phase_split(x, stride, padding)
    gy = np.ascontiguousarray(gy, np.float32)
    geom = np.array(geom + [gw.shape[0], *gw.shape[2:], *stride, *gy.shape[2:], 0], np.int64)
    KERNELS.get()["dt_conv_nchw_weight_grad"](xq.ctypes.data, gy.ctypes.data, gw.ctypes.data, geom.ctypes.data)
