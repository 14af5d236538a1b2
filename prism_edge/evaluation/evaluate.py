"""Scoring a generator against the test split, with the real-data floor beside every number."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import write_text_atomic
from ..data import Dataset
from ..latent import latents
from . import metrics
from .classifier import embed, get_classifier

Sampler = Callable[[np.ndarray], np.ndarray]  # latent (n, nz) float32 -> images (n, C, H, W)


def floor_subset(n_train: int, n: int, seed: int = 0) -> np.ndarray:
    """Indices of the ``n`` training images whose FID against the test set is the floor."""
    return np.random.default_rng(seed).permutation(n_train)[:n]


@dataclass
class Reference:
    """Classifier and real-data features, computed once per (train, test) pair."""

    train: Dataset
    test: Dataset
    n: int

    def __post_init__(self):
        self.model = get_classifier(self.train)
        self.test_feats, self.test_probs = embed(self.model, self.test.images[: self.n])
        perm = floor_subset(len(self.train), self.n)
        self.train_feats, self.train_probs = embed(self.model, self.train.images[perm])
        self.n_classes = int(self.train.labels.max()) + 1 if self.train.labels is not None else 0
        self.floor = metrics.fid(self.train_feats, self.test_feats)

    def score(self, images: np.ndarray, with_prdc: bool = True) -> dict:
        feats, probs = embed(self.model, images)
        out = {"n": int(len(images)), "fid": metrics.fid(feats, self.test_feats),
               "fid_floor": self.floor}
        out["floor_ratio"] = out["fid"] / self.floor
        if with_prdc:
            out.update(metrics.prdc(self.test_feats, feats))
        if self.n_classes and probs is not None:
            out.update(metrics.class_stats(probs, self.n_classes))
        return out


def sample(sampler: Sampler, nz: int, n: int, seed: int = 0, batch: int = 500,
           progress: bool = True) -> np.ndarray:
    """Draw ``n`` images with latents z ~ N(0, I) from a seeded numpy generator."""
    return run_latents(sampler, latents(n, nz, seed), batch, progress)


def run_latents(sampler: Sampler, z: np.ndarray, batch: int = 500, progress: bool = False
                ) -> np.ndarray:
    """Images for the given latents, ``batch`` at a time (bounded memory)."""
    out = []
    for i in tqdm(range(0, len(z), batch), desc="sampling", unit="batch", disable=not progress):
        out.append(np.asarray(sampler(z[i:i + batch]), np.float32))
    return np.concatenate(out)


def write_report(result: dict, path: str | Path) -> None:
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")


def format_table(r: dict) -> str:
    rows = [("FID-LeNet", f"{r['fid']:.2f}"), ("real-data floor", f"{r['fid_floor']:.2f}"),
            ("ratio to floor", f"{r['floor_ratio']:.2f}x")]
    for key in ("precision", "recall", "density", "coverage"):
        if key in r:
            rows.append((key, f"{r[key]:.3f}"))
    if "class_histogram" in r:
        rows += [("confident (>=0.9)", f"{r['confident_fraction']:.1%}"),
                 ("classes covered", str(r["classes_covered"])),
                 ("class shares", " ".join(f"{h:.2f}" for h in r["class_histogram"]))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
