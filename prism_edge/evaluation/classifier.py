"""The feature classifier: a LeNet-style CNN trained deterministically on the train split.

Cached under ``<cache>/classifiers/`` keyed by the data files' content and ``CODE_VERSION``, so it
is trained once per dataset and reused.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..atomic import atomic_path
from ..data import Dataset, cache_dir

CODE_VERSION = "lenet-v1"
FEATURE_DIM = 128


class LeNet(nn.Module):
    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * 7 * 7, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, n_classes)
        self.drop = nn.Dropout(0.3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (after ReLU), used for FID and PRDC."""
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False) \
            if x.shape[-1] != 28 else x
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.features(x)))


class RandomEmbedder(nn.Module):
    """Features for an unlabeled dataset: a seeded random conv network (no classes)."""

    n_classes = 0

    def __init__(self, channels: int):
        super().__init__()
        from ..features import RandConv

        self.net = RandConv(channels, seed=12345)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _key(ds: Dataset) -> str:
    return hashlib.sha256(f"{ds.fingerprint()}|{CODE_VERSION}".encode()).hexdigest()[:16]


def train_classifier(ds: Dataset, epochs: int = 3, batch: int = 128, seed: int = 0,
                     progress: bool = True) -> LeNet:
    """Deterministic training: fixed seed, fixed example order, one-cycle Adam, no augmentation."""
    if ds.labels is None:
        raise ValueError("an unlabeled dataset has no classifier")
    torch.manual_seed(seed)
    n_classes = int(ds.labels.max()) + 1
    model = LeNet(ds.images.shape[1], n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * (len(ds) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    rng = np.random.default_rng(seed)
    bar = tqdm(total=steps, desc="training LeNet feature classifier", disable=not progress,
               unit="step")
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(ds))
        for i in range(len(ds) // batch):
            idx = torch.from_numpy(order[i * batch:(i + 1) * batch])
            x, y = ds.images[idx], ds.labels[idx]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    return model


def get_classifier(ds: Dataset, progress: bool = True) -> nn.Module:
    """Load the cached classifier for this training set, or train and cache it. An unlabeled
    set gets the seeded random feature network instead (no class metrics)."""
    if ds.labels is None:
        return RandomEmbedder(ds.shape[0]).eval()
    path = cache_dir() / "classifiers" / f"{ds.name.replace('/', '_')}-{_key(ds)}.pt"
    n_classes = int(ds.labels.max()) + 1 if ds.labels is not None else 0
    if path.is_file():
        model = LeNet(ds.images.shape[1], n_classes)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.eval()
        return model
    model = train_classifier(ds, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return model


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor | np.ndarray, batch: int = 1000
          ) -> tuple[np.ndarray, np.ndarray | None]:
    """(features, class probabilities or None) for images in [-1, 1]."""
    x = torch.as_tensor(np.asarray(images, np.float32)) if not torch.is_tensor(images) else images
    feats, probs = [], []
    for i in range(0, len(x), batch):
        f = model.features(x[i:i + batch].float())
        feats.append(f.numpy())
        if isinstance(model, LeNet):
            probs.append(F.softmax(model.fc2(f), dim=1).numpy())
    return np.concatenate(feats).astype(np.float64), np.concatenate(probs) if probs else None


def accuracy(model: LeNet, ds: Dataset) -> float:
    _, probs = embed(model, ds.images)
    return float((probs.argmax(1) == ds.labels.numpy()).mean())
