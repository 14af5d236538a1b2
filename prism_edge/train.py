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
from .client import client_update, derive_seed, local_train, round_client_config, sends_center, server_center
from .clientdata import (
    client_indices,
    client_stats,
    feature_map,
    load_train,
    privacy_label,
    run_generator,
)
from .coding import Shared
from .config import ClientConfig, RunConfig, check_settings
from .data import Dataset
from .errors import PrismError
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


@dataclass
class ClientOutcome:
    upload: np.ndarray  # what travels: the coded or packed mask, or fp32 weights (dense)
    packed: np.ndarray | None  # the packed mask the upload stands for (None: dense)
    losses: tuple[float, float]  # first and last local step
    opt_state: dict


def start_scores(cfg: RunConfig, down: np.ndarray) -> torch.Tensor:
    """What a client starts from, decoded from the round's downlink array."""
    if cfg.mode == "dense":
        return torch.from_numpy(down.copy())
    return srv.downlink_scores(down, cfg.server.clip)


def train_client(gen: Generator, fm: FeatureMap, stats: DataStats, cfg: RunConfig,
                 ccfg: ClientConfig, cid: int, rnd: int, down: np.ndarray,
                 opt_state: dict | None, tick=None,
                 global_scores: torch.Tensor | None = None,
                 center: np.ndarray | None = None) -> ClientOutcome:
    """One simulated client's round (serially here, or in a worker process: workers.py);
    ``center``: the server's guidance centre of the round (``client.server_center``)."""
    seed = derive_seed(cfg.seed, rnd, cid)
    if global_scores is None:
        global_scores = start_scores(cfg, down)
    if cfg.mode == "dense":
        torch.manual_seed(seed)
        set_flat_scores(gen, global_scores)
        set_mode(gen, "dense")
        ls, state = local_train(gen, fm, stats, ccfg, ccfg.lr, opt_state, tick, center)
        weights = torch.cat([m.scores.detach().reshape(-1) for m in masked_layers(gen)])
        return ClientOutcome(weights.cpu().numpy().astype(np.float32), None, (ls[0], ls[-1]),
                             state)
    coded = cfg.server.uplink == "coded"
    res = client_update(gen, fm, stats, global_scores, ccfg, opt_state, seed, tick,
                        down if coded else None, center)
    return ClientOutcome(res.coded if coded else res.packed, res.packed,
                         (res.loss_first, res.loss_last), res.opt_state)


def run(cfg: RunConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
        on_round=None, device: str = "cpu", workers: int = 1) -> dict:
    """Train for cfg.rounds rounds; returns a summary dict. Resumable from checkpoint.pt.

    ``on_round(round, downlink, uploads, masks)`` (optional) sees what travelled in each round
    and the packed masks the uploads stand for; the communication benchmark uses it.
    ``device``: where local training runs (accelerator.py); the server's side stays in numpy.
    ``workers``: clients trained side by side in that many processes (CPU only; workers.py);
    they are spawned, so a script that asks for them calls run() under
    ``if __name__ == "__main__":``."""
    check_settings(cfg)
    dev = resolve_device(device)
    if workers > 1 and dev.type != "cpu":
        raise PrismError(f"--workers {workers} trains clients in CPU processes; with --device "
                         f"{device} leave --workers at 1")
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
    if ck is not None and ck.get("workers", 1) != workers:
        tqdm.write(f"warning: this run started with --workers {ck.get('workers', 1)} and resumes "
                   f"with {workers}: the clients' float sums change, so final.bits will not match "
                   f"an uninterrupted run; resume with --workers {ck.get('workers', 1)} for that",
                   file=sys.stderr)
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

    pool = None
    if workers > 1:
        from .workers import ClientPool

        pool = ClientPool(cfg, setup.stats, workers, max(1, torch.get_num_threads() // workers))
    try:
        summary = _rounds(cfg, rec, state, gen, fm, stats, opt_states, privacy, pool, progress,
                          on_round, dev, coded)
    finally:
        if pool is not None:
            pool.close()
    return summary


def _ticker(bar, cid: int):
    def tick(step: int, loss: float) -> None:
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(client=cid, loss=f"{loss:.4f}")
    return tick


def _rounds(cfg: RunConfig, rec: RunRecorder, state: srv.ServerState, gen: Generator,
            fm: FeatureMap, stats: list[DataStats], opt_states: dict, privacy: str, pool,
            progress: bool, on_round, dev: torch.device, coded: bool) -> dict:
    t_run = time.time()
    rounds = tqdm(range(state.round, cfg.rounds), desc="rounds", unit="round",
                  disable=not progress, initial=state.round, total=cfg.rounds)
    for rnd in rounds:
        t0 = time.time()
        rng = np.random.default_rng(derive_seed(cfg.seed, rnd))
        chosen = srv.select_clients(cfg.clients, cfg.server.fraction, rng)
        if cfg.mode == "dense":
            down = state.scores.astype(np.float32)
        else:
            down = srv.encode_downlink(state.prob, cfg.server.downlink)
        ccfg = round_client_config(cfg, rnd)
        start = start_scores(cfg, down)
        center = (server_center(gen, fm, ccfg, start, cfg.seed, rnd, dense=cfg.mode == "dense")
                  if sends_center(ccfg) else None)
        global_scores = None if pool is not None else start
        steps = tqdm(total=len(chosen) * cfg.client.local_steps, desc=f"round {rnd + 1}",
                     leave=False, disable=not progress, unit="step")
        uploads, masks, losses, up_bytes = {}, {}, [], 0
        if pool is not None:
            outcomes = pool.train(chosen, rnd, ccfg, down, opt_states, center)
        else:
            outcomes = (train_client(gen, fm, stats[cid], cfg, ccfg, cid, rnd, down,
                                     opt_states.get(cid), _ticker(steps, cid), global_scores,
                                     center)
                        for cid in chosen)
        for cid, out in zip(chosen, outcomes):
            if pool is not None:
                steps.update(cfg.client.local_steps)
            opt_states[cid] = out.opt_state
            uploads[str(cid)] = out.upload
            if out.packed is not None:
                masks[str(cid)] = out.packed
            losses.append(out.losses)
            up_bytes += out.upload.nbytes
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
        down_bytes = int(down.nbytes) + (0 if center is None else int(center.nbytes))
        row = srv.round_row(state, chosen, agg, losses, up_bytes, down_bytes * len(chosen),
                            time.time() - t0, dense=cfg.mode == "dense", lr=ccfg.lr,
                            privacy=privacy)
        rec.log_round(row)
        rounds.set_postfix(loss=f"{row['loss_last']:.4f}", lam=f"{agg.lam:.3f}",
                           up=f"{up_bytes / 1e3:.0f}kB", down=f"{row['bytes_down'] / 1e3:.0f}kB")
        rec.checkpoint(state, opt_states=opt_states, device=dev.type,
                       workers=pool.workers if pool is not None else 1)
        rec.samples(state)
    rounds.close()
    return rec.finish(state, privacy, (time.time() - t_run) / 60, describe_device(dev))
