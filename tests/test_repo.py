import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci_last = [ln for ln in (REPO / ".ci/run").read_text().splitlines() if ln.strip()][-1]
    assert ci_last in (REPO / "README.md").read_text()


def test_ruff_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
