"""Feature maps for the MMD / feature-matching loss. All are regenerated from a seed; nothing is
downloaded. Each maps images (B, C, H, W) in [-1, 1] to features (B, D).

* ``rff``: random Fourier features of the pixels, an explicit Gaussian-kernel MMD (as DP-MERF).
* ``randconv``: a seeded random conv network (3 stages), its activations average-pooled to a
  4x4 grid, then random Fourier features on top: a Gaussian kernel on random conv features.
* ``patch``: random Fourier features of every 5x5 patch (a Gaussian kernel on local patches),
  averaged over the cells of a 4x4 grid, so stroke shapes and their positions both count.
* ``pool2``, ``pool4``: random Fourier features of the image average-pooled 2x / 4x (a Gaussian
  kernel on coarse shape, blind to stroke detail).
* ``rff+randconv``, ``rff+patch``, ``rff+pool2+pool4``: maps concatenated (features split evenly).
* ``encoder:PATH``: a user-supplied TorchScript encoder (its output is the feature vector), e.g.
  from ``prism-edge train-encoder``; ``KIND+encoder:PATH`` adds it, unit-normalised per image, to
  a built-in map (e.g. ``rff+pool2+pool4+encoder:enc.pt``).
* ``encoder-rffW:PATH``: the encoder's raw features (a linear kernel: their class means) and,
  weighted by W, random Fourier features of its unit-normalised features (a Gaussian kernel,
  which also matches how they spread); ``encoder-rff-1:PATH`` keeps the Gaussian part alone.
  ``--n-features`` sets the number of random features.
* ``encoder-stage-rffW:PATH``: as ``encoder-rffW:PATH`` with one Gaussian kernel per stage of a
  ``prism-edge train-encoder`` encoder, each stage's features unit-normalised on their own, so
  the stroke-level first stages weigh as much as the last (in the single kernel the last stage's
  features dominate the unit vector). The random features are split evenly between the stages (rounded down).
* ``encoder:A.pt,B.pt`` (any of the encoder forms): several encoders, their features side by side
  (e.g. the same encoder trained from two seeds: bench/results/quality.md).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .encoder import stage_dims
from .errors import PrismError

# encoder-rff:PATH without a weight (the best of those measured, bench/results/quality.md)
DEFAULT_KERNEL_WEIGHT = 1000.0
FEATURE_KINDS = ("rff", "randconv", "patch", "rff+randconv", "rff+patch", "rff+pool2+pool4")


def _gaussian(rng: np.random.Generator, *shape: int, col_scale: np.ndarray | None = None,
              dtype=np.float32) -> torch.Tensor:
    # numpy's PCG64 stream, not torch's RNG: the features are the same on every client. Drawn in
    # float64 a slice at a time (the same stream as one draw) so a device never holds the whole
    # matrix in float64 (51 MB for the default RFF map); ``col_scale`` divides each column.
    out = np.empty(shape, dtype)
    flat = out.reshape(shape[0], -1)
    rows = max(1, (1 << 17) // max(1, flat.shape[1]))
    for i in range(0, shape[0], rows):
        draw = rng.standard_normal(flat[i:i + rows].shape).astype(np.float32)
        flat[i:i + rows] = draw if col_scale is None else draw / col_scale
    return torch.from_numpy(out)


class _HalfStoredMatmul(torch.autograd.Function):
    """v @ W for a constant W stored in float16, computed in float32 a block of rows at a time
    through one reused buffer: W costs half the memory (the largest tensor of a device client)
    and no full float32 copy of it is ever made."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, w16: torch.Tensor, buf: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(w16)
        ctx.buf = buf
        out = v.new_zeros(v.shape[0], w16.shape[1])
        rows = buf.shape[0]
        for i in range(0, w16.shape[0], rows):
            blk = buf[:min(rows, w16.shape[0] - i)].copy_(w16[i:i + rows])
            out.addmm_(v[:, i:i + rows], blk)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (w16,) = ctx.saved_tensors
        buf = ctx.buf
        gv = grad.new_empty(grad.shape[0], w16.shape[0])
        rows = buf.shape[0]
        for i in range(0, w16.shape[0], rows):
            blk = buf[:min(rows, w16.shape[0] - i)].copy_(w16[i:i + rows])
            torch.mm(grad, blk.t(), out=gv[:, i:i + blk.shape[0]])
        return gv, None, None


class RFF(nn.Module):
    """phi(v) = sqrt(2/D) cos(v W / sigma + b) for v of dimension ``dim``; sigma per feature is
    drawn from ``bandwidths`` (a multi-bandwidth Gaussian kernel), relative to sqrt(dim).
    W is kept in float16 (its entries rounded once; arithmetic stays float32) unless ``half`` is
    False: a small W in float32 saves the per-step conversion (7 of 18 ms a step for 2240 x 2048
    at batch 32)."""

    def __init__(self, dim: int, n_features: int, seed: int, bandwidths=(0.5, 1.0, 2.0),
                 half: bool = True):
        super().__init__()
        rng = np.random.default_rng(seed)
        sig = np.resize(np.asarray(bandwidths, np.float32), n_features) * math.sqrt(dim) * 0.5
        self.register_buffer("w", _gaussian(rng, dim, n_features, col_scale=sig,
                                            dtype=np.float16 if half else np.float32))
        self.register_buffer("b", torch.from_numpy(
            rng.uniform(0, 2 * math.pi, n_features).astype(np.float32)))
        self.scale = math.sqrt(2.0 / n_features)
        # ~2 MB: 64 rows of W in float32 at a time
        self.register_buffer("_buf", torch.empty(min(dim, max(1, (1 << 19) // n_features))
                                                 if half else 0, n_features), persistent=False)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        v = v.flatten(1).float()
        if self.w.dtype == torch.float16:
            z = _HalfStoredMatmul.apply(v, self.w, self._buf)
        else:
            z = v @ self.w
        return self.scale * torch.cos(z + self.b)


class RandConv(nn.Module):
    """Three random conv stages (ReLU, 2x average pooling); activations pooled to 4x4 and
    standardised by a fixed per-channel scale so every stage weighs alike."""

    def __init__(self, channels: int, seed: int, widths=(32, 64, 128)):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weights = nn.ParameterList()
        cin = channels
        for w in widths:
            self.weights.append(nn.Parameter(_gaussian(rng, w, cin, 3, 3) / math.sqrt(cin * 9),
                                             requires_grad=False))
            cin = w
        self.out_dim = sum(widths) * 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for i, w in enumerate(self.weights):
            x = F.relu(F.conv2d(x, w, padding=1))
            pooled = F.adaptive_avg_pool2d(x, 4)
            feats.append(pooled.flatten(1) / math.sqrt(pooled[0].numel()))
            if i < len(self.weights) - 1:
                x = F.avg_pool2d(x, 2)
        return torch.cat(feats, 1)


class PatchRFF(nn.Module):
    """cos(conv(x, W) / sigma + b) with W ~ N(0, I) over k x k patches, pooled to a grid."""

    def __init__(self, channels: int, n_features: int, seed: int, k: int = 5, grid: int = 4,
                 bandwidths=(1.0, 2.0, 4.0)):
        super().__init__()
        filters = max(1, n_features // (grid * grid))
        rng = np.random.default_rng(seed)
        sig = torch.from_numpy(np.resize(np.asarray(bandwidths, np.float32), filters))
        self.register_buffer("w", _gaussian(rng, filters, channels, k, k).div_(sig.view(-1, 1, 1, 1)))
        self.register_buffer("b", torch.from_numpy(
            rng.uniform(0, 2 * math.pi, filters).astype(np.float32)))
        self.k, self.grid = k, grid
        self.scale = math.sqrt(2.0 / filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.cos(F.conv2d(x, self.w, padding=self.k // 2) + self.b.view(1, -1, 1, 1))
        pooled = F.adaptive_avg_pool2d(f, self.grid)
        return self.scale * pooled.flatten(1) / self.grid


class _UnitNorm(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.inner(x), dim=1)


def _load_encoder(path: str, shape: tuple[int, int, int]) -> tuple[nn.Module, int]:
    """A TorchScript encoder that maps a (2, *shape) batch to (2, D) features, and D; or
    PrismError."""
    try:
        enc = torch.jit.load(path, map_location="cpu").eval()
    except (OSError, RuntimeError, ValueError) as exc:
        raise PrismError(f"cannot load encoder {path} ({exc}); pass a TorchScript file "
                         "(prism-edge train-encoder writes one)") from None
    try:
        with torch.no_grad():
            out = enc(torch.zeros(2, *shape))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1][:200]
        raise PrismError(f"encoder {path} does not accept {shape[0]}x{shape[1]}x{shape[2]} images "
                         f"({first}); train one for this image size") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
        raise PrismError(f"encoder {path} must return (batch, features) for "
                         f"{shape[0]}x{shape[1]}x{shape[2]} images; it returned "
                         f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    return enc, out.shape[1]


class _Concat(nn.Module):
    def __init__(self, encs: list[nn.Module]):
        super().__init__()
        self.encs = nn.ModuleList(encs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([enc(x) for enc in self.encs], 1)


def _load_encoders(paths: str, shape: tuple[int, int, int]) -> tuple[nn.Module, int]:
    """``_load_encoder`` of each comma-separated path; several give their features side by side."""
    if "" in paths.split(","):
        raise PrismError(f"encoder list {paths!r} has an empty encoder path; write encoder:PATH or "
                         "encoder:PATH,PATH")
    loaded = [_load_encoder(p, shape) for p in paths.split(",")]
    if len(loaded) == 1:
        return loaded[0]
    return _Concat([enc for enc, _ in loaded]), sum(dim for _, dim in loaded)


def _stages(enc: nn.Module, paths: str) -> list[int]:
    """Feature counts of the stages of ``enc`` (several encoders: of each in turn), or
    PrismError for an encoder that does not record them."""
    members = enc.encs if isinstance(enc, _Concat) else [enc]
    dims = []
    for member, path in zip(members, paths.split(",")):
        found = stage_dims(member)
        if found is None:
            raise PrismError(f"encoder {path} does not record its stages (only files from "
                             "`prism-edge train-encoder` do); use encoder-rffW:PATH for one "
                             "kernel on all its features")
        dims += found
    return dims


class _EncoderKernel(nn.Module):
    """An encoder's raw features (a linear kernel: class means of its features) beside random
    Fourier features of its unit-normalised features (a Gaussian kernel on the sphere, which
    also matches their spread, not just their mean). ``weight`` scales the Gaussian part's
    share of the MMD against the linear part's (raw encoder features have norms of tens).

    ``stages``: the feature counts of the encoder's stages, in order; each gets its own
    Gaussian kernel on its own unit-normalised features (the kernels' sum, so the Gaussian
    part keeps a norm of about sqrt(weight))."""

    def __init__(self, enc: nn.Module, dim: int, n_features: int, seed: int, weight: float,
                 bandwidths=(0.25, 0.5, 1.0), stages: list[int] | None = None):
        super().__init__()
        self.enc = enc
        self.stages = list(stages) if stages else [dim]
        per = n_features // len(self.stages)
        # RFF's widths are relative to sqrt(dim) / 2; unit vectors want absolute widths
        self.rffs = nn.ModuleList(
            RFF(d, per, seed + i, tuple(b * 2 / math.sqrt(d) for b in bandwidths), half=False)
            for i, d in enumerate(self.stages))
        self.linear = weight >= 0
        self.w = math.sqrt(abs(weight) / len(self.stages))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.enc(x)
        parts = torch.split(f, self.stages, 1)
        g = self.w * torch.cat([rff(F.normalize(p, dim=1)) for rff, p in zip(self.rffs, parts)], 1)
        return torch.cat([f, g], 1) if self.linear else g


class FeatureMap(nn.Module):
    def __init__(self, kind: str, shape: tuple[int, int, int], seed: int, n_features: int,
                 bandwidth: float = 1.0):
        super().__init__()
        self.kind = kind
        c, h, w = shape
        self.parts = nn.ModuleList()
        kernel_weight = None
        m = re.search(r"encoder-(stage-)?rff(-?[0-9]+(?:\.[0-9]+)?)?:", kind)
        per_stage = bool(m and m.group(1))
        if m:  # encoder-[stage-]rffW:PATH (W < 0: the Gaussian part alone)
            kernel_weight = float(m.group(2) or DEFAULT_KERNEL_WEIGHT)
            kind = kind[:m.start()] + "encoder:" + kind[m.end():]
        random_kind, _, path = kind.partition("encoder:")
        random_kind = random_kind.rstrip("+")
        if random_kind not in FEATURE_KINDS and not (random_kind == "" and "encoder:" in kind):
            raise PrismError(f"unknown feature map {self.kind!r}; choose one of {FEATURE_KINDS}, "
                             "encoder:PATH, encoder-rffW:PATH, encoder-stage-rffW:PATH, or one of them + "
                             "encoder:PATH")
        if random_kind:
            self._add_random_maps(random_kind, c, h, w, seed, n_features, bandwidth)
        if path:
            enc, dim = _load_encoders(path, shape)
            if kernel_weight is not None:
                stages = _stages(enc, path) if per_stage else None
                enc = _EncoderKernel(enc, dim, n_features, seed * 7919 + 500, kernel_weight,
                                     stages=stages)
            # beside RFF parts (each of norm about 1) an encoder's raw scale would drown them
            self.parts.append(_UnitNorm(enc) if random_kind else enc)
        elif "encoder:" in kind:
            raise PrismError(f"feature map {self.kind!r} names no encoder file; write encoder:PATH")
        # frozen: no weight gradients (a loaded encoder's parameters would otherwise get them)
        for p in self.parameters():
            p.requires_grad_(False)

    def _add_random_maps(self, kind: str, c: int, h: int, w: int, seed: int, n_features: int,
                         bandwidth: float) -> None:
        names = kind.split("+")
        per = n_features // len(names)
        bws = tuple(bandwidth * x for x in (0.5, 1.0, 2.0))  # RFF's default kernel widths, scaled
        for j, name in enumerate(names):
            if name == "rff":
                self.parts.append(RFF(c * h * w, per, seed * 7919 + j, bws))
            elif name == "patch":
                self.parts.append(PatchRFF(c, per, seed * 7919 + 300 + j))
            elif name.startswith("pool"):
                f = int(name[4:])
                self.parts.append(nn.Sequential(nn.AvgPool2d(f), RFF(
                    c * (h // f) * (w // f), per, seed * 7919 + 400 + j, bws)))
            else:
                conv = RandConv(c, seed * 7919 + 100 + j)
                self.parts.append(nn.Sequential(conv, RFF(conv.out_dim, per, seed * 7919 + 200 + j,
                                                          bandwidths=(0.25, 0.5, 1.0))))

    def named_parts(self, dim: int) -> list[tuple[str, int]]:
        """(name, feature count) of each block of the map's ``dim`` outputs, in order: an
        encoder kernel's raw features and per-stage Gaussian parts, else one block."""
        if len(self.parts) == 1 and isinstance(self.parts[0], _EncoderKernel):
            ek = self.parts[0]
            named = [(f"stage {i + 1} Gaussian", rff.b.numel()) for i, rff in enumerate(ek.rffs)]
            return ([("raw", sum(ek.stages))] if ek.linear else []) + named
        return [("all", dim)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [part(x) for part in self.parts]
        return torch.cat(outs, 1) / math.sqrt(len(outs))


def make_feature_map(kind: str, shape: tuple[int, int, int], seed: int = 0,
                     n_features: int = 8192, bandwidth: float = 1.0) -> FeatureMap:
    """``bandwidth`` scales the pixel RFF kernel widths (screening only so far)."""
    return FeatureMap(kind, shape, seed, n_features, bandwidth).eval()
