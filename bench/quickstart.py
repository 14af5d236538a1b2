"""Wall time and peak RSS of the README's main command (examples/quickstart.sh).

Run: python -m bench.quickstart
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time
from pathlib import Path

from . import report

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> list[list]:
    """Run, write the table, return goal rows [benchmark, measure, value, goal, met]."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.parse_args(argv)
    t = time.time()
    subprocess.run(["bash", str(REPO / "examples" / "quickstart.sh")], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.time() - t
    # the largest resident size of any process the script ran (train, export, evaluate, ...)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows = [["bash examples/quickstart.sh", round(wall / 60, 2), round(peak)]]
    report.write("quickstart", "README main command", report.table(
        ["command", "wall minutes", "peak RSS MB (largest process)"], rows),
        "Includes the (already satisfied) pip installs, the federated run, export, generation "
        "and evaluation; the first run on a machine also trains and caches the LeNet classifier.")
    return [["quickstart", "README main command", f"{wall / 60:.1f} min, {peak:.0f} MB", "-", "-"]]


if __name__ == "__main__":
    report.run_main(main)
