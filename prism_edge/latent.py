"""Latent draws for sampling, numpy only (the device path imports this without torch)."""

from __future__ import annotations

import numpy as np

from .errors import PrismError


def latents(n: int, nz: int, seed: int, classes: int = 0, label: int | None = None
            ) -> np.ndarray:
    """``n`` latents z ~ N(0, I) from numpy's PCG64 seeded by ``seed``. With ``label`` (a
    class-conditional model with ``classes`` classes) the first ``classes`` coordinates are set
    to the one-hot of ``label``, so the generator's argmax reads that label."""
    z = np.random.default_rng(seed).standard_normal((n, nz)).astype(np.float32)
    if label is not None:
        _need_classes(classes, "--label")
        if not 0 <= label < classes:
            raise PrismError(f"--label {label} is not a class of this model; use 0..{classes - 1}")
        _set_labels(z, np.full(n, label), classes)
    return z


def by_class_latents(per_class: int, nz: int, seed: int, classes: int) -> np.ndarray:
    """``per_class`` latents of class 0, then of class 1, ... (a grid row per class)."""
    _need_classes(classes, "--by-class")
    z = latents(per_class * classes, nz, seed)
    _set_labels(z, np.repeat(np.arange(classes), per_class), classes)
    return z


def _need_classes(classes: int, option: str) -> None:
    if not classes:
        raise PrismError(f"{option} needs a class-conditional model; this one has no classes")


def _set_labels(z: np.ndarray, labels: np.ndarray, classes: int) -> None:
    z[:, :classes] = 0.0
    z[np.arange(len(z)), labels] = 1.0
