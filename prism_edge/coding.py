"""Lossless coding of a client's mask relative to the global probability (below one bit/weight).

Server and client share the global probability the server sent (the 8-bit downlink ``q``). A
client's mask mostly agrees with the likely mask ``q >= 128``; the residual ``m XOR (q >= 128)`` is
sparse where ``q`` is far from 128. Weights are grouped into bins by ``|q - 127.5|``; each bin's
residual is stored either raw (1 bit/weight, for bins near 0.5) or as Golomb-Rice-coded gaps
between ones, whichever is smaller. numpy only, so devices can run it.

Layout: magic ``PRC1``, n (uint32), bin count (uint8); per bin: mode (uint8: 0 raw, 1 rice),
k (uint8), symbols (uint32), payload bytes (uint32), payload.
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = b"PRC1"
N_BINS = 16


class CodingError(ValueError):
    pass


def _bins(q: np.ndarray) -> np.ndarray:
    dist = np.abs(q.astype(np.int16) * 2 - 255)  # 1..255, larger = more certain
    return np.minimum(dist * N_BINS // 256, N_BINS - 1)


def _rice_encode(gaps: np.ndarray, k: int) -> np.ndarray:
    """Bits (uint8 0/1) of the Rice codes of ``gaps``: unary quotient, 0, k remainder bits."""
    quo = gaps >> k
    lengths = quo + 1 + k
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    bits = np.zeros(int(lengths.sum()), np.uint8)
    if quo.sum():
        rep = np.repeat(starts, quo)
        offs = np.arange(int(quo.sum())) - np.repeat(np.cumsum(quo) - quo, quo)
        bits[rep + offs] = 1
    for j in range(k):
        bits[starts + quo + 1 + j] = (gaps >> (k - 1 - j)) & 1
    return bits


def _rice_decode(bits: np.ndarray, k: int, count: int) -> np.ndarray:
    zeros = np.flatnonzero(bits == 0)
    out = np.empty(count, np.int64)
    pos, weights = 0, (1 << np.arange(k - 1, -1, -1)) if k else None
    for i in range(count):
        z = zeros[np.searchsorted(zeros, pos)]
        rem = int(bits[z + 1:z + 1 + k] @ weights) if k else 0
        out[i] = ((z - pos) << k) | rem
        pos = z + 1 + k
    return out


def encode(mask: np.ndarray, q: np.ndarray) -> bytes:
    """Code a 0/1 mask given the shared 8-bit global probability ``q`` (same length)."""
    mask = np.asarray(mask, np.uint8).reshape(-1)
    q = np.asarray(q, np.uint8).reshape(-1)
    if mask.size != q.size:
        raise CodingError(f"mask has {mask.size} entries, the global state {q.size}")
    resid = mask ^ (q >= 128).astype(np.uint8)
    bins = _bins(q)
    parts = [MAGIC, struct.pack("<IB", mask.size, N_BINS)]
    for b in range(N_BINS):
        r = resid[bins == b]
        raw = np.packbits(r).tobytes()
        best = (0, 0, r.size, raw)
        ones = np.flatnonzero(r)
        if ones.size and ones.size < r.size // 3:
            gaps = np.diff(np.concatenate([[-1], ones])) - 1
            k = max(0, int(np.round(np.log2(max(np.log(2) * gaps.mean(), 1.0)))))
            rice = np.packbits(_rice_encode(gaps, k)).tobytes()
            if len(rice) < len(raw):
                best = (1, k, ones.size, rice)
        elif not ones.size:
            best = (1, 0, 0, b"")
        mode, k, symbols, payload = best
        parts.append(struct.pack("<BBII", mode, k, symbols, len(payload)) + payload)
    return b"".join(parts)


def decode(data: bytes, q: np.ndarray) -> np.ndarray:
    """Inverse of ``encode``; raises CodingError on a malformed stream."""
    q = np.asarray(q, np.uint8).reshape(-1)
    try:
        if data[:4] != MAGIC:
            raise CodingError("not a prism-edge coded mask")
        n, n_bins = struct.unpack_from("<IB", data, 4)
        if n != q.size or n_bins != N_BINS:
            raise CodingError(f"coded mask is for {n} weights, the global state has {q.size}")
        bins = _bins(q)
        resid = np.zeros(n, np.uint8)
        off = 9
        for b in range(N_BINS):
            mode, k, symbols, size = struct.unpack_from("<BBII", data, off)
            off += 10
            payload = np.frombuffer(data, np.uint8, size, off)
            off += size
            idx = np.flatnonzero(bins == b)
            if mode == 0:
                resid[idx] = np.unpackbits(payload, count=idx.size)
            elif symbols:
                gaps = _rice_decode(np.unpackbits(payload), k, symbols)
                resid[idx[np.cumsum(gaps + 1) - 1]] = 1
        if off != len(data):
            raise CodingError("coded mask has trailing bytes")
    except (struct.error, IndexError, ValueError) as exc:
        raise CodingError(f"coded mask is truncated or corrupted ({exc})") from None
    return resid ^ (q >= 128).astype(np.uint8)


def ideal_bits(mask: np.ndarray, q: np.ndarray) -> float:
    """Cross-entropy of the mask under p = q/255 in bits: what an ideal coder would need."""
    p = np.clip(np.asarray(q, np.float64) / 255.0, 1e-6, 1 - 1e-6)
    m = np.asarray(mask).astype(bool)
    return float(-(np.log2(p[m]).sum() + np.log2(1 - p[~m]).sum()))
