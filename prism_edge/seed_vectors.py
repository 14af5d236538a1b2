"""Print the seed-contract test vectors as Markdown (`python -m prism_edge.seed_vectors`).

The printed tables are what docs/SEED_CONTRACT.md publishes and tests/test_seeded.py asserts.
"""

from __future__ import annotations

import numpy as np

from .architectures import ARCHITECTURES, build_generator
from .coding import shared_uniforms
from .masked import layer_sizes
from .seeded import hash_numpy, signs_checksum, signs_numpy

SEEDS = (0, 42)
RAW_CASES = [(0, 0, 0), (0, 0, 1), (42, 0, 0), (42, 3, 123456), (4294967295, 12, 4294967295)]
UNIFORM_CASES = [(42, 0), (42, 1), (2**62 + 5, 1000)]


def first_signs(seed: int, layer: int) -> str:
    return "".join("+" if s > 0 else "-" for s in signs_numpy(seed, layer, 16))


def arch_checksums(name: str, seed: int) -> int:
    sizes = layer_sizes(build_generator(name))
    return signs_checksum(np.concatenate([signs_numpy(seed, i, n) for i, n in enumerate(sizes)]))


def markdown() -> str:
    lines = ["| seed | layer | index | h (uint32) |", "| ---: | ---: | ---: | ---: |"]
    for seed, layer, index in RAW_CASES:
        h = int(hash_numpy(seed, layer, np.array([index], np.uint32))[0])
        lines.append(f"| {seed} | {layer} | {index} | {h} |")
    lines += ["", "| seed | layer | first 16 signs |", "| ---: | ---: | --- |"]
    n_layers = max(len(layer_sizes(build_generator(a))) for a in ARCHITECTURES)
    for seed in SEEDS:
        for layer in range(n_layers):
            lines.append(f"| {seed} | {layer} | `{first_signs(seed, layer)}` |")
    lines += ["", "| architecture | seed | masked weights | CRC32 of all sign bits |",
              "| --- | ---: | ---: | ---: |"]
    for name in ARCHITECTURES:
        total = build_generator(name).num_masked
        for seed in SEEDS:
            lines.append(f"| {name} | {seed} | {total} | {arch_checksums(name, seed):#010x} |")
    lines += ["", "| client seed | index | uniform u = (h(seed & 0xFFFFFFFF, 0xC0DE, index) + 0.5) "
              "/ 2^32 |", "| ---: | ---: | ---: |"]
    for seed, index in UNIFORM_CASES:
        u = float(shared_uniforms(seed, index + 1)[index])
        lines.append(f"| {seed} | {index} | {u!r} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
