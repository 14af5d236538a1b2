import re
from pathlib import Path

import numpy as np
import pytest
import torch

from prism_edge import seed_vectors
from prism_edge.architectures import ARCHITECTURES, build_generator
from prism_edge.masked import masked_layers
from prism_edge.seeded import hash_numpy, hash_torch, layer_key, mix_int, signs_numpy, signs_torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "SEED_CONTRACT.md"

# Published vectors (docs/SEED_CONTRACT.md). Changing any of them breaks the seed contract.
RAW = {(0, 0, 0): 1337980995, (0, 0, 1): 2735679011, (42, 0, 0): 532601623,
       (42, 3, 123456): 887163842, (4294967295, 12, 4294967295): 4232651027}
FIRST16 = {(0, 0): "+---+--+-++-++--", (0, 1): "-++++++------+--", (0, 2): "+++-+---+----+--",
           (0, 3): "-+--++-+-+++-+--", (0, 10): "--+---+----+--+-",
           (42, 0): "+-+++--++----+-+", (42, 1): "-++-+++-----+--+", (42, 2): "++-+++-+-++--+-+",
           (42, 3): "-+-++----+---+--", (42, 10): "--++-+++++++++-+"}
CHECKSUMS = {("mnist-small", 0): 0x18BF0959, ("mnist-small", 42): 0xA0753311,
             ("cifar-small", 0): 0x0968D27C, ("cifar-small", 42): 0x8F3342A6,
             ("paper-resnet", 0): 0x2454750A, ("paper-resnet", 42): 0xC88FFADF}


def reference_hash(seed: int, layer: int, index: int) -> int:
    """Pure-Python reading of the contract, independent of numpy and torch."""
    return mix_int(((index * 0x9E3779B1) & 0xFFFFFFFF) ^ layer_key(seed, layer))


@pytest.mark.parametrize("case", sorted(RAW))
def test_raw_hash_vectors_in_three_implementations(case):
    seed, layer, index = case
    assert reference_hash(seed, layer, index) == RAW[case]
    assert int(hash_numpy(seed, layer, np.array([index], np.uint32))[0]) == RAW[case]
    assert int(hash_torch(seed, layer, torch.tensor([index]))[0]) == RAW[case]


@pytest.mark.parametrize("case", sorted(FIRST16))
def test_first_signs(case):
    seed, layer = case
    want = np.array([1 if c == "+" else -1 for c in FIRST16[case]])
    assert (signs_numpy(seed, layer, 16) == want).all()
    assert (signs_torch(seed, layer, 16).numpy() == want).all()


@pytest.mark.parametrize("case", sorted(CHECKSUMS))
def test_architecture_checksums_numpy_and_torch(case):
    name, seed = case
    assert seed_vectors.arch_checksums(name, seed) == CHECKSUMS[case]
    gen = build_generator(name, seed)
    bits = torch.cat([(m.frozen.reshape(-1) < 0) for m in masked_layers(gen)]).numpy()
    import zlib

    assert zlib.crc32(np.packbits(bits).tobytes()) == CHECKSUMS[case]


def test_numpy_and_torch_agree_on_a_large_layer():
    idx = np.arange(0, 2**32 - 1, 9973, dtype=np.uint32)
    a = hash_numpy(7, 5, idx)
    b = hash_torch(7, 5, torch.from_numpy(idx.astype(np.int64))).numpy()
    assert (a.astype(np.int64) == b).all()


def test_signs_are_balanced_and_layers_differ():
    s0, s1 = signs_numpy(1, 0, 100_000), signs_numpy(1, 1, 100_000)
    assert abs(s0.mean()) < 0.01 and abs(s1.mean()) < 0.01
    assert (s0 != s1).mean() > 0.45


UNIFORMS = {(42, 0): 0.6754459781805053, (42, 1): 0.33876009203959256,
            (2**62 + 5, 1000): 0.8389037997694686}


def test_shared_uniforms_vectors():
    from prism_edge.coding import shared_uniforms

    for (seed, index), u in UNIFORMS.items():
        assert float(shared_uniforms(seed, index + 1)[index]) == u


def test_doc_publishes_the_asserted_vectors():
    doc = DOC.read_text()
    for (seed, index), u in UNIFORMS.items():
        assert f"| {seed} | {index} | {u!r} |" in doc
    for (seed, layer, index), h in RAW.items():
        assert re.search(rf"\| {seed} \| {layer} \| {index} \| {h} \|", doc)
    for (seed, layer), signs in FIRST16.items():
        assert f"| {seed} | {layer} | `{signs}` |" in doc
    for (name, seed), crc in CHECKSUMS.items():
        assert f"| {name} | {seed} |" in doc and f"{crc:#010x}" in doc


def test_weight_scale_and_no_rng_state():
    torch.manual_seed(1)
    a = build_generator("mnist-small", 3)
    torch.manual_seed(2)
    np.random.seed(5)
    b = build_generator("mnist-small", 3)
    for la, lb in zip(masked_layers(a), masked_layers(b)):
        assert torch.equal(la.frozen, lb.frozen)
        assert torch.allclose(la.frozen.abs(), torch.full_like(la.frozen, la.scale))


def test_seed_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="seed must be in"):
        build_generator("mnist-small", 2**32)
    assert set(ARCHITECTURES) >= {"mnist-small", "cifar-small", "paper-resnet"}
