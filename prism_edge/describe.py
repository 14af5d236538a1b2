"""Human-readable descriptions of the files prism-edge writes (for `prism-edge inspect`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import PrismError


def describe_bits(path: Path) -> dict[str, Any]:
    from .bitsfile import read_bits

    mf = read_bits(path)
    size = path.stat().st_size
    layers = [{"index": i, "weights": int(m.size), "ones": float(m.mean())}
              for i, m in enumerate(mf.layer_masks())]
    ones = sum(r["ones"] * r["weights"] for r in layers) / mf.total
    return {
        "file": str(path),
        "format": ".bits v1",
        "architecture": mf.arch.get("name"),
        "config": mf.arch.get("config"),
        "masked weights": mf.total,
        "fraction of ones": round(ones, 4),
        "seed fingerprint": mf.fingerprint,
        "size (bytes)": size,
        "bits per weight": round(8 * size / mf.total, 4),
        "meta": mf.meta,
        "layers": layers,
    }


def probability_bands(p: np.ndarray) -> dict[str, float]:
    """Share of the weights in each band of keep probability; the middle band, closed at both
    ends, holds the weights that are still a coin toss in every sampled mask."""
    below = [np.count_nonzero(p < 0.1), np.count_nonzero(p < 0.4), np.count_nonzero(p <= 0.6),
             np.count_nonzero(p <= 0.9), p.size]
    names = ("p < 0.1", "0.1 <= p < 0.4", "0.4 <= p <= 0.6 (undecided)", "0.6 < p <= 0.9",
             "p > 0.9")
    return {name: round(float(c) / p.size, 4) for name, c in zip(names, np.diff([0, *below]))}


def _round(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.4g}")


def describe_run(folder: Path) -> dict[str, Any]:
    """Where a training run stands, from its config.json and checkpoint.pt."""
    from .recorder import read_checkpoint, read_config
    from .server import sigmoid

    ckpt = folder / "checkpoint.pt"
    if not ckpt.is_file():
        raise PrismError(f"{folder} holds no checkpoint.pt; give a run's output folder "
                         "(prism-edge train -o)")
    fix = "the run cannot be described"
    cfg = read_config(folder, "", fix)
    if cfg is None:
        raise PrismError(f"{folder}/config.json has options this prism-edge does not know; "
                         "a newer version wrote it, so upgrade prism-edge")
    ck = read_checkpoint(ckpt, "", fix)
    history, scores = ck["history"], ck["scores"]
    last = history[-1] if history else {}
    final = folder / ("final.pt" if cfg.mode == "dense" else "final.bits")
    info: dict[str, Any] = {
        "run": str(folder),
        "mode": cfg.mode,
        "dataset": cfg.dataset,
        "clients": f"{cfg.clients} ({cfg.split})",
        "architecture": cfg.arch,
        "seed": cfg.seed,
        "rounds done": f"{ck['round']} of {cfg.rounds}",
        "finished": f"yes, {final.name}" if final.is_file() else "no (prism-edge train --resume "
                                                                 "continues it)",
        "loss (last round)": _round(last.get("loss_last")),
        "seconds per round (median)": (float(np.median([r["seconds"] for r in history]))
                                       if history else None),
    }
    if cfg.mode == "mask":
        info["MADA"] = "on" if cfg.server.mada else "off"
        info["lambda (last round)"] = _round(last.get("lambda"))
        p = sigmoid(np.asarray(scores, np.float64))
        info["weights"] = int(p.size)
        info["mean keep probability"] = round(float(p.mean()), 4)
        info["keep probability"] = probability_bands(p)
    return info


def describe_file(path: Path) -> dict[str, Any]:
    if path.is_dir():
        return describe_run(path)
    if path.name == "checkpoint.pt":
        return describe_run(path.parent)
    if not path.is_file():
        raise PrismError(f"{path} does not exist; check the path")
    if path.suffix == ".onnx":
        from exporters.onnx_export import describe_onnx

        return describe_onnx(path)
    return describe_bits(path)
