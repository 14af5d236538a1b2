"""A real Flower deployment on 127.0.0.1 (tests, benchmarks): one SuperLink, N SuperNodes on free
ports, `flwr run` of this project. Every process is started in its own session and can be killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    def __init__(self, tmp: Path, data_dir: Path):
        self.tmp, self.data_dir = tmp, Path(data_dir).resolve()
        self.home = tmp / "flwr-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "FLWR_HOME": str(self.home), "PRISM_EDGE_DATA": str(data_dir),
                    "FLWR_DISABLE_UPDATE_CHECK": "1", "OMP_NUM_THREADS": "1"}
        self.port = None

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                             start_new_session=True, cwd=self.tmp)
        self.procs[name] = p
        return p

    def start_superlink(self) -> None:
        self.port = free_port()
        (self.home / "config.toml").write_text(
            f'[superlink]\ndefault = "loop"\n\n[superlink.loop]\n'
            f'address = "127.0.0.1:{self.port}"\ninsecure = true\n')
        self._spawn("superlink", [str(BIN / "flower-superlink"), "--insecure",
                                  "--disable-runtime-dependency-installation",
                                  "--database", str(self.tmp / "state.db"),
                                  "--port", str(self.port),
                                  "--health-server-address", f"127.0.0.1:{free_port()}"])
        self.wait_port(self.port)

    def start_node(self, pid: int, extra: str = "", stock_clientapp: bool = False,
                   device: str | None = None) -> str:
        """A device: `prism-edge device join` (which execs flower-supernode)."""
        name = f"node{pid}"
        self._spawn(name, [str(BIN / "prism-edge"), "device", "join", "--superlink",
                           f"127.0.0.1:{self.port}", "--partition-id", str(pid), "--threads", "1",
                           "--port", str(free_port()), "--node-config", extra]
                    + (["--stock-clientapp"] if stock_clientapp else [])
                    + (["--device", device] if device else []))
        return name

    def wait_port(self, port: int, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"port {port} did not open")

    def run(self, run_config: str, timeout: float = 170, wait: bool = True):
        cmd = [str(BIN / "flwr"), "run", str(REPO), "loop", "--stream", "--run-config", run_config]
        log = open(self.tmp / "flwr-run.log", "ab")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                             start_new_session=True, cwd=REPO)
        self.procs[f"run{len(self.procs)}"] = p
        if wait:
            p.wait(timeout=timeout)
        return p

    def kill(self, name: str) -> None:
        p = self.procs.get(name)
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)

    def text(self) -> str:
        """Every log in full (for searching)."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("*.log")))

    def logs(self) -> str:
        """The tail of every log (for failure messages)."""
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.tmp.glob("*.log")))
