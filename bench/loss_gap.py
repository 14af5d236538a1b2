"""Where finished runs stand under their own loss, beside real images.

    python -m bench.loss_gap [--variants a,b] [--per-class N]

For each run of ``bench.quality federated`` (its exported single mask, or the dense weights) and
for the dataset's real test images, the squared distance between class means of the run's feature
map and the training data's, summed over the map's parts (an encoder kernel: its raw features and
one Gaussian kernel per stage) and averaged over classes: once against the data's class means
(mean scale 1, the plain MMD) and once against them times the run's ``--mean-scale`` (what its loss
targets). Where a run is as close to the target as real test images are, its loss can no longer
tell it from the data, and only another loss can improve it. Writes bench/results/loss_gap.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from prism_edge.clientdata import feature_map, run_generator
from prism_edge.data import load_dataset
from prism_edge.evaluation.evaluate import run_latents
from prism_edge.features import FeatureMap
from prism_edge.latent import by_class_latents
from prism_edge.stats import class_sums, compute_stats

from . import quality, report

# the mask, its no-MADA twin and the centralized ceiling of the best loss (kernel weight 3000)
DEFAULT_VARIANTS = (
    "prism-mada-100x40-batch32-cond-fine-enc10-shift2-stage-rff3000-resize-deep-lr0.3-scale1.3-bf16",
    "prism-no-mada-100x40-batch32-cond-fine-enc10-shift2-stage-rff3000-resize-deep-lr0.3-scale1.3-bf16",
    "centralized-1x8640-batch32-cond-fine-enc10-shift2-stage-rff3000-resize-deep-lr0.3-scale1.3-bf16",
)


def class_means(fm: FeatureMap, images: np.ndarray | torch.Tensor, labels: np.ndarray,
                classes: int) -> torch.Tensor:
    """(classes, D) mean feature vector of each class's images (uint8 pixels, or float in
    [-1, 1] as a tensor)."""
    sums, counts = class_sums(fm, images, labels, classes)
    return sums / counts.clamp_min(1).unsqueeze(1).float()


def gaps(means: torch.Tensor, data: torch.Tensor, scale: float, parts: list[tuple[str, int]]
         ) -> list[float]:
    """Per part: squared distance of ``means`` to ``scale`` x the data's class means, class
    average."""
    d = (means - scale * data) ** 2
    return [float(p.sum(1).mean()) for p in torch.split(d, [n for _, n in parts], 1)]


def main(argv: list[str] | None = None) -> list:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help="comma-separated rows of bench.quality federated, trained before "
                         "(runs/bench-quality/<row>); all must share one dataset and loss")
    ap.add_argument("--per-class", type=int, default=1000,
                    help="generated images per class (the real test set gives about 1,000)")
    ap.add_argument("--data-dir", default=None,
                    help="directory of the datasets (default: $PRISM_EDGE_DATA or the cache)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    # rounds and steps only size rows trained with the harness's --rounds; nothing here uses them
    variants = quality.federated_variants(20, 100, args.data_dir)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in variants]
    if unknown:
        raise SystemExit(f"error: unknown variant(s) {', '.join(unknown)}; see bench/quality.py")
    cfgs = [variants[n] for n in names]
    first = cfgs[0]
    if any((c.dataset, c.client.features) != (first.dataset, first.client.features) for c in cfgs):
        raise SystemExit("error: the variants differ in dataset or feature map; compare runs of "
                         "one loss")
    missing = [n for n in names if not (quality.RUNS / n).is_dir()]
    if missing:
        raise SystemExit(f"error: not trained yet: {', '.join(missing)}; run python -m "
                         "bench.quality federated --variants <row> first")
    first.client.features = quality.resolve_encoders(first.client.features, first.dataset,
                                                     args.data_dir)
    gen = run_generator(first)
    classes = gen.config.classes
    if not classes:
        raise SystemExit("error: these runs are unconditional; the gap is measured per class, "
                         "so give class-conditional variants")
    if any(c.client.class_guidance for c in cfgs):
        # the gap is measured against mean_scale times the data's class means; a guided run's
        # target is elsewhere, so its figure would mislead
        raise SystemExit("error: class-guided runs (--class-guidance) are not supported: the gap "
                         "is measured against a scaled target only; give unguided variants")
    fm = feature_map(first, gen)
    train = load_dataset(first.dataset, "train", args.data_dir)
    test = load_dataset(first.dataset, "test", args.data_dir)
    st = compute_stats(fm, train.raw, train.labels, classes)
    data = st.mean / st.class_probs.unsqueeze(1)
    parts = fm.named_parts(data.shape[1])
    scale = first.client.mean_scale
    rows = []

    def add(name: str, means: torch.Tensor) -> None:
        for s in (1.0, scale):
            g = gaps(means, data, s, parts)
            rows.append([name, s, *[round(v, 2) for v in g], round(sum(g), 2)])

    add(f"real {first.dataset} test images", class_means(fm, test.raw, test.labels.numpy(), classes))
    for name, cfg in zip(names, cfgs):
        sampler, nz, _ = quality.model_sampler(quality.RUNS / name, cfg)
        z = by_class_latents(args.per_class, nz, 1, classes)
        images = torch.from_numpy(run_latents(sampler, z))
        labels = np.repeat(np.arange(classes), args.per_class)
        add(f"`{name}`", class_means(fm, images, labels, classes))
        print(f"  {name}: done", flush=True)
    notes = (f"Feature map `{first.client.features}` (n-features {first.client.n_features}); "
             f"each row's distances are squared L2 between its class means and the training "
             f"images' class means times the mean scale, per part of the map, averaged over "
             f"{classes} classes; {args.per_class} generated images per class. The loss of "
             f"these runs targets mean scale {scale}.")
    report.write("loss_gap", "Where runs stand under their own loss",
                 report.table(["images", "mean scale", *[n for n, _ in parts], "sum"], rows), notes)
    return rows


if __name__ == "__main__":
    report.run_main(main)
