"""FID on classifier features, precision/recall/density/coverage (k=5), class balance."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

CONFIDENT = 0.9
COVERED_SHARE = 0.01


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (scipy's sqrtm)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        # ReLU features have dead units, so covariances are singular; sqrtm handles that.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall, density, coverage (Naeem et al. 2020) via the ``prdc`` package."""
    from prdc import compute_prdc

    out = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    return {key: float(v) for key, v in out.items()}


def class_stats(probs: np.ndarray, n_classes: int) -> dict:
    """Histogram of predicted classes, share of confident samples, classes covered."""
    pred = probs.argmax(1)
    hist = np.bincount(pred, minlength=n_classes) / len(pred)
    return {
        "class_histogram": [round(float(h), 4) for h in hist],
        "confident_fraction": float((probs.max(1) >= CONFIDENT).mean()),
        "classes_covered": int((hist >= COVERED_SHARE).sum()),
        "min_class_share": float(hist.min()),
        "max_class_share": float(hist.max()),
    }
