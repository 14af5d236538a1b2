"""What a run writes, shared by the simulation and the Flower ServerApp: config.json,
metrics.jsonl (a row per round), checkpoint.pt (atomic, each round), sample grids,
final.bits (or final.pt for the dense baseline), final.png and summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .architectures import Generator
from .atomic import atomic_path, write_text_atomic
from .bitsfile import write_bits
from .client import derive_seed
from .config import RunConfig
from .errors import PrismError
from .images import save_grid
from .latent import by_class_latents, latents
from .masked import layer_sizes, model_device, set_flat_mask, set_flat_scores, set_mode
from .server import ServerState, final_prob, saved

N_PREVIEW = 64


def final_mask(prob: np.ndarray, how: str, seed: int) -> np.ndarray:
    """The single exported mask: threshold p > 0.5, or one sample of p."""
    if how == "threshold":
        return (prob > 0.5).astype(np.uint8)
    if how == "sample":
        return (np.random.default_rng(derive_seed(seed, 999_999)).random(prob.shape) < prob
                ).astype(np.uint8)
    raise PrismError(f"final must be 'threshold' or 'sample', got {how!r}")


def preview(gen: Generator, n: int = N_PREVIEW, seed: int = 0) -> tuple[np.ndarray, int]:
    """Preview images and the grid's row length: a row per class for a class-conditional model."""
    k = gen.config.classes
    if k:
        per = max(1, n // k)
        z = by_class_latents(per, gen.nz, seed, k)
    else:
        per, z = 8, latents(n, gen.nz, seed)
    with torch.no_grad():
        return gen(torch.from_numpy(z).to(model_device(gen))).cpu().numpy(), per


_RESTART = "start the run again in a new output folder"


def read_config(folder: Path, prefix: str, fix: str) -> RunConfig | None:
    """A run's config.json through from_dict, which gives an option added since the run began
    the value the run used; None for an unknown option (a newer prism-edge wrote it). A missing
    or damaged file is a one-line error: ``prefix`` names the command, ``fix`` what to do."""
    path = folder / "config.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise PrismError(f"{prefix}{path} is missing; {fix}") from None
    except ValueError:
        raw = None
    if not isinstance(raw, dict):
        raise PrismError(f"{prefix}{path} is damaged (not a run's options in JSON); {fix}")
    try:
        return RunConfig.from_dict(raw)
    except TypeError:
        return None


def read_checkpoint(path: Path, prefix: str, fix: str) -> dict:
    """A run's checkpoint.pt; a truncated or foreign file is a one-line error."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        if not {"history", "scores", "round"} <= ck.keys():
            raise KeyError("not a prism-edge checkpoint")
    except Exception as e:  # torch raises many kinds
        raise PrismError(f"{prefix}{path} cannot be read ({type(e).__name__}); it is damaged, "
                         f"so {fix}") from None
    return ck


class RunRecorder:
    def __init__(self, out: str | Path, cfg: RunConfig, gen: Generator):
        self.out, self.cfg, self.gen = Path(out), cfg, gen
        self.ckpt = self.out / "checkpoint.pt"
        self.metrics = self.out / "metrics.jsonl"
        self.history: list[dict] = []

    def begin(self, resume: bool) -> dict | None:
        """Create the output folder; on resume check the options and return the checkpoint."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "samples").mkdir(exist_ok=True)
        as_json = json.loads(json.dumps(self.cfg.to_dict()))
        ck = None
        if resume:
            if not self.ckpt.is_file():
                raise PrismError(f"--resume: no checkpoint in {self.out}; start without --resume")
            saved = read_config(self.out, "--resume: ", _RESTART)
            saved_json = None if saved is None else json.loads(json.dumps(saved.to_dict()))
            # more rounds may be asked for on resume; every other option must match
            if saved_json is None or {**saved_json, "rounds": 0} != {**as_json, "rounds": 0}:
                raise PrismError(f"--resume: {self.out}/config.json differs from this run's "
                                 "options; resume with the same options or use a new output folder")
            ck = read_checkpoint(self.ckpt, "--resume: ", _RESTART)
            self.history = ck["history"]
        write_text_atomic(self.out / "config.json", json.dumps(as_json, indent=2) + "\n")
        write_text_atomic(self.metrics, "".join(json.dumps(r) + "\n" for r in self.history))
        return ck

    def log_round(self, row: dict) -> None:
        self.history.append(row)
        with open(self.metrics, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def checkpoint(self, state: ServerState, **extra) -> None:
        with atomic_path(self.ckpt) as tmp:
            torch.save({**saved(state), "history": self.history, **extra}, tmp)

    def install(self, state: ServerState) -> None:
        """Put the model the run would ship into the generator (for previews)."""
        if self.cfg.mode == "dense":
            set_flat_scores(self.gen, torch.from_numpy(state.scores.astype(np.float32)))
            set_mode(self.gen, "dense")
        else:
            set_flat_mask(self.gen, final_mask(final_prob(state), self.cfg.final, self.cfg.seed))

    def samples(self, state: ServerState) -> None:
        every = self.cfg.sample_every
        if every and state.round % every == 0:
            self.install(state)
            images, per = preview(self.gen)
            save_grid(images, self.out / "samples" / f"round_{state.round:04d}.png", nrow=per)

    def finish(self, state: ServerState, privacy: str, minutes: float,
               device: str | None = None) -> dict:
        """Write final.png, final.bits (or final.pt) and summary.json; ``device``: where the
        clients trained, when one process ran them all (the simulation)."""
        cfg, gen = self.cfg, self.gen
        self.install(state)
        images, per = preview(gen)
        save_grid(images, self.out / "final.png", nrow=per)
        summary = {"rounds": state.round, "minutes": round(minutes, 2), "privacy": privacy,
                   "masked_weights": gen.num_masked}
        if device is not None:
            summary["device"] = device
        meta = {"kind": cfg.final, "dataset": cfg.dataset, "rounds": state.round,
                "split": cfg.split, "clients": cfg.clients, "privacy": privacy}
        if state.final_rounds > 1:
            meta["rounds_averaged"] = state.final_rounds
        if cfg.mode == "dense":
            with atomic_path(self.out / "final.pt") as tmp:
                torch.save({"weights": state.scores.astype(np.float32), "arch": gen.describe(),
                            "meta": meta}, tmp)
        else:
            mask = final_mask(final_prob(state), cfg.final, cfg.seed)
            write_bits(self.out / "final.bits", mask, gen.describe(), layer_sizes(gen), cfg.seed,
                       meta)
            summary["final_ones"] = float(mask.mean())
        write_text_atomic(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary
