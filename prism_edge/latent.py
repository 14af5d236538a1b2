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
        if not classes:
            raise PrismError("--label needs a class-conditional model; this one has no classes")
        if not 0 <= label < classes:
            raise PrismError(f"--label {label} is not a class of this model; use 0..{classes - 1}")
        z[:, :classes] = 0.0
        z[:, label] = 1.0
    return z
