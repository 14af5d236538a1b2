import numpy as np
import pytest

from prism_edge.coding import (
    CodingError,
    coupled_sample,
    decode,
    encode,
    ideal_bits,
    reference_mask,
    shared_uniforms,
)


def _hb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 1e-12, 1 - 1e-12)
    return -(x * np.log2(x) + (1 - x) * np.log2(1 - x))


def test_shared_uniforms_are_uniform_and_fixed_by_the_seed():
    u = shared_uniforms(7, 400_000)
    assert np.array_equal(u, shared_uniforms(7, 400_000))
    assert not np.array_equal(u[:1000], shared_uniforms(8, 1000))
    assert 0 < u.min() and u.max() < 1
    hist = np.histogram(u, bins=10, range=(0, 1))[0] / u.size
    assert np.abs(hist - 0.1).max() < 0.003
    # fixed values: any platform must draw exactly these, (hash + 0.5) / 2**32
    hashes = [2901018386, 1454963516, 1581319681]
    assert shared_uniforms(42, 3).tolist() == [(h + 0.5) / 2**32 for h in hashes]


def test_integer_reference_equals_the_float_definition():
    q = np.tile(np.arange(256, dtype=np.uint8), 2000)
    assert np.array_equal(reference_mask(q, 77), (shared_uniforms(77, q.size) < q / 255.0))


def test_coupled_sample_is_a_bernoulli_sample_of_p():
    rng = np.random.default_rng(0)
    p = rng.random(500_000)
    m = coupled_sample(p, 3)
    for lo in np.arange(0, 1, 0.1):
        sel = (p >= lo) & (p < lo + 0.1)
        assert abs(m[sel].mean() - p[sel].mean()) < 0.01


@pytest.mark.parametrize("sharp", [0.0, 2.0, 6.0])
def test_roundtrip_bit_identical_and_never_much_worse_than_raw(sharp):
    rng = np.random.default_rng(0)
    n = 200_003
    p = 1 / (1 + np.exp(-rng.standard_normal(n) * sharp))
    q = np.rint(p * 255).astype(np.uint8)
    mask = (rng.random(n) < q / 255).astype(np.uint8)  # drawn independently of the uniforms
    data = encode(mask, q, 11)
    assert np.array_equal(decode(data, q, 11), mask)
    assert 8 * len(data) <= 1.01 * n + 1000
    if sharp:
        assert 8 * len(data) <= 2.2 * ideal_bits(mask, q) + 2000


def test_coupled_masks_cost_about_the_entropy_of_the_drift():
    # a client whose p moved a little from the global q: the residual has density |p - q|
    rng = np.random.default_rng(2)
    n = 300_000
    q = rng.integers(0, 256, n).astype(np.uint8)
    p = np.clip(q / 255 + rng.normal(0, 0.03, n), 0, 1)
    mask = coupled_sample(p, 5)
    data = encode(mask, q, 5)
    assert np.array_equal(decode(data, q, 5), mask)
    bits = 8 * len(data) / n
    drift = np.abs(p - q / 255).mean()
    assert bits < 1.15 * _hb(drift) + 0.01
    assert bits < 0.25  # an independent draw of the same p would cost ~0.9 bits/weight
    assert (mask != reference_mask(q, 5)).mean() == pytest.approx(drift, rel=0.05)


def test_wrong_seed_decodes_to_another_mask():
    q = np.full(5000, 128, np.uint8)
    mask = coupled_sample(q / 255, 1)
    assert not np.array_equal(decode(encode(mask, q, 1), q, 2), mask)


def test_corrupted_or_mismatched_streams_raise():
    rng = np.random.default_rng(3)
    q = rng.integers(0, 256, 20_000).astype(np.uint8)
    mask = coupled_sample(np.clip(q / 255 + rng.normal(0, 0.05, q.size), 0, 1), 9)
    data = encode(mask, q, 9)
    for bad in (data[:-3], data[:20], data + b"\0", b"XXXX" + data[4:]):
        with pytest.raises(CodingError):
            decode(bad, q, 9)
    with pytest.raises(CodingError):
        decode(data, q[:-1], 9)
    for i in range(4, min(len(data), 200)):  # a flipped header or payload byte never crashes
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        try:
            out = decode(bytes(flipped), q, 9)
        except CodingError:
            continue
        assert out.shape == mask.shape
