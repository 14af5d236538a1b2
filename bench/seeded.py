"""Time to regenerate all frozen weights of each architecture from the seed (numpy and torch).

Run: python -m bench.seeded
"""

from __future__ import annotations

import time

import torch

from prism_edge.architectures import ARCHITECTURES, build_generator
from prism_edge.masked import layer_sizes, masked_layers
from prism_edge.seeded import signs_numpy

from . import report


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(repeats: int = 5) -> list[list]:
    rows = []
    for name in ARCHITECTURES:
        gen = build_generator(name)
        sizes = layer_sizes(gen)
        t_np = best_of(lambda s=sizes: [signs_numpy(42, i, n) for i, n in enumerate(s)], repeats)
        t_torch = best_of(lambda g=gen: [m.regenerate(42) for m in masked_layers(g)], repeats)
        rows.append([name, f"{sum(sizes):,}", round(t_np * 1000, 1), round(t_torch * 1000, 1),
                     round(t_torch / t_np, 2), "yes" if max(t_np, t_torch) < 1.0 else "no"])
    return rows


def main(argv: list[str] | None = None) -> list[list]:
    """Run, write the table, return goal rows [benchmark, measure, value, goal, met]."""
    torch.set_num_threads(2)
    rows = run()
    report.write("seeded", "Seeded weight regeneration",
                 report.table(["architecture", "masked weights", "numpy ms", "torch ms",
                               "torch/numpy", "< 1 s (goal)"], rows),
                 "Best of 5 runs, seed 42, 2 torch threads. Includes hashing and scaling, "
                 "not model construction.")
    return [["seeded", f"regenerate {r[0]} (numpy / torch)", f"{r[2]} / {r[3]} ms", "< 1 s",
             r[5]] for r in rows]


if __name__ == "__main__":
    report.run_main(main)
