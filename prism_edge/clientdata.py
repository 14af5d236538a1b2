"""A client's data and its fixed statistics, the same for the simulation and Flower clients."""

from __future__ import annotations

import numpy as np
import torch

from .architectures import Generator, build_generator
from .client import derive_seed
from .config import RunConfig
from .data import Dataset, dataset_classes, load_dataset
from .errors import PrismError
from .features import FeatureMap, make_feature_map
from .partition import partition
from .stats import DataStats, compute_stats


def run_classes(cfg: RunConfig) -> int:
    """Classes of the run's generator: the dataset's labels when conditional (0: unconditional)."""
    k = dataset_classes(cfg.dataset) if cfg.conditional else 0
    return k if k >= 2 else 0


def run_generator(cfg: RunConfig) -> Generator:
    """The run's generator, its frozen weights filled from the seed; the simulation, both Flower
    apps and the device build it here so they agree on its classes."""
    k = run_classes(cfg)
    if cfg.client.class_guidance and not k:
        raise PrismError(f"class guidance needs classes, and this run has none ({cfg.dataset}, "
                         f"{'conditional' if cfg.conditional else 'unconditional'}): drop "
                         "--class-guidance or train a class-conditional model on labelled data")
    return build_generator(cfg.arch, cfg.seed, {"classes": k} if k else None)


def load_train(cfg: RunConfig, gen: Generator) -> Dataset:
    c, size, _ = gen.out_shape
    data = load_dataset(cfg.dataset, "train", cfg.data_dir, size=size, channels=c)
    if tuple(data.shape) != tuple(gen.out_shape):
        raise PrismError(f"dataset images are {data.shape} but {cfg.arch} makes {gen.out_shape}; "
                         "choose an architecture of the data's size")
    return data


def client_indices(cfg: RunConfig, data: Dataset) -> list[np.ndarray]:
    labels = data.labels.numpy() if data.labels is not None else None
    return partition(labels, len(data), cfg.clients, cfg.split, cfg.seed)


def feature_map(cfg: RunConfig, gen: Generator) -> FeatureMap:
    return make_feature_map(cfg.client.features, gen.out_shape, cfg.client.feature_seed,
                            cfg.client.n_features)


def client_stats(cfg: RunConfig, fm: FeatureMap, images: torch.Tensor | np.ndarray, cid: int,
                 labels: torch.Tensor | None = None, classes: int = 0) -> DataStats:
    """Computed once per client (per class when ``classes``); under DP the one private release."""
    if classes and labels is None:
        raise PrismError("a class-conditional run needs labelled data; pass --unconditional")
    if cfg.dp_epsilon is None:
        return compute_stats(fm, images, labels, classes)
    from .privacy import check_dp_options, private_stats

    check_dp_options(cfg.client.features, cfg.dp_delta, len(images))
    return private_stats(fm, images, cfg.dp_epsilon, cfg.dp_delta, cfg.dp_clip,
                         derive_seed(cfg.seed, 1_000_003, cid), labels, classes)


def privacy_label(cfg: RunConfig, stats: list[DataStats] | None = None) -> str:
    if cfg.dp_epsilon is None:
        return "no differential privacy"
    eps = max((s.privacy.get("epsilon", cfg.dp_epsilon) for s in stats or []),
              default=cfg.dp_epsilon)
    return f"({eps:.3g}, {cfg.dp_delta:g})-DP for one example of a client's data"


def one_client_stats(cfg: RunConfig, gen: Generator, fm: FeatureMap, cid: int) -> DataStats:
    """A device's path: load the training set, keep only client ``cid``'s partition (the rest is
    freed before any float conversion), compute its statistics."""
    data = load_train(cfg, gen)
    idx = client_indices(cfg, data)[cid]
    part = data.raw[idx]  # uint8, converted batch by batch
    labels = data.labels[idx] if data.labels is not None else None
    del data
    return client_stats(cfg, fm, part, cid, labels, gen.config.classes)
