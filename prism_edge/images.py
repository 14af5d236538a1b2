"""Image grids as PNG and .npy output for generated samples (numpy only: devices use it)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .png import encode_png


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) floats in [-1, 1] -> uint8 in 0..255."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, C, H, W) images (float in [-1, 1] or uint8) into one (H', W', C) uint8 array."""
    imgs = images if images.dtype == np.uint8 else to_uint8(images)
    n, c, h, w = imgs.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        out[pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + col * (w + pad):pad + col * (w + pad) + w] = imgs[i].transpose(1, 2, 0)
    return out


def save_grid(images: np.ndarray, path: str | Path, nrow: int | None = None, scale: int = 2) -> None:
    """Write a PNG grid atomically, upscaled ``scale`` times (nearest) so digits are visible."""
    g = grid(images, nrow)
    if scale > 1:
        g = g.repeat(scale, axis=0).repeat(scale, axis=1)
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_png(g))


def save_samples(images: np.ndarray, path: str | Path, nrow: int | None = None) -> None:
    """``.npy`` saves the raw array; anything else is a PNG grid (``nrow`` images a row)."""
    if str(path).endswith(".npy"):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, images)
    else:
        save_grid(images, path, nrow)
