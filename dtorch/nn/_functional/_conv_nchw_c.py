"""2-D convolutions in NCHW by C tiles, for output rows a multiple of 16 wide (DCGAN's RGB and second layers): the
forward and the weight gradient, float32 on the CPU while numpy's BLAS runs on one thread.

The rows of ``_gemm_c`` need the input channels-last and give the output channels-last, and on layers with few
input channels (RGB) the transposes cost as much as the products. Here nothing is transposed: each padded input
row is split into its ``stride`` column phases (``dt_phase_split``), after which the input of output columns
``x .. x + 15`` at kernel column ``kw`` is 16 adjacent floats of phase ``kw % stride``. The forward keeps a tile
of output channels by 16-32 output columns in vector registers (the taps' inputs found through an offset table);
the weight gradient keeps 4 output channels by 6 taps of 16-lane dot products over every output row of the
batch and adds the lanes at the end.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ...utils.cpp_extension import CFunctions
from ._gemm_c import TILE_CFLAGS, VECTORS, single_core

_SOURCE = VECTORS + r"""
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
                const float *xr = x + s * sn + ch * sc + (y >= 0 && y < h ? y * sh : 0);
                for (i64 p = 0; p < sw; p++) {
                    float *op = o + p * wq;
                    /* the columns q whose input column q * sw + p - pw lies in [0, w) */
                    i64 lo = pw - p > 0 ? (pw - p + sw - 1) / sw : 0, hi = (w - 1 + pw - p) / sw + 1;
                    if (y < 0 || y >= h || w - 1 + pw - p < 0) lo = hi = 0;
                    if (hi > wq) hi = wq;
                    if (lo > hi) lo = hi;
                    for (i64 q = 0; q < lo; q++) op[q] = 0.0f;
                    for (i64 q = lo; q < hi; q++) op[q] = xr[(q * sw + p - pw) * sw_];
                    for (i64 q = hi; q < wq; q++) op[q] = 0.0f;
                }
            }
}

/* y (n, o, oh, ow) = the convolution of xq (dt_phase_split's layout: c channels, hp rows, sw phases of wq) with
   w (o, c, kh, kw), stride (sh, sw), dilation 1; ow a multiple of 16: tiles of output channels by 16-32 output
   columns of one row, the taps' inputs found through an offset table (bo, c * kh * kw entries, scratch). g: n, c,
   hp, wq, o, kh, kw, sh, sw, oh, ow and ldw, the floats from one output channel's weights to the next */
void dt_conv_nchw_forward(const float *xq, const float *w, float *y, const i64 *g, i64 *bo) {
    const i64 n = g[0], c = g[1], hp = g[2], wq = g[3], o = g[4], kh = g[5], kw = g[6], sh = g[7], sw = g[8];
    const i64 oh = g[9], ow = g[10], ldw = g[11], taps = c * kh * kw, row = sw * wq;
    i64 ro[24];
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
   tiles of 4 output channels by 6 taps, each summing over every 16 output columns of the batch. g as there;
   scratch for the offset tables: bo (c * kh * kw entries), gi and xi (n * oh * ow / 16 each) */
void dt_conv_nchw_weight_grad(const float *xq, const float *gy, float *gw, const i64 *g, i64 *bo, i64 *gi,
                              i64 *xi) {
    const i64 n = g[0], c = g[1], hp = g[2], wq = g[3], o = g[4], kh = g[5], kw = g[6], sh = g[7], sw = g[8];
    const i64 oh = g[9], ow = g[10], taps = c * kh * kw, row = sw * wq, rows = n * oh * (ow / 16);
    i64 go[4];
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

_P = ctypes.c_void_p
KERNELS = CFunctions("dtorch_conv_nchw", lambda: _SOURCE, TILE_CFLAGS, {
    "dt_phase_split": [_P] * 3, "dt_conv_nchw_forward": [_P] * 5, "dt_conv_nchw_weight_grad": [_P] * 7})


def serves(x, dilation, out) -> bool:
    """Whether :func:`forward` and :func:`weight_grad` take a 2-D convolution of ``x``: float32,
    output rows a multiple of 16 wide, no dilation."""
    return (type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 4 and out[1] % 16 == 0
            and tuple(dilation) == (1, 1) and single_core(KERNELS))


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


def forward(x: np.ndarray, w: np.ndarray, y: np.ndarray, stride, padding) -> None:
    """``y`` (contiguous NCHW) = the convolution of ``x`` with ``w`` (dilation 1), computed in NCHW: 16 output
    columns per vector, the input's padded rows split into their ``stride`` column phases first."""
    xq, geom = _phase_split(x, stride, padding)
    taps = w[0].size
    ldw = taps + 16 if taps % 256 == 0 else taps  # rows a multiple of 1 KiB apart would share L1 sets
    wc = np.empty((w.shape[0], ldw), np.float32)
    wc[:, :taps] = w.reshape(w.shape[0], -1)
    geom = np.array(geom + [w.shape[0], *w.shape[2:], *stride, *y.shape[2:], ldw], np.int64)
    bo = np.empty(taps, np.int64)
    KERNELS.get()["dt_conv_nchw_forward"](xq.ctypes.data, wc.ctypes.data, y.ctypes.data, geom.ctypes.data,
                                          bo.ctypes.data)


def weight_grad(x: np.ndarray, gy: np.ndarray, gw: np.ndarray, stride, padding) -> None:
    """``gw`` (contiguous ``(O, C, *kernel)``) += the weight gradient of :func:`forward` for output gradient
    ``gy``."""
    xq, geom = _phase_split(x, stride, padding)
    gy = np.ascontiguousarray(gy, np.float32)
    geom = np.array(geom + [gw.shape[0], *gw.shape[2:], *stride, *gy.shape[2:], 0], np.int64)
    bo, rows = np.empty(gw[0].size, np.int64), np.empty((2, gy.shape[0] * gy.shape[2] * (gy.shape[3] // 16)), np.int64)
    KERNELS.get()["dt_conv_nchw_weight_grad"](xq.ctypes.data, gy.ctypes.data, gw.ctypes.data, geom.ctypes.data,
                                              bo.ctypes.data, rows[0].ctypes.data, rows[1].ctypes.data)
