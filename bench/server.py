"""Server aggregation (unpack, average, MADA) of K clients' masks for paper-resnet.

Run: python -m bench.server [--quick]
Each K runs in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from . import report

PROBE = """
import json, sys, time
from prism_edge.memory import peak_rss_mb
import numpy as np
from prism_edge import server as srv
from prism_edge.architectures import build_generator
from prism_edge.config import ServerConfig
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
k = int(sys.argv[1])
n = build_generator("paper-resnet").num_masked
rng = np.random.default_rng(0)
base = rss()
one = np.packbits(rng.random(n) < 0.5)
uploads = {str(i): np.roll(one, i) for i in range(k)}  # distinct masks, made cheaply
held = rss()
cfg = ServerConfig()
state = srv.init_state(n, cfg)
t = time.perf_counter()
res = srv.aggregate(state, uploads, cfg, np.random.default_rng(1))
dt = time.perf_counter() - t
peak = peak_rss_mb()
print(json.dumps({"n": n, "k": k, "seconds": dt, "peak_mb": peak, "uploads_mb": held - base,
                  "accepted": len(res.accepted)}))
"""


def main(argv: list[str] | None = None) -> list[list]:
    """Run, write the table, return goal rows [benchmark, measure, value, goal, met]."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="K = 10, 100 only")
    args = ap.parse_args(argv)
    ks = (10, 100) if args.quick else (10, 100, 1000)
    rows, per_client = [], []
    for k in ks:
        out = subprocess.run([sys.executable, "-c", PROBE, str(k)], capture_output=True, text=True,
                             check=True).stdout
        r = json.loads(out)
        per_client.append(r["seconds"] / k)
        goal = "yes" if k != 100 or r["seconds"] <= 1.0 else "no"
        rows.append([k, f"{r['n']:,}", round(r["seconds"], 3), round(1000 * r["seconds"] / k, 2),
                     round(r["peak_mb"]), round(r["uploads_mb"]), goal])
    # growth between the two largest K relative to K's growth (1.0 = linear); the smallest K is
    # dominated by fixed costs and noise
    linear = (per_client[-1] * ks[-1]) / (per_client[-2] * ks[-2]) / (ks[-1] / ks[-2])
    report.write("server", "Server aggregation scaling (paper-resnet)",
                 report.table(["K clients", "masked weights", "seconds", "ms per client",
                               "peak RSS MB", "of which uploads held MB", "<= 1 s at K=100 (goal)"],
                              rows),
                 f"Unpack + integer count + clip + logit + MADA (two mask samples), one process per "
                 f"K. Time grows {linear:.2f}x as fast as K from K={ks[-2]} to K={ks[-1]} (1.0 = "
                 f"linear).")
    r100 = next(r for r in rows if r[0] == 100)
    return [["server", "aggregate K=100 paper-resnet masks", f"{r100[2]} s", "<= 1 s", r100[6]],
            ["server", f"time growth / K growth, K={ks[-2]}..{ks[-1]}", f"{linear:.2f}",
             "<= 1 (linear)", "yes" if linear <= 1.1 else "no"]]


if __name__ == "__main__":
    main()
