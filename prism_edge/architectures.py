"""Registry of named masked generator architectures.

Every generator is built only from a handful of module types (masked linear / conv / transposed
conv, Reshape, Norm, ReLU, Up2, ResBlock, Tanh) so the ONNX exporter can translate it one module at
a time. Normalisation is per-sample group normalisation without trainable parameters: one image
never depends on the others in its batch, so a device can generate one image at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .masked import MaskedConv2d, MaskedConvTranspose2d, MaskedLinear, layer_sizes, masked_layers
from .seeded import check_seed
from .upsample_conv import up2_conv

RELU_GAIN = math.sqrt(2.0)


class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Norm(nn.Module):
    """Per-sample group normalisation, no affine parameters, eps 1e-5."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.groups = math.gcd(channels, groups)
        self.eps = 1e-5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.groups, eps=self.eps)


class Up2(nn.Module):
    """Nearest-neighbour 2x upsampling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


class ResBlock(nn.Module):
    """Pre-activation up-sampling residual block (SNGAN generator style)."""

    def __init__(self, main: nn.Sequential, shortcut: nn.Sequential):
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_fused(self.main, x) + run_fused(self.shortcut, x)


def run_fused(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Run ``seq``, an Up2 followed by a stride-1 masked conv as one ``up2_conv`` (same function,
    2.25x fewer multiply-adds for a 3x3 conv; the ONNX exporter applies the same rule)."""
    children = list(seq)
    i = 0
    while i < len(children):
        m = children[i]
        nxt = children[i + 1] if i + 1 < len(children) else None
        if isinstance(m, Up2) and isinstance(nxt, MaskedConv2d) and nxt.stride == 1:
            x = up2_conv(x, nxt.effective_weight(), nxt.padding)
            i += 2
        else:
            x = m(x)
            i += 1
    return x


class Generator(nn.Module):
    """z (N, nz) -> image (N, C, H, W) in [-1, 1]."""

    def __init__(self, arch: str, config: ArchConfig, body: nn.Sequential,
                 out_shape: tuple[int, int, int]):
        super().__init__()
        self.arch, self.config, self.body, self.out_shape = arch, config, body, out_shape
        self.nz = config.nz
        self.seed: int | None = None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.config.classes:
            z = label_latent(z, labels, self.config.classes, self.config.label_scale)
        return run_fused(self.body, z)

    def regenerate(self, seed: int) -> Generator:
        """Fill every frozen weight from ``seed`` (the seed contract)."""
        self.seed = check_seed(seed)
        for m in masked_layers(self):
            m.regenerate(self.seed)
        return self

    @property
    def num_masked(self) -> int:
        return sum(layer_sizes(self))

    def describe(self) -> dict[str, Any]:
        """Name and hyper-parameters, recorded in every file the project writes."""
        config = asdict(self.config)
        if not self.config.classes:  # unconditional records stay as they were before labels
            del config["classes"], config["label_scale"]
        return {"name": self.arch, "config": config}


def label_latent(z: torch.Tensor, labels: torch.Tensor | None, classes: int, scale: float
                 ) -> torch.Tensor:
    """A class-conditional generator reads its label from the latent: the first ``classes``
    coordinates are replaced by ``scale`` * one-hot(label). Without ``labels`` the label is the
    argmax of those coordinates, uniform over classes for z ~ N(0, I), so every sampler keeps
    drawing plain Gaussian latents; the ONNX graph does the same (exporters/onnx_export.py)."""
    if labels is None:
        labels = z[:, :classes].argmax(1)
    onehot = F.one_hot(labels, classes).to(z.dtype) * scale
    return torch.cat([onehot, z[:, classes:]], 1)


@dataclass
class ArchConfig:
    nz: int = 64
    ngf: int = 64
    channels: int = 1
    size: int = 28
    norm_groups: int = 8
    extra: dict = field(default_factory=dict)
    classes: int = 0  # > 0: class-conditional, the label is written into z (label_latent)
    label_scale: float = 8.0  # chosen by measurement (bench/results/quality_screen.md)


class _Counter:
    def __init__(self):
        self.i = -1

    def __call__(self) -> int:
        self.i += 1
        return self.i


# Every ReLU follows a Norm, whose backward needs its input, not its output: rectifying in place
# saves one activation tensor per layer for backward (same values).


def _dcgan(cfg: ArchConfig, base: int, resize: bool = False, extra: int = 0
           ) -> tuple[nn.Sequential, tuple[int, int, int]]:
    """Linear -> stride-2 up-sampling convs halving the channels -> last one to image channels.

    ``resize``: each up-sampling conv is a nearest 2x upsample + 3x3 conv (a "resize-conv")
    instead of a 4x4 stride-2 transposed conv. Same multiply-adds (run_fused computes it as a
    transposed conv whose 4x4 kernel is made of the 9 taps), 9 instead of 16 weights per channel
    pair; with random binary weights the transposed conv's four output phases draw on disjoint
    weights and print a speckled checkerboard, the resize-conv's phases share theirs (FID-LeNet
    in bench/results/quality_screen.md).

    ``extra``: that many 3x3 convs (with Norm and ReLU) at each resolution before the image's,
    keeping the channels."""
    n = _Counter()
    ups = {7: 2, 4: 3}[base]
    c = cfg.ngf * (2 ** (ups - 1))
    g = cfg.norm_groups

    def up(cin: int, cout: int, gain: float) -> list[nn.Module]:
        if resize:
            return [Up2(), MaskedConv2d(n(), cin, cout, 3, 1, 1, gain)]
        return [MaskedConvTranspose2d(n(), cin, cout, 4, 2, 1, gain)]

    def same(ch: int) -> list[nn.Module]:
        return [m for _ in range(extra)
                for m in (MaskedConv2d(n(), ch, ch, 3, 1, 1, RELU_GAIN), Norm(ch, g),
                          nn.ReLU(inplace=True))]

    layers: list[nn.Module] = [MaskedLinear(n(), cfg.nz, c * base * base, RELU_GAIN),
                               Reshape(c, base, base), Norm(c, g), nn.ReLU(inplace=True),
                               *same(c)]
    for _ in range(ups - 1):
        layers += [*up(c, c // 2, RELU_GAIN), Norm(c // 2, g), nn.ReLU(inplace=True),
                   *same(c // 2)]
        c //= 2
    layers += [*up(c, cfg.channels, 1.0), nn.Tanh()]
    return nn.Sequential(*layers), (cfg.channels, cfg.size, cfg.size)


def _resnet(cfg: ArchConfig) -> tuple[nn.Sequential, tuple[int, int, int]]:
    """The PRISM paper's 32x32 ResNet generator: 4x4x(8 ngf) -> three up-blocks -> 3x3 conv."""
    n = _Counter()
    g = cfg.norm_groups
    chans = [cfg.ngf * 8, cfg.ngf * 4, cfg.ngf * 2, cfg.ngf]
    layers: list[nn.Module] = [MaskedLinear(n(), cfg.nz, chans[0] * 16, RELU_GAIN),
                               Reshape(chans[0], 4, 4)]
    for cin, cout in zip(chans[:-1], chans[1:]):
        main = nn.Sequential(Norm(cin, g), nn.ReLU(inplace=True), Up2(),
                             MaskedConv2d(n(), cin, cout, 3, 1, 1, RELU_GAIN),
                             Norm(cout, g), nn.ReLU(inplace=True),
                             MaskedConv2d(n(), cout, cout, 3, 1, 1, RELU_GAIN))
        shortcut = nn.Sequential(Up2(), MaskedConv2d(n(), cin, cout, 1, 1, 0, 1.0))
        layers.append(ResBlock(main, shortcut))
    layers += [Norm(chans[-1], g), nn.ReLU(inplace=True),
               MaskedConv2d(n(), chans[-1], cfg.channels, 3, 1, 1, 1.0), nn.Tanh()]
    return nn.Sequential(*layers), (cfg.channels, cfg.size, cfg.size)


@dataclass(frozen=True)
class ArchSpec:
    name: str
    summary: str
    defaults: dict
    build: Callable[[ArchConfig], tuple[nn.Sequential, tuple[int, int, int]]]


ARCHITECTURES: dict[str, ArchSpec] = {
    "mnist-small": ArchSpec(
        "mnist-small", "28x28 grayscale DCGAN-style generator sized for a 1 GB device",
        {"nz": 64, "ngf": 64, "channels": 1, "size": 28}, lambda c: _dcgan(c, 7)),
    "mnist-wide": ArchSpec(
        "mnist-wide", "mnist-small at twice the width (ngf 128, 2.5x the weights): better "
        "images, about twice the time per step", {"nz": 64, "ngf": 128, "channels": 1, "size": 28},
        lambda c: _dcgan(c, 7)),
    "mnist-resize": ArchSpec(
        "mnist-resize", "mnist-small with upsample + 3x3 convs instead of transposed convs: "
        "less speckle, 11% fewer weights, about the same time per step",
        {"nz": 64, "ngf": 64, "channels": 1, "size": 28}, lambda c: _dcgan(c, 7, resize=True)),
    "mnist-resize-wide": ArchSpec(
        "mnist-resize-wide", "mnist-resize at twice the width (ngf 128)",
        {"nz": 64, "ngf": 128, "channels": 1, "size": 28}, lambda c: _dcgan(c, 7, resize=True)),
    "mnist-resize-deep": ArchSpec(
        "mnist-resize-deep", "mnist-resize with one more 3x3 conv at 7x7 and at 14x14",
        {"nz": 64, "ngf": 64, "channels": 1, "size": 28},
        lambda c: _dcgan(c, 7, resize=True, extra=1)),
    "mnist-resize-deep-wide": ArchSpec(
        "mnist-resize-deep-wide", "mnist-resize-deep at twice the width (ngf 128, 2.8x the "
        "weights)", {"nz": 64, "ngf": 128, "channels": 1, "size": 28},
        lambda c: _dcgan(c, 7, resize=True, extra=1)),
    "cifar-small": ArchSpec(
        "cifar-small", "32x32 RGB DCGAN-style generator",
        {"nz": 64, "ngf": 64, "channels": 3, "size": 32}, lambda c: _dcgan(c, 4)),
    "paper-resnet": ArchSpec(
        "paper-resnet", "the PRISM paper's 32x32 ResNet generator (nz 128, ngf 64)",
        {"nz": 128, "ngf": 64, "channels": 3, "size": 32}, _resnet),
}


class ArchitectureError(ValueError):
    pass


def make_config(name: str, overrides: dict | None = None) -> ArchConfig:
    if name not in ARCHITECTURES:
        raise ArchitectureError(
            f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    values = dict(ARCHITECTURES[name].defaults)
    known = {f.name for f in fields(ArchConfig)}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ArchitectureError(f"architecture option {key!r} is not one of {sorted(known)}")
        values[key] = value
    cfg = ArchConfig(**values)
    if not 0 <= cfg.classes < cfg.nz:
        raise ArchitectureError(f"{cfg.classes} classes do not fit a latent of {cfg.nz}; a "
                                "class-conditional generator needs nz > classes")
    return cfg


def build_generator(name: str, seed: int | None = None, overrides: dict | None = None) -> Generator:
    """Build a named generator; with ``seed`` its frozen weights are filled from the contract."""
    cfg = make_config(name, overrides)
    body, out_shape = ARCHITECTURES[name].build(cfg)
    gen = Generator(name, cfg, body, out_shape)
    if seed is not None:
        gen.regenerate(seed)
    return gen


def build_from_description(desc: dict, seed: int | None = None) -> Generator:
    """Rebuild a generator from ``Generator.describe()`` output stored in a file."""
    try:
        name, config = desc["name"], dict(desc["config"])
    except (KeyError, TypeError) as exc:
        raise ArchitectureError(f"architecture record is malformed: {desc!r}") from exc
    return build_generator(name, seed, config)
