"""ONNX export: size, load time, latency vs torch eager, peak RSS of a generate-only process.

Run: python -m bench.export [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from device_client.generate import OnnxGenerator
from exporters.onnx_export import export
from prism_edge.architectures import ARCHITECTURES, build_generator
from prism_edge.bitsfile import write_bits
from prism_edge.masked import layer_sizes, set_flat_mask

from . import report

RSS_PROBE = """
import sys
from prism_edge.memory import peak_rss_mb
from device_client.generate import OnnxGenerator
g = OnnxGenerator(sys.argv[1], threads=1)
g.generate(1, 0)
print(peak_rss_mb())
"""


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def bench_arch(name: str, tmp: Path, repeats: int) -> list:
    gen = build_generator(name, 42)
    mask = (np.random.default_rng(0).random(gen.num_masked) < 0.5).astype(np.uint8)
    bits = tmp / f"{name}.bits"
    write_bits(bits, mask, gen.describe(), layer_sizes(gen), 42)
    set_flat_mask(gen, mask)
    compact, dense = tmp / f"{name}.onnx", tmp / f"{name}.dense.onnx"
    export(bits, 42, compact)
    export(bits, 42, dense, dense=True)
    t = time.perf_counter()
    OnnxGenerator(compact, threads=1)
    load_s = time.perf_counter() - t
    row = [name, f"{gen.num_masked:,}", f"{compact.stat().st_size:,}",
           round(8 * compact.stat().st_size / gen.num_masked, 3), f"{dense.stat().st_size:,}",
           round(load_s * 1000)]
    for threads in (1, 2):
        g = OnnxGenerator(compact, threads=threads)
        torch.set_num_threads(threads)
        for n in (1, 64):
            z = np.random.default_rng(0).standard_normal((n, gen.nz)).astype(np.float32)
            zt = torch.from_numpy(z)
            t_ort = median_time(lambda g=g, z=z: g.run(z), repeats)
            with torch.no_grad():
                t_torch = median_time(lambda zt=zt: gen(zt), repeats)
            row += [f"{t_ort * 1000:.2f} / {t_torch * 1000:.2f}", round(t_ort / t_torch, 2)]
    rss = subprocess.run([sys.executable, "-c", RSS_PROBE, str(compact)], capture_output=True,
                         text=True, check=True).stdout.strip()
    row.append(round(float(rss)))
    return row


def main(argv: list[str] | None = None) -> list[list]:
    """Run, write the table, return goal rows [benchmark, measure, value, goal, met]."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args(argv)
    repeats = 5 if args.quick else 20
    with tempfile.TemporaryDirectory() as d:
        rows = [bench_arch(name, Path(d), repeats) for name in ARCHITECTURES]
    headers = ["architecture", "masked weights", "ONNX bytes", "bits/weight", "dense ONNX bytes",
               "load ms (1 thr)"]
    for threads in (1, 2):
        for n in (1, 64):
            headers += [f"ms ort / torch, n={n}, {threads} thr", "ratio"]
    headers.append("peak RSS MB (load + generate 1, ort only)")
    report.write("export", "ONNX export and on-device generation", report.table(headers, rows),
                 f"Median of {repeats} runs after a warm-up; torch eager in the same process and "
                 "run. ratio = onnxruntime / torch (goal for n=1: <= 0.5). Peak RSS from a fresh "
                 "process that imports only onnxruntime + numpy, loads the model and generates "
                 "one image.")
    goals = []
    for r in rows:
        n = int(r[1].replace(",", ""))
        size = int(r[2].replace(",", ""))
        goals.append(["export", f"{r[0]} ONNX bytes", f"{size:,}", f"<= {1.03 * n / 8 + 32768:,.0f}",
                      "yes" if size <= 1.03 * n / 8 + 32768 else "no"])
        goals.append(["export", f"{r[0]} ort/torch latency, 1 image, 1 thread", r[7], "<= 0.5",
                      "yes" if r[7] <= 0.5 else "no"])
    return goals


if __name__ == "__main__":
    report.run_main(main)
