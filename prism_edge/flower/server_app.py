"""The prism-edge ServerApp and its Strategy.

``PrismStrategy`` sends the global probability (8-bit) to the sampled nodes, and folds the packed
masks that come back with ``server.aggregate`` (averaging + MADA), unchanged from the simulation.
Nodes that fail or miss the round timeout are logged and left out; malformed uploads are rejected
with a reason. It writes the same metrics.jsonl, checkpoint.pt and final.bits as the simulation.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.common.serde import recorddict_to_proto
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import Strategy

from .. import server as srv
from ..client import derive_seed, round_client_config, sends_center, server_center
from ..clientdata import feature_map, run_generator
from ..coding import Shared
from ..config import RunConfig, check_settings
from ..recorder import RunRecorder
from .common import ARRAYS, CENTER_KEY, CONFIG, DOWN_KEY, MASK_KEY, METRICS, run_config

log = logging.getLogger("prism_edge.server")
app = ServerApp()


def wire_bytes(content: RecordDict) -> int:
    """Size of a message's content as serialized on the wire (protobuf)."""
    return recorddict_to_proto(content).ByteSize()


class PrismStrategy(Strategy):
    def __init__(self, cfg: RunConfig, state: srv.ServerState, recorder: RunRecorder,
                 wait_s: float = 60.0, gen=None):
        self.cfg, self.state, self.rec, self.wait_s = cfg, state, recorder, wait_s
        # the generator and feature map that compute the guidance centre the server sends
        # (guidance-center="server"); None when no centre travels
        self.center_model = ((gen, feature_map(cfg, gen))
                             if gen is not None and sends_center(cfg.client) else None)
        self.sent: dict[int, int] = {}
        self.down: np.ndarray | None = None  # the downlink of the round in flight
        self.t0 = time.time()
        self.epsilons: list[float] = []

    def summary(self) -> None:
        log.info("PrismStrategy: MADA=%s, step=%s, fraction=%s, min_clients=%d, downlink=%s",
                 self.cfg.server.mada, self.cfg.server.step, self.cfg.server.fraction,
                 self.cfg.server.min_clients, self.cfg.server.downlink)

    def downlink(self) -> ArrayRecord:
        self.down = srv.encode_downlink(self.state.prob, self.cfg.server.downlink)
        return ArrayRecord({DOWN_KEY: Array(self.down)})

    def _nodes(self, grid: Grid) -> list[int]:
        deadline = time.time() + self.wait_s
        need = self.cfg.server.min_clients
        while len(nodes := sorted(grid.get_node_ids())) < need and time.time() < deadline:
            time.sleep(0.5)
        return nodes

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        self.t0 = time.time()
        rnd = self.state.round + 1
        nodes = self._nodes(grid)
        k = max(1, int(round(self.cfg.server.fraction * len(nodes))))
        chosen = sorted(random.Random(derive_seed(self.cfg.seed, rnd)).sample(nodes, k))
        arrays = self.downlink()
        if self.center_model is not None:
            gen, fm = self.center_model
            center = server_center(gen, fm, round_client_config(self.cfg, rnd - 1),
                                   srv.downlink_scores(self.down, self.cfg.server.clip),
                                   self.cfg.seed, rnd - 1)
            arrays[CENTER_KEY] = Array(center)
        content = RecordDict({ARRAYS: arrays, CONFIG: ConfigRecord({"round": rnd})})
        size = wire_bytes(content)
        self.sent = {nid: size for nid in chosen}
        log.info("round %d: sending the global state to %d of %d nodes (%d bytes each)", rnd,
                 len(chosen), len(nodes), size)
        return [Message(content=content, dst_node_id=nid, message_type=MessageType.TRAIN)
                for nid in chosen]

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        rnd = self.state.round + 1
        uploads, losses, per_client = {}, [], {}
        answered = set()
        for msg in replies:
            nid = msg.metadata.src_node_id
            answered.add(nid)
            if msg.has_error():
                log.warning("round %d: node %d failed: %s", rnd, nid, msg.error.reason)
                continue
            up_bytes = wire_bytes(msg.content)
            try:
                uploads[str(nid)] = msg.content[ARRAYS][MASK_KEY].numpy()
                m = msg.content[METRICS]
                losses.append((float(m["loss_first"]), float(m["loss_last"])))
                if float(m.get("epsilon", -1.0)) >= 0:
                    self.epsilons.append(float(m["epsilon"]))
                per_client[str(nid)] = {"sent": up_bytes, "received": self.sent.get(nid, 0),
                                        "peak_rss_mb": float(m.get("peak_rss_mb", 0.0)),
                                        "train_seconds": float(m.get("seconds", 0.0)),
                                        "stock_launcher": int(m.get("stock_launcher", -1)),
                                        "partition": int(m.get("partition_id", -1))}
            except (KeyError, TypeError, ValueError) as exc:
                uploads[str(nid)] = f"malformed reply ({exc})"
        missing = sorted(set(self.sent) - answered)
        for nid in missing:
            log.warning("round %d: node %d did not answer before the timeout; left out", rnd, nid)
        rng = np.random.default_rng(derive_seed(self.cfg.seed, rnd - 1))
        decode = None
        if self.cfg.server.uplink == "coded":
            # the client drew and coded its mask with the seed of (run, round, its partition)
            def decode(nid, up, _down=Shared(self.down)):
                pid = per_client.get(nid, {}).get("partition", -1)
                if pid < 0 and isinstance(up, np.ndarray):
                    raise srv.UploadError("reply names no partition; cannot decode its mask")
                return srv.decode_upload(up, _down,
                                         derive_seed(self.cfg.seed, rnd - 1, max(pid, 0)))
        agg = srv.aggregate(self.state, uploads, self.cfg.server, rng, decode)
        self.state.round = rnd
        srv.tally_final(self.state, self.cfg.rounds, self.cfg.final_average)
        bytes_up = sum(c["sent"] for c in per_client.values())
        bytes_down = sum(self.sent.values())
        row = srv.round_row(self.state, list(self.sent), agg, losses, bytes_up, bytes_down,
                            time.time() - self.t0, lr=round_client_config(self.cfg, rnd - 1).lr,
                            missing=[str(n) for n in missing], per_client=per_client)
        self.rec.log_round(row)
        self.rec.checkpoint(self.state)
        self.rec.samples(self.state)
        log.info("round %d: %d accepted, %d rejected, %d missing, lambda %.4f, %d B up, %d B down",
                 rnd, len(agg.accepted), len(agg.rejected), len(missing), agg.lam, bytes_up,
                 bytes_down)
        return self.downlink(), MetricRecord({"accepted": len(agg.accepted), "lambda": agg.lam})

    def configure_evaluate(self, server_round, arrays, config, grid) -> Iterable[Message]:
        return []

    def aggregate_evaluate(self, server_round, replies) -> MetricRecord | None:
        return None


@app.main()
def main(grid: Grid, context: Context) -> None:
    logging.basicConfig(level=logging.INFO)
    cfg, deploy = run_config(context.run_config)
    check_settings(cfg)
    gen = run_generator(cfg)
    rec = RunRecorder(deploy["out_dir"], cfg, gen)
    ck = rec.begin(deploy["resume"])
    state = srv.init_state(gen.num_masked, cfg.server)
    if ck is not None:
        srv.restore(state, ck)
        log.info("resuming from round %d of %d", state.round, cfg.rounds)
    strategy = PrismStrategy(cfg, state, rec, gen=gen)
    t = time.time()
    remaining = cfg.rounds - state.round
    if remaining > 0:
        strategy.start(grid=grid, initial_arrays=strategy.downlink(), num_rounds=remaining,
                       timeout=deploy["round_timeout"])
    privacy = "no differential privacy" if cfg.dp_epsilon is None else (
        f"({max(strategy.epsilons, default=cfg.dp_epsilon):.3g}, {cfg.dp_delta:g})-DP for one "
        "example of a client's data")
    summary = rec.finish(state, privacy, (time.time() - t) / 60)
    log.info("finished: %s/final.bits (%s)", deploy["out_dir"], summary["privacy"])
