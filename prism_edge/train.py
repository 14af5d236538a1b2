"""The in-process federated simulation: one readable loop over rounds and clients.

It calls the same ``client_update`` and ``server.aggregate`` that the Flower apps call. Per round it
appends a row to metrics.jsonl, writes an atomic checkpoint, and every ``sample_every`` rounds a
sample grid; at the end it writes final.bits (or final.pt for the dense baseline) and final.png.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import server as srv
from .architectures import Generator, build_generator
from .atomic import atomic_path, write_text_atomic
from .bitsfile import write_bits
from .client import client_update, derive_seed, local_train
from .config import RunConfig
from .data import Dataset, load_dataset
from .errors import PrismError
from .features import FeatureMap, make_feature_map
from .images import save_grid
from .masked import layer_sizes, masked_layers, set_flat_mask, set_flat_scores, set_mode
from .partition import partition
from .stats import DataStats, compute_stats

N_PREVIEW = 64


@dataclass
class Setup:
    gen: Generator
    fm: FeatureMap
    stats: list[DataStats]
    parts: list[np.ndarray]
    data: Dataset


def privacy_label(cfg: RunConfig, stats: list[DataStats]) -> str:
    if cfg.dp_epsilon is None:
        return "no differential privacy"
    eps = max(s.privacy.get("epsilon", float("inf")) for s in stats)
    return f"({eps:.3g}, {cfg.dp_delta:g})-DP per client example"


def prepare(cfg: RunConfig) -> Setup:
    """Data, partition, generator and each client's fixed statistics (computed once)."""
    gen = build_generator(cfg.arch, cfg.seed)
    c, size, _ = gen.out_shape
    data = load_dataset(cfg.dataset, "train", cfg.data_dir, size=size, channels=c)
    if tuple(data.shape) != tuple(gen.out_shape):
        raise PrismError(f"dataset images are {data.shape} but {cfg.arch} makes {gen.out_shape}; "
                         "choose an architecture of the data's size")
    labels = data.labels.numpy() if data.labels is not None else None
    parts = partition(labels, len(data), cfg.clients, cfg.split, cfg.seed)
    fm = make_feature_map(cfg.client.features, gen.out_shape, cfg.client.feature_seed,
                          cfg.client.n_features)
    stats = []
    for cid, idx in enumerate(parts):
        images = data.images[torch.from_numpy(idx)]
        if cfg.dp_epsilon is not None:
            from .privacy import private_stats

            stats.append(private_stats(fm, images, cfg.dp_epsilon, cfg.dp_delta, cfg.dp_clip,
                                       derive_seed(cfg.seed, 1_000_003, cid)))
        else:
            stats.append(compute_stats(fm, images))
    return Setup(gen, fm, stats, parts, data)


def preview(gen: Generator, n: int = N_PREVIEW, seed: int = 0) -> np.ndarray:
    z = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, gen.nz)).astype(np.float32))
    with torch.no_grad():
        return gen(z).numpy()


def final_mask(prob: np.ndarray, how: str, seed: int) -> np.ndarray:
    if how == "threshold":
        return (prob > 0.5).astype(np.uint8)
    if how == "sample":
        return (np.random.default_rng(derive_seed(seed, 999_999)).random(prob.shape) < prob
                ).astype(np.uint8)
    raise PrismError(f"final must be 'threshold' or 'sample', got {how!r}")


def _save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def run(cfg: RunConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Train for cfg.rounds rounds; returns a summary dict. Resumable from checkpoint.pt."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    start, opt_states, history = 0, {}, []
    n = None
    if resume:
        if not ckpt_path.is_file():
            raise PrismError(f"--resume: no checkpoint in {out}; start without --resume")
        saved = json.loads((out / "config.json").read_text())
        if saved != json.loads(json.dumps(cfg.to_dict())):
            raise PrismError(f"--resume: {out}/config.json differs from this command's options; "
                             "resume with the same options or use a new --out")
    write_text_atomic(out / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")

    setup = prepare(cfg)
    gen = setup.gen
    n = gen.num_masked
    state = srv.init_state(n, cfg.server)
    if cfg.mode == "dense":
        state.scores = torch.cat([m.frozen.reshape(-1) for m in masked_layers(gen)]).double().numpy()
    if resume:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        state.scores, start = ck["scores"], ck["round"]
        opt_states, history = ck["opt_states"], ck["history"]
    metrics_path = out / "metrics.jsonl"
    write_text_atomic(metrics_path, "".join(json.dumps(r) + "\n" for r in history))

    t_run = time.time()
    rounds = tqdm(range(start, cfg.rounds), desc="rounds", unit="round", disable=not progress,
                  initial=start, total=cfg.rounds)
    for rnd in rounds:
        t0 = time.time()
        rng = np.random.default_rng(derive_seed(cfg.seed, rnd))
        chosen = srv.select_clients(cfg.clients, cfg.server.fraction, rng)
        if cfg.mode == "dense":
            down = state.scores.astype(np.float32)
            global_scores = torch.from_numpy(down.copy())
        else:
            down = srv.encode_downlink(state.prob, cfg.server.downlink)
            global_scores = torch.from_numpy(srv.logit(
                srv.decode_downlink(down, cfg.server.clip).astype(np.float64)).astype(np.float32))
        steps = tqdm(total=len(chosen) * cfg.client.local_steps, desc=f"round {rnd + 1}",
                     leave=False, disable=not progress, unit="step")
        uploads, losses, up_bytes = {}, [], 0
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
                ls, opt_states[cid] = local_train(gen, setup.fm, setup.stats[cid], cfg.client,
                                                  cfg.client.lr, opt_states.get(cid), tick)
                weights = torch.cat([m.scores.detach().reshape(-1) for m in masked_layers(gen)])
                uploads[str(cid)] = weights.numpy().astype(np.float32)
                losses.append((ls[0], ls[-1]))
                up_bytes += weights.numel() * 4
            else:
                res = client_update(gen, setup.fm, setup.stats[cid], global_scores, cfg.client,
                                    opt_states.get(cid), seed, tick)
                opt_states[cid] = res.opt_state
                uploads[str(cid)] = res.packed
                losses.append((res.loss_first, res.loss_last))
                up_bytes += res.nbytes
        steps.close()
        if cfg.mode == "dense":
            state.scores = np.mean([u.astype(np.float64) for u in uploads.values()], axis=0)
            agg = srv.AggregateResult(list(uploads), {}, 1.0, True)
        else:
            agg = srv.aggregate(state, uploads, cfg.server, rng)
        row = {"round": rnd + 1, "clients": len(chosen), "accepted": len(agg.accepted),
               "rejected": agg.rejected, "loss_first": float(np.mean([a for a, _ in losses])),
               "loss_last": float(np.mean([b for _, b in losses])), "lambda": agg.lam,
               "bytes_up": up_bytes, "bytes_down": int(down.nbytes) * len(chosen),
               "mean_p": float(state.prob.mean()) if cfg.mode != "dense" else None,
               "seconds": round(time.time() - t0, 2)}
        history.append(row)
        with open(metrics_path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        rounds.set_postfix(loss=f"{row['loss_last']:.4f}", lam=f"{agg.lam:.3f}",
                           up=f"{up_bytes / 1e3:.0f}kB", down=f"{row['bytes_down'] / 1e3:.0f}kB")
        _save_checkpoint(ckpt_path, {"scores": state.scores, "round": rnd + 1,
                                     "opt_states": opt_states, "history": history})
        if cfg.sample_every and (rnd + 1) % cfg.sample_every == 0:
            _install_final(gen, state, cfg)
            save_grid(preview(gen), out / "samples" / f"round_{rnd + 1:04d}.png", nrow=8)
    rounds.close()

    _install_final(gen, state, cfg)
    save_grid(preview(gen), out / "final.png", nrow=8)
    summary = {"rounds": cfg.rounds, "minutes": round((time.time() - t_run) / 60, 2),
               "privacy": privacy_label(cfg, setup.stats), "masked_weights": n}
    meta = {"kind": cfg.final, "dataset": cfg.dataset, "rounds": cfg.rounds, "split": cfg.split,
            "clients": cfg.clients, "privacy": summary["privacy"]}
    if cfg.mode == "dense":
        with atomic_path(out / "final.pt") as tmp:
            torch.save({"weights": state.scores.astype(np.float32), "arch": gen.describe(),
                        "meta": meta}, tmp)
    else:
        mask = final_mask(state.prob, cfg.final, cfg.seed)
        write_bits(out / "final.bits", mask, gen.describe(), layer_sizes(gen), cfg.seed, meta)
        summary["final_ones"] = float(mask.mean())
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _install_final(gen: Generator, state: srv.ServerState, cfg: RunConfig) -> None:
    if cfg.mode == "dense":
        set_flat_scores(gen, torch.from_numpy(state.scores.astype(np.float32)))
        set_mode(gen, "dense")
    else:
        set_flat_mask(gen, final_mask(state.prob, cfg.final, cfg.seed))
