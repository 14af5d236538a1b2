"""Bytes on the wire and Flower's per-round overhead, from a real loopback deployment.

Run: python -m bench.flower [--quick]
One SuperLink and three SuperNodes on 127.0.0.1, `flwr run` of this project; sizes are the
serialized message contents the server logged per client and round.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from prism_edge.flower.loopback import Deployment

from . import report


def main(argv: list[str] | None = None) -> list[list]:
    """Run, write the table, return goal rows [benchmark, measure, value, goal, met]."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 rounds of 5 local steps")
    ap.add_argument("--data-dir", default=os.environ.get("PRISM_EDGE_DATA", "../shared/data"))
    args = ap.parse_args(argv)
    rounds, steps = (2, 5) if args.quick else (3, 50)
    with tempfile.TemporaryDirectory() as d:
        dep = Deployment(Path(d), Path(args.data_dir).resolve())
        try:
            dep.start_superlink()
            for pid in range(3):
                dep.start_node(pid)
            out = Path(d) / "out"
            p = dep.run(f"num-clients=3 rounds={rounds} local-steps={steps} min-clients=3 "
                        f"out-dir='{out}'", timeout=900)
            if p.returncode != 0:
                raise SystemExit(dep.logs())
            rows_in = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        finally:
            dep.stop()
    n = 533_504
    rows = []
    for r in rows_in:
        for c in r["per_client"].values():
            rows.append([r["round"], c["partition"], f"{c['sent']:,}", f"{c['received']:,}",
                         round(8 * c["sent"] / n, 4), round(8 * c["received"] / n, 3),
                         round(c["sent"] / ((n + 7) // 8), 4), round(c["sent"] / (4 * n), 4),
                         round(c["peak_rss_mb"]),
                         {0: "lean", 1: "flwr-clientapp"}.get(c.get("stock_launcher"), "?")])
    walls = [r["seconds"] for r in rows_in]
    compute = [max(c.get("train_seconds", 0.0) for c in r["per_client"].values()) for r in rows_in]
    overhead = [w - c for w, c in zip(walls, compute)]
    notes = (f"mnist-small ({n:,} masked weights = {(n + 7) // 8:,} bytes as bits, {4 * n:,} bytes "
             f"as fp32), {rounds} rounds x {steps} local steps, 3 SuperNodes, 2 CPU cores shared. "
             f"Per round: wall time {', '.join(f'{w:.1f}' for w in walls)} s; slowest client's "
             f"work inside its ClientApp (data statistics in round 1, local steps, packing) "
             f"{', '.join(f'{c:.1f}' for c in compute)} s; Flower's overhead beyond computation "
             f"(ClientApp process start and imports, message transport, server aggregation) "
             f"{', '.join(f'{o:.1f}' for o in overhead)} s, {np.mean(overhead):.1f} s on average.")
    report.write("flower", "Flower deployment: bytes on the wire per client and round",
                 report.table(["round", "partition", "uplink bytes", "downlink bytes",
                               "uplink bits/weight", "downlink bits/weight",
                               "uplink / (weights/8)", "uplink / fp32 weights", "client peak RSS MB",
                               "ClientApp command"],
                              rows), notes)
    worst = max(float(r[6]) for r in rows)
    return [["flower", "uplink bytes / (masked weights / 8), worst client-round", f"{worst:.4f}",
             "<= 1 (coded uplink, below 1 bit/weight)", "yes" if worst <= 1.01 else "no"],
            ["flower", "mean round wall time / Flower overhead",
             f"{np.mean(walls):.1f} s / {np.mean(overhead):.1f} s", "-", "-"]]


if __name__ == "__main__":
    report.run_main(main)
