"""Writing a benchmark table with machine, date, versions and command."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.machine()}"


def versions() -> str:
    import numpy
    import torch

    parts = [f"python {platform.python_version()}", f"torch {torch.__version__}",
             f"numpy {numpy.__version__}"]
    try:
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)




def table(headers: list[str], rows: list[list]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line() -> str:
    """How this process was started, as one can type it in the repository root: ``python -m
    bench.quality ...`` rather than the module's absolute path on the machine that ran it."""
    args = list(sys.argv)
    script = Path(args[0]).resolve() if args and args[0] else None
    if script is not None and script.parent == RESULTS.parent and script.suffix == ".py":
        args[0:1] = ["-m", "bench" if script.stem == "__main__" else f"bench.{script.stem}"]
    return " ".join([Path(sys.executable).name, *args])


def write(name: str, title: str, body: str, notes: str = "") -> Path:
    """Print ``body`` and write it with provenance to bench/results/<name>.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    head = (f"# {title}\n\n- machine: {machine()}\n- date: {now:%Y-%m-%d %H:%M UTC}\n"
            f"- versions: {versions()}\n- command: `{command_line()}`\n")
    text = head + "\n" + body + "\n" + (f"\n{notes}\n" if notes else "")
    path = RESULTS / f"{name}.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    print(body)
    return path


def run_main(main) -> None:
    """A benchmark's entry point: a user error (missing dataset, bad file) is one line, exit 2."""
    from prism_edge.errors import PrismError

    try:
        main()
    except PrismError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
