"""Run config <-> RunConfig, and the record keys both apps agree on."""

from __future__ import annotations

import numpy as np
import torch

from ..config import DEFAULT_FEATURES, ClientConfig, RunConfig, ServerConfig

ARRAYS, CONFIG, METRICS = "arrays", "config", "metrics"
DOWN_KEY, MASK_KEY = "global", "mask"


def run_config(rc: dict) -> tuple[RunConfig, dict]:
    """Flower's flat run config (pyproject [tool.flwr.app.config] + --run-config) -> RunConfig
    plus the deployment options (out-dir, resume, round-timeout)."""
    def get(key, default):
        return rc.get(key, default)

    eps = float(get("dp-epsilon", 0.0))
    cfg = RunConfig(
        dataset=str(get("dataset", "mnist")), data_dir=str(get("data-dir", "")) or None,
        arch=str(get("arch", "mnist-small")), seed=int(get("seed", 42)),
        clients=int(get("num-clients", 3)), rounds=int(get("rounds", 2)),
        split=str(get("split", "iid")), final=str(get("final", "threshold")),
        sample_every=int(get("sample-every", 0)), mode="mask",
        conditional=bool(get("conditional", True)),
        dp_epsilon=eps if eps > 0 else None, dp_delta=float(get("dp-delta", 1e-5)),
        dp_clip=float(get("dp-clip", 1.0)),
        client=ClientConfig(local_steps=int(get("local-steps", 100)), batch=int(get("batch", 64)),
                            lr=float(get("lr", 0.1)), estimator=str(get("estimator", "ste")),
                            mmd=str(get("mmd", "unbiased")), features=str(get("features", DEFAULT_FEATURES)),
                            n_features=int(get("n-features", 8192)),
                            precision=str(get("precision", "fp32"))),
        server=ServerConfig(mada=bool(get("mada", True)), fraction=float(get("fraction", 1.0)),
                            min_clients=int(get("min-clients", 1)),
                            downlink=str(get("downlink", "uint8")),
                            uplink=str(get("uplink", "coded")),
                            score_init=float(get("score-init", 0.0)),
                            clip=float(get("prob-clip", 1e-3))))
    deploy = {"out_dir": str(get("out-dir", "runs/flower")), "resume": bool(get("resume", False)),
              "round_timeout": float(get("round-timeout", 600.0))}
    return cfg, deploy


def opt_state_to_arrays(state: dict) -> dict[str, np.ndarray]:
    """The client's Adam state as numpy arrays (kept in the node's context.state)."""
    return {"step": np.array(state["step"], np.int64), "exp_avg": state["exp_avg"].numpy(),
            "exp_avg_sq": state["exp_avg_sq"].numpy()}


def opt_state_from_arrays(arrays: dict[str, np.ndarray]) -> dict:
    return {"step": int(arrays["step"]), "exp_avg": torch.from_numpy(np.array(arrays["exp_avg"])),
            "exp_avg_sq": torch.from_numpy(np.array(arrays["exp_avg_sq"]))}
