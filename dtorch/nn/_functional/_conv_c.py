"""The convolutions' patch matrices in C (float32/float64, on the CPU): ``im2col`` and ``col2im`` for the
columns of ``_conv_cols`` (1-D and 2-D), ``im2row`` for the channels-last rows of ``_conv_rows`` (2-D).

numpy moves a column block one output row at a time (``out_w`` floats per copy, a few for strided layers), and
its per-copy overhead made the columns cost as much as their GEMM; a C loop copies the same rows at memory
speed, so the column layout (a GEMM whose result is already NCHW, no transposes) is the fast one again on
wide layers. ``im2row`` transposes each sample to channels-last in L1-sized tiles and copies every kernel row
of a receptive field at once, one pass instead of numpy's two. The library is built on first use by
``cpp_extension.CFunctions`` (the system C compiler, cached) and loaded with ctypes; without a compiler
``available()`` is False and the callers keep numpy's loops. Both are pure copies and adds in the same order,
so their results are identical.

Parameters travel as one ``int64`` array (``dt_geom``): ``n, c, h, w`` (input), the input's element strides
``(n, c, h, w)``, ``kh, kw, sh, sw, ph, pw, dh, dw, oh, ow``, and the columns' element strides per sample and
per column row.
"""
from __future__ import annotations

import ctypes
import math

import numpy as np

from ...utils.cpp_extension import KERNEL_CFLAGS, REAL_TYPES, CFunctions, real_signatures, real_variants

_SOURCE = r"""
#include <stdint.h>
#include <string.h>
typedef int64_t i64;

/* the int64 parameters, in the order _params writes them */
typedef struct {
    i64 n, c, h, w, sn, sc, sh, sw;  /* image size and element strides */
    i64 kh, kw, st_h, st_w, pad_h, pad_w, dil_h, dil_w, oh, ow;
    i64 cols_n, cols_row;  /* the columns' element strides per sample and per row (c, kernel position) */
} dt_geom;

/* the output columns [*lo, *hi) whose input column wo * sw + off lies in [0, w) */
static void dt_span(i64 off, i64 sw, i64 w, i64 ow, i64 *lo, i64 *hi) {
    i64 a = off >= 0 ? 0 : (-off + sw - 1) / sw;
    i64 b = w - 1 - off < 0 ? 0 : (w - 1 - off) / sw + 1;
    if (a > ow) a = ow;
    if (b > ow) b = ow;
    if (b < a) b = a;
    *lo = a; *hi = b;
}
"""

_TYPED = r"""
void dt_im2col_SUF(const REAL *restrict x, REAL *restrict cols, const dt_geom *gp) {
    const dt_geom G = *gp, *g = &G;  /* locals: no reloads through the pointer in the loops */
    for (i64 s = 0; s < g->n; s++)
        for (i64 ch = 0; ch < g->c; ch++) {
            const REAL *xc = x + s * g->sn + ch * g->sc;
            for (i64 a = 0; a < g->kh; a++)
                for (i64 b = 0; b < g->kw; b++) {
                    REAL *col = cols + s * g->cols_n + ((ch * g->kh + a) * g->kw + b) * g->cols_row;
                    const i64 off = b * g->dil_w - g->pad_w, ow = g->ow;
                    i64 lo, hi;
                    dt_span(off, g->st_w, g->w, ow, &lo, &hi);
                    for (i64 ho = 0; ho < g->oh; ho++, col += ow) {
                        const i64 r = ho * g->st_h + a * g->dil_h - g->pad_h;
                        if (r < 0 || r >= g->h || lo == hi) {
                            memset(col, 0, ow * sizeof(REAL));
                            continue;
                        }
                        const REAL *xr = xc + r * g->sh;
                        for (i64 o = 0; o < lo; o++) col[o] = 0;
                        if (g->st_w == 1 && g->sw == 1)
                            memcpy(col + lo, xr + lo + off, (hi - lo) * sizeof(REAL));
                        else
                            for (i64 o = lo; o < hi; o++) col[o] = xr[(o * g->st_w + off) * g->sw];
                        for (i64 o = hi; o < ow; o++) col[o] = 0;
                    }
                }
        }
}

/* rows[s, ho, wo, (kh, kw, c)] (channels-last receptive fields, _conv_rows' layout): each sample is first
   transposed into buf, (h, wp, c) with the left and right zero padding of its rows, in L1-sized tiles; then
   every kernel row of a receptive field is one copy of kw * c contiguous values (dilation 1) */
static void dt_cl_rows_SUF(const REAL *restrict xs, REAL *restrict buf, const dt_geom *gp, i64 wp, i64 lpad) {
    const i64 c = gp->c, h = gp->h, sc = gp->sc, sh = gp->sh, sw = gp->sw;
    i64 wc = wp - lpad < gp->w ? wp - lpad : gp->w;
    if (wc < 0) wc = 0;
    for (i64 r = 0; r < h; r++) {
        REAL *br = buf + r * wp * c, *bi = br + lpad * c;
        memset(br, 0, lpad * c * sizeof(REAL));
        for (i64 j0 = 0; j0 < wc; j0 += 16)
            for (i64 c0 = 0; c0 < c; c0 += 16) {
                const i64 j1 = j0 + 16 < wc ? j0 + 16 : wc, c1 = c0 + 16 < c ? c0 + 16 : c;
                for (i64 j = j0; j < j1; j++)
                    for (i64 ch = c0; ch < c1; ch++) bi[j * c + ch] = xs[ch * sc + r * sh + j * sw];
            }
        memset(bi + wc * c, 0, (wp - lpad - wc) * c * sizeof(REAL));
    }
}

void dt_im2row_SUF(const REAL *restrict x, REAL *restrict rows, REAL *restrict buf, const dt_geom *gp) {
    const dt_geom G = *gp, *g = &G;
    const i64 c = g->c, wp = (g->ow - 1) * g->st_w + (g->kw - 1) * g->dil_w + 1;
    const i64 lpad = g->pad_w < wp ? g->pad_w : wp;
    for (i64 s = 0; s < g->n; s++) {
        dt_cl_rows_SUF(x + s * g->sn, buf, g, wp, lpad);
        for (i64 ho = 0; ho < g->oh; ho++)
            for (i64 wo = 0; wo < g->ow; wo++)
                for (i64 a = 0; a < g->kh; a++) {
                    const i64 r = ho * g->st_h + a * g->dil_h - g->pad_h, run = g->kw * c;
                    if (r < 0 || r >= g->h) {
                        memset(rows, 0, run * sizeof(REAL));
                    } else {
                        const REAL *src = buf + (r * wp + wo * g->st_w) * c;
                        if (g->dil_w == 1) memcpy(rows, src, run * sizeof(REAL));
                        else
                            for (i64 b = 0; b < g->kw; b++)
                                memcpy(rows + b * c, src + b * g->dil_w * c, c * sizeof(REAL));
                    }
                    rows += run;
                }
    }
}

/* y = the adjoint of dt_im2row: per sample, every row entry added onto its place in buf, (hp, wp, c) channels-last
   with the padding, one kernel position at a time as numpy's loop adds them (so the sums round alike); then buf
   without its padding transposed into y (any strides) in L1-sized tiles */
void dt_row2im_SUF(const REAL *restrict rows, REAL *restrict y, REAL *restrict buf, const dt_geom *gp, i64 hp,
                   i64 wp) {
    const dt_geom G = *gp, *g = &G;
    const i64 c = g->c, run = g->kh * g->kw * c, pixels = g->oh * g->ow;
    for (i64 s = 0; s < g->n; s++) {
        const REAL *rs = rows + s * pixels * run;
        memset(buf, 0, hp * wp * c * sizeof(REAL));
        for (i64 a = 0; a < g->kh; a++)
            for (i64 b = 0; b < g->kw; b++) {
                const REAL *src = rs + (a * g->kw + b) * c;
                for (i64 ho = 0; ho < g->oh; ho++)
                    for (i64 wo = 0; wo < g->ow; wo++) {
                        REAL *d = buf + ((ho * g->st_h + a * g->dil_h) * wp + wo * g->st_w + b * g->dil_w) * c;
                        const REAL *r = src + (ho * g->ow + wo) * run;
                        for (i64 ch = 0; ch < c; ch++) d[ch] += r[ch];
                    }
            }
        REAL *ys = y + s * g->sn;
        for (i64 r = 0; r < g->h; r++) {
            const REAL *br = buf + ((r + g->pad_h) * wp + g->pad_w) * c;
            for (i64 j0 = 0; j0 < g->w; j0 += 16)
                for (i64 c0 = 0; c0 < c; c0 += 16) {
                    const i64 j1 = j0 + 16 < g->w ? j0 + 16 : g->w, c1 = c0 + 16 < c ? c0 + 16 : c;
                    for (i64 ch = c0; ch < c1; ch++)
                        for (i64 j = j0; j < j1; j++) ys[ch * g->sc + r * g->sh + j * g->sw] = br[j * c + ch];
                }
        }
    }
}

/* out (n, hp, wp, c): x channels-last with pad_h zero rows above and pad_w zero columns left, zeros below and
   right up to hp x wp */
void dt_channels_last_SUF(const REAL *restrict x, REAL *restrict out, const dt_geom *gp, i64 hp, i64 wp) {
    const dt_geom G = *gp, *g = &G;
    const i64 row = wp * g->c, top = g->pad_h < hp ? g->pad_h : hp;
    const i64 h = hp - top < g->h ? hp - top : g->h;
    for (i64 s = 0; s < g->n; s++) {
        REAL *o = out + s * hp * row;
        memset(o, 0, top * row * sizeof(REAL));
        dt_geom gs = G;
        gs.h = h;
        dt_cl_rows_SUF(x + s * g->sn, o + top * row, &gs, wp, g->pad_w < wp ? g->pad_w : wp);
        memset(o + (top + h) * row, 0, (hp - top - h) * row * sizeof(REAL));
    }
}

/* y = 0, then every column entry added onto its input position, kernel positions in row-major order */
void dt_col2im_SUF(const REAL *restrict cols, REAL *restrict y, const dt_geom *gp) {
    const dt_geom G = *gp, *g = &G;
    for (i64 s = 0; s < g->n; s++)
        for (i64 ch = 0; ch < g->c; ch++) {
            REAL *yc = y + s * g->sn + ch * g->sc;
            for (i64 r = 0; r < g->h; r++) {
                if (g->sw == 1) memset(yc + r * g->sh, 0, g->w * sizeof(REAL));
                else for (i64 i = 0; i < g->w; i++) yc[r * g->sh + i * g->sw] = 0;
            }
            for (i64 a = 0; a < g->kh; a++)
                for (i64 b = 0; b < g->kw; b++) {
                    const REAL *col = cols + s * g->cols_n + ((ch * g->kh + a) * g->kw + b) * g->cols_row;
                    const i64 off = b * g->dil_w - g->pad_w, ow = g->ow;
                    i64 lo, hi;
                    dt_span(off, g->st_w, g->w, ow, &lo, &hi);
                    for (i64 ho = 0; ho < g->oh; ho++, col += ow) {
                        const i64 r = ho * g->st_h + a * g->dil_h - g->pad_h;
                        if (r < 0 || r >= g->h) continue;
                        REAL *yr = yc + r * g->sh;
                        if (g->st_w == 1 && g->sw == 1) {
                            REAL *yo = yr + off;
                            for (i64 o = lo; o < hi; o++) yo[o] += col[o];
                        } else {
                            for (i64 o = lo; o < hi; o++) yr[(o * g->st_w + off) * g->sw] += col[o];
                        }
                    }
                }
        }
}
"""


def _source() -> str:
    return _SOURCE + real_variants(_TYPED)


_P = ctypes.c_void_p
KERNELS = CFunctions("dtorch_conv_cols", _source, KERNEL_CFLAGS, real_signatures(
    {"dt_im2col_SUF": [_P] * 3, "dt_col2im_SUF": [_P] * 3, "dt_im2row_SUF": [_P] * 4,
     "dt_channels_last_SUF": [_P] * 3 + [ctypes.c_int64] * 2, "dt_row2im_SUF": [_P] * 4 + [ctypes.c_int64] * 2}))


def available(a, spatial_dims: int) -> bool:
    """Whether the C kernels serve array ``a`` of a convolution with ``spatial_dims`` dims (1 or 2; a CPU
    float32/float64 array; a compiler found once)."""
    return type(a) is np.ndarray and a.dtype.name in REAL_TYPES and spatial_dims <= 2 and bool(KERNELS.get())


def _params(img, kernel, stride, padding, dilation, out, cols_strides) -> np.ndarray:
    """The kernels' int64 parameters for NC(H)W ``img`` (1-D convolutions as height 1)."""
    isz = img.itemsize
    st = [s // isz for s in img.strides]
    if img.ndim == 3:  # (N, C, W): a height-1 image
        shape, st = (img.shape[0], img.shape[1], 1, img.shape[2]), [st[0], st[1], 0, st[2]]
        kernel, stride, dilation, out = ((1,) + tuple(v) for v in (kernel, stride, dilation, out))
        padding = ((0, 0),) + tuple(padding)
    else:
        shape = img.shape
    return np.array(list(shape) + st + list(kernel) + list(stride) + [padding[0][0], padding[1][0]]
                    + list(dilation) + list(out) + list(cols_strides), np.int64)


def im2col_into(x, cols, kernel, stride, padding, dilation, out, cols_strides) -> None:
    """Write the columns of ``x`` into ``cols``: entry ``(sample s, row (c, kernel...), output pixel l)`` at
    element ``s * cols_strides[0] + row * cols_strides[1] + l`` (zero where the kernel reads padding)."""
    p = _params(x, kernel, stride, padding, dilation, out, cols_strides)
    KERNELS.real("dt_im2col", x.dtype)(x.ctypes.data, cols.ctypes.data, p.ctypes.data)


def col2im_into(cols, y, kernel, stride, padding, dilation, out, cols_strides) -> None:
    """``y`` (any strides) = the sum of every column entry onto its input position (the adjoint of
    :func:`im2col_into`; entries that fall on the padding are dropped)."""
    p = _params(y, kernel, stride, padding, dilation, out, cols_strides)
    KERNELS.real("dt_col2im", y.dtype)(cols.ctypes.data, y.ctypes.data, p.ctypes.data)


def im2row(x, kernel, stride, padding, dilation, out) -> np.ndarray:
    """Contiguous channels-last rows ``(N * L, prod(kernel) * C)`` of 2-D ``x``, columns in ``(kernel..., C)``
    order (``_conv_rows.im2row``'s layout) in one pass over ``x``."""
    p = _params(x, kernel, stride, padding, dilation, out, (0, 0))
    n, c, h = x.shape[:3]
    rows = np.empty((n * math.prod(out), math.prod(kernel) * c), x.dtype)
    buf = np.empty((h, (out[1] - 1) * stride[1] + (kernel[1] - 1) * dilation[1] + 1, c), x.dtype)
    KERNELS.real("dt_im2row", x.dtype)(x.ctypes.data, rows.ctypes.data, buf.ctypes.data, p.ctypes.data)
    return rows


def channels_last(x, padding) -> np.ndarray:
    """2-D ``x`` ``(N, C, H, W)`` as a contiguous zero-padded ``(N, H + pads, W + pads, C)`` (padding: ``(lo, hi)``
    pairs)."""
    (top, bottom), (left, right) = padding
    n, c, h, w = x.shape
    out = np.empty((n, h + top + bottom, w + left + right, c), x.dtype)
    p = _params(x, (1, 1), (1, 1), padding, (1, 1), (1, 1), (0, 0))
    KERNELS.real("dt_channels_last", x.dtype)(x.ctypes.data, out.ctypes.data, p.ctypes.data, out.shape[1],
                                              out.shape[2])
    return out


def row2im_into(rows, y, kernel, stride, padding, dilation, out) -> None:
    """``y`` (2-D, any strides) = the adjoint of :func:`im2row`: every entry of the contiguous ``rows`` added onto
    its input position (entries on the padding dropped)."""
    n, c, h, w = y.shape
    hp, wp = h + padding[0][0] + padding[0][1], w + padding[1][0] + padding[1][1]
    p = _params(y, kernel, stride, padding, dilation, out, (0, 0))
    buf = np.empty((hp, wp, c), y.dtype)
    KERNELS.real("dt_row2im", y.dtype)(rows.ctypes.data, y.ctypes.data, buf.ctypes.data, p.ctypes.data, hp, wp)
