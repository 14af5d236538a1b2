import numpy as np
import pytest

from prism_edge.coding import CodingError, decode, encode, ideal_bits


@pytest.mark.parametrize("sharp", [0.0, 2.0, 6.0])
def test_roundtrip_bit_identical_and_close_to_entropy(sharp):
    rng = np.random.default_rng(0)
    n = 200_003
    s = rng.standard_normal(n) * sharp
    p = 1 / (1 + np.exp(-s))
    q = np.rint(p * 255).astype(np.uint8)
    mask = (rng.random(n) < q / 255).astype(np.uint8)
    data = encode(mask, q)
    assert np.array_equal(decode(data, q), mask)
    bits = 8 * len(data)
    assert bits <= 1.01 * n + 1000  # never much worse than raw bits
    assert bits <= 1.15 * ideal_bits(mask, q) + 2000  # close to what an ideal coder needs


def test_polarised_probabilities_go_far_below_one_bit():
    rng = np.random.default_rng(1)
    n = 100_000
    q = np.where(rng.random(n) < 0.5, 3, 252).astype(np.uint8)
    mask = (rng.random(n) < q / 255).astype(np.uint8)
    data = encode(mask, q)
    assert 8 * len(data) / n < 0.15
    assert np.array_equal(decode(data, q), mask)


def test_corrupted_or_mismatched_streams_raise():
    q = np.full(1000, 250, np.uint8)
    mask = np.ones(1000, np.uint8)
    mask[::97] = 0
    data = encode(mask, q)
    with pytest.raises(CodingError):
        decode(data[:-3], q)
    with pytest.raises(CodingError):
        decode(data, np.full(999, 250, np.uint8))
    with pytest.raises(CodingError):
        decode(b"XXXX" + data[4:], q)
