"""The in-process federated simulation: one readable loop over rounds and clients.

It calls the same ``client_update`` and ``server.aggregate`` that the Flower apps call. Per round it
appends a row to metrics.jsonl, writes an atomic checkpoint, and every ``sample_every`` rounds a
sample grid; at the end it writes final.bits (or final.pt for the dense baseline) and final.png.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import server as srv
from .accelerator import describe_device, resolve_device
from .architectures import Generator
from .client import client_update, derive_seed, local_train, round_client_config
from .clientdata import (
    client_indices,
    client_stats,
    feature_map,
    load_train,
    privacy_label,
    run_generator,
)
from .coding import Shared
from .config import RunConfig, check_settings
from .data import Dataset
from .features import FeatureMap
from .masked import masked_layers, set_flat_scores, set_mode
from .recorder import RunRecorder
from .stats import DataStats


@dataclass
class Setup:
    gen: Generator
    fm: FeatureMap
    stats: list[DataStats]
    parts: list[np.ndarray]
    data: Dataset


def prepare(cfg: RunConfig) -> Setup:
    """Data, partition, generator and each client's fixed statistics (computed once)."""
    gen = run_generator(cfg)
    data = load_train(cfg, gen)
    parts = client_indices(cfg, data)
    if cfg.dp_epsilon is not None:
        from .privacy import check_dp_options

        check_dp_options(cfg.client.features, cfg.dp_delta, min(len(p) for p in parts))
    fm = feature_map(cfg, gen)
    k = gen.config.classes
    stats = [client_stats(cfg, fm, data.raw[idx], cid,
                          data.labels[idx] if data.labels is not None else None, k)
             for cid, idx in enumerate(parts)]
    return Setup(gen, fm, stats, parts, data)


def run(cfg: RunConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
        on_round=None, device: str = "cpu") -> dict:
    """Train for cfg.rounds rounds; returns a summary dict. Resumable from checkpoint.pt.

    ``on_round(round, downlink, uploads, masks)`` (optional) sees what travelled in each round
    and the packed masks the uploads stand for; the communication benchmark uses it.
    ``device``: where local training runs (accelerator.py); the server's side stays in numpy."""
    check_settings(cfg)
    dev = resolve_device(device)
    setup = prepare(cfg)
    gen, fm = setup.gen.to(dev), setup.fm.to(dev)
    stats = [s.to(dev) for s in setup.stats]
    coded = cfg.mode == "mask" and cfg.server.uplink == "coded"
    rec = RunRecorder(out_dir, cfg, gen)
    ck = rec.begin(resume)
    if ck is not None and ck.get("device", "cpu") != dev.type:
        tqdm.write(f"warning: this run started on {ck['device']!r} and resumes on {dev.type!r}: "
                   "its random draws change, so final.bits will not match an uninterrupted "
                   f"run; resume with --device {ck['device']} for that", file=sys.stderr)
    state = srv.init_state(gen.num_masked, cfg.server)
    opt_states: dict = {}
    if cfg.mode == "dense":
        state.scores = torch.cat([m.frozen.reshape(-1) for m in masked_layers(gen)]
                                 ).double().cpu().numpy()
    if ck is not None:
        srv.restore(state, ck)
        opt_states = ck["opt_states"]
    privacy = privacy_label(cfg, setup.stats)
    if progress:
        tqdm.write(f"privacy: {privacy}")

    t_run = time.time()
    rounds = tqdm(range(state.round, cfg.rounds), desc="rounds", unit="round",
                  disable=not progress, initial=state.round, total=cfg.rounds)
    for rnd in rounds:
        t0 = time.time()
        rng = np.random.default_rng(derive_seed(cfg.seed, rnd))
        chosen = srv.select_clients(cfg.clients, cfg.server.fraction, rng)
        if cfg.mode == "dense":
            down = state.scores.astype(np.float32)
            global_scores = torch.from_numpy(down.copy())
        else:
            down = srv.encode_downlink(state.prob, cfg.server.downlink)
            global_scores = srv.downlink_scores(down, cfg.server.clip)
        steps = tqdm(total=len(chosen) * cfg.client.local_steps, desc=f"round {rnd + 1}",
                     leave=False, disable=not progress, unit="step")
        uploads, masks, losses, up_bytes = {}, {}, [], 0
        ccfg = round_client_config(cfg, rnd)
        for cid in chosen:
            seed = derive_seed(cfg.seed, rnd, cid)

            def tick(step, loss, _c=cid, _bar=steps):
                _bar.update(1)
                if step % 10 == 0:
                    _bar.set_postfix(client=_c, loss=f"{loss:.4f}")

            if cfg.mode == "dense":
                torch.manual_seed(seed)
                set_flat_scores(gen, global_scores)
                set_mode(gen, "dense")
                ls, opt_states[cid] = local_train(gen, fm, stats[cid], ccfg, ccfg.lr,
                                                  opt_states.get(cid), tick)
                weights = torch.cat([m.scores.detach().reshape(-1) for m in masked_layers(gen)])
                uploads[str(cid)] = weights.cpu().numpy().astype(np.float32)
                losses.append((ls[0], ls[-1]))
                up_bytes += weights.numel() * 4
            else:
                res = client_update(gen, fm, stats[cid], global_scores, ccfg,
                                    opt_states.get(cid), seed, tick,
                                    down if coded else None)
                opt_states[cid] = res.opt_state
                uploads[str(cid)] = res.coded if coded else res.packed
                masks[str(cid)] = res.packed
                losses.append((res.loss_first, res.loss_last))
                up_bytes += uploads[str(cid)].nbytes
        steps.close()
        if cfg.mode == "dense":
            state.scores = np.mean([u.astype(np.float64) for u in uploads.values()], axis=0)
            agg = srv.AggregateResult(list(uploads), {}, 1.0, True)
        else:
            decode = None
            if coded:
                def decode(cid, up, _r=rnd, _d=Shared(down)):
                    return srv.decode_upload(up, _d, derive_seed(cfg.seed, _r, int(cid)))
            agg = srv.aggregate(state, uploads, cfg.server, rng, decode)
        state.round = rnd + 1
        if cfg.mode == "mask":
            srv.tally_final(state, cfg.rounds, cfg.final_average)
        if on_round is not None:
            on_round(state.round, down, uploads, masks)
        row = srv.round_row(state, chosen, agg, losses, up_bytes, int(down.nbytes) * len(chosen),
                            time.time() - t0, dense=cfg.mode == "dense", lr=ccfg.lr,
                            privacy=privacy)
        rec.log_round(row)
        rounds.set_postfix(loss=f"{row['loss_last']:.4f}", lam=f"{agg.lam:.3f}",
                           up=f"{up_bytes / 1e3:.0f}kB", down=f"{row['bytes_down'] / 1e3:.0f}kB")
        rec.checkpoint(state, opt_states=opt_states, device=dev.type)
        rec.samples(state)
    rounds.close()
    return rec.finish(state, privacy, (time.time() - t_run) / 60, describe_device(dev))
