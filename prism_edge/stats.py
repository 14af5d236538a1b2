"""Fixed statistics of a client's data, computed once, and the MMD loss against them.

With an explicit feature map phi, MMD^2 between generated images and the client's data is a
function of the data's mean embedding mu = mean_i phi(x_i) alone. Computing mu once is what lets
the privacy layer privatise it once (every later step is post-processing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .data import to_float
from .features import FeatureMap

MMD_ESTIMATORS = ("unbiased", "biased")


@dataclass
class DataStats:
    mean: torch.Tensor  # (D,) mean embedding of the client's data
    count: int  # number of examples (the noisy count under DP)
    privacy: dict = field(default_factory=lambda: {"dp": False})


def float_batch(images: torch.Tensor | np.ndarray, start: int, stop: int) -> torch.Tensor:
    """Images [start, stop) as float in [-1, 1]; uint8 input is converted one batch at a time,
    so a client never holds its whole partition as float (4x the bytes)."""
    part = images[start:stop]
    if isinstance(part, np.ndarray):
        return to_float(part)
    return to_float(part.numpy()) if part.dtype == torch.uint8 else part


@torch.no_grad()
def compute_stats(fm: FeatureMap, images: torch.Tensor | np.ndarray, batch: int = 200
                  ) -> DataStats:
    """Mean embedding of ``images`` (float in [-1, 1], or uint8 pixels)."""
    total = None
    for i in range(0, len(images), batch):
        s = fm(float_batch(images, i, i + batch)).sum(0)
        total = s if total is None else total + s
    return DataStats(total / len(images), len(images))


def mmd_loss(feats: torch.Tensor, stats: DataStats, estimator: str = "unbiased") -> torch.Tensor:
    """MMD^2 between a generated batch (features ``feats``) and the data's mean embedding.

    ``unbiased`` drops the i == j terms of the batch's self-similarity; the ``biased``
    ||mean phi - mu||^2 (DP-MERF's loss) adds Var/B, which rewards low diversity.
    """
    b = feats.shape[0]
    s = feats.sum(0)
    cross = 2.0 * (s / b) @ stats.mean
    if estimator == "unbiased":
        self_sim = (s @ s - (feats * feats).sum()) / (b * (b - 1))
    elif estimator == "biased":
        self_sim = (s @ s) / (b * b)
    else:
        raise ValueError(f"unknown MMD estimator {estimator!r}; choose {MMD_ESTIMATORS}")
    return self_sim - cross + stats.mean @ stats.mean
