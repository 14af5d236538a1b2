"""Rounds of the simulation with the clients one after the other, or side by side in workers.

    python -m bench.workers [--rounds R] [--reps N] [--threads T] [--config best|default]

Runs `prism_edge.train.run` for R rounds with ``--workers 1`` (T torch threads) and with
``--workers 2`` (T // 2 threads each), alternating N times so machine noise hits both alike,
and reports the median seconds per round (metrics.jsonl) and of the whole call (with the
workers' start and the data statistics). ``best``: the recommended MNIST recipe of README's
"Where it stands" (10 clients, mnist-resize-deep, encoder-stage-rff3000, bf16, batch 32, 40
local steps); ``default``: `prism-edge train`'s defaults with 20 local steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from prism_edge.config import ClientConfig, RunConfig
from prism_edge.train import run

from . import quality, report

# the recommended recipe's harness row (README, "Where it stands")
BEST = ("prism-no-mada-100x40-batch32-cond-fine-enc10-shift2-stage-rff3000-resize-deep-lr0.3"
        "-scale1-guide0.4-bf16-avg20-seed7")


def config(name: str, rounds: int, data_dir: str | None) -> RunConfig:
    if name == "default":
        return RunConfig(data_dir=data_dir, rounds=rounds, sample_every=0,
                         client=ClientConfig(local_steps=20))
    cfg = quality.federated_variants(rounds, 40, data_dir)[BEST]
    cfg.client.features = quality.resolve_encoders(cfg.client.features, cfg.dataset, data_dir)
    # a few rounds only: the last round's probability, not a 20-round mean
    return replace(cfg, rounds=rounds, final_average=1)


def timed(cfg: RunConfig, workers: int) -> tuple[float, float]:
    """(median seconds per round, seconds of the whole run call)."""
    with tempfile.TemporaryDirectory() as out:
        t = time.time()
        run(cfg, out, progress=False, workers=workers)
        wall = time.time() - t
        rows = [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["seconds"] for r in rows), wall


def main(argv: list[str] | None = None) -> list:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="rounds per run (default 3)")
    ap.add_argument("--reps", type=int, default=2, help="runs of each setting, alternating")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in all (default 2)")
    ap.add_argument("--config", choices=("best", "default"), default="best")
    ap.add_argument("--data-dir", default=None,
                    help="directory of the datasets (default: $PRISM_EDGE_DATA or the cache)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = config(args.config, args.rounds, args.data_dir)
    got: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for _ in range(args.reps):
        for workers in (1, 2):
            got[workers].append(timed(cfg, workers))
    med = {w: (statistics.median(r for r, _ in v), statistics.median(t for _, t in v))
           for w, v in got.items()}
    each = {1: args.threads, 2: max(1, args.threads // 2)}
    rows = [[f"--workers {w} ({each[w]} thread{'s' if each[w] > 1 else ''} each)",
             round(med[w][0], 2), round(med[w][1], 1),
             round(med[1][0] / med[w][0], 2), round(med[1][1] / med[w][1], 2)] for w in (1, 2)]
    features = "encoder-stage-rff3000" if args.config == "best" else cfg.client.features
    report.write(
        "workers", f"Simulated rounds, clients serial or in two worker processes ({args.config})",
        report.table(["setting", "s per round (median)", "s per run", "round speed-up",
                      "run speed-up"], rows),
        f"{cfg.clients} clients x {cfg.client.local_steps} local steps at batch "
        f"{cfg.client.batch}, {cfg.arch}, {features}, "
        f"{cfg.client.precision}; {args.rounds} rounds per run, {args.reps} runs of each setting "
        "alternating (medians over runs of each run's median round). A run's time includes "
        "its setup: the data statistics and, with workers, their start.")
    return [["workers", f"round speed-up of --workers 2 ({args.config})",
             f"{med[1][0] / med[2][0]:.2f}x", "-", "-"]]


if __name__ == "__main__":
    report.run_main(main)
