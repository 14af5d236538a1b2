"""The ``prism-edge`` command group."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .config import GUIDANCE_CENTERS, OPTIMIZER_STATES, ClientConfig, RunConfig, ServerConfig
from .errors import PrismError


class Group(click.Group):
    """Turns user errors (PrismError, bad values, bad options) into one line and exit code 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            hint = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(2)
        except click.exceptions.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PrismError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except ValueError as exc:
            # ValueErrors from argument validation (e.g. a seed out of range) are user errors too.
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prism-edge")
def main() -> None:
    """prism-edge: federated mask training (PRISM) and 1-bit-per-weight generators for devices."""


# the defaults shown by --help are the configuration's own (torch-free import)
_RUN = RunConfig()
_CLIENT, _SERVER = _RUN.client, _RUN.server
SEED_HELP = "Seed (0..4294967295) that regenerates the frozen weights; must match the mask's."


@main.command("archs")
def archs_cmd() -> None:
    """List the registered architectures and their masked-weight counts."""
    from .architectures import ARCHITECTURES, build_generator

    w = max(map(len, ARCHITECTURES))
    click.echo(f"{'name':<{w}} {'masked weights':>15} {'output':>10}  description")
    for name, spec in ARCHITECTURES.items():
        g = build_generator(name)
        shape = "x".join(map(str, g.out_shape))
        click.echo(f"{name:<{w}} {g.num_masked:>15,} {shape:>10}  {spec.summary}")


@main.command("init")
@click.option("--arch", default=_RUN.arch, show_default=True,
              help="Architecture name (see `prism-edge archs`).")
@click.option("--seed", type=int, default=_RUN.seed, show_default=True, help=SEED_HELP)
@click.option("--p", "prob", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Keep probability of every weight in the sampled mask.")
@click.option("--mask-seed", type=int, default=0, show_default=True,
              help="Seed of the Bernoulli draw of the mask (not of the weights).")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default="init.bits",
              show_default=True, help="Output .bits file.")
@click.option("--png", type=click.Path(dir_okay=False), default=None,
              help="Also write a grid of 16 images generated with this mask (PNG).")
def init_cmd(arch: str, seed: int, prob: float, mask_seed: int, out: str, png: str | None) -> None:
    """Build a generator from a seed and write an untrained mask drawn with keep probability P."""
    import numpy as np
    import torch

    from .architectures import build_generator
    from .bitsfile import write_bits
    from .images import save_grid
    from .masked import layer_sizes, set_flat_mask

    gen = build_generator(arch, seed)
    mask = (np.random.default_rng(mask_seed).random(gen.num_masked) < prob).astype(np.uint8)
    size = write_bits(out, mask, gen.describe(), layer_sizes(gen), seed,
                      {"kind": "untrained", "p": prob, "privacy": "no differential privacy"})
    click.echo(f"wrote {out}: {gen.num_masked:,} masked weights, {size:,} bytes")
    if png:
        set_flat_mask(gen, mask)
        with torch.no_grad():
            x = gen(torch.from_numpy(np.random.default_rng(0).standard_normal(
                (16, gen.nz)).astype(np.float32))).numpy()
        save_grid(x, png)
        click.echo(f"wrote {png}")


@main.command("inspect")
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def inspect_cmd(file: str, as_json: bool) -> None:
    """Show what a .bits mask or an exported .onnx generator holds, or where a training run
    stands (FILE: its output folder or checkpoint.pt): rounds done, last loss and lambda, and
    how many weights are still undecided (keep probability near 0.5)."""
    from .describe import describe_file

    info = describe_file(Path(file))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if key == "layers":
            click.echo("layers:")
            for row in value:
                click.echo(f"  {row['index']:>3}  {row['weights']:>10,} weights  "
                           f"{row['ones']:.3f} ones")
        elif key == "keep probability":
            click.echo("keep probability (share of weights):")
            for band, share in value.items():
                click.echo(f"  {band:<28} {share:7.2%}")
        else:
            click.echo(f"{key}: {value}")



@main.command("train")
@click.option("--dataset", default=_RUN.dataset, show_default=True,
              help="mnist, fashion-mnist, or a folder of images.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the dataset files (default: $PRISM_EDGE_DATA, else download).")
@click.option("--clients", type=click.IntRange(1), default=_RUN.clients, show_default=True,
              help="Number of simulated clients.")
@click.option("--rounds", type=click.IntRange(1), default=_RUN.rounds, show_default=True,
              help="Federated rounds.")
@click.option("--local-steps", type=click.IntRange(1), default=_CLIENT.local_steps, show_default=True,
              help="Adam steps on the scores per client per round.")
@click.option("--batch", type=click.IntRange(2), default=_CLIENT.batch, show_default=True,
              help="Generated images per local step.")
@click.option("--lr", type=float, default=_CLIENT.lr, show_default=True,
              help="Adam learning rate of the scores (per step; in the first round when "
                   "--lr-end is below 1).")
@click.option("--lr-end", type=click.FloatRange(0, 1), default=_CLIENT.lr_end, show_default=True,
              help="Learning rate of the last round as a share of --lr (no unit): it falls "
                   "from --lr along a cosine over --rounds (resuming with more rounds "
                   "stretches it); 1 keeps it constant (the paper).")
@click.option("--split", default=_RUN.split, show_default=True,
              help="iid | shards:K (K label-sorted shards per client) | dirichlet:ALPHA.")
@click.option("--arch", default=_RUN.arch, show_default=True,
              help="Architecture (see `prism-edge archs`).")
@click.option("--seed", type=int, default=_RUN.seed, show_default=True, help=SEED_HELP)
@click.option("--features", default=_CLIENT.features, show_default=True,
              help="Feature map of the MMD loss: rff | patch | randconv | rff+patch | rff+randconv "
                   "| rff+pool2+pool4 (adds RFF of 2x and 4x pooled images) "
                   "| encoder:PATH (TorchScript, e.g. from `prism-edge train-encoder`; on Flower "
                   "the file must exist at PATH on every node) | encoder-rffW:PATH (the encoder's "
                   "features plus, weighted by W, a Gaussian kernel on them: e.g. "
                   "encoder-rff1000:enc.pt; W = -1 keeps the Gaussian part alone) "
                   "| encoder-stage-rffW:PATH (the same with one Gaussian kernel per stage of a "
                   "train-encoder file, --n-features split evenly between them, rounded down); "
                   "several comma-separated encoder files give their features side by side "
                   "(e.g. two seeds of train-encoder: encoder-rff1000:a.pt,b.pt).")
@click.option("--n-features", type=click.IntRange(16), default=_CLIENT.n_features, show_default=True,
              help="Feature dimension D of the loss (for encoder-rffW:PATH and "
                   "encoder-stage-rffW:PATH, the number of random features of the Gaussian part).")
@click.option("--estimator", type=click.Choice(["ste", "paper"]), default=_CLIENT.estimator,
              show_default=True, help="Gradient estimator of the Bernoulli mask sample.")
@click.option("--mmd", type=click.Choice(["unbiased", "biased"]), default=_CLIENT.mmd,
              show_default=True, help="MMD estimator (biased = DP-MERF's ||mean - mu||^2).")
@click.option("--mean-scale", type=click.FloatRange(min=0, min_open=True), default=_CLIENT.mean_scale,
              show_default=True,
              help="Multiple of the data's per-class mean features that generated images are "
                   "matched to (a factor, no unit): 1 is the plain MMD; above 1 exaggerates each "
                   "class, like a truncation trick (bench/results/quality.md measures it).")
@click.option("--class-guidance", type=click.FloatRange(min=0), default=_CLIENT.class_guidance,
              show_default=True,
              help="Push each class's target G times its distance from a centre of the "
                   "features (--guidance-center) further away (a factor, no unit; 0: off; needs a "
                   "class-conditional model). 0.4 with --mean-scale 1 is measured in "
                   "bench/results/quality.md.")
@click.option("--guidance-center", type=click.Choice(GUIDANCE_CENTERS),
              default=_CLIENT.guidance_center, show_default=True,
              help="What --class-guidance pushes from: client = the client's own mean features "
                   "(which, on a non-IID split, hold only its few classes); model = the mean "
                   "features of --center-per-class images a class that the round's global model "
                   "makes, the same for every client and computed without data, by each client; "
                   "server = that centre computed once a round by the server and sent with the "
                   "global state (4 bytes per feature), so clients skip those images: rounds "
                   "1.04x faster on 2 cores (bench/results/guidance_center.md).")
@click.option("--center-per-class", type=click.IntRange(1), default=_CLIENT.center_per_class,
              show_default=True,
              help="Images per class (a count) the model or server guidance centre is the mean "
                   "features of. The server's centre is shared by every client, so it can afford "
                   "more; 320 with --guidance-center server did not score better than 32 "
                   "(bench/results/quality.md).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=_CLIENT.precision,
              show_default=True,
              help="Generator arithmetic in local training: bf16 runs its convolutions in "
                   "bfloat16: less activation memory, and faster only on CPUs with native bf16 "
                   "(avx512_bf16/AMX; elsewhere emulated and slower). Scores, optimiser and loss "
                   "stay fp32.")
@click.option("--optimizer-state", type=click.Choice(OPTIMIZER_STATES),
              default=_CLIENT.optimizer_state, show_default=True,
              help="Each client's Adam moments across rounds: persist (the paper) or reset "
                   "(fresh each round).")
@click.option("--no-mada", is_flag=True, help="Plain averaging instead of MADA smoothing.")
@click.option("--server-step", type=click.FloatRange(0, 1, min_open=True), default=_SERVER.step,
              show_default=True,
              help="With --no-mada: share of the way the global keep probability moves toward "
                   "the clients' average each round (no unit; 1 = plain averaging).")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=_SERVER.fraction,
              show_default=True, help="Share of clients sampled each round.")
@click.option("--min-clients", type=click.IntRange(1), default=_SERVER.min_clients, show_default=True,
              help="Fewer valid uploads than this keep the old global state.")
@click.option("--downlink", type=click.Choice(["uint8", "fp32"]), default=_SERVER.downlink,
              show_default=True, help="Encoding of the global probability sent to clients.")
@click.option("--uplink", type=click.Choice(["coded", "packed"]), default=_SERVER.uplink,
              show_default=True,
              help="How masks travel: coded = drawn with uniforms the server shares and coded "
                   "against the uint8 downlink (lossless, well under 1 bit/weight once training "
                   "settles); packed = 1 bit/weight.")
@click.option("--score-init", type=float, default=_SERVER.score_init, show_default=True,
              help="Initial score of every weight (keep probability sigmoid(score)).")
@click.option("--prob-clip", type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
              default=_SERVER.clip, show_default=True,
              help="The global keep probability is held in [c, 1 - c] (scores within "
                   "+-logit(1 - c)); a smaller c lets weights that every client kept or dropped "
                   "settle for longer (the paper's code does not clip: they lock).")
@click.option("--final", type=click.Choice(["threshold", "sample"]), default=_RUN.final,
              show_default=True, help="final.bits: threshold p > 0.5, or one sample of p.")
@click.option("--final-average", type=click.IntRange(1), default=_RUN.final_average,
              show_default=True, metavar="K",
              help="p for final.bits: the mean global keep probability over the last K rounds "
                   "(1: the last round's). A round's p is a vote of a few clients' sampled masks; "
                   "averaging rounds quietens that noise without touching training.")
@click.option("--conditional/--unconditional", default=_RUN.conditional, show_default=True,
              help="Labelled data: a class-conditional generator (the label is written into "
                   "the latent; each client matches per-class statistics). Unlabelled data is "
                   "always unconditional.")
@click.option("--mode", type=click.Choice(["mask", "dense"]), default=_RUN.mode, show_default=True,
              help="mask = PRISM; dense = FedAvg of fp32 weights (baseline).")
@click.option("--sample-every", type=click.IntRange(0), default=_RUN.sample_every, show_default=True,
              help="Write a sample grid every N rounds (0: only at the end).")
@click.option("--dp-epsilon", type=click.FloatRange(0, min_open=True), default=None,
              help="Differential privacy: epsilon per client example (default: no DP).")
@click.option("--dp-delta", type=click.FloatRange(0, 1, min_open=True), default=_RUN.dp_delta,
              show_default=True, help="Differential privacy delta.")
@click.option("--dp-clip", type=click.FloatRange(0, min_open=True), default=_RUN.dp_clip,
              show_default=True, help="L2 clipping bound of each example's feature vector.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="torch CPU threads (default: all cores).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Train the round's clients side by side in this many processes, splitting "
                   "the torch threads between them (CPU only). On 2 cores 2 is faster than 1 "
                   "(bench/results/workers.md). A run is reproducible for a given number of "
                   "workers and threads, so resume with the same.")
@click.option("--device", default="cpu", show_default=True,
              help="Where the simulated clients train: cpu | cuda | cuda:N | auto (a CUDA GPU "
                   "if torch sees one). The seed's weights are the same on each; the training "
                   "draws are not, so resume on the device a run started on.")
@click.option("-o", "--out", type=click.Path(file_okay=False), default="runs/train",
              show_default=True, help="Output directory.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
def train_cmd(**o) -> None:
    """Federated PRISM training (in-process simulation of all clients)."""
    import torch

    from .train import run

    if o["threads"]:
        torch.set_num_threads(o["threads"])
    summary = run(run_config(o), o["out"], resume=o["resume"], device=o["device"],
                  workers=o["workers"])
    final = "final.pt" if o["mode"] == "dense" else "final.bits"  # dense: fp32 weights
    click.echo(f"done in {summary['minutes']} min: {o['out']}/{final} ({summary['privacy']})")


def run_config(o: dict) -> RunConfig:
    """The RunConfig that `train`'s options describe."""
    return RunConfig(
        dataset=o["dataset"], data_dir=o["data_dir"], arch=o["arch"], seed=o["seed"],
        clients=o["clients"], rounds=o["rounds"], split=o["split"], final=o["final"],
        final_average=o["final_average"],
        sample_every=o["sample_every"], mode=o["mode"], conditional=o["conditional"],
        dp_epsilon=o["dp_epsilon"],
        dp_delta=o["dp_delta"], dp_clip=o["dp_clip"],
        client=ClientConfig(local_steps=o["local_steps"], batch=o["batch"], lr=o["lr"],
                            lr_end=o["lr_end"],
                            estimator=o["estimator"], mmd=o["mmd"], mean_scale=o["mean_scale"],
                            class_guidance=o["class_guidance"],
                            guidance_center=o["guidance_center"],
                            center_per_class=o["center_per_class"], features=o["features"],
                            n_features=o["n_features"], precision=o["precision"],
                            optimizer_state=o["optimizer_state"]),
        server=ServerConfig(mada=not o["no_mada"], step=o["server_step"], fraction=o["fraction"],
                            min_clients=o["min_clients"], downlink=o["downlink"],
                            uplink=o["uplink"], score_init=o["score_init"],
                            clip=o["prob_clip"]))


def _parse_grid(ctx, param, value: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not two whole numbers A,B (e.g. 7,7)") from None
    return a, b


@main.command("train-encoder")
@click.option("--dataset", default="fashion-mnist", show_default=True,
              help="A PUBLIC labelled dataset, not the clients' own (e.g. fashion-mnist for mnist "
                   "clients): mnist, fashion-mnist or a folder of class folders.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the dataset files (default: $PRISM_EDGE_DATA, else download).")
@click.option("--size", type=click.IntRange(8), default=28, show_default=True,
              help="Image side in pixels (must match the generator's output).")
@click.option("--channels", type=click.Choice(["1", "3"]), default="1", show_default=True,
              help="Image channels (1 grey, 3 RGB; must match the generator's output).")
# 10 is encoder.DEFAULT_EPOCHS, not imported here: that would load torch for --help
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True,
              help="Passes over the dataset (10 take about 8 minutes on 2 cores for 60,000 "
                   "images; against 2 they cut a federated MNIST run's FID by 39%).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the encoder's initialisation, batch order and shifts.")
# 2 is encoder.DEFAULT_SHIFT (not imported, as above)
@click.option("--shift", type=click.IntRange(0), default=2, show_default=True,
              help="Augmentation: move each training image by a random offset of up to this "
                   "many pixels on each axis (0: none; against 0, 2 cut a federated MNIST "
                   "run's FID by 18%).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads for torch (default: all cores).")
@click.option("--feature-grid", default="4,3", show_default=True, callback=_parse_grid,
              help="A,B: cells per side of the average-pooling grids over the first and second "
                   "conv stage (at most size/2 and size/4); the encoder gives 32*A^2 + 64*B^2 + "
                   "128*(size/8)^2 features, finer grids keep more of where strokes lie.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default="encoder.pt",
              show_default=True, help="TorchScript file to write; train with --features "
                                      "encoder:OUT.")
def train_encoder_cmd(dataset, data_dir, size, channels, epochs, seed, shift, threads,
                      feature_grid, out) -> None:
    """Train a feature encoder on a public dataset for the MMD loss (--features encoder:PATH)."""
    import torch

    from .encoder import train_public_encoder

    if threads:
        torch.set_num_threads(threads)
    acc = train_public_encoder(dataset, out, data_dir, size, int(channels), epochs, seed,
                               grid=feature_grid, shift=shift)
    click.echo(f"wrote {out}: test accuracy {acc:.1%} on {dataset}; use --features encoder:{out} "
               f"(best measured: --features encoder-stage-rff3000:{out} --n-features 2048 "
               "--mean-scale 1.3, bench/results/quality.md)")


@main.command("evaluate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--seed", type=int, default=None, help=SEED_HELP + " Needed for a .bits mask.")
@click.option("--dataset", default="mnist", show_default=True,
              help="Reference dataset: mnist, fashion-mnist or an image folder.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the dataset files (default: $PRISM_EDGE_DATA, else download).")
@click.option("-n", "--num-samples", type=click.IntRange(100), default=10000, show_default=True,
              help="Generated samples to score (images).")
@click.option("--latent-seed", type=int, default=0, show_default=True,
              help="Seed of the latent draws.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the metrics as JSON here (default: MODEL.eval.json).")
@click.option("--png", type=click.Path(dir_okay=False), default=None,
              help="Write a grid of 100 samples here (default: MODEL.eval.png).")
def evaluate_cmd(model, seed, dataset, data_dir, num_samples, latent_seed, json_out, png) -> None:
    """Score a generator (.onnx, or .bits + --seed) with FID-LeNet, PRDC and class balance."""
    from .data import load_dataset
    from .evaluation.evaluate import Reference, format_table, sample, write_report
    from .images import save_grid
    from .samplers import open_sampler

    sampler, nz, meta = open_sampler(model, seed)
    images = sample(sampler, nz, num_samples, latent_seed)
    shape = dict(size=images.shape[-1], channels=images.shape[1])
    train = load_dataset(dataset, "train", data_dir, **shape)
    test = load_dataset(dataset, "test", data_dir, **shape)
    if train.shape != images.shape[1:]:
        raise PrismError(f"the model makes {images.shape[1:]} images but {dataset} holds "
                         f"{train.shape}; evaluate against a dataset of the model's size")
    ref = Reference(train, test, min(num_samples, len(test)))
    result = ref.score(images)
    result.update({"model": str(model), "dataset": dataset, "meta": meta})
    click.echo(format_table(result))
    json_out = json_out or f"{model}.eval.json"
    png = png or f"{model}.eval.png"
    write_report(result, json_out)
    save_grid(images[:100], png, nrow=10)
    click.echo(f"wrote {json_out} and {png}")


@main.command("export")
@click.option("--mask", "mask_path", required=True, type=click.Path(dir_okay=False),
              help="The trained .bits mask (e.g. runs/train/final.bits).")
@click.option("--seed", type=int, required=True, help=SEED_HELP)
@click.option("-o", "--out", type=click.Path(dir_okay=False), default="generator.onnx",
              show_default=True, help="Output ONNX file.")
@click.option("--uint8", "uint8_output", is_flag=True,
              help="Output uint8 pixels (0..255) instead of floats in [-1, 1].")
@click.option("--dense", is_flag=True,
              help="Store plain fp32 weights (about 32x larger; for comparison only).")
def export_cmd(mask_path, seed, out, uint8_output, dense) -> None:
    """Pack a seed and a 1-bit mask into a compact ONNX generator."""
    from exporters.onnx_export import export

    info = export(mask_path, seed, out, uint8_output, dense)
    click.echo(f"wrote {out}: {info['bytes']:,} bytes for {info['masked_weights']:,} masked "
               f"weights ({info['bits_per_weight']:.3f} bits/weight, opset {info['opset']})")


@main.command("generate")
@click.option("--model", required=True, type=click.Path(dir_okay=False),
              help="An exported .onnx generator (or a .bits mask with --mask-seed).")
@click.option("-n", "--num", type=click.IntRange(1), default=64, show_default=True,
              help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the latent draws (same seed, same images).")
@click.option("--mask-seed", type=int, default=None,
              help="For a .bits model only: the weight seed used in training (runs torch).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="onnxruntime intra-op threads (default: all cores).")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default="samples.png",
              show_default=True, help="Output: .png grid or .npy array.")
@click.option("--label", type=click.IntRange(0), default=None,
              help="Class-conditional models only: generate this class alone (a class index, "
                   "e.g. the digit for MNIST). Default: classes drawn uniformly.")
@click.option("--by-class", is_flag=True,
              help="Class-conditional models only: NUM images of every class, a grid row each.")
def generate_cmd(model, num, seed, mask_seed, threads, out, label, by_class) -> None:
    """Generate images: onnxruntime + numpy for .onnx (the device path), torch for .bits."""
    from .images import save_samples

    if str(model).endswith(".onnx"):
        from device_client.generate import generate_to_file

        generate_to_file(model, num, seed, out, threads, label, by_class)
    else:
        from .evaluation.evaluate import run_latents
        from .latent import by_class_latents, latents
        from .samplers import open_sampler

        sampler, nz, meta = open_sampler(model, mask_seed)
        k = int(meta.get("classes", 0))
        z = by_class_latents(num, nz, seed, k) if by_class else latents(num, nz, seed, k, label)
        save_samples(run_latents(sampler, z), out, num if by_class else None)
    click.echo(f"wrote {out}")


@main.group("device", cls=click.Group)
def device_group() -> None:
    """The on-device side: join a federation, generate with onnxruntime only."""


@device_group.command("join")
@click.option("--superlink", required=True, help="SuperLink address HOST:PORT (its HTTP port).")
@click.option("--partition-id", type=click.IntRange(0), required=True,
              help="Which partition of the split this device's data plays (0-based).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="This device's dataset folder (default: $PRISM_EDGE_DATA).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads for local training (default: all cores).")
@click.option("--max-memory-mb", type=click.IntRange(64), default=None,
              help="Cap on the client's data segment, in MiB (RLIMIT_DATA).")
@click.option("--port", type=int, default=9094, show_default=True,
              help="Local port of the SuperNode's runtime API.")
@click.option("--root-certificates", type=click.Path(dir_okay=False), default=None,
              help="CA certificate (PEM) for TLS to the SuperLink; without it: insecure.")
@click.option("--device", default=None, metavar="cpu|cuda|cuda:N|auto",
              help="Where this node's local training runs: cpu (default), a CUDA GPU, or auto "
                   "(a GPU when torch sees one). Checked before the SuperNode starts.")
@click.option("--node-config", "extra", default="",
              help="Extra key=value pairs appended to the SuperNode's node config (advanced).")
@click.option("--stock-clientapp", is_flag=True,
              help="Run each round in Flower's own flwr-clientapp command instead of prism-edge's "
                   "lean one (same Flower runtime; about 30 MB more resident memory).")
def device_join_cmd(superlink, partition_id, data_dir, threads, max_memory_mb, port,
                    root_certificates, device, extra, stock_clientapp) -> None:
    """Start a Flower SuperNode that trains this device's masks (runs until stopped)."""
    from device_client.join import join

    join(superlink, partition_id, data_dir, threads, max_memory_mb, port, root_certificates,
         extra, stock_clientapp, device)


@device_group.command("generate")
@click.option("--model", required=True, type=click.Path(dir_okay=False),
              help="Exported .onnx generator.")
@click.option("-n", "--num", type=click.IntRange(1), default=64, show_default=True,
              help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latent draws.")
@click.option("--threads", type=click.IntRange(1), default=None, help="onnxruntime threads.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default="samples.png",
              show_default=True, help="Output: .png grid or .npy array.")
@click.option("--label", type=click.IntRange(0), default=None,
              help="Class-conditional models only: generate this class alone (class index).")
@click.option("--by-class", is_flag=True,
              help="Class-conditional models only: NUM images of every class, a grid row each.")
def device_generate_cmd(model, num, seed, threads, out, label, by_class) -> None:
    """Generate images with onnxruntime + numpy only (no torch)."""
    from device_client.generate import generate_to_file

    generate_to_file(model, num, seed, out, threads, label, by_class)
    click.echo(f"wrote {out}")

if __name__ == "__main__":
    main()
