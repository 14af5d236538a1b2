"""Every benchmark in one command: python -m bench [--quick]

Prints one summary table and writes bench/results/summary.md; each row states its goal and
whether it is met. The federated quality study (python -m bench.quality federated, about 40
minutes) runs on its own and is linked from the summary.
"""

from __future__ import annotations

import argparse
import time

from . import comm, device, export, flower, profile_step, quickstart, report, seeded, server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="smaller runs, under 3 minutes; results go to bench/results/quick/")
    args = ap.parse_args()
    q = ["--quick"] if args.quick else []
    if args.quick:  # quick figures never overwrite the full ones
        report.RESULTS = report.RESULTS / "quick"
    t0 = time.time()
    goals: list[list] = []
    steps = [("seeded", lambda: seeded.main([])), ("export", lambda: export.main(q)),
             ("server", lambda: server.main(q)), ("device", lambda: device.main(q)),
             ("profile_step", lambda: profile_step.main(q)),
             ("comm", lambda: comm.main(q or ["--rounds", "8", "--local-steps", "30"])),
             ("flower", lambda: flower.main(q))]
    if not args.quick:
        steps.append(("quickstart", lambda: quickstart.main([])))
    for name, fn in steps:
        t = time.time()
        print(f"== {name}", flush=True)
        goals += fn()
        print(f"   {time.time() - t:.0f} s", flush=True)
    minutes = (time.time() - t0) / 60
    report.write("summary", "prism-edge benchmark summary",
                 report.table(["benchmark", "measure", "value", "goal", "met"], goals),
                 f"All rows computed in this run ({minutes:.1f} minutes). Details: the other files "
                 "in bench/results/. Quality (FID-LeNet vs targets): quality.md.")


if __name__ == "__main__":
    report.run_main(main)
