"""The client update: one function, used by the simulation, the Flower ClientApp and the device.

Starts from the global scores, runs L Adam steps on the scores with the MMD loss against the
client's fixed data statistics, then samples a binary mask from sigmoid(scores) and returns it
packed, 1 bit per weight.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from .adam import Adam
from .architectures import Generator
from .coding import coupled_sample, encode
from .config import ClientConfig, RunConfig
from .errors import PrismError
from .features import FeatureMap
from .masked import get_flat_scores, masked_layers, model_device, set_flat_scores, set_mode
from .memory import release_free_memory
from .stats import DataStats, mmd_loss


@dataclass
class ClientResult:
    packed: np.ndarray  # uint8, ceil(N / 8) bytes: the mask, np.packbits order
    nbytes: int
    loss_first: float
    loss_last: float
    ones: float  # fraction of ones in the mask
    opt_state: dict
    coded: np.ndarray | None = None  # uint8: the mask coded against the downlink (coding.py)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (run seed, round, client); stable across platforms."""
    h = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1


def round_client_config(cfg: RunConfig, rnd: int) -> ClientConfig:
    """The client options of round ``rnd`` (0-based): lr decays by a cosine from ``lr`` in the
    first round to ``lr * lr_end`` in the last, meant to let late rounds settle instead of
    hovering at a constant lr's noise level (on MNIST it did not help: bench/results/quality.md)."""
    c = cfg.client
    if c.lr_end == 1.0:
        return c
    t = min(rnd, cfg.rounds - 1) / max(1, cfg.rounds - 1)
    return replace(c, lr=c.lr * (c.lr_end + (1 - c.lr_end) * 0.5 * (1 + math.cos(math.pi * t))))


def client_update(gen: Generator, fm: FeatureMap, stats: DataStats, global_scores: torch.Tensor,
                  cfg: ClientConfig, opt_state: dict | None, seed: int,
                  progress=None, downlink: np.ndarray | None = None,
                  center: np.ndarray | torch.Tensor | None = None) -> ClientResult:
    """Train the scores locally and return a packed mask sample plus the new optimiser state.

    ``seed`` fixes every random draw (latents, mask samples) so a run can be resumed exactly;
    the server knows it too (run seed, round, client), which lets the mask be drawn with shared
    uniforms and, given the uint8 ``downlink`` the client started from, coded in well under one
    bit per weight (``ClientResult.coded``). ``progress`` is an optional callable(step, loss);
    ``center``: the server's guidance centre (``guidance_center="server"``).
    """
    torch.manual_seed(seed)
    set_flat_scores(gen, global_scores)
    set_mode(gen, "sample", cfg.estimator)
    losses, state = local_train(gen, fm, stats, cfg, cfg.lr, opt_state, progress, center)
    set_mode(gen, "fixed")
    with torch.no_grad():
        p = torch.sigmoid(get_flat_scores(gen)).cpu().numpy()
    mask = coupled_sample(p, seed)
    packed = np.packbits(mask)
    coded = None
    if downlink is not None and downlink.dtype == np.uint8:
        coded = np.frombuffer(encode(mask, downlink, seed), np.uint8)
    return ClientResult(packed, int(packed.nbytes), losses[0] if losses else float("nan"),
                        losses[-1] if losses else float("nan"), float(mask.mean()),
                        state, coded)


def model_center(gen: Generator, fm: FeatureMap, cfg: ClientConfig) -> torch.Tensor:
    """Mean features (D,) of ``cfg.center_per_class`` images of every class (32: 320 forward
    passes for ten classes, about a tenth of a 40-step round at batch 32) from the model as it stands
    (a fresh mask sample per batch while training): the centre class guidance pushes from with
    ``guidance_center="model"``. It needs no data, and every client of a round estimates the
    same quantity (from its own draws); where the generated class means meet their guided
    targets it equals the data's class-uniform mean, so every client pushes from the
    federation's centre rather than from the mean of its own few classes."""
    dev = model_device(gen)
    labels = torch.arange(gen.config.classes, device=dev).repeat_interleave(cfg.center_per_class)
    total = torch.zeros((), device=dev)
    with torch.no_grad():
        for chunk in labels.split(cfg.batch):
            z = torch.randn(len(chunk), gen.nz, device=dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                x = gen(z, chunk)
            total = total + fm(x.float()).sum(0)
    return total / len(labels)


# derive_seed's last part for the server's centre draws (clients are numbered from 0)
CENTER_STREAM = -1


def sends_center(cfg: ClientConfig) -> bool:
    """Whether the server sends a guidance centre with each round's global state."""
    return bool(cfg.class_guidance) and cfg.guidance_center == "server"


def server_center(gen: Generator, fm: FeatureMap, cfg: ClientConfig, global_scores: torch.Tensor,
                  seed: int, rnd: int, dense: bool = False) -> np.ndarray:
    """``guidance_center="server"``: ``model_center`` computed once a round by the server, from
    the scores every client of round ``rnd`` (0-based) starts from, and sent beside them (float32,
    (D,)). Clients skip those forward passes, and all of them push from one centre."""
    torch.manual_seed(derive_seed(seed, rnd, CENTER_STREAM))
    set_flat_scores(gen, global_scores)
    set_mode(gen, "dense" if dense else "sample", cfg.estimator)
    return model_center(gen, fm, cfg).float().cpu().numpy()


def guidance_center(gen: Generator, fm: FeatureMap, cfg: ClientConfig,
                    sent: np.ndarray | torch.Tensor | None, dim: int) -> torch.Tensor | None:
    """The centre class guidance pushes from (None: the client's own mean, or no guidance);
    ``sent`` is the server's centre, used with ``guidance_center="server"`` only; ``dim``: the
    feature map's output size."""
    if not cfg.class_guidance or cfg.guidance_center == "client":
        return None
    if cfg.guidance_center == "model":
        return model_center(gen, fm, cfg)
    if sent is None:
        raise PrismError("--guidance-center server: the round's message carries no guidance "
                         "centre; the server must send one (update prism-edge on the server)")
    center = torch.as_tensor(np.asarray(sent), dtype=torch.float32)
    if center.shape != (dim,):
        raise PrismError(f"the server's guidance centre has shape {tuple(center.shape)}, expected "
                         f"({dim},) for this feature map; run server and clients with one run "
                         "config")
    return center.to(model_device(gen))


def local_train(gen: Generator, fm: FeatureMap, stats: DataStats, cfg: ClientConfig, lr: float,
                opt_state: dict | None, progress=None,
                center: np.ndarray | torch.Tensor | None = None) -> tuple[list[float], dict]:
    """L Adam steps on the model's scores (or dense weights) against the fixed statistics;
    ``center``: the server's guidance centre (``guidance_center="server"``)."""
    # reset: the moments start afresh each round, so a score held at the clip, whose gradient
    # p(1 - p) shrinks, is not slowed by the larger gradients of earlier rounds
    keep = cfg.optimizer_state == "persist"
    opt = Adam([m.scores for m in masked_layers(gen)], lr, tuple(cfg.betas),
               state=opt_state if keep else None)
    release_free_memory()
    losses = []
    # bf16: the generator's convolutions and matmuls run in bfloat16 (scores, optimiser, feature
    # map and loss stay float32); about 1.6x faster on CPUs with bf16 units, half the activations
    bf16 = cfg.precision == "bf16"
    if gen.config.classes != (0 if stats.class_probs is None else len(stats.class_probs)):
        raise PrismError(f"the generator has {gen.config.classes} classes but the client's "
                         f"statistics {stats.mean.shape[0]}; build both from one run config")
    dev = model_device(gen)
    labels = stats.batch_labels(cfg.batch)  # the same every step: the client's class shares
    labels = None if labels is None else labels.to(dev)
    center = guidance_center(gen, fm, cfg, center, stats.mean.shape[-1])
    for step in range(cfg.local_steps):
        z = torch.randn(cfg.batch, gen.nz, device=dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            x = gen(z, labels)
        loss = mmd_loss(fm(x.float()), stats, cfg.mmd, labels, cfg.mean_scale,
                        cfg.class_guidance, center)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step, losses[-1])
    return losses, opt.state_dict()
