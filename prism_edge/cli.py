"""The ``prism-edge`` command group."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import PrismError


class Group(click.Group):
    """Turns user errors (PrismError, bad values) into one line and exit code 2, no traceback."""

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


SEED_HELP = "Seed (0..4294967295) that regenerates the frozen weights; must match the mask's."


@main.command("archs")
def archs_cmd() -> None:
    """List the registered architectures and their masked-weight counts."""
    from .architectures import ARCHITECTURES, build_generator

    click.echo(f"{'name':<14} {'masked weights':>15} {'output':>10}  description")
    for name, spec in ARCHITECTURES.items():
        g = build_generator(name)
        shape = "x".join(map(str, g.out_shape))
        click.echo(f"{name:<14} {g.num_masked:>15,} {shape:>10}  {spec.summary}")


@main.command("init")
@click.option("--arch", default="mnist-small", show_default=True,
              help="Architecture name (see `prism-edge archs`).")
@click.option("--seed", type=int, default=42, show_default=True, help=SEED_HELP)
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
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def inspect_cmd(file: str, as_json: bool) -> None:
    """Show what a .bits mask (or an exported .onnx generator) holds."""
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
        else:
            click.echo(f"{key}: {value}")


if __name__ == "__main__":
    main()
