"""A feature encoder trained on a *public* dataset, for ``--features encoder:PATH``.

The paper matches features of an ImageNet-trained VGG; nothing can be downloaded here, so this
trains a small conv classifier on a public dataset that is not the clients' (Fashion-MNIST for
MNIST clients, and the other way round) and saves its feature extractor as TorchScript. Client data
never touches it; but a run cannot check what data an encoder file saw, so ``--dp-epsilon`` refuses
encoder features (privacy.check_dp_options). The features are the activations of its three conv
stages, average-pooled to small grids: shape and stroke statistics at three scales. The grids of
the first two stages are options (``--feature-grid``): finer grids keep more of where strokes lie.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_path

DEFAULT_GRID = (4, 3)
# 10 passes, not 2: for MNIST clients a Fashion-MNIST encoder trained 10 epochs took the
# federated mask's FID-LeNet from 52.0 to 31.5 (bench/results/quality.md)
DEFAULT_EPOCHS = 10
# training images moved by up to 2 pixels: the federated mask's FID-LeNet 31.5 -> 25.7 (one
# client: 32.3 -> 26.3), though test accuracy falls from 91.7% to 90.9%
DEFAULT_SHIFT = 2


class PublicEncoder(nn.Module):
    """Three conv stages (32 / 64 / 128 channels, each halving the image) and a linear head.

    ``grid``: sides of the pooling grids of the first two stages' feature maps; only the
    features depend on it, not the training (the head reads the third stage)."""

    def __init__(self, channels: int = 1, size: int = 28, classes: int = 10,
                 grid: tuple[int, int] = DEFAULT_GRID):
        super().__init__()
        self.grid1, self.grid2 = grid
        self.c1 = nn.Conv2d(channels, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.c3 = nn.Conv2d(64, 128, 3, padding=1)
        self.last = max(1, size // 8)
        self.head = nn.Linear(128 * self.last * self.last, classes)

    def stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a1 = F.max_pool2d(F.relu(self.c1(x)), 2)
        a2 = F.max_pool2d(F.relu(self.c2(a1)), 2)
        a3 = F.max_pool2d(F.relu(self.c3(a2)), 2)
        return a1, a2, a3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> features (B, 32*grid1^2 + 64*grid2^2 + 128*last^2)."""
        a1, a2, a3 = self.stages(x)
        return torch.cat([F.adaptive_avg_pool2d(a1, self.grid1).flatten(1),
                          F.adaptive_avg_pool2d(a2, self.grid2).flatten(1),
                          F.adaptive_avg_pool2d(a3, self.last).flatten(1)], 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(self.stages(x)[2], self.last).flatten(1))


def stage_dims(enc: nn.Module) -> list[int] | None:
    """Feature counts of a PublicEncoder's three stages, in the order its features concatenate
    them, read from the module (its TorchScript file keeps these attributes); None for an
    encoder of another layout."""
    try:
        return [enc.c1.out_channels * enc.grid1 ** 2, enc.c2.out_channels * enc.grid2 ** 2,
                enc.c3.out_channels * enc.last ** 2]
    except AttributeError:
        return None


def random_shift(images: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image moved by its own random whole-pixel offset in [-shift, shift] on both axes;
    uncovered pixels take the background (-1, black in [-1, 1])."""
    if shift == 0:
        return images
    b, c, h, w = images.shape
    padded = F.pad(images, (shift,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * shift + 1, (2, b), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    return padded[torch.arange(b)[:, None, None, None], torch.arange(c)[:, None, None], rows, cols]


def train_encoder(images: torch.Tensor, labels: torch.Tensor, classes: int,
                  epochs: int = DEFAULT_EPOCHS,
                  batch: int = 128, lr: float = 1e-3, seed: int = 0, progress: bool = True,
                  grid: tuple[int, int] = DEFAULT_GRID,
                  shift: int = DEFAULT_SHIFT) -> PublicEncoder:
    """Cross-entropy training of a PublicEncoder on (images in [-1, 1], integer labels);
    ``shift`` > 0 moves each training image by up to that many pixels (augmentation against
    overfitting: 20 plain epochs score worse than 10; ``DEFAULT_SHIFT``)."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    _, c, h, _ = images.shape
    model = PublicEncoder(c, h, classes, grid)
    opt = torch.optim.Adam(model.parameters(), lr)
    labels = torch.as_tensor(labels).long()
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(images) / batch)
    with tqdm(total=steps, desc="encoder", unit="step", disable=not progress) as bar:
        for epoch in range(epochs):
            perm = torch.randperm(len(images), generator=gen)
            for i in range(0, len(images), batch):
                idx = perm[i:i + batch]
                x = random_shift(images[idx], shift, gen)
                loss = F.cross_entropy(model.logits(x), labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    return model.eval()


@torch.no_grad()
def accuracy(model: PublicEncoder, images: torch.Tensor, labels: torch.Tensor) -> float:
    pred = torch.cat([model.logits(images[i:i + 1000]).argmax(1) for i in range(0, len(images), 1000)])
    return float((pred == torch.as_tensor(labels).long()).float().mean())


def save_encoder(model: PublicEncoder, path: str | Path) -> None:
    """TorchScript of the feature extractor (forward only), written atomically, once it gives
    the model's own features on a probe batch."""
    from .errors import PrismError

    scripted = torch.jit.script(model.eval())
    # TorchScript compiles the source file as it is on disk now, not the code that trained: if
    # prism-edge was upgraded or edited during training, a method can come out as another's
    c, side = model.c1.in_channels, 8 * model.last
    probe = torch.linspace(-1, 1, 2 * c * side * side).reshape(2, c, side, side)
    with torch.no_grad():
        got, want = scripted(probe), model(probe)
    if not (isinstance(got, torch.Tensor) and got.shape == want.shape
            and torch.allclose(got, want, atol=1e-5)):
        raise PrismError(f"{path} not written: prism-edge's source changed on disk while the "
                         "encoder trained (an upgrade or an edit); train it again")
    with atomic_path(path) as tmp:
        scripted.save(str(tmp))


def train_public_encoder(dataset: str, out: str | Path, data_dir: str | Path | None = None,
                         size: int = 28, channels: int = 1, epochs: int = DEFAULT_EPOCHS,
                         seed: int = 0, progress: bool = True,
                         grid: tuple[int, int] = DEFAULT_GRID,
                         shift: int = DEFAULT_SHIFT) -> float:
    """Train on ``dataset``'s train split, write ``out``; returns the test-split accuracy."""
    from .data import dataset_classes, load_dataset
    from .errors import PrismError

    if not all(1 <= g <= size // k for g, k in zip(grid, (2, 4))):
        raise PrismError(f"feature grid {grid[0]},{grid[1]} does not fit {size}x{size} images: the "
                         f"first stage is {size // 2}x{size // 2}, the second {size // 4}x"
                         f"{size // 4}; give sides from 1 up to those")
    if not 0 <= shift <= size // 4:
        raise PrismError(f"shift {shift} does not suit {size}x{size} images; give 0 to "
                         f"{size // 4} pixels")
    shape = dict(size=size, channels=channels)
    train = load_dataset(dataset, "train", data_dir, **shape)
    if train.labels is None:
        raise PrismError(f"{dataset} has no labels; the encoder is trained as a classifier, "
                         "so give a dataset of class folders")
    model = train_encoder(train.images, train.labels, dataset_classes(dataset), epochs, seed=seed,
                          progress=progress, grid=grid, shift=shift)
    test = load_dataset(dataset, "test", data_dir, **shape)
    acc = accuracy(model, test.images, test.labels) if test.labels is not None else float("nan")
    save_encoder(model, out)
    return acc
