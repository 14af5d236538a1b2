"""A lean stand-in for Flower's ``flwr-clientapp`` command, for devices.

A SuperNode runs each ClientApp in a fresh process started as ``flwr-clientapp`` (found on PATH).
Flower's own command lives in the ``flwr.supernode.cli`` package, whose import also loads the
SuperNode's own machinery (its SQLAlchemy / Alembic state store): about 30 MB of resident memory
a ClientApp never uses (bench/results/device.md). This command takes the same
arguments and calls the same Flower runtime (``run_clientapp``), without that import.
``prism-edge device join`` puts it first on the node's PATH (``shim_dir``); pass
``--stock-clientapp`` to run Flower's command instead.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

COMMAND = "flwr-clientapp"  # the name Flower's SuperExec starts a ClientApp process by


def main(argv: list[str] | None = None) -> None:
    from prism_edge.memory import lean_malloc

    lean_malloc()  # before the imports, so their allocations follow the same policy
    import argparse

    from flwr.common.args import add_args_flwr_app_common, try_obtain_flwr_app_token
    from flwr.supercore.tls import validate_and_resolve_root_certificates
    from flwr.supernode.runtime.run_clientapp import run_clientapp

    parser = argparse.ArgumentParser(
        description="Run a Flower ClientApp (prism-edge's lean flwr-clientapp)")
    parser.add_argument("--runtime-api-address", required=True,
                        help="address of the SuperNode's runtime API (HOST:PORT)")
    add_args_flwr_app_common(parser=parser)
    args = parser.parse_args(argv)
    run_clientapp(
        runtime_api_address=args.runtime_api_address,
        token=try_obtain_flwr_app_token(args),
        insecure=args.insecure,
        certificates=validate_and_resolve_root_certificates(args.root_certificates,
                                                             args.insecure),
        parent_pid=args.parent_pid,
        runtime_dependency_install=args.runtime_dependency_install,
    )


def shim_dir(root: Path | None = None) -> Path:
    """A directory holding an executable ``flwr-clientapp`` that runs ``main`` with this Python.

    Kept in prism-edge's cache folder (``$PRISM_EDGE_CACHE``, else ~/.cache/prism-edge), not in
    /tmp, which some systems mount without exec rights; one folder per Python interpreter, so
    nodes of two environments on one machine never run each other's. Written atomically.
    """
    import hashlib

    from prism_edge.data import cache_dir

    tag = hashlib.sha256(sys.executable.encode()).hexdigest()[:12]
    folder = Path(root or cache_dir()) / "clientapp-bin" / tag
    folder.mkdir(parents=True, exist_ok=True)
    # a shell script, not a "#!python" line: a shebang breaks on paths with spaces
    text = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m device_client.clientapp "$@"\n'
    target = folder / COMMAND
    if not target.exists() or target.read_text() != text:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".shim-")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    return folder


if __name__ == "__main__":
    main()
