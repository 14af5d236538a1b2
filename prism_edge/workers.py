"""The simulation's clients trained side by side in worker processes.

These small generators use a second CPU core poorly: two clients at one torch thread each get
through a round sooner than one client after the other at two threads (bench/results/workers.md).
Each worker builds the run's generator and feature map from the config (both regenerated from
seeds or read from the encoder file), receives every client's fixed statistics once from the
parent, and runs the same ``train_client`` as the serial loop. A client's result depends only on
what it is sent and its seed, so a run with N workers of one thread each gives the same final.bits
as the serial loop at one thread; at other thread counts float sums differ in their last bits.
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import torch

from .config import ClientConfig, RunConfig

_WORKER: dict = {}


def _init(cfg_dict: dict, stats: list, threads: int) -> None:
    from .clientdata import feature_map, run_generator

    torch.set_num_threads(threads)
    cfg = RunConfig.from_dict(cfg_dict)
    gen = run_generator(cfg)
    _WORKER.update(cfg=cfg, gen=gen, fm=feature_map(cfg, gen), stats=stats)


def _job(args: tuple):
    from .train import train_client

    cid, rnd, ccfg, down, opt_state, center = args
    w = _WORKER
    return train_client(w["gen"], w["fm"], w["stats"][cid], w["cfg"], ccfg, cid, rnd, down,
                        opt_state, center=center)


class ClientPool:
    """``workers`` processes of ``threads`` torch threads each, alive for the whole run."""

    def __init__(self, cfg: RunConfig, stats: list, workers: int, threads: int = 1):
        # spawn, not fork: a forked child inherits the parent's OpenMP pool in an unusable state
        ctx = mp.get_context("spawn")
        self.workers = workers
        self._pool = ctx.Pool(workers, _init, (cfg.to_dict(), [s.to("cpu") for s in stats],
                                               threads))

    def train(self, cids: list[int], rnd: int, ccfg: ClientConfig, down: np.ndarray,
              opt_states: dict, center: np.ndarray | None = None):
        """Each chosen client's ``ClientOutcome``, in the order of ``cids``, as they finish."""
        jobs = [(cid, rnd, ccfg, down, opt_states.get(cid), center) for cid in cids]
        return self._pool.imap(_job, jobs, chunksize=1)

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
