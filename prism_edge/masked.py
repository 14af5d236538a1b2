"""Masked layers: frozen seeded weights, trainable scores, a binary mask sampled from sigmoid(scores).

Gradient estimators for the Bernoulli sample m ~ Bernoulli(p), p = sigmoid(s):

* ``ste`` (default): straight-through to p, then the exact sigmoid derivative,
  dL/ds = dL/dm * p * (1 - p). It is the unbiased-in-expectation choice for the relaxed objective
  E[L(p)], and its step shrinks as p saturates, which keeps masks from flipping back and forth.
* ``paper``: what the PRISM authors' code returns, dL/ds = dL/dm * p. Larger steps for kept
  weights; kept for comparison.

The default was picked by measurement (bench/results/quality.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .seeded import frozen_weight

ESTIMATORS = ("ste", "paper")


def bernoulli(p: torch.Tensor) -> torch.Tensor:
    """A 0/1 sample of Bernoulli(p) (float, p's dtype) from torch's generator; u < p with
    u ~ U[0, 1) is 4x faster than torch.bernoulli (48 -> 11 ms for 3.5M weights, 2 threads)."""
    return (torch.rand_like(p) < p).to(p.dtype)


class _PaperSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        p = torch.sigmoid(scores)
        ctx.save_for_backward(p)
        return bernoulli(p)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (p,) = ctx.saved_tensors
        return grad * p


class _SteWeight(torch.autograd.Function):
    """frozen * m with m ~ Bernoulli(sigmoid(s)) and the straight-through gradient
    frozen * p * (1 - p) to s, in one node that keeps only tensors that live anyway (scores,
    frozen weight): no weight-sized tensor is held for backward (a device's training peak)."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, frozen: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(scores, frozen)
        return bernoulli(torch.sigmoid(scores)).mul_(frozen)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        scores, frozen = ctx.saved_tensors
        p = torch.sigmoid(scores)
        return grad * frozen * p * (1 - p), None


def sample_mask(scores: torch.Tensor, estimator: str = "ste") -> torch.Tensor:
    """Draw m ~ Bernoulli(sigmoid(scores)) with a gradient to ``scores``."""
    if estimator == "ste":
        p = torch.sigmoid(scores)
        return bernoulli(p.detach()) + p - p.detach()
    if estimator == "paper":
        return _PaperSample.apply(scores)
    raise ValueError(f"unknown gradient estimator {estimator!r}; choose one of {ESTIMATORS}")


class MaskedLayer(nn.Module):
    """Base class: holds the frozen weight (regenerated from the seed), scores and a fixed mask.

    Modes: ``sample`` draws a fresh mask each forward (training); ``fixed`` applies the stored
    binary mask (inference and evaluation); ``expected`` uses p * w (no sampling); ``dense`` uses
    the scores tensor as the weight itself (the dense FedAvg baseline only).
    """

    kind = "base"

    def __init__(self, layer_index: int, shape: tuple[int, ...], fan_in: float, gain: float):
        super().__init__()
        self.layer_index = layer_index
        self.shape = tuple(shape)
        self.scale = gain / math.sqrt(fan_in)
        self.register_buffer("frozen", torch.zeros(self.shape), persistent=False)
        # the installed binary mask (bool), made on first install: training never needs it
        self.register_buffer("mask", None, persistent=False)
        self.scores = nn.Parameter(torch.zeros(self.shape))
        self.mode = "fixed"
        self.estimator = "ste"

    @property
    def numel(self) -> int:
        return self.frozen.numel()

    def regenerate(self, seed: int) -> None:
        self.frozen.copy_(frozen_weight(seed, self.layer_index, self.shape, self.scale))

    def effective_weight(self) -> torch.Tensor:
        if self.mode == "sample":
            if self.estimator == "ste":
                return _SteWeight.apply(self.scores, self.frozen)
            return self.frozen * sample_mask(self.scores, self.estimator)
        if self.mode == "expected":
            return self.frozen * torch.sigmoid(self.scores)
        if self.mode == "dense":
            return self.scores
        return self.frozen if self.mask is None else self.frozen * self.mask

    def fixed_mask(self) -> torch.Tensor:
        """The installed mask as bool (all ones before any is installed)."""
        if self.mask is None:
            return torch.ones(self.shape, dtype=torch.bool, device=self.frozen.device)
        return self.mask


class MaskedLinear(MaskedLayer):
    kind = "linear"

    def __init__(self, layer_index: int, in_features: int, out_features: int, gain: float):
        super().__init__(layer_index, (out_features, in_features), in_features, gain)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight())


class MaskedConv2d(MaskedLayer):
    kind = "conv"

    def __init__(self, layer_index: int, cin: int, cout: int, k: int, stride: int, padding: int,
                 gain: float):
        super().__init__(layer_index, (cout, cin, k, k), cin * k * k, gain)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), stride=self.stride, padding=self.padding)


class MaskedConvTranspose2d(MaskedLayer):
    kind = "convT"

    def __init__(self, layer_index: int, cin: int, cout: int, k: int, stride: int, padding: int,
                 gain: float):
        # Effective fan-in of one output pixel: each sees cin * (k / stride)^2 inputs.
        super().__init__(layer_index, (cin, cout, k, k), cin * k * k / (stride * stride), gain)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.effective_weight(), stride=self.stride,
                                  padding=self.padding)


def masked_layers(model: nn.Module) -> list[MaskedLayer]:
    """The model's masked layers in contract order (layer_index 0, 1, ...)."""
    layers = sorted((m for m in model.modules() if isinstance(m, MaskedLayer)),
                    key=lambda m: m.layer_index)
    if [m.layer_index for m in layers] != list(range(len(layers))):
        raise RuntimeError("masked layer indices must be 0..L-1 without gaps")
    return layers


def layer_sizes(model: nn.Module) -> list[int]:
    return [m.numel for m in masked_layers(model)]


def set_mode(model: nn.Module, mode: str, estimator: str | None = None) -> None:
    if mode not in ("sample", "fixed", "expected", "dense"):
        raise ValueError(f"unknown mode {mode!r}")
    for m in masked_layers(model):
        m.mode = mode
        if estimator is not None:
            if estimator not in ESTIMATORS:
                raise ValueError(f"unknown gradient estimator {estimator!r}; choose {ESTIMATORS}")
            m.estimator = estimator


def model_device(model: nn.Module) -> torch.device:
    """Where the model's masked weights live (the simulation may train on a GPU)."""
    return masked_layers(model)[0].frozen.device


def get_flat_scores(model: nn.Module) -> torch.Tensor:
    return torch.cat([m.scores.detach().reshape(-1) for m in masked_layers(model)])


def set_flat_scores(model: nn.Module, flat: torch.Tensor) -> None:
    flat = torch.as_tensor(flat, dtype=torch.float32)
    offset = 0
    with torch.no_grad():
        for m in masked_layers(model):
            m.scores.copy_(flat[offset:offset + m.numel].reshape(m.shape))
            offset += m.numel
    if offset != flat.numel():
        raise ValueError(f"expected {offset} scores, got {flat.numel()}")


def set_flat_mask(model: nn.Module, flat) -> None:
    """Install a flat binary mask (any array-like of 0/1, length = masked weights)."""
    flat = torch.as_tensor(flat).reshape(-1) != 0
    total = sum(layer_sizes(model))
    if flat.numel() != total:
        raise ValueError(f"mask has {flat.numel()} entries, the model has {total} masked weights")
    offset = 0
    for m in masked_layers(model):
        m.mask = flat[offset:offset + m.numel].reshape(m.shape).to(m.frozen.device, copy=True)
        offset += m.numel
    set_mode(model, "fixed")
