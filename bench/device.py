"""Device budget for the default architecture: local-step and round time, peak RSS while training
and while generating, installed size of the device's dependencies.

Run: python -m bench.device [--quick]
Each measurement runs in a fresh process, as a device would.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from prism_edge.config import DEFAULT_FEATURES

from . import report

TRAIN = """
import json, sys, time
from prism_edge.memory import lean_malloc, peak_rss_mb
lean_malloc()  # as the ClientApp does
if sys.argv[3] == "lean":  # what `device join`'s ClientApp process loads before it trains
    import flwr.supernode.runtime.run_clientapp  # noqa: F401
    import prism_edge.flower.client_app  # noqa: F401
if sys.argv[3] == "stock":  # the same, started by Flower's own flwr-clientapp command
    from flwr.supernode.cli import flwr_clientapp  # noqa: F401
    import prism_edge.flower.client_app  # noqa: F401
import torch
threads, steps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
from prism_edge.client import client_update
from prism_edge.clientdata import feature_map, one_client_stats, run_generator
from prism_edge.config import ClientConfig, RunConfig
cfg = RunConfig(clients=10, split="shards:4", client=ClientConfig(local_steps=steps))
gen = run_generator(cfg)
fm = feature_map(cfg, gen)
stats = one_client_stats(cfg, gen, fm, 0)
t = time.perf_counter()
res = client_update(gen, fm, stats, torch.zeros(gen.num_masked), cfg.client, None, 1)
dt = time.perf_counter() - t
print(json.dumps({"round_s": dt, "step_s": dt / steps,
                  "peak_mb": peak_rss_mb()}))
"""

GENERATE = """
import json, sys, time
from prism_edge.memory import peak_rss_mb
from device_client.generate import OnnxGenerator
g = OnnxGenerator(sys.argv[1], threads=int(sys.argv[2]))
t = time.perf_counter()
g.generate(1, 0)
print(json.dumps({"gen_s": time.perf_counter() - t,
                  "peak_mb": peak_rss_mb()}))
"""


def package_mb(name: str) -> float:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return 0.0
    root = Path(spec.origin).parent
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20


def probe(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[list]:
    """Run, write the table, return goal rows [benchmark, measure, value, goal, met]."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="20 local steps instead of 100")
    args = ap.parse_args(argv)
    steps = 20 if args.quick else 100
    import tempfile

    import numpy as np

    from exporters.onnx_export import export
    from prism_edge.architectures import build_generator
    from prism_edge.bitsfile import write_bits
    from prism_edge.masked import layer_sizes

    gen = build_generator("mnist-small", 42, {"classes": 10})  # as trained by default on MNIST
    rows = []
    with tempfile.TemporaryDirectory() as d:
        bits, model = Path(d) / "m.bits", Path(d) / "g.onnx"
        write_bits(bits, (np.arange(gen.num_masked) % 2).astype(np.uint8), gen.describe(),
                   layer_sizes(gen), 42)
        export(bits, 42, model)
        for threads in (1, 2):
            alone = probe(TRAIN, str(threads), str(steps), "plain")
            tr = probe(TRAIN, str(threads), str(steps), "lean")
            # (skipped by --quick, which has a 3-minute budget)
            stock = {"peak_mb": float("nan")} if args.quick else probe(
                TRAIN, str(threads), str(steps), "stock")
            ge = probe(GENERATE, str(model), str(threads))
            rows.append([threads, round(tr["step_s"], 3), round(tr["round_s"], 1),
                         round(alone["peak_mb"]),
                         "-" if args.quick else round(stock["peak_mb"]), round(tr["peak_mb"]),
                         "yes" if tr["peak_mb"] <= 400 else "no",
                         round(1000 * ge["gen_s"], 1), round(ge["peak_mb"]),
                         "yes" if ge["peak_mb"] <= 150 else "no"])
    sizes = {n: package_mb(n) for n in ("onnxruntime", "numpy", "torch", "flwr")}
    gen_deps = sizes["onnxruntime"] + sizes["numpy"]
    train_deps = gen_deps + sizes["torch"] + sizes["flwr"]
    step1 = rows[0][1]
    notes = (
        f"mnist-small ({gen.num_masked:,} masked weights), one client of 10 (shards:4, about 6,000 "
        f"MNIST images), batch 64, {steps} local steps per round, 8,192 features "
        f"({DEFAULT_FEATURES}). Training "
        f"process: what the ClientApp does in round 1 (build the generator and feature map, load "
        f"the data, keep this client's partition, compute its statistics, run the local steps), "
        f"in a fresh process; 'alone' imports only torch and prism-edge; 'stock flwr-clientapp' "
        f"first imports what Flower's own ClientApp command loads (its runtime plus the "
        f"SuperNode's state store: SQLAlchemy, Alembic); 'device join' imports what the "
        f"ClientApp process started by `prism-edge device join` loads (device_client/clientapp.py: "
        f"the same Flower runtime without the SuperNode's state store), which is what a device "
        f"runs and what the goal applies to (bench/results/flower.md has the per-round peak of "
        f"real ClientApps in a loopback deployment). Step times are those of the 'device join' "
        f"process, whose allocator returns freed memory at once (prism_edge/memory.py; it costs "
        f"time, see the note in that module). "
        f"Installed size (site-packages): generation needs onnxruntime + numpy = {gen_deps:.0f} MB; "
        f"training adds torch ({sizes['torch']:.0f} MB) and flwr ({sizes['flwr']:.0f} MB), "
        f"{train_deps:.0f} MB in all.\n\n"
        f"**Raspberry Pi 4, by extrapolation only (not measured):** its Cortex-A72 cores run "
        f"float32 convolutions roughly 5-10x slower per core than this x86 server core, so one "
        f"local step would take about {5 * step1:.1f}-{10 * step1:.1f} s with 1 thread and a "
        f"100-step round about {500 * step1 / 60:.1f}-{1000 * step1 / 60:.1f} minutes; memory does "
        f"not scale with speed, so the RSS figures above should hold within the Pi's 1-4 GB.")
    report.write("device", "Device budget (default architecture)",
                 report.table(["threads", "s per local step", "s per round",
                               "train peak RSS MB, alone", "... stock flwr-clientapp",
                               "... device join (ClientApp process)",
                               "<= 400 MB (goal)", "generate 1 image ms", "generate peak RSS MB",
                               "<= 150 MB (goal)"], rows), notes)
    return [g for r in rows for g in (
        ["device", f"train peak RSS (device join ClientApp), {r[0]} thread(s)", f"{r[5]} MB",
         "<= 400 MB", r[6]],
        ["device", f"generate peak RSS, {r[0]} thread(s)", f"{r[8]} MB", "<= 150 MB", r[9]])]


if __name__ == "__main__":
    report.run_main(main)
