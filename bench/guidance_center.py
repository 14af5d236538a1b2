"""Rounds of the recommended recipe with the guidance centre computed by every client or by the server.

    python -m bench.guidance_center [--rounds R] [--reps N] [--threads T]

``--guidance-center model`` has each client make 32 images a class with the round's global model
before its local steps; ``server`` makes them once a round on the server and sends the centre
with the global state. Runs `prism_edge.train.run` for R rounds of README's recipe (10 clients,
`--workers 2`) with each, alternating N times so machine noise hits both alike, and reports the
median seconds per round (metrics.jsonl, the server's share included) and of the whole call.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import torch

from prism_edge.config import RunConfig

from . import quality, report
from .workers import timed

# README's recipe ("Where it stands") and its twin with the server's centre
ROWS = {c: ("prism-no-mada-120x40-batch32-cond-fine-enc10-shift2-stage-rff3000-resize-deep-lr0.3"
            f"-scale1-guide0.3-{c}-bf16-avg20-seed7-w2") for c in ("model", "server")}


def config(center: str, rounds: int, data_dir: str | None) -> RunConfig:
    cfg = quality.federated_variants(rounds, 40, data_dir)[ROWS[center]]
    cfg.client.features = quality.resolve_encoders(cfg.client.features, cfg.dataset, data_dir)
    # a few rounds only: the last round's probability, not a 20-round mean
    return replace(cfg, rounds=rounds, final_average=1)


def main(argv: list[str] | None = None) -> list:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4, help="rounds per run (default 4)")
    ap.add_argument("--reps", type=int, default=2, help="runs of each setting, alternating")
    ap.add_argument("--threads", type=int, default=2, help="torch threads in all (default 2)")
    ap.add_argument("--data-dir", default=None,
                    help="directory of the datasets (default: $PRISM_EDGE_DATA or the cache)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfgs = {c: config(c, args.rounds, args.data_dir) for c in ROWS}
    got: dict[str, list[tuple[float, float]]] = {c: [] for c in ROWS}
    for rep in range(args.reps):
        # model, server, server, model, ...: neither always runs first
        for c in (ROWS if rep % 2 == 0 else reversed(ROWS)):
            got[c].append(timed(cfgs[c], workers=2))
    med = {c: (statistics.median(r for r, _ in v), statistics.median(t for _, t in v))
           for c, v in got.items()}
    rows = [[f"--guidance-center {c}", round(med[c][0], 2), round(med[c][1], 1),
             round(med["model"][0] / med[c][0], 2)] for c in ROWS]
    cfg = cfgs["server"]
    report.write(
        "guidance_center", "Guidance centre computed by each client (model) or by the server",
        report.table(["setting", "s per round (median)", "s per run", "round speed-up"], rows),
        f"{cfg.clients} clients x {cfg.client.local_steps} local steps at batch "
        f"{cfg.client.batch}, {cfg.arch}, encoder-stage-rff3000, {cfg.client.precision}, "
        f"--workers 2 at {max(1, args.threads // 2)} thread each; {args.rounds} rounds per run, "
        f"{args.reps} runs of each setting alternating (medians over runs of each run's median "
        "round). A run's time includes its setup (the data statistics, the workers' start).")
    return [["guidance_center", "round speed-up of --guidance-center server",
             f"{med['model'][0] / med['server'][0]:.2f}x", "-", "-"]]


if __name__ == "__main__":
    report.run_main(main)
