"""Training on real MNIST: the loss falls, FID improves, resume is bit-identical."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from prism_edge.bitsfile import read_bits
from prism_edge.config import ClientConfig, RunConfig, ServerConfig
from prism_edge.describe import probability_bands
from prism_edge.evaluation.evaluate import Reference, sample
from prism_edge.samplers import torch_sampler
from prism_edge.train import run

TINY = ["--clients", "2", "--local-steps", "4", "--batch", "16", "--n-features", "256",
        "--split", "iid", "--sample-every", "0", "--threads", "1"]
AVG3 = ["--final-average", "3"]


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "prism_edge.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_short_run_loss_falls_and_fid_improves(tmp_path, data_root, mnist_train, mnist_test):
    torch.set_num_threads(2)
    cfg = RunConfig(data_dir=str(data_root), clients=2, rounds=4, split="iid", sample_every=2,
                    client=ClientConfig(local_steps=40, n_features=2048),
                    server=ServerConfig())
    summary = run(cfg, tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and rows[-1]["loss_last"] < 0.5 * rows[0]["loss_first"]
    packed = 2 * ((533_504 + 7) // 8)  # two clients, one bit per weight
    # coded uplink (the default): below one bit per weight from the first round on
    assert all(0 < r["bytes_up"] < 0.8 * packed for r in rows)
    assert all(0 < r["lambda"] <= 1 for r in rows)
    assert (tmp_path / "samples" / "round_0002.png").is_file() and (tmp_path / "final.png").is_file()
    assert summary["privacy"] == "no differential privacy"
    assert read_bits(tmp_path / "final.bits").meta["privacy"] == "no differential privacy"
    ref = Reference(mnist_train, mnist_test, 1000)
    trained = ref.score(sample(torch_sampler(tmp_path / "final.bits", 42)[0], 64, 1000,
                               progress=False), with_prdc=False)
    init_dir = tmp_path / "init"
    init_dir.mkdir()
    cfg0 = RunConfig(data_dir=str(data_root), clients=2, rounds=1, split="iid", sample_every=0,
                     client=ClientConfig(local_steps=1, n_features=256))
    run(cfg0, init_dir, progress=False)
    initial = ref.score(sample(torch_sampler(init_dir / "final.bits", 42)[0], 64, 1000,
                               progress=False), with_prdc=False)
    # measured: 1234 vs 1545 (0.80) with independent mask draws, 1258 vs 1530 (0.82) with
    # coupled draws; a 10% improvement is the margin FID's sampling noise at 1000 images allows
    assert trained["fid"] < 0.9 * initial["fid"], (trained["fid"], initial["fid"])


def test_resume_after_kill_is_bit_identical(tmp_path, data_root):
    """Also with final.bits made from the mean of the last 3 rounds: the window's sum travels
    in the checkpoint, so the kill lands inside it or just before it."""
    env = {**os.environ, "PRISM_EDGE_DATA": str(data_root)}
    full, cut = tmp_path / "full", tmp_path / "cut"
    p = cli("train", "--rounds", "4", "-o", str(full), *TINY, *AVG3, env=env)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    p = cli("train", "--rounds", "4", "-o", str(cut), *TINY, *AVG3, env=env)
    metrics = cut / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (cut / "final.bits").exists(), "the run finished before it could be killed"
    p = cli("train", "--rounds", "4", "-o", str(cut), "--resume", *TINY, *AVG3, env=env)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    a, b = read_bits(full / "final.bits"), read_bits(cut / "final.bits")
    assert np.array_equal(a.packed, b.packed) and a.meta["rounds_averaged"] == 3
    # what was exported is the threshold of the mean of rounds 2-4's global probabilities
    ck = torch.load(full / "checkpoint.pt", weights_only=False)
    assert (ck["final_from"], ck["final_rounds"]) == (2, 3)
    mean = ck["final_sum"] / 3
    assert np.array_equal(a.packed, np.packbits((mean > 0.5).astype(np.uint8)))
    last = 1 / (1 + np.exp(-ck["scores"]))
    assert not np.array_equal(mean > 0.5, last > 0.5), "the window's mean is the last round's"
    assert (full / "final.bits").read_bytes() == (cut / "final.bits").read_bytes()
    rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert [r["round"] for r in rows] == [1, 2, 3, 4]


def test_resume_with_other_options_is_refused(tmp_path, data_root):
    env = {**os.environ, "PRISM_EDGE_DATA": str(data_root)}
    p = cli("train", "--rounds", "1", "--prob-clip", "1e-6", "-o", str(tmp_path), *TINY, env=env)
    assert p.wait(timeout=300) == 0
    assert json.loads((tmp_path / "config.json").read_text())["server"]["clip"] == 1e-6
    p = cli("train", "--rounds", "1", "--prob-clip", "1e-6", "--seed", "7", "-o", str(tmp_path),
            "--resume", *TINY, env=env)
    assert p.wait(timeout=300) == 2 and "differs" in p.stderr.read()
    # a config.json from before an option existed resumes when the option is at its default
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["client"]["center_per_class"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    p = cli("train", "--rounds", "2", "--prob-clip", "1e-6", "--center-per-class", "8", "-o",
            str(tmp_path), "--resume", *TINY, env=env)
    assert p.wait(timeout=300) == 2 and "differs" in p.stderr.read()
    p = cli("train", "--rounds", "2", "--prob-clip", "1e-6", "-o", str(tmp_path), "--resume",
            *TINY, env=env)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_resume_from_a_damaged_folder_is_refused_and_touches_nothing(tmp_path, data_root):
    env = {**os.environ, "PRISM_EDGE_DATA": str(data_root)}
    p = cli("train", "--rounds", "1", "-o", str(tmp_path), *TINY, env=env)
    assert p.wait(timeout=300) == 0
    config, ckpt = tmp_path / "config.json", tmp_path / "checkpoint.pt"
    good_config, good_ckpt = config.read_bytes(), ckpt.read_bytes()
    metrics = (tmp_path / "metrics.jsonl").read_bytes()
    resume = ["train", "--rounds", "2", "-o", str(tmp_path), "--resume", *TINY]
    damage = [(config, b'{"rounds": 1,', "config.json is damaged"),
              (config, b"[1, 2]\n", "config.json is damaged"),
              (config, None, "config.json is missing"),
              (ckpt, good_ckpt[: len(good_ckpt) // 2], "checkpoint.pt cannot be read")]
    for path, bad, said in damage:
        config.write_bytes(good_config)
        ckpt.write_bytes(good_ckpt)
        if bad is None:
            path.unlink()
        else:
            path.write_bytes(bad)
        p = cli(*resume, env=env)
        err = p.stderr.read()
        assert p.wait(timeout=300) == 2 and said in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        # nothing rewritten: the damaged file is as it was, the others intact
        assert path.read_bytes() == bad if bad is not None else not path.exists()
        other, good = (ckpt, good_ckpt) if path == config else (config, good_config)
        assert other.read_bytes() == good
        assert (tmp_path / "metrics.jsonl").read_bytes() == metrics
    config.write_bytes(good_config)
    ckpt.write_bytes(good_ckpt)
    p = cli(*resume, env=env)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_probability_bands_of_known_values():
    p = np.array([0.05, 0.1, 0.4, 0.5, 0.6, 0.61, 0.9, 0.95])
    assert list(probability_bands(p).values()) == [1 / 8, 1 / 8, 3 / 8, 2 / 8, 1 / 8]


def test_inspect_a_run_folder(tmp_path, data_root):
    env = {**os.environ, "PRISM_EDGE_DATA": str(data_root)}
    p = cli("train", "--rounds", "2", "-o", str(tmp_path), *TINY, env=env)
    assert p.wait(timeout=300) == 0
    p = cli("inspect", str(tmp_path), "--json")
    assert p.wait(timeout=60) == 0, p.stderr.read()
    info = json.loads(p.stdout.read())
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    prob = 1 / (1 + np.exp(-ck["scores"]))
    assert info["rounds done"] == "2 of 2" and info["finished"] == "yes, final.bits"
    assert info["keep probability"] == probability_bands(prob)
    assert info["lambda (last round)"] == float(f"{ck['history'][-1]['lambda']:.4g}")
    (tmp_path / "final.bits").unlink()
    p = cli("inspect", str(tmp_path / "checkpoint.pt"))
    said = p.stdout.read()
    assert p.wait(timeout=60) == 0 and "finished: no" in said and "undecided" in said
    p = cli("inspect", str(tmp_path / "samples"))
    err = p.stderr.read()
    assert p.wait(timeout=60) == 2 and "no checkpoint.pt" in err and "Traceback" not in err
    # the same readers as --resume: a damaged file is named in one line
    config, good = tmp_path / "config.json", (tmp_path / "config.json").read_text()
    config.unlink()
    ckpt = tmp_path / "checkpoint.pt"
    for said in ("config.json is missing", "checkpoint.pt cannot be read"):
        p = cli("inspect", str(tmp_path))
        err = p.stderr.read()
        assert p.wait(timeout=60) == 2 and said in err and len(err.strip().splitlines()) == 1, err
        config.write_text(good)  # next: a whole config.json, a truncated checkpoint.pt
        ckpt.write_bytes(ckpt.read_bytes()[:1000])


def test_a_dense_run_names_the_weights_file_it_wrote(tmp_path, data_root):
    env = {**os.environ, "PRISM_EDGE_DATA": str(data_root)}
    p = cli("train", "--rounds", "1", "--mode", "dense", "--lr", "0.01", "-o", str(tmp_path),
            *TINY, env=env)
    assert p.wait(timeout=300) == 0
    said = p.stdout.read()
    assert f"{tmp_path}/final.pt" in said and "final.bits" not in said
    assert (tmp_path / "final.pt").is_file() and not (tmp_path / "final.bits").exists()


def test_clients_with_one_class_each(tmp_path, data_root, mnist_train):
    cfg = RunConfig(data_dir=str(data_root), clients=10, rounds=1, split="shards:1",
                    sample_every=0, client=ClientConfig(local_steps=2, batch=8, n_features=128))
    run(cfg, tmp_path, progress=False)
    row = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert row["accepted"] == 10 and row["rejected"] == {}
    from prism_edge.partition import partition

    labels = mnist_train.labels.numpy()
    parts = partition(labels, len(labels), 10, "shards:1", 42)
    assert sum(len(np.unique(labels[p])) == 1 for p in parts) >= 2  # some hold a single class


def test_reset_optimizer_state_ignores_the_last_rounds_moments(data_root):
    """--optimizer-state reset: local training from a stale Adam state is training from none;
    persist (the default) does use it."""
    from dataclasses import replace

    from prism_edge.client import local_train
    from prism_edge.masked import get_flat_scores, set_flat_scores, set_mode
    from prism_edge.train import prepare

    cfg = RunConfig(data_dir=str(data_root), clients=2, rounds=1, split="iid", sample_every=0,
                    client=ClientConfig(local_steps=3, batch=8, n_features=128))
    s = prepare(cfg)
    n = s.gen.num_masked
    stale = {"step": 50, "exp_avg": torch.full((n,), 0.5), "exp_avg_sq": torch.full((n,), 10.0)}

    def scores_after(ccfg, state):
        torch.manual_seed(0)
        set_flat_scores(s.gen, torch.zeros(n))
        set_mode(s.gen, "sample", ccfg.estimator)
        local_train(s.gen, s.fm, s.stats[0], ccfg, ccfg.lr,
                    None if state is None else {k: v.clone() if torch.is_tensor(v) else v
                                                for k, v in state.items()})
        return get_flat_scores(s.gen).detach().clone()

    reset = replace(cfg.client, optimizer_state="reset")
    assert torch.equal(scores_after(reset, stale), scores_after(reset, None))
    assert not torch.equal(scores_after(cfg.client, stale), scores_after(cfg.client, None))


def test_lr_end_decays_the_client_lr_over_the_rounds_along_a_cosine():
    from prism_edge.client import round_client_config

    cfg = RunConfig(rounds=5, client=ClientConfig(lr=0.3, lr_end=0.1))
    lrs = [round_client_config(cfg, r).lr for r in range(5)]
    assert lrs[0] == 0.3 and abs(lrs[-1] - 0.03) < 1e-12
    assert abs(lrs[2] - 0.3 * (0.1 + 0.9 * 0.5)) < 1e-12  # halfway down the cosine
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert round_client_config(cfg, 0).local_steps == cfg.client.local_steps  # only lr moves
    constant = RunConfig(rounds=5, client=ClientConfig(lr=0.3))
    assert {round_client_config(constant, r).lr for r in range(5)} == {0.3}


def test_worker_processes_train_the_clients_as_the_serial_loop_does(tmp_path, data_root):
    """--workers 2 (one torch thread each) against the serial loop at one thread: the same
    losses, uploads, optimiser states and final.bits, for the mask and the dense baseline."""
    threads = torch.get_num_threads()
    cfg = RunConfig(data_dir=str(data_root), clients=3, rounds=2, split="shards:2",
                    sample_every=0, final_average=2,
                    client=ClientConfig(local_steps=3, batch=8, n_features=128))
    dense = replace(cfg, mode="dense", final_average=1,
                    client=ClientConfig(local_steps=3, batch=8, n_features=128, lr=0.01))
    seen: dict = {}
    try:
        for name, c in (("mask", cfg), ("dense", dense)):
            for workers in (1, 2):
                # one thread: the data statistics, computed in this process, are the same
                # floats in both runs; each worker gets max(1, 1 // 2) threads
                torch.set_num_threads(1)
                out = tmp_path / f"{name}{workers}"
                run(c, out, progress=False, workers=workers,
                    on_round=lambda r, d, up, m, _k=(name, workers): seen.setdefault(_k, []).append(up))
                seen[(name, workers, "ck")] = torch.load(out / "checkpoint.pt", weights_only=False)
    finally:
        torch.set_num_threads(threads)
    for name in ("mask", "dense"):
        a, b = seen[(name, 1)], seen[(name, 2)]
        assert [sorted(r) for r in a] == [sorted(r) for r in b] == [["0", "1", "2"]] * 2
        assert all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)
        ca, cb = seen[(name, 1, "ck")], seen[(name, 2, "ck")]
        assert [r["loss_last"] for r in ca["history"]] == [r["loss_last"] for r in cb["history"]]
        assert np.array_equal(ca["scores"], cb["scores"]) and cb["workers"] == 2
        assert all(torch.equal(ca["opt_states"][c]["exp_avg_sq"], cb["opt_states"][c]["exp_avg_sq"])
                   for c in range(3))
    assert (tmp_path / "mask1/final.bits").read_bytes() == (tmp_path / "mask2/final.bits").read_bytes()


def test_the_server_centre_travels_with_the_global_state(tmp_path, data_root):
    """--guidance-center server: the simulation computes one centre a round and sends it to
    every client beside the 8-bit global state (4 bytes a feature, counted in bytes_down);
    worker processes get the same centre, so their run equals the serial one."""
    threads = torch.get_num_threads()
    cfg = RunConfig(data_dir=str(data_root), clients=3, rounds=2, split="shards:2",
                    sample_every=0, final_average=2,
                    client=ClientConfig(local_steps=3, batch=8, features="rff", n_features=128,
                                        class_guidance=0.3, guidance_center="server"))
    try:
        torch.set_num_threads(1)
        for workers in (1, 2):
            run(cfg, tmp_path / f"w{workers}", progress=False, workers=workers)
    finally:
        torch.set_num_threads(threads)
    a, b = (tmp_path / "w1/final.bits").read_bytes(), (tmp_path / "w2/final.bits").read_bytes()
    assert a == b
    n = read_bits(tmp_path / "w1/final.bits").total  # the 8-bit global state: a byte a weight
    rows = [json.loads(x) for x in (tmp_path / "w1/metrics.jsonl").read_text().splitlines()]
    assert [r["bytes_down"] for r in rows] == [3 * (n + 4 * 128)] * 2


def test_an_fp32_downlink_sends_the_global_probability_unrounded(tmp_path, data_root):
    """--downlink fp32 --uplink packed: the second round's downlink is the first round's mean
    mask as the server holds it (8 bits would round it by up to 1/510), 4 bytes a weight."""
    seen = []
    # seven clients: sevenths are not multiples of 1/255, so rounding them to 8 bits loses
    cfg = RunConfig(data_dir=str(data_root), clients=7, rounds=2, split="iid", sample_every=0,
                    client=ClientConfig(local_steps=1, batch=8, features="rff", n_features=128),
                    server=ServerConfig(mada=False, downlink="fp32", uplink="packed"))
    run(cfg, tmp_path, progress=False, on_round=lambda r, d, up, m: seen.append((d, m)))
    (first, masks), (second, _) = seen
    n = read_bits(tmp_path / "final.bits").total
    assert first.dtype == np.float32 and first.shape == (n,) and np.all(first == 0.5)
    mean = np.mean([np.unpackbits(m, count=n) for m in masks.values()], axis=0)
    want = np.clip(mean, cfg.server.clip, 1 - cfg.server.clip).astype(np.float32)
    assert np.abs(second - want).max() < 1e-6
    assert np.abs(np.rint(want * 255) / 255 - want).max() > 1e-3  # what 8 bits would have lost
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["bytes_down"] for r in rows] == [7 * 4 * n] * 2
