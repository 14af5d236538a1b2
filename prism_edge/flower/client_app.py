"""The prism-edge ClientApp: one SuperNode = one client holding one data partition.

Node config (``flower-supernode --node-config``): ``partition-id`` (required), ``data-dir``,
``threads``, ``max-memory-mb``, ``device`` (where local training runs: cpu, the default, or a CUDA
GPU, as in ``prism-edge train --device``). The train handler calls ``client_update`` unchanged;
the client's data statistics (its one DP release) and Adam state persist in the node's
``context.state``.
"""

from __future__ import annotations

import logging
import resource
import sys
import time

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ..accelerator import resolve_device
from ..client import client_update, derive_seed, round_client_config
from ..clientdata import feature_map, one_client_stats, run_generator
from ..memory import lean_malloc, peak_rss_mb
from ..server import downlink_scores
from ..stats import DataStats
from .common import (
    ARRAYS,
    CENTER_KEY,
    DOWN_KEY,
    MASK_KEY,
    METRICS,
    opt_state_from_arrays,
    opt_state_to_arrays,
    run_config,
)

# a child of Flower's logger, whose handler prints INFO to the node's output (a ClientApp process
# has no other logging set up, so a "prism_edge.client" logger's INFO lines went nowhere)
log = logging.getLogger("flwr.prism_edge.client")
app = ClientApp()
_CACHE: dict = {}




def apply_caps(node_config: dict) -> dict:
    """Thread cap (torch intra-op threads) and address-space cap (RLIMIT_AS), applied once."""
    caps = {}
    threads = int(node_config.get("threads", 0) or 0)
    if threads:
        torch.set_num_threads(threads)
        caps["threads"] = threads
    mem = int(node_config.get("max-memory-mb", 0) or 0)
    if mem and "mem" not in _CACHE:
        limit = mem * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        _CACHE["mem"] = mem
    if mem:
        caps["max_memory_mb"] = mem
    return caps


def _worker(cfg, pid: int, data_dir: str | None, state: RecordDict, dev: torch.device):
    key = (cfg.arch, cfg.seed, cfg.dataset, pid)
    if key not in _CACHE:
        gen = run_generator(cfg)
        fm = feature_map(cfg, gen)
        _CACHE[key] = (gen, fm)
    gen, fm = _CACHE[key]
    if "stats" in state.array_records:
        rec = state.array_records["stats"]
        meta = state.config_records["stats_meta"]
        probs = rec["class_probs"].numpy().copy() if "class_probs" in rec else None
        stats = DataStats(torch.from_numpy(rec["mean"].numpy().copy()), int(meta["count"]),
                          {k: v for k, v in meta.items() if k != "count"},
                          None if probs is None else torch.from_numpy(probs))
    else:
        if data_dir:
            cfg.data_dir = data_dir
        t = time.time()
        # on the CPU, as in the simulation's setup: the one DP release does not depend on the device
        gen.cpu(), fm.cpu()
        stats = one_client_stats(cfg, gen, fm, pid)
        log.info("client %d: data statistics computed once in %.1f s, peak RSS %.0f MB so far",
                 pid, time.time() - t, peak_rss_mb())
        from flwr.app import ConfigRecord

        arrays = {"mean": Array(stats.mean.numpy())}
        if stats.class_probs is not None:
            arrays["class_probs"] = Array(stats.class_probs.numpy())
        state.array_records["stats"] = ArrayRecord(arrays)
        state.config_records["stats_meta"] = ConfigRecord(
            {"count": stats.count, **{k: v for k, v in stats.privacy.items()
                                      if isinstance(v, (bool, int, float, str))}})
    return gen.to(dev), fm.to(dev), stats.to(dev)


@app.train()
def train(msg: Message, context: Context) -> Message:
    t0 = time.time()
    lean_malloc()
    cfg, _ = run_config(context.run_config)
    nc = context.node_config
    pid = int(nc["partition-id"])
    caps = apply_caps(nc)
    dev = resolve_device(str(nc.get("device", "cpu")))
    log.info("client %d: ClientApp started, local training on %s (node config device=%r), "
             "peak RSS %.0f MB so far", pid, dev, nc.get("device", "cpu"), peak_rss_mb())
    gen, fm, stats = _worker(cfg, pid, str(nc.get("data-dir", "")) or None, context.state, dev)
    rnd = int(msg.content["config"]["round"])
    down = msg.content[ARRAYS][DOWN_KEY].numpy()
    # the server's guidance centre (guidance-center="server"), else None
    center = (msg.content[ARRAYS][CENTER_KEY].numpy() if CENTER_KEY in msg.content[ARRAYS]
              else None)
    scores = downlink_scores(down, cfg.server.clip)
    opt_state = None
    if "adam" in context.state.array_records:
        arrays = {k: v.numpy() for k, v in context.state.array_records["adam"].items()}
        opt_state = opt_state_from_arrays(arrays)
        del context.state.array_records["adam"], arrays  # replaced after the update
    coded = cfg.server.uplink == "coded" and down.dtype == np.uint8
    res = client_update(gen, fm, stats, scores, round_client_config(cfg, rnd - 1), opt_state,
                        derive_seed(cfg.seed, rnd - 1, pid), downlink=down if coded else None,
                        center=center)
    context.state.array_records["adam"] = ArrayRecord(
        {k: Array(v) for k, v in opt_state_to_arrays(res.opt_state).items()})
    upload = res.coded if coded else res.packed
    if nc.get("inject-fault", "") == "malformed-mask":  # fault injection, used by the tests only
        upload = upload[:-3]
    rss = peak_rss_mb()
    log.info("client %d round %d: loss %.4f -> %.4f, %d bytes up, peak RSS %.0f MB%s", pid, rnd,
             res.loss_first, res.loss_last, upload.nbytes, rss,
             "" if center is None else f", guidance centre of {center.size} features from the server")
    metrics = {"partition_id": pid, "loss_first": res.loss_first, "loss_last": res.loss_last,
               "ones": res.ones, "nbytes": int(upload.nbytes), "peak_rss_mb": rss,
               "seconds": time.time() - t0,
               # 1 when Flower's own flwr-clientapp started this process (device_client/clientapp.py)
               "stock_launcher": int("flwr.supernode.cli" in sys.modules),
               "epsilon": float(stats.privacy.get("epsilon", -1.0)),
               **{k: float(v) for k, v in caps.items()}}
    content = RecordDict({ARRAYS: ArrayRecord({MASK_KEY: Array(np.ascontiguousarray(upload))}),
                          METRICS: MetricRecord(metrics)})
    return Message(content=content, reply_to=msg)
