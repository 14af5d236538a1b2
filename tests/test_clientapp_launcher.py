"""device_client/clientapp.py: the lean flwr-clientapp that `device join` puts on the node's PATH.
Its real use (a SuperNode starting it each round) is covered by tests/test_flower.py."""

import subprocess
import sys

from device_client.clientapp import COMMAND, shim_dir


def test_shim_is_an_executable_flwr_clientapp_for_this_python(tmp_path):
    folder = shim_dir(tmp_path)
    exe = folder / COMMAND
    assert exe.name == "flwr-clientapp" and exe.stat().st_mode & 0o111
    assert sys.executable in exe.read_text()
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--runtime-api-address" in out.stdout and "--token" in out.stdout
    exe.write_text("stale")
    shim_dir(tmp_path)  # rewritten (atomically) when it is not this interpreter's shim
    assert exe.read_text().startswith("#!") and not list(folder.glob(".shim-*"))


def test_lean_launcher_does_not_load_the_supernode_server_side():
    code = ("import sys; from device_client import clientapp; import flwr.supernode.runtime"
            ".run_clientapp, prism_edge.flower.client_app; "
            "print(sorted(m for m in ('sqlalchemy', 'alembic', 'flwr.supernode.cli')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
