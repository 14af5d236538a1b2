"""Joining a federation: start a Flower SuperNode that runs the prism-edge ClientApp."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from prism_edge.errors import PrismError

from .clientapp import shim_dir


def supernode_command(superlink: str, partition_id: int, data_dir: str | None, threads: int | None,
                      max_memory_mb: int | None, port: int = 9094,
                      root_certificates: str | None = None, extra_config: str = "",
                      device: str | None = None) -> list[str]:
    """The flower-supernode command line for this device."""
    exe = shutil.which("flower-supernode") or str(Path(sys.executable).with_name("flower-supernode"))
    if not Path(exe).exists():
        raise PrismError("flower-supernode not found; install the Flower extra: "
                         "pip install 'prism-edge[fl]'")
    cfg = [f"partition-id={partition_id}"]
    if data_dir:
        cfg.append(f'data-dir="{Path(data_dir).resolve()}"')
    if threads:
        cfg.append(f"threads={threads}")
    if max_memory_mb:
        cfg.append(f"max-memory-mb={max_memory_mb}")
    if device:
        cfg.append(f'device="{device}"')
    if extra_config:
        cfg.append(extra_config)
    cmd = [exe, "--superlink", superlink, "--port", str(port), "--node-config", " ".join(cfg)]
    cmd += ["--root-certificates", root_certificates] if root_certificates else ["--insecure"]
    return cmd


def join(superlink: str, partition_id: int, data_dir: str | None, threads: int | None,
         max_memory_mb: int | None, port: int, root_certificates: str | None,
         extra_config: str = "", stock_clientapp: bool = False, device: str | None = None) -> None:
    """Replace this process with the SuperNode (it runs until stopped)."""
    if device:
        from prism_edge.accelerator import resolve_device

        resolve_device(device)  # an unusable device fails here, not in every round's ClientApp
    cmd = supernode_command(superlink, partition_id, data_dir, threads, max_memory_mb, port,
                            root_certificates, extra_config, device)
    env = dict(os.environ)
    # the node spawns flower-superexec / flwr-clientapp: they must be on PATH
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if not stock_clientapp:  # the lean flwr-clientapp comes first (device_client/clientapp.py)
        env["PATH"] = str(shim_dir()) + os.pathsep + env["PATH"]
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if env.get("PRISM_EDGE_DATA"):
        # the ClientApp runs elsewhere than this shell's directory: pass an absolute path
        env["PRISM_EDGE_DATA"] = str(Path(env["PRISM_EDGE_DATA"]).resolve())
    os.execve(cmd[0], cmd, env)
