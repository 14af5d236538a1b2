"""Run config <-> RunConfig, and the record keys both apps agree on."""

from __future__ import annotations

import numpy as np
import torch

from ..config import ClientConfig, RunConfig, ServerConfig

ARRAYS, CONFIG, METRICS = "arrays", "config", "metrics"
DOWN_KEY, MASK_KEY = "global", "mask"
CENTER_KEY = "center"  # the guidance centre, with guidance-center="server"


def run_config(rc: dict) -> tuple[RunConfig, dict]:
    """Flower's flat run config (pyproject [tool.flwr.app.config] + --run-config) -> RunConfig
    plus the deployment options (out-dir, resume, round-timeout). A key left out takes
    RunConfig's default, as a left-out option of `prism-edge train` does."""
    d = RunConfig()
    c, s = d.client, d.server

    def get(key, default):
        return rc.get(key, default)

    eps = float(get("dp-epsilon", 0.0))
    cfg = RunConfig(
        dataset=str(get("dataset", d.dataset)), data_dir=str(get("data-dir", "")) or None,
        arch=str(get("arch", d.arch)), seed=int(get("seed", d.seed)),
        clients=int(get("num-clients", d.clients)), rounds=int(get("rounds", d.rounds)),
        split=str(get("split", d.split)), final=str(get("final", d.final)),
        final_average=int(get("final-average", d.final_average)),
        sample_every=int(get("sample-every", d.sample_every)), mode="mask",
        conditional=bool(get("conditional", d.conditional)),
        dp_epsilon=eps if eps > 0 else None, dp_delta=float(get("dp-delta", d.dp_delta)),
        dp_clip=float(get("dp-clip", d.dp_clip)),
        client=ClientConfig(local_steps=int(get("local-steps", c.local_steps)),
                            batch=int(get("batch", c.batch)), lr=float(get("lr", c.lr)),
                            lr_end=float(get("lr-end", c.lr_end)),
                            estimator=str(get("estimator", c.estimator)),
                            mmd=str(get("mmd", c.mmd)), mean_scale=float(get("mean-scale", c.mean_scale)),
                            class_guidance=float(get("class-guidance", c.class_guidance)),
                            guidance_center=str(get("guidance-center", c.guidance_center)),
                            center_per_class=int(get("center-per-class", c.center_per_class)),
                            features=str(get("features", c.features)),
                            n_features=int(get("n-features", c.n_features)),
                            precision=str(get("precision", c.precision)),
                            optimizer_state=str(get("optimizer-state", c.optimizer_state))),
        server=ServerConfig(mada=bool(get("mada", s.mada)), step=float(get("server-step", s.step)),
                            fraction=float(get("fraction", s.fraction)),
                            min_clients=int(get("min-clients", s.min_clients)),
                            downlink=str(get("downlink", s.downlink)),
                            uplink=str(get("uplink", s.uplink)),
                            score_init=float(get("score-init", s.score_init)),
                            clip=float(get("prob-clip", s.clip))))
    deploy = {"out_dir": str(get("out-dir", "runs/flower")), "resume": bool(get("resume", False)),
              "round_timeout": float(get("round-timeout", 600.0))}
    return cfg, deploy


def opt_state_to_arrays(state: dict) -> dict[str, np.ndarray]:
    """The client's Adam state as numpy arrays (kept in the node's context.state)."""
    return {"step": np.array(state["step"], np.int64),
            "exp_avg": state["exp_avg"].cpu().numpy(),  # a GPU node's state too
            "exp_avg_sq": state["exp_avg_sq"].cpu().numpy()}


def opt_state_from_arrays(arrays: dict[str, np.ndarray]) -> dict:
    return {"step": int(arrays["step"]), "exp_avg": torch.from_numpy(np.array(arrays["exp_avg"])),
            "exp_avg_sq": torch.from_numpy(np.array(arrays["exp_avg_sq"]))}
