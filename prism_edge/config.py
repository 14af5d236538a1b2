"""Run configuration as plain dataclasses (recorded in every run's config.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import PrismError

# chosen by measurement: bench/results/quality.md (20 x 100 rounds: FID-LeNet 394 vs 411 for rff)
DEFAULT_FEATURES = "rff+pool2+pool4"


@dataclass
class ClientConfig:
    local_steps: int = 100  # L: Adam steps on the scores per round
    batch: int = 64  # generated images per step
    lr: float = 0.1  # paper: 0.1
    # the lr of the last round as a share of lr, reached by a cosine over the rounds (1: constant,
    # as the paper); see client.round_client_config
    lr_end: float = 1.0
    betas: tuple[float, float] = (0.5, 0.999)  # paper
    estimator: str = "ste"  # gradient estimator of the Bernoulli sample
    mmd: str = "unbiased"  # MMD estimator
    # the loss matches the generated class means to this multiple of the data's (1 = the
    # plain MMD; above 1 exaggerates each class, like a truncation trick); see stats.py
    mean_scale: float = 1.0
    # each class's target moved G times its distance from a centre (guidance_center) further
    # away (0: off); see stats.mmd_loss
    class_guidance: float = 0.0
    # what guidance pushes from: "client" (the client's own mean features), "model" (the mean
    # features of images the round's global model makes for every class, computed without data
    # by each client) or "server" (the same computed once by the server and sent with the
    # global state); see client.model_center and client.server_center
    guidance_center: str = "client"
    # images per class behind the "model" and "server" centres (320 on the server scored no
    # better than 32: bench/results/quality.md)
    center_per_class: int = 32
    features: str = DEFAULT_FEATURES  # feature map kind
    n_features: int = 8192
    feature_seed: int = 0
    precision: str = "fp32"  # generator arithmetic: fp32 | bf16 (autocast; see local_train)
    optimizer_state: str = "persist"  # Adam state across rounds: persist (paper) | reset


PRECISIONS = ("fp32", "bf16")
GUIDANCE_CENTERS = ("client", "model", "server")
OPTIMIZER_STATES = ("persist", "reset")


@dataclass
class ServerConfig:
    mada: bool = True
    # without MADA: p <- p_old + step * (p_avg - p_old) each round (1: plain averaging)
    step: float = 1.0
    fraction: float = 1.0  # share of clients sampled per round
    min_clients: int = 1  # fewer valid uploads than this: the round keeps the old state
    clip: float = 1e-3  # global probability kept in [clip, 1 - clip]
    downlink: str = "uint8"  # how the global probability travels: uint8 | fp32
    uplink: str = "coded"  # how masks travel: coded (vs the uint8 downlink) | packed (1 bit)
    score_init: float = 0.0  # initial scores (p = sigmoid(score_init))


@dataclass
class RunConfig:
    dataset: str = "mnist"
    data_dir: str | None = None
    arch: str = "mnist-small"
    seed: int = 42
    clients: int = 10
    rounds: int = 20
    split: str = "shards:4"
    final: str = "threshold"  # final.bits = threshold (p > 0.5) | sample of the final probability
    final_average: int = 1  # ... of the mean global probability over the last K rounds
    sample_every: int = 5
    mode: str = "mask"  # mask (PRISM) | dense (FedAvg baseline)
    conditional: bool = True  # labelled data: a class-conditional generator (label in z)
    dp_epsilon: float | None = None
    dp_delta: float = 1e-5
    dp_clip: float = 1.0
    client: ClientConfig = field(default_factory=ClientConfig)
    server: ServerConfig = field(default_factory=ServerConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        d = dict(d)
        d.setdefault("conditional", False)  # recorded before the field existed: unconditional
        client = ClientConfig(**{**d.pop("client", {})})
        client.betas = tuple(client.betas)  # type: ignore[assignment]
        server = ServerConfig(**d.pop("server", {}))
        return cls(**d, client=client, server=server)


def check_settings(cfg: RunConfig) -> None:
    """Settings whose values are only known at run time (Flower run config, checkpoints)."""
    if cfg.client.precision not in PRECISIONS:
        raise PrismError(f"unknown precision {cfg.client.precision!r}; use fp32 or bf16")
    if cfg.client.optimizer_state not in OPTIMIZER_STATES:
        raise PrismError(f"unknown optimizer state {cfg.client.optimizer_state!r}; "
                         "use persist or reset")
    if cfg.server.mada and cfg.server.step != 1.0:
        raise PrismError("a server step below 1 replaces MADA's smoothing; add --no-mada or "
                         "leave --server-step at 1")
    if cfg.mode == "dense" and cfg.server.step != 1.0:
        raise PrismError("--server-step moves a keep probability; the dense baseline averages "
                         "weights: leave --server-step at 1 with --mode dense")
    if not 1 <= cfg.final_average <= max(cfg.rounds, 1):
        raise PrismError(f"final average over {cfg.final_average} rounds: use 1 (the last round's "
                         f"probability) to {cfg.rounds} (the rounds of the run)")
    if cfg.mode == "dense" and cfg.final_average != 1:
        raise PrismError("--final-average averages keep probabilities; the dense baseline ships "
                         "its last weights: leave it at 1 with --mode dense")
    if cfg.client.class_guidance < 0:
        raise PrismError(f"class guidance {cfg.client.class_guidance} is negative; use 0 (off) "
                         "or more")
    if cfg.client.guidance_center not in GUIDANCE_CENTERS:
        raise PrismError(f"unknown guidance centre {cfg.client.guidance_center!r}; use one of "
                         f"{', '.join(GUIDANCE_CENTERS)}")
    if cfg.client.center_per_class < 1:
        raise PrismError(f"{cfg.client.center_per_class} images per class for the guidance "
                         "centre; use 1 or more")
    if not 0 < cfg.server.step <= 1:
        raise PrismError(f"server step {cfg.server.step} is outside (0, 1]")
    if cfg.server.uplink not in ("coded", "packed"):
        raise PrismError(f"unknown uplink {cfg.server.uplink!r}; use coded or packed")
    if cfg.server.uplink == "coded" and cfg.server.downlink != "uint8" and cfg.mode == "mask":
        raise PrismError("a coded uplink is coded against the 8-bit downlink; use --downlink "
                         "uint8 or --uplink packed")
