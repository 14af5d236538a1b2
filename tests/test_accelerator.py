"""--device: a GPU trains the same functions; a device that cannot be used is a one-line error."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from prism_edge.bitsfile import read_bits
from prism_edge.config import ClientConfig, RunConfig
from prism_edge.train import run

TINY = ["--clients", "2", "--rounds", "1", "--local-steps", "2", "--batch", "8",
        "--n-features", "128", "--split", "iid", "--sample-every", "0"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "prism_edge.cli", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("device, says", [("tpu", "unknown device 'tpu'"),
                                          ("cuda:7", "cuda")])
def test_an_unusable_device_is_one_line_and_writes_nothing(tmp_path, data_root, device, says):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    out = tmp_path / "run"
    r = cli("train", "--data-dir", str(data_root), *TINY, "--device", device, "-o", str(out))
    assert r.returncode != 0
    assert says in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists()


@pytest.mark.parametrize("device, says", [("tpu", "unknown device 'tpu'"),
                                          ("cuda:7", "cuda")])
def test_device_join_refuses_an_unusable_device_before_starting_the_node(device, says):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    # nothing listens on port 9: a node that started anyway would hang, not exit at once
    r = cli("device", "join", "--superlink", "127.0.0.1:9", "--partition-id", "0",
            "--device", device)
    assert r.returncode != 0
    assert says in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_device_join_passes_the_device_in_the_node_config():
    from device_client.join import supernode_command

    cmd = supernode_command("127.0.0.1:9092", 3, None, 2, None, device="cuda:0")
    assert cmd[cmd.index("--node-config") + 1] == 'partition-id=3 threads=2 device="cuda:0"'
    cmd = supernode_command("127.0.0.1:9092", 3, None, None, None)
    assert "device" not in cmd[cmd.index("--node-config") + 1]


def test_the_cpu_device_is_the_default_run(tmp_path, data_root):
    """--device cpu is what train has always done: the same final mask, byte for byte."""
    a, b = tmp_path / "default", tmp_path / "cpu"
    assert cli("train", "--data-dir", str(data_root), *TINY, "-o", str(a)).returncode == 0
    r = cli("train", "--data-dir", str(data_root), *TINY, "--device", "cpu", "-o", str(b))
    assert r.returncode == 0, r.stderr
    assert (a / "final.bits").read_bytes() == (b / "final.bits").read_bytes()
    assert json.loads((b / "summary.json").read_text())["device"] == "cpu"


def test_resuming_on_another_device_warns_that_the_draws_change(tmp_path, data_root):
    out = tmp_path / "run"
    assert cli("train", "--data-dir", str(data_root), *TINY, "-o", str(out)).returncode == 0
    r = cli("train", "--data-dir", str(data_root), *TINY, "-o", str(out), "--resume")
    assert r.returncode == 0 and "warning" not in r.stderr  # same device: silent
    ck = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ck["device"] == "cpu"
    ck["device"] = "cuda"  # as a run started on a GPU leaves it
    torch.save(ck, out / "checkpoint.pt")
    args = list(TINY)
    args[args.index("--rounds") + 1] = "2"  # one more round
    r = cli("train", "--data-dir", str(data_root), *args, "-o", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert "started on 'cuda' and resumes on 'cpu'" in r.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("mode, arch", [("mask", "mnist-small"), ("dense", "mnist-small"),
                                        ("mask", "mnist-resize-deep")])
def test_a_gpu_run_trains_and_writes_what_a_cpu_run_does(tmp_path, data_root, mode, arch):
    # mnist-resize-deep: its upsample + conv builds a transposed-conv kernel from a constant
    # that must follow the weights to the GPU
    cfg = RunConfig(data_dir=str(data_root), clients=2, rounds=3, split="iid", sample_every=1,
                    mode=mode, arch=arch, client=ClientConfig(local_steps=20, batch=16, n_features=512,
                                                   lr=0.1 if mode == "mask" else 1e-2))
    summary = run(cfg, tmp_path, progress=False, device="cuda")
    assert summary["device"].startswith("cuda:")
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss_last"] < rows[0]["loss_first"]
    assert (tmp_path / "samples" / "round_0003.png").is_file()
    if mode == "mask":
        mask = read_bits(tmp_path / "final.bits").mask()
        assert 0.05 < float(np.mean(mask)) < 0.95
    # resume on the GPU: the checkpoint's optimiser state (read to the CPU) moves back
    cfg.rounds = 4
    run(cfg, tmp_path, resume=True, progress=False, device="cuda")
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4
