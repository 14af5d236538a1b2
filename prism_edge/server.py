"""Server aggregation, one module for the simulation and the Flower ServerApp.

Unpacks and averages client masks into a global probability (clipped away from 0 and 1), turns it
into scores and applies MADA: lambda = normalised Hamming distance between masks sampled from the
old and the new global probability, s <- lambda * s_new + (1 - lambda) * s_old. Without MADA the
probability moves a fixed ``step`` of the way to the average (1: plain averaging).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from .config import ServerConfig

log = logging.getLogger("prism_edge.server")


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def sigmoid(s: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-s))


class UploadError(ValueError):
    """A client upload that cannot be a packed mask of this model."""


def validate_upload(upload, n_weights: int) -> np.ndarray:
    """Return the upload as a uint8 array of ceil(N/8) bytes with zero padding, or raise."""
    if not isinstance(upload, np.ndarray):
        raise UploadError(f"upload is a {type(upload).__name__}, expected a numpy uint8 array")
    if upload.dtype != np.uint8:
        raise UploadError(f"upload has dtype {upload.dtype}, expected uint8 (packed bits)")
    want = (n_weights + 7) // 8
    if upload.ndim != 1 or upload.size != want:
        raise UploadError(f"upload has shape {upload.shape}, expected ({want},) for {n_weights} weights")
    if n_weights % 8 and upload[-1] & ((1 << (8 - n_weights % 8)) - 1):
        raise UploadError("upload has non-zero padding bits")
    return upload


def mada_lambda(p_old: np.ndarray, p_new: np.ndarray, rng: np.random.Generator) -> float:
    """Normalised Hamming distance between masks sampled from the old and new probabilities."""
    m_old = rng.random(p_old.shape, dtype=np.float32) < p_old
    m_new = rng.random(p_new.shape, dtype=np.float32) < p_new
    return float(np.count_nonzero(m_old != m_new)) / p_old.size


def encode_downlink(p: np.ndarray, kind: str) -> np.ndarray:
    """The global state as it travels to clients: 8-bit probabilities or fp32."""
    if kind == "uint8":
        return np.rint(p * 255).astype(np.uint8)
    if kind == "fp32":
        return p.astype(np.float32)
    raise ValueError(f"unknown downlink encoding {kind!r}; use uint8 or fp32")


def decode_downlink(data: np.ndarray, clip: float) -> np.ndarray:
    """Global probability from the downlink array, clipped into [clip, 1 - clip]."""
    p = data.astype(np.float32) / 255.0 if data.dtype == np.uint8 else data.astype(np.float32)
    return np.clip(p, clip, 1 - clip)


@dataclass
class AggregateResult:
    accepted: list[str]
    rejected: dict[str, str]
    lam: float
    updated: bool


@dataclass
class ServerState:
    """The global state: scores s (float64 for exact resume) and the round counter."""

    scores: np.ndarray
    round: int = 0
    history: list = field(default_factory=list)
    final_sum: np.ndarray | None = None  # sum of p over the export window's rounds so far
    final_from: int = 0  # the window's first round
    final_rounds: int = 0  # rounds summed

    @property
    def prob(self) -> np.ndarray:
        return sigmoid(self.scores)


def init_state(n_weights: int, cfg: ServerConfig) -> ServerState:
    return ServerState(np.full(n_weights, cfg.score_init, np.float64))


def saved(state: ServerState) -> dict:
    """The global state as checkpoint entries; ``restore`` reads them back."""
    return {"scores": state.scores, "round": state.round, "final_sum": state.final_sum,
            "final_from": state.final_from, "final_rounds": state.final_rounds}


def restore(state: ServerState, ck: dict) -> None:
    """Put a checkpoint's global state back (``saved`` wrote it)."""
    state.scores, state.round = ck["scores"], ck["round"]
    state.final_sum, state.final_from = ck.get("final_sum"), ck.get("final_from", 0)
    state.final_rounds = ck.get("final_rounds", 0)


def tally_final(state: ServerState, rounds: int, k: int) -> None:
    """Add the round just ended to the mean that final.bits is made from when it is one of the
    run's last ``k`` rounds: a round's p is a vote of a few sampled masks, and averaging rounds
    quietens that noise without feeding anything back into training."""
    start = rounds - k + 1
    if state.round < start:
        return
    if state.final_sum is None or state.final_from != start:
        # (a resume asking for more rounds moves the window: it restarts, as its earlier rounds
        # are gone; final_rounds says how many the mean holds)
        state.final_sum, state.final_from, state.final_rounds = np.zeros_like(state.scores), start, 0
    state.final_sum += state.prob
    state.final_rounds += 1


def final_prob(state: ServerState) -> np.ndarray:
    """The probability final.bits is made from: the window's mean once it has begun."""
    return state.final_sum / state.final_rounds if state.final_rounds else state.prob


def decode_upload(upload, downlink, seed: int) -> np.ndarray:
    """A coded upload (uint8 array, coding.py) -> packed mask; UploadError if malformed.

    ``downlink`` is the uint8 array sent this round, or its ``coding.Shared`` (built once per
    round: the server decodes every client against it)."""
    from .coding import CodingError, decode

    if not isinstance(upload, np.ndarray) or upload.dtype != np.uint8 or upload.ndim != 1:
        raise UploadError(f"coded upload is a {type(upload).__name__} "
                          f"{getattr(upload, 'dtype', '')}, expected a 1-D uint8 array")
    try:
        return np.packbits(decode(upload.tobytes(), downlink, seed))
    except CodingError as exc:
        raise UploadError(str(exc)) from None


def _decode_all(uploads: dict, decode) -> dict:
    """Decode every upload, on all cores (numpy releases the GIL); errors become values."""
    from concurrent.futures import ThreadPoolExecutor

    def one(item):
        cid, up = item
        try:
            return cid, decode(cid, up)
        except UploadError as exc:
            return cid, exc

    with ThreadPoolExecutor(max_workers=min(len(uploads), os.cpu_count() or 1) or 1) as pool:
        return dict(pool.map(one, uploads.items()))


def aggregate(state: ServerState, uploads: dict[str, object], cfg: ServerConfig,
              rng: np.random.Generator, decode=None) -> AggregateResult:
    """Fold one round's uploads (client id -> packed mask) into ``state`` in place.

    ``decode(client_id, upload)``, when given, turns a coded upload into a packed mask first
    (and raises UploadError for a malformed one)."""
    n = state.scores.size
    accepted, rejected = [], {}
    total = np.zeros(n, np.uint32)  # integer counts: exact and cheaper than float adds
    if decode is not None:
        uploads = _decode_all(uploads, decode)
    for cid, up in uploads.items():
        try:
            if isinstance(up, UploadError):
                raise up
            packed = validate_upload(up, n)
        except UploadError as exc:
            rejected[cid] = str(exc)
            log.warning("rejected upload from client %s: %s", cid, exc)
            continue
        total += np.unpackbits(packed, count=n)
        accepted.append(cid)
    if len(accepted) < max(1, cfg.min_clients):
        log.warning("round kept the old state: %d valid uploads < min_clients %d",
                    len(accepted), cfg.min_clients)
        return AggregateResult(accepted, rejected, 0.0, False)
    p_old = state.prob
    p_new = np.clip(total.astype(np.float32) / len(accepted), cfg.clip, 1 - cfg.clip)
    s_new = logit(p_new.astype(np.float64))
    if cfg.mada:
        lam = mada_lambda(p_old, p_new, rng)
        state.scores = lam * s_new + (1 - lam) * state.scores
    elif cfg.step == 1.0:
        lam = 1.0
        state.scores = s_new
    else:
        # a mean of a few 0/1 masks is a noisy estimate of p; moving part of the way damps
        # that noise round to round (on MNIST it did not help: bench/results/quality.md)
        lam = cfg.step
        p = p_old + lam * (p_new.astype(np.float64) - p_old)
        state.scores = logit(np.clip(p, cfg.clip, 1 - cfg.clip))
    return AggregateResult(accepted, rejected, lam, True)


def downlink_scores(data: np.ndarray, clip: float):
    """What a client starts from: scores (torch float32) decoded from the downlink array."""
    import torch

    return torch.from_numpy(logit(decode_downlink(data, clip).astype(np.float64)).astype(np.float32))


def round_row(state: ServerState, chosen: list, agg: AggregateResult, losses: list,
              bytes_up: int, bytes_down: int, seconds: float, dense: bool = False,
              **extra) -> dict:
    """One metrics.jsonl row."""
    return {"round": state.round, "clients": len(chosen), "accepted": len(agg.accepted),
            "rejected": agg.rejected,
            "loss_first": float(np.mean([a for a, _ in losses])) if losses else None,
            "loss_last": float(np.mean([b for _, b in losses])) if losses else None,
            "lambda": agg.lam, "bytes_up": int(bytes_up), "bytes_down": int(bytes_down),
            "mean_p": None if dense else float(state.prob.mean()),
            "seconds": round(seconds, 2), **extra}


def select_clients(n_clients: int, fraction: float, rng: np.random.Generator) -> list[int]:
    k = max(1, int(round(fraction * n_clients)))
    return sorted(rng.choice(n_clients, size=k, replace=False).tolist())
