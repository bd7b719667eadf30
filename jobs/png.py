"""A minimal PNG writer (zlib + struct, no plotting library) and a loss-curve plot drawn with it."""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np


def encode(rgb: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 image (8-bit truecolour, no filtering)."""
    h, w, _ = rgb.shape
    raw = np.zeros((h, 1 + 3 * w), np.uint8)       # each row: filter type 0, then the pixels
    raw[:, 1:] = rgb.reshape(h, 3 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
            + chunk(b"IEND", b""))


def _line(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color: tuple[int, int, int]) -> None:
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.rint(np.linspace(x0, x1, n)).astype(int)
    ys = np.rint(np.linspace(y0, y1, n)).astype(int)
    for dy in (0, 1):  # two pixels thick
        img[np.clip(ys + dy, 0, img.shape[0] - 1), np.clip(xs, 0, img.shape[1] - 1)] = color


def loss_curve(steps: list[int], losses: list[float], path: str | Path, width: int = 640, height: int = 360) -> None:
    """Write the loss against the step as a PNG: white background, grey frame and grid, blue curve.

    The y axis is logarithmic when the loss spans more than a factor of 10 (the grid lines then
    mark powers of ten), linear otherwise (five grid lines). No text: the numbers are in metrics.jsonl.
    """
    img = np.full((height, width, 3), 255, np.uint8)
    margin = 20
    left, right, top, bottom = margin, width - margin, margin, height - margin
    grey, blue = (200, 200, 200), (31, 119, 180)
    ys = [v for v in losses if math.isfinite(v)]
    if len(ys) >= 2 and len(steps) == len(losses):
        lo, hi = min(ys), max(ys)
        log = lo > 0 and hi / lo > 10
        f = (lambda v: math.log10(v)) if log else (lambda v: v)
        flo, fhi = f(lo), f(hi) if hi > lo else f(lo) + 1
        grid = range(math.ceil(flo), math.floor(fhi) + 1) if log else np.linspace(flo, fhi, 5)
        to_y = lambda v: bottom - (f(v) - flo) / (fhi - flo) * (bottom - top)
        for g in grid:
            y = bottom - (g - flo) / (fhi - flo) * (bottom - top)
            img[int(round(y)), left:right] = grey
        s0, s1 = steps[0], max(steps[-1], steps[0] + 1)
        to_x = lambda s: left + (s - s0) / (s1 - s0) * (right - left)
        points = [(to_x(s), to_y(v)) for s, v in zip(steps, losses) if math.isfinite(v)]
        for (xa, ya), (xb, yb) in zip(points[:-1], points[1:]):
            _line(img, xa, ya, xb, yb, blue)
    img[top:bottom + 1, [left, right]] = (120, 120, 120)
    img[[top, bottom], left:right + 1] = (120, 120, 120)
    Path(path).write_bytes(encode(img))
