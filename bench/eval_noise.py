"""How much of a FID-LeNet figure is the evaluation's own noise: each finished run's exported
mask scored with several latent draws (the harness uses draw 0), and the real-data floor with
several random halves of the training split standing in for the test set's role.

Run: PRISM_EDGE_DATA=../shared/data python -m bench.eval_noise RUN_FOLDER [...] [--draws 5]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from prism_edge.data import load_dataset
from prism_edge.errors import PrismError
from prism_edge.evaluation import metrics
from prism_edge.evaluation.classifier import embed
from prism_edge.evaluation.evaluate import Reference, floor_subset, sample
from prism_edge.recorder import read_config

from . import report
from .quality import model_sampler

# the options every README-recipe row shares, left out of the table's labels
COMMON = "-batch32-cond-fine-enc10-shift2-stage-rff3000-resize-deep-lr0.3-scale1-guide0.3-model-bf16-avg20"


def spread(values: list[float]) -> list:
    v = np.asarray(values)
    return [float(v.mean()), float(v.min()), float(v.max()), float(v.std(ddof=1)),
            f"{100 * (v.max() - v.min()) / v.mean():.1f}%"]


def main(argv: list[str] | None = None) -> list[list]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished run folders (prism-edge train -o)")
    ap.add_argument("--draws", type=int, default=5, help="latent draws per mask (count)")
    ap.add_argument("-n", type=int, default=10_000, help="generated images per score (images)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (count)")
    ap.add_argument("--data-dir", default=os.environ.get("PRISM_EDGE_DATA"),
                    help="folder with the dataset files (default: $PRISM_EDGE_DATA)")
    args = ap.parse_args(argv)
    if args.draws < 2:
        ap.error("--draws must be at least 2: a spread needs two scores")
    torch.set_num_threads(args.threads)
    t0 = time.time()
    refs: dict[str, Reference] = {}
    rows, floor_rows = [], []
    mean_floor: dict[str, float] = {}
    for folder in args.runs:
        try:
            cfg = read_config(folder, "", "give a finished run's folder")
        except PrismError as e:
            raise SystemExit(str(e)) from None
        if cfg is None or not (folder / "summary.json").is_file():
            raise SystemExit(f"{folder}: not a finished run of this prism-edge")
        if cfg.dataset not in refs:
            ref = Reference(load_dataset(cfg.dataset, "train", args.data_dir),
                            load_dataset(cfg.dataset, "test", args.data_dir), args.n)
            refs[cfg.dataset] = ref
            # the floor: n training images against the test set, n drawn anew each time (the
            # harness draws them with seed 0)
            train_feats, _ = embed(ref.model, ref.train.images)
            floors = [metrics.fid(train_feats[floor_subset(len(train_feats), args.n, k)],
                                  ref.test_feats) for k in range(args.draws)]
            assert abs(floors[0] - ref.floor) < 1e-6 * ref.floor  # draw 0 is the harness's
            floor_rows.append([cfg.dataset, *spread(floors)])
            mean_floor[cfg.dataset] = float(np.mean(floors))
        ref = refs[cfg.dataset]
        sampler, nz, _ = model_sampler(folder, cfg)
        fids = [ref.score(sample(sampler, nz, args.n, seed=k, progress=False), with_prdc=False)["fid"]
                for k in range(args.draws)]
        label = folder.name.replace(COMMON, "")
        rows.append([label, round(fids[0], 2), *spread(fids), fids[0] / ref.floor,
                     min(fids) / ref.floor, max(fids) / ref.floor, np.mean(fids) / mean_floor[cfg.dataset]])
        print(f"{label}: {[round(f, 2) for f in fids]}", flush=True)
    body = (report.table(["run", "draw 0 (harness)", "mean", "min", "max", "std",
                          "max - min", "ratio draw 0", "ratio best draw", "ratio worst draw",
                          "ratio, both means"], rows)
            + "\n\n" + report.table(["floor of", "mean", "min", "max", "std", "max - min"],
                                    floor_rows))
    notes = (f"FID-LeNet of each run's exported single mask, {args.n:,} images per draw, "
             f"latent draws 0..{args.draws - 1} (`prism-edge evaluate --latent-seed K`; the "
             "quality harness scores draw 0). Floor: FID-LeNet of n training images against the "
             f"test set, the n drawn with seeds 0..{args.draws - 1} (the harness: seed 0). "
             "Ratios to the harness's floor (seed 0), except the last: mean FID over mean floor. "
             f"Rows without `{COMMON}` in their name had it. {time.time() - t0:.0f} s in all.")
    report.write("eval_noise", "How noisy is one FID-LeNet figure", body, notes)
    return []


if __name__ == "__main__":
    main()
