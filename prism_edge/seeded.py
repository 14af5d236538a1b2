"""The seed contract: frozen weights from a counter-based uint32 hash.

A frozen weight is ``sign(h(seed, layer, index)) * gain / sqrt(fan_in)``. ``h`` uses only uint32
multiply, xor and shifts, so numpy, torch and an ONNX graph compute the same bits on any platform.
No RNG state of any library enters the weights. See docs/SEED_CONTRACT.md for the test vectors.

    key(seed, layer)   = mix(mix(seed ^ 0x9E3779B9) ^ ((layer + 1) * 0x85EBCA6B))
    h(seed, layer, i)  = mix((i * 0x9E3779B1) ^ key(seed, layer))
    sign               = -1 if bit 31 of h is set else +1

where ``mix`` is Chris Wellons' "lowbias32" finaliser and every product is taken mod 2**32.
"""

from __future__ import annotations

import numpy as np
import torch

MASK32 = 0xFFFFFFFF
SEED_SALT = 0x9E3779B9
LAYER_MUL = 0x85EBCA6B
INDEX_MUL = 0x9E3779B1
MIX_MUL1 = 0x7FEB352D
MIX_MUL2 = 0x846CA68B
MAX_SEED = MASK32


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is a valid uint32 seed, else raise ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")
    return int(seed)


def mix_int(x: int) -> int:
    """lowbias32 on a Python int (used for per-layer keys, computed once)."""
    x &= MASK32
    x ^= x >> 16
    x = (x * MIX_MUL1) & MASK32
    x ^= x >> 15
    x = (x * MIX_MUL2) & MASK32
    x ^= x >> 16
    return x


def layer_key(seed: int, layer: int) -> int:
    """The uint32 key of one layer; every index of the layer is hashed against it."""
    seed = check_seed(seed)
    return mix_int(mix_int(seed ^ SEED_SALT) ^ (((layer + 1) * LAYER_MUL) & MASK32))


def hash_numpy(seed: int, layer: int, index: np.ndarray) -> np.ndarray:
    """h(seed, layer, index) for an array of uint32 indices, in numpy."""
    x = np.asarray(index, dtype=np.uint32) * np.uint32(INDEX_MUL)
    x ^= np.uint32(layer_key(seed, layer))
    x ^= x >> np.uint32(16)
    x *= np.uint32(MIX_MUL1)
    x ^= x >> np.uint32(15)
    x *= np.uint32(MIX_MUL2)
    x ^= x >> np.uint32(16)
    return x


def _mul32_torch(x: torch.Tensor, c: int) -> torch.Tensor:
    # int64 cannot hold a full 32x32-bit product; split the constant into 16-bit halves.
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & MASK32


def hash_torch(seed: int, layer: int, index: torch.Tensor) -> torch.Tensor:
    """h(seed, layer, index) in torch, carried in int64 holding uint32 values."""
    x = _mul32_torch(index.to(torch.int64) & MASK32, INDEX_MUL)
    x = x ^ layer_key(seed, layer)
    x = x ^ (x >> 16)
    x = _mul32_torch(x, MIX_MUL1)
    x = x ^ (x >> 15)
    x = _mul32_torch(x, MIX_MUL2)
    x = x ^ (x >> 16)
    return x


def signs_numpy(seed: int, layer: int, count: int) -> np.ndarray:
    """+1/-1 signs (int8) of the first ``count`` weights of a layer."""
    bits = hash_numpy(seed, layer, np.arange(count, dtype=np.uint32)) >> np.uint32(31)
    return (1 - 2 * bits.astype(np.int8)).astype(np.int8)


def signs_torch(seed: int, layer: int, count: int) -> torch.Tensor:
    """+1/-1 signs (float32) of the first ``count`` weights of a layer, computed in torch."""
    out = torch.empty(count, dtype=torch.float32)
    chunk = 1 << 16  # the int64 temporaries of a whole layer would dominate a device's peak
    for start in range(0, count, chunk):
        idx = torch.arange(start, min(count, start + chunk), dtype=torch.int64)
        out[start:start + chunk] = 1 - 2 * (hash_torch(seed, layer, idx) >> 31)
    return out


def frozen_weight(seed: int, layer: int, shape: tuple[int, ...], scale: float) -> torch.Tensor:
    """The frozen weight tensor of one layer: signs times ``scale`` (= gain / sqrt(fan_in))."""
    count = int(np.prod(shape))
    return (signs_torch(seed, layer, count) * scale).reshape(shape)


def signs_checksum(signs: np.ndarray) -> int:
    """CRC32 of the sign bits (1 = negative) packed MSB-first; the test-vector checksum."""
    import zlib

    return zlib.crc32(np.packbits(np.asarray(signs) < 0).tobytes())
