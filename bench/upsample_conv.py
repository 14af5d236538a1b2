"""Nearest-upsample + 3x3 conv three ways, and what the faster one does to a paper-resnet step.

    python -m bench.upsample_conv [--reps N]

Forward + backward (input and weight gradients, as in training) of paper-resnet's three up-block
convs at batch 64, timed interleaved (A, B, C, A, B, C, ...) so machine noise hits all alike:

* naive: upsample to 2x, then the 3x3 conv (36 multiply-adds per input pixel per channel pair);
* phases: four 2x2 convs on the small input, one per output phase, interleaved afterwards
  (16 multiply-adds; what training used before);
* deconv: one stride-2 4x4 transposed conv on the small input (16 multiply-adds; what
  prism_edge.upsample_conv does now).

Then whole paper-resnet local steps (batch 64, the default features) with each of the three,
interleaved, and the step's floating-point work against this machine's matrix-multiply speed:
the lower bound on a step's time at that speed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from prism_edge import architectures
from prism_edge.config import DEFAULT_FEATURES
from prism_edge.upsample_conv import up2_conv

from . import report

# output phase (a) -> 3x3 kernel rows that land on padded-input offset 0 and 1
_PHASE_ROWS = {0: ((0,), (1, 2)), 1: ((0, 1), (2,))}


def _phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    cout, cin = weight.shape[:2]
    comb = np.zeros((9, 16), np.float32)
    for a in (0, 1):
        for b in (0, 1):
            for p, rows in enumerate(_PHASE_ROWS[a]):
                for q, cols in enumerate(_PHASE_ROWS[b]):
                    for dy in rows:
                        for dx in cols:
                            comb[dy * 3 + dx, (a * 2 + b) * 4 + p * 2 + q] = 1.0
    return (weight.reshape(cout, cin, 9) @ torch.from_numpy(comb)).view(cout, cin, 4, 2, 2)


def phases(x: torch.Tensor, weight: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """The previous training path: four 2x2 phase convs, then interleave."""
    if weight.shape[-1] != 3 or padding != 1:
        return naive(x, weight, padding)
    n, _, h, w = x.shape
    kernels = _phase_kernels(weight)
    xp = F.pad(x, (1, 1, 1, 1))
    out = [F.conv2d(xp[:, :, a:a + h + 1, b:b + w + 1], kernels[:, :, a * 2 + b])
           for a in (0, 1) for b in (0, 1)]
    y = torch.stack(out, 2).view(n, weight.shape[0], 2, 2, h, w)
    return y.permute(0, 1, 4, 2, 5, 3).reshape(n, weight.shape[0], 2 * h, 2 * w)


def naive(x: torch.Tensor, weight: torch.Tensor, padding: int = 1) -> torch.Tensor:
    return F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), weight, padding=padding)


WAYS = {"naive": naive, "phases": phases, "deconv": up2_conv}


def _fwd_bwd(fn, x: torch.Tensor, w: torch.Tensor) -> None:
    y = fn(x, w, 1)
    y.backward(torch.ones_like(y))


def _interleaved(jobs: dict, reps: int) -> dict[str, float]:
    """Median seconds of each job, run round-robin ``reps`` times after one warm-up each."""
    for job in jobs.values():
        job()
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(reps):
        for k, job in jobs.items():
            t = time.perf_counter()
            job()
            times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def gemm_gflops(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / _interleaved({"mm": lambda: a @ b}, reps)["mm"] / 1e9


def step_job(way: str):
    """A paper-resnet local step (class-conditional, batch 64) with ``way`` as the up-conv."""
    from prism_edge.adam import Adam
    from prism_edge.features import make_feature_map
    from prism_edge.masked import masked_layers, set_mode
    from prism_edge.stats import DataStats, mmd_loss

    gen = architectures.build_generator("paper-resnet", 42, {"classes": 10})
    fm = make_feature_map(DEFAULT_FEATURES, gen.out_shape, 0, 8192)
    dim = fm(torch.zeros(1, *gen.out_shape)).shape[1]
    stats = DataStats(torch.zeros(10, dim), 1, class_probs=torch.full((10,), 0.1))
    labels = stats.batch_labels(64)
    set_mode(gen, "sample", "ste")
    opt = Adam([m.scores for m in masked_layers(gen)], 0.1, (0.5, 0.999))

    def loss() -> torch.Tensor:
        return mmd_loss(fm(gen(torch.randn(64, gen.nz), labels)), stats, "unbiased", labels)

    def job() -> None:
        architectures.up2_conv = WAYS[way]  # run_fused looks the function up at call time
        try:
            value = loss()
            opt.zero_grad()
            value.backward()
            opt.step()
        finally:
            architectures.up2_conv = up2_conv
    return job, loss


def step_gflop(loss_fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss_fn().backward()
    return counter.get_total_flops() / 1e9


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=8, help="timed rounds of each job (default 8)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for cin, cout, h in ((512, 256, 4), (256, 128, 8), (128, 64, 16)):
        x = torch.randn(64, cin, h, h, requires_grad=True)
        w = torch.randn(cout, cin, 3, 3, requires_grad=True)
        t = _interleaved({k: (lambda f=f, x=x, w=w: _fwd_bwd(f, x, w)) for k, f in WAYS.items()},
                         args.reps)
        rows.append([f"{cin} -> {cout}, {h}x{h} -> {2 * h}x{2 * h}",
                     *(round(1000 * t[k], 1) for k in WAYS),
                     round(t["phases"] / t["deconv"], 2), round(t["naive"] / t["deconv"], 2)])
    jobs, loss_fn = {}, None
    for way in WAYS:
        jobs[way], loss_fn = step_job(way)
    t = _interleaved(jobs, args.reps)
    rows.append(["whole paper-resnet step (s)", *(round(t[k], 3) for k in WAYS),
                 round(t["phases"] / t["deconv"], 2), round(t["naive"] / t["deconv"], 2)])
    gflop, peak = step_gflop(loss_fn), gemm_gflops()
    report.write(
        "upsample_conv", "Nearest-upsample + 3x3 conv: naive, four phases, one transposed conv",
        report.table(["shape (batch 64, forward + backward)", "naive ms", "phases ms",
                      "deconv ms", "phases / deconv", "naive / deconv"], rows),
        f"Median of {args.reps} interleaved rounds, {args.threads} threads. The step rows are "
        f"paper-resnet local steps (class-conditional, batch 64, {DEFAULT_FEATURES}) with each "
        f"up-conv. A step with deconv does {gflop:.1f} GFLOP (torch's flop counter, forward + "
        f"backward); this machine multiplies 2048x2048 matrices at {peak:.0f} GFLOP/s, so even "
        f"at that speed a step takes {gflop / peak:.2f} s (goal 0.5 s); the deconv step runs "
        f"at {gflop / t['deconv']:.0f} GFLOP/s ({gflop / t['deconv'] / peak:.0%} of it).")


if __name__ == "__main__":
    report.run_main(main)
