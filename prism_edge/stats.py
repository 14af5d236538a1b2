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
    # (K, D): row c is the sum of phi(x) over the client's examples of class c divided by the
    # client's count, i.e. class share * class mean embedding; K = 1 for an unconditional model
    mean: torch.Tensor
    count: int  # number of examples (the noisy count under DP)
    privacy: dict = field(default_factory=lambda: {"dp": False})
    class_probs: torch.Tensor | None = None  # (K,) the client's class shares; None when K = 1

    def to(self, device: torch.device) -> DataStats:
        """The same statistics with their tensors on ``device`` (training on a GPU)."""
        probs = None if self.class_probs is None else self.class_probs.to(device)
        return DataStats(self.mean.to(device), self.count, self.privacy, probs)

    def batch_labels(self, batch: int) -> torch.Tensor | None:
        """Labels of a generated batch, in proportion to the client's class shares (largest
        remainders; deterministic, so it draws nothing from any random stream)."""
        if self.class_probs is None:
            return None
        want = self.class_probs.double() * batch
        counts = want.floor().long()
        rest = batch - int(counts.sum())
        if rest > 0:
            counts[torch.argsort(want - counts, descending=True, stable=True)[:rest]] += 1
        return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def float_batch(images: torch.Tensor | np.ndarray, start: int, stop: int) -> torch.Tensor:
    """Images [start, stop) as float in [-1, 1]; uint8 input is converted one batch at a time,
    so a client never holds its whole partition as float (4x the bytes)."""
    part = images[start:stop]
    if isinstance(part, np.ndarray):
        return to_float(part)
    return to_float(part.numpy()) if part.dtype == torch.uint8 else part


def class_sums(fm: FeatureMap, images: torch.Tensor | np.ndarray, labels: torch.Tensor | None,
               classes: int, clip: float | None = None, batch: int = 200
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class sums of phi(x) (K, D) and per-class counts (K,); K = max(classes, 1).
    ``clip``: each example's feature vector scaled to L2 norm at most ``clip`` (for DP)."""
    k = max(classes, 1)
    total, counts = None, torch.zeros(k, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, len(images), batch):
            f = fm(float_batch(images, i, i + batch))
            if clip is not None:
                f = f * torch.clamp(clip / f.norm(dim=1, keepdim=True).clamp_min(1e-12), max=1.0)
            y = (torch.as_tensor(labels[i:i + batch]).long() if k > 1
                 else torch.zeros(len(f), dtype=torch.long))
            if total is None:
                total = torch.zeros(k, f.shape[1])
            total.index_add_(0, y, f)
            counts += torch.bincount(y, minlength=k).double()
    return total, counts


def compute_stats(fm: FeatureMap, images: torch.Tensor | np.ndarray,
                  labels: torch.Tensor | None = None, classes: int = 0) -> DataStats:
    """Mean embedding of ``images`` (float in [-1, 1], or uint8 pixels), per class when
    ``classes`` > 0 (then ``labels`` are needed)."""
    total, counts = class_sums(fm, images, labels, classes)
    probs = (counts / counts.sum()).float() if classes else None
    return DataStats(total / len(images), len(images), class_probs=probs)


def mmd_loss(feats: torch.Tensor, stats: DataStats, estimator: str = "unbiased",
             labels: torch.Tensor | None = None, mean_scale: float = 1.0,
             class_guidance: float = 0.0, center: torch.Tensor | None = None) -> torch.Tensor:
    """MMD^2 between a generated batch (features ``feats``, classes ``labels``) and the data,
    for the kernel k(x, x') [y == y'] (DP-MERF's class-conditional embedding; with one class
    the plain kernel): sum over classes c of pi_c^2 ||m_c - mu_c||^2, where pi_c is the
    client's class share, m_c and mu_c the generated and the data's class mean embeddings.

    ``unbiased`` estimates ||m_c||^2 from the pairs i != j within class c; the ``biased``
    ||mean phi - mu||^2 (DP-MERF's loss) adds Var/n_c, which rewards low diversity. Each class
    is estimated from its own n_c images: the batch's labels are fixed shares (not drawn), so
    one U-statistic over the whole batch would weight the classes' self-similarity by
    n_c(n_c - 1) / (b(b - 1)) instead of pi_c^2 and put the optimum at pi_c (b - 1) / (n_c - 1)
    times the data's class means (1.55x for a class with 3 of 32 images, ten equal classes). A
    class with one image in the batch falls back to the biased term.

    ``mean_scale`` gamma matches m_c to gamma mu_c instead (gamma = 1: the MMD itself).
    ``class_guidance`` G moves each target further from the client's overall mean mu (as
    classifier-free guidance does): gamma mu_c + G (mu_c - mu), or from ``center`` (D,) in
    place of mu when given. Both only post-process the fixed statistics, so a privatised
    ``stats`` stays private.
    """
    if estimator not in MMD_ESTIMATORS:
        raise ValueError(f"unknown MMD estimator {estimator!r}; choose {MMD_ESTIMATORS}")
    k = stats.mean.shape[0]
    if labels is None:
        labels = torch.zeros(feats.shape[0], dtype=torch.long, device=feats.device)
    if k == 1 or stats.class_probs is None:
        probs = feats.new_ones(1)
    else:
        probs = stats.class_probs.to(feats.dtype)
    n = torch.bincount(labels, minlength=k).to(feats.dtype)
    s = feats.new_zeros(stats.mean.shape).index_add(0, labels, feats)
    sq = (s * s).sum(1)
    if estimator == "unbiased":
        diag = feats.new_zeros(k).index_add(0, labels, (feats * feats).sum(1))
        pairs = n * (n - 1)
        self_sim = torch.where(pairs > 0, (sq - diag) / pairs.clamp_min(1), sq / n.clamp_min(1) ** 2)
    else:
        self_sim = sq / n.clamp_min(1) ** 2
    # a class without images in the batch has s_c = 0: only its constant term remains
    target = stats.mean * mean_scale
    if class_guidance:
        # rows are pi_c mu_c, so the row of the guided target is pi_c (mu_c - mu) G on top
        overall = (stats.mean.sum(0, keepdim=True) if center is None
                   else center.reshape(1, -1).to(stats.mean.dtype))
        target = target + class_guidance * (stats.mean - probs.to(stats.mean.dtype)[:, None] * overall)
    cross = 2.0 * ((probs / n.clamp_min(1)).unsqueeze(1) * s * target).sum()
    return (probs * probs * self_sim).sum() - cross + (target * target).sum()
