"""Shared fixtures: the real MNIST / Fashion-MNIST files from ../shared/data (or PRISM_EDGE_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("PRISM_EDGE_DATA")
    return (Path(env) if env else (REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = data_dir()
    if not (root / "mnist").is_dir() and not (root / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"real data not found at {root}; set PRISM_EDGE_DATA to the shared data folder")
    return root


@pytest.fixture(scope="session")
def mnist_train(data_root):
    from prism_edge.data import load_dataset

    return load_dataset("mnist", "train", data_root)


@pytest.fixture(scope="session")
def mnist_test(data_root):
    from prism_edge.data import load_dataset

    return load_dataset("mnist", "test", data_root)
