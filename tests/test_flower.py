"""Real Flower processes on 127.0.0.1: SuperLink, SuperNodes, `flwr run` (no simulation engine)."""

import json
import time

import numpy as np
import pytest
import torch

from device_client.generate import OnnxGenerator
from exporters.onnx_export import export
from prism_edge.bitsfile import read_bits
from prism_edge.flower.loopback import Deployment

FAST = "local-steps=3 batch=8 n-features=128"


@pytest.fixture
def deploy(tmp_path, data_root):
    d = Deployment(tmp_path, data_root)
    try:
        yield d
    finally:
        d.stop()  # every process goes, even when the test failed


def rows(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_three_supernodes_two_rounds_then_export_and_generate(deploy, tmp_path):
    deploy.start_superlink()
    for pid in range(3):
        deploy.start_node(pid, device="auto" if pid == 2 else None)  # auto: a GPU if there is one
    out = tmp_path / "out"
    t = time.time()
    p = deploy.run(f"{FAST} num-clients=3 rounds=2 min-clients=3 out-dir='{out}'")
    assert p.returncode == 0 and (out / "final.bits").is_file(), deploy.logs()
    where = "cuda" if torch.cuda.is_available() else "cpu"  # str(torch.device("cuda"))
    assert f"client 2: ClientApp started, local training on {where} (node config " \
           "device='auto')" in deploy.text(), deploy.logs()
    assert "client 0: ClientApp started, local training on cpu (node config " \
           "device='cpu')" in deploy.text(), deploy.logs()
    assert time.time() - t < 170
    r = rows(out)
    assert [x["round"] for x in r] == [1, 2] and all(x["accepted"] == 3 for x in r)
    assert sorted(c["partition"] for c in r[0]["per_client"].values()) == [0, 1, 2]
    n = read_bits(out / "final.bits").total
    for c in r[0]["per_client"].values():
        # what really crossed the wire: the coded mask (default uplink) in a protobuf envelope,
        # well below the 1 bit per weight of a packed mask
        assert 1000 < c["sent"] < 0.6 * (n + 7) // 8
        assert n < c["received"] < n + 2048  # 8-bit global probability
        assert c["peak_rss_mb"] > 0
        assert c["stock_launcher"] == 0  # device join's lean flwr-clientapp ran the ClientApp
    export(out / "final.bits", 42, tmp_path / "g.onnx")
    images = OnnxGenerator(tmp_path / "g.onnx").generate(4, seed=0)
    assert images.shape == (4, 1, 28, 28) and np.isfinite(images).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_nodes_train_their_rounds_on_the_gpu(deploy, tmp_path):
    """`device join --device cuda`: the ClientApp moves the same client_update to the GPU and its
    Adam state comes back to the node's state as numpy."""
    deploy.start_superlink()
    for pid in range(2):
        deploy.start_node(pid, device="cuda")
    out = tmp_path / "out"
    p = deploy.run(f"{FAST} num-clients=2 rounds=3 min-clients=2 out-dir='{out}'")
    assert p.returncode == 0 and (out / "final.bits").is_file(), deploy.logs()
    assert [x["round"] for x in rows(out)] == [1, 2, 3] and all(x["accepted"] == 2 for x in rows(out))
    assert deploy.text().count("local training on cuda") >= 6, deploy.logs()


def test_malformed_upload_is_rejected_and_round_completes(deploy, tmp_path):
    deploy.start_superlink()
    deploy.start_node(0)
    deploy.start_node(1, "inject-fault='malformed-mask'")
    out = tmp_path / "out"
    p = deploy.run(f"{FAST} num-clients=2 rounds=1 min-clients=2 out-dir='{out}'")
    assert p.returncode == 0, deploy.logs()
    (row,) = rows(out)
    assert row["accepted"] == 1 and len(row["rejected"]) == 1
    assert "truncated" in next(iter(row["rejected"].values()))
    assert "rejected upload" in deploy.text()


def test_killed_supernode_does_not_stop_the_run(deploy, tmp_path):
    deploy.start_superlink()
    # node 0 runs its ClientApp through Flower's own flwr-clientapp command
    names = [deploy.start_node(pid, stock_clientapp=pid == 0) for pid in range(3)]
    out = tmp_path / "out"
    # the plain 1-bit uplink travels through Flower here (the other tests use the coded one)
    p = deploy.run(f"local-steps=40 batch=8 n-features=128 num-clients=3 rounds=2 min-clients=3 "
                   f"uplink='packed' round-timeout=25 out-dir='{out}'", wait=False)
    deadline = time.time() + 120
    while time.time() < deadline and "sending the global state" not in deploy.text():
        time.sleep(0.5)
    time.sleep(2)
    deploy.kill(names[2])  # mid-round: its ClientApp is training
    p.wait(timeout=170)
    assert p.returncode == 0 and (out / "final.bits").is_file(), deploy.logs()
    r = rows(out)
    assert r[0]["accepted"] == 2 and len(r[0]["missing"]) == 1
    n = read_bits(out / "final.bits").total
    assert all((n + 7) // 8 < c["sent"] < (n + 7) // 8 + 2048 for c in r[0]["per_client"].values())
    assert {c["partition"]: c["stock_launcher"] for c in r[0]["per_client"].values()} == {0: 1, 1: 0}
    assert "did not answer" in deploy.text()


def test_server_restart_with_resume_continues(deploy, tmp_path):
    deploy.start_superlink()
    for pid in range(2):
        deploy.start_node(pid)
    out = tmp_path / "out"
    p = deploy.run(f"{FAST} num-clients=2 rounds=4 min-clients=2 out-dir='{out}' final-average=3",
                   wait=False)
    deadline = time.time() + 150
    while time.time() < deadline and not ((out / "metrics.jsonl").is_file() and rows(out)):
        time.sleep(0.2)
    deploy.stop()  # the whole server side goes down after round 1
    assert not (out / "final.bits").exists()
    done = rows(out)[-1]["round"]
    deploy.start_superlink()
    for pid in range(2):
        deploy.start_node(pid)
    p = deploy.run(f"{FAST} num-clients=2 rounds=4 min-clients=2 resume=true out-dir='{out}' "
                   "final-average=3")
    assert p.returncode == 0 and (out / "final.bits").is_file(), deploy.logs()
    assert [x["round"] for x in rows(out)] == [1, 2, 3, 4]
    assert read_bits(out / "final.bits").meta["rounds_averaged"] == 3
    assert f"resuming from round {done}" in deploy.text()


def test_every_app_config_key_reaches_the_run_config():
    """Each key of pyproject's [tool.flwr.app.config] is read by run_config, so an option the
    CLI has cannot silently fall back to a default on Flower."""
    from pathlib import Path

    import tomllib

    from prism_edge.flower.common import run_config

    class Seen(dict):
        def __init__(self, *a):
            super().__init__(*a)
            self.read = set()

        def get(self, key, default=None):
            self.read.add(key)
            return super().get(key, default)

    toml = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    keys = toml["tool"]["flwr"]["app"]["config"]
    rc = Seen({**keys, "prob-clip": 1e-6, "score-init": -1.5})
    cfg, _ = run_config(rc)
    assert set(keys) - rc.read == set()
    assert cfg.server.clip == 1e-6 and cfg.server.score_init == -1.5


def test_a_left_out_app_config_key_takes_the_cli_default():
    """run_config of an empty Flower config is RunConfig(): the apps and `prism-edge train`
    share one set of defaults."""
    from prism_edge.config import RunConfig
    from prism_edge.flower.common import run_config

    cfg, deploy = run_config({})
    assert cfg.to_dict() == RunConfig().to_dict()
    assert deploy == {"out_dir": "runs/flower", "resume": False, "round_timeout": 600.0}


def test_the_server_sends_one_guidance_centre_to_every_node(deploy, tmp_path):
    """guidance-center="server": the ServerApp computes the centre once a round and it travels
    in the train message beside the global state (4 bytes a feature), used by each ClientApp."""
    deploy.start_superlink()
    for pid in range(2):
        deploy.start_node(pid)
    out = tmp_path / "out"
    p = deploy.run(f"{FAST} num-clients=2 rounds=2 min-clients=2 class-guidance=0.3 "
                   f"guidance-center='server' out-dir='{out}'")
    assert p.returncode == 0 and (out / "final.bits").is_file(), deploy.logs()
    assert deploy.text().count("guidance centre of 126 features from the server") == 4, deploy.logs()
    n = read_bits(out / "final.bits").total
    for r in rows(out):
        assert r["accepted"] == 2
        # the 8-bit global state and 126 float32 features, in a protobuf envelope
        assert all(n + 4 * 126 < c["received"] < n + 4 * 126 + 2048
                   for c in r["per_client"].values())
