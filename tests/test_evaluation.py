"""Sanity tests that can fail: the metrics must separate real, degraded and collapsed sets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from prism_edge.evaluation.classifier import accuracy, get_classifier
from prism_edge.evaluation.evaluate import Reference
from prism_edge.evaluation.metrics import class_stats, fid

N = 2000


@pytest.fixture(scope="module")
def ref(mnist_train, mnist_test):
    return Reference(mnist_train, mnist_test, N)


def test_classifier_accuracy_mnist(mnist_train, mnist_test):
    assert accuracy(get_classifier(mnist_train), mnist_test) >= 0.99


def test_classifier_accuracy_fashion(data_root):
    from prism_edge.data import load_dataset

    tr, te = load_dataset("fashion-mnist", "train", data_root), load_dataset("fashion-mnist", "test",
                                                                             data_root)
    assert accuracy(get_classifier(tr), te) >= 0.90


def real_slice(ds, start, n=N):
    return ds.images[start:start + n]


def test_real_data_is_near_the_floor(ref, mnist_train):
    r = ref.score(real_slice(mnist_train, 30000).numpy())
    assert r["fid"] < 1.5 * ref.floor
    assert r["coverage"] > 0.9 and r["precision"] > 0.6 and r["recall"] > 0.6
    assert r["classes_covered"] == 10 and r["confident_fraction"] > 0.95


def test_noise_is_far_and_uncovered(ref):
    noise = np.random.default_rng(0).uniform(-1, 1, (N, 1, 28, 28)).astype(np.float32)
    r = ref.score(noise)
    assert r["fid"] > 20 * ref.floor
    assert r["coverage"] < 0.05


def test_one_class_collapses_recall_and_coverage(ref, mnist_train):
    labels = mnist_train.labels.numpy()
    ones = mnist_train.images[torch.from_numpy(np.flatnonzero(labels == 1)[:N])].numpy()
    balanced = ref.score(real_slice(mnist_train, 40000).numpy())
    single = ref.score(ones)
    assert single["recall"] < 0.5 * balanced["recall"]
    assert single["coverage"] < 0.5 * balanced["coverage"]
    assert single["class_histogram"][1] > 0.95 and single["classes_covered"] <= 2


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = 3
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = (k / k.sum())
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))


def test_fid_rises_monotonically_with_blur_and_noise(ref, mnist_train):
    x = real_slice(mnist_train, 50000)
    blurred = [ref.score(blur(x, s).numpy(), with_prdc=False)["fid"] for s in (0.5, 1.0, 1.5, 2.0)]
    assert all(a < b for a, b in zip(blurred, blurred[1:])), blurred
    g = torch.Generator().manual_seed(0)
    noisy = [ref.score((x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1).numpy(),
                       with_prdc=False)["fid"] for s in (0.1, 0.3, 0.6, 1.0)]
    assert all(a < b for a, b in zip(noisy, noisy[1:])), noisy


def test_fid_of_identical_sets_is_zero_and_class_stats():
    a = np.random.default_rng(0).standard_normal((500, 8))
    assert abs(fid(a, a)) < 1e-6
    probs = np.eye(10)[[0] * 50 + [3] * 50] * 0.95 + 0.005
    s = class_stats(probs, 10)
    assert s["classes_covered"] == 2 and s["class_histogram"][3] == 0.5
    assert s["confident_fraction"] == 1.0


def test_evaluate_cli_on_an_unlabeled_image_folder(tmp_path):
    """Any image folder works: without labels the class metrics are skipped, FID still reads."""
    import subprocess
    import sys

    from PIL import Image

    from prism_edge.architectures import build_generator
    from prism_edge.bitsfile import write_bits
    from prism_edge.masked import layer_sizes

    rng = np.random.default_rng(0)
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(120):
        a = (rng.random((40, 40, 3)) * 60 + np.linspace(0, 190, 40)[None, :, None]).astype(np.uint8)
        Image.fromarray(a).save(folder / f"{i:03d}.png")
    gen = build_generator("cifar-small", 1)
    mask = (rng.random(gen.num_masked) < 0.5).astype(np.uint8)
    write_bits(tmp_path / "m.bits", mask, gen.describe(), layer_sizes(gen), 1)
    r = subprocess.run([sys.executable, "-m", "prism_edge.cli", "evaluate", str(tmp_path / "m.bits"),
                        "--seed", "1", "--dataset", str(folder), "-n", "100"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "FID-LeNet" in r.stdout and "classes covered" not in r.stdout
    assert (tmp_path / "m.bits.eval.png").is_file()
