import subprocess
import sys

import numpy as np
import pytest
import torch

from prism_edge.data import load_dataset
from prism_edge.encoder import accuracy, random_shift, save_encoder, train_encoder
from prism_edge.errors import PrismError
from prism_edge.features import make_feature_map


def test_public_encoder_learns_and_becomes_a_frozen_feature_map(data_root, tmp_path):
    train = load_dataset("fashion-mnist", "train", data_root)
    test = load_dataset("fashion-mnist", "test", data_root)
    x, y = train.images[:3000], train.labels[:3000]
    model = train_encoder(x, y, 10, epochs=1, progress=False)
    # 24 steps on 3,000 images: far above chance (10%) if the classifier learns at all
    assert accuracy(model, test.images[:1000], test.labels[:1000]) > 0.5
    path = tmp_path / "enc.pt"
    save_encoder(model, path)
    fm = make_feature_map(f"encoder:{path}", (1, 28, 28))
    imgs = test.images[:8].clone().requires_grad_()
    feats = fm(imgs)
    with torch.no_grad():
        assert torch.allclose(feats, model(test.images[:8]), atol=1e-6)
    assert feats.shape == (8, 32 * 16 + 64 * 9 + 128 * 9)
    feats.sum().backward()
    assert imgs.grad.abs().sum() > 0  # the generator is trained through it
    assert not any(p.requires_grad for p in fm.parameters())  # the encoder itself stays fixed
    with pytest.raises(PrismError, match="does not accept 3x28x28"):
        make_feature_map(f"encoder:{path}", (3, 28, 28))


def test_save_encoder_refuses_code_that_changed_on_disk_while_it_trained(tmp_path, monkeypatch):
    # what an upgrade during training does: TorchScript compiles the file as it is at save time,
    # so the method at forward's old line (here one returning a tuple) would become forward
    import importlib
    import linecache

    head = "import torch\nfrom prism_edge.encoder import PublicEncoder\n\n\nclass Enc(PublicEncoder):\n"
    forward = ("    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
               "        return self.c1(x).flatten(1)\n")
    other = ("    def other(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:\n"
             "        return x, x\n\n")
    src = tmp_path / "enc_on_disk.py"
    src.write_text(head + forward)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = importlib.import_module("enc_on_disk").Enc()
    # (not saved once before the change: TorchScript caches what it compiled per class)
    src.write_text(head + other + forward)
    linecache.checkcache(str(src))
    with pytest.raises(PrismError, match="source changed on disk"):
        save_encoder(model, tmp_path / "enc.pt")
    assert not (tmp_path / "enc.pt").exists() and list(tmp_path.glob(".enc.pt*")) == []


def test_random_shift_moves_each_image_within_the_limit_onto_black():
    x = torch.rand(400, 1, 5, 6)
    gen = torch.Generator().manual_seed(3)
    assert random_shift(x, 0, gen) is x
    out = random_shift(x, 2, gen)
    assert out.shape == x.shape
    seen = set()
    for img, src in zip(out[:, 0], x[:, 0]):
        # find the offset by brute force: the image equals the source moved by (dy, dx), with -1
        # where the move uncovered pixels
        match = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                want = torch.full((5, 6), -1.0)
                want[max(dy, 0):5 + min(dy, 0), max(dx, 0):6 + min(dx, 0)] = \
                    src[max(-dy, 0):5 - max(dy, 0), max(-dx, 0):6 - max(dx, 0)]
                match += [(dy, dx)] if torch.equal(img, want) else []
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) == 25  # every offset in [-2, 2]^2 occurs among 400 images
    a = random_shift(x, 2, torch.Generator().manual_seed(5))
    assert torch.equal(a, random_shift(x, 2, torch.Generator().manual_seed(5)))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "prism_edge.cli", *args], capture_output=True,
                          text=True, timeout=600)


def _folder(root, classes):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(12):
            # class a: bright left half, class b: bright right half
            a = rng.integers(0, 60, (16, 16), dtype=np.uint8)
            a[:, :8] += 180 if c == "a" else 0
            a[:, 8:] += 180 if c != "a" else 0
            Image.fromarray(a).save(root / c / f"{i}.png")


def test_train_encoder_cli_defaults_to_the_library_epochs_and_shift():
    from prism_edge.cli import main
    from prism_edge.encoder import DEFAULT_EPOCHS, DEFAULT_SHIFT

    params = {p.name: p.default for p in main.commands["train-encoder"].params}
    assert params["epochs"] == DEFAULT_EPOCHS == 10
    assert params["shift"] == DEFAULT_SHIFT == 2


def test_train_encoder_cli(tmp_path):
    _folder(tmp_path / "data", ["a", "b"])
    out = tmp_path / "enc.pt"
    r = _cli("train-encoder", "--dataset", str(tmp_path / "data"), "--size", "16", "--epochs",
             "3", "--feature-grid", "8,2", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and out.is_file()
    feats = make_feature_map(f"encoder:{out}", (1, 16, 16))(torch.zeros(2, 1, 16, 16))
    # stages of 8x8, 4x4 and 2x2: 32 x 8^2 + 64 x 2^2 + 128 x 2^2
    assert feats.shape == (2, 32 * 64 + 64 * 4 + 128 * 4)


def test_train_encoder_cli_refuses_a_shift_too_large_for_the_images(tmp_path):
    _folder(tmp_path / "data", ["a", "b"])
    out = tmp_path / "enc.pt"
    r = _cli("train-encoder", "--dataset", str(tmp_path / "data"), "--size", "16", "--shift", "5",
             "-o", str(out))
    assert r.returncode == 2 and "shift 5 does not suit 16x16" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


@pytest.mark.parametrize("grid, msg", [("9,2", "does not fit 16x16"), ("7", "two whole numbers"),
                                       ("0,2", "does not fit 16x16")])
def test_train_encoder_cli_refuses_a_bad_feature_grid(tmp_path, grid, msg):
    out = tmp_path / "enc.pt"
    r = _cli("train-encoder", "--dataset", str(tmp_path / "missing"), "--size", "16",
             "--feature-grid", grid, "-o", str(out))
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_train_encoder_cli_refuses_unlabelled_data(tmp_path):
    _folder(tmp_path / "data", ["a"])
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in (tmp_path / "data" / "a").iterdir():
        f.rename(flat / f.name)
    out = tmp_path / "enc.pt"
    r = _cli("train-encoder", "--dataset", str(flat), "--size", "16", "-o", str(out))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no labels" in r.stderr
    assert not out.exists() and list(tmp_path.glob(".enc.pt*")) == []
