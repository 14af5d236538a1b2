"""A client's mask on the wire below one bit per weight: coupled sampling + lossless coding.

Server and client share two things: the global probability the server sent (the 8-bit downlink
``q``) and a seed (derived from the run seed, round and client). The client draws its mask as
``m = u < p`` with uniforms ``u`` from the seed contract's hash, which is an exact Bernoulli(p)
sample. The server can draw the same ``u`` and form the reference mask ``r = u < q / 255``;
``m`` and ``r`` differ only where ``u`` falls between the client's ``p`` and ``q``, so the residual
``m XOR r`` has density ``|p - q|``: a few percent once local training moves little, against the
binary entropy of ``p`` for an independently drawn mask. (Privacy is unaffected: the guarantee
comes from privatising the data statistics once; the mask is post-processing.)

The residual is grouped into bins by the certainty ``|q - 127.5|``; each bin is stored raw
(1 bit/weight) or Golomb-Rice coded (gaps between ones), whichever is smaller. The Rice codes keep
unary quotients and fixed-width remainders in two separate bit streams so that both encoding and
decoding are vectorised numpy (no per-symbol Python loop). numpy only, so devices can run it.

Layout: magic ``PRC2``, n (uint32), bin count (uint8); per bin: mode (uint8: 0 raw, 1 rice),
k (uint8), symbols (uint32), unary bytes (uint32), payload bytes (uint32), payload.
"""

from __future__ import annotations

import struct

import numpy as np

from .seeded import MASK32, hash_numpy

MAGIC = b"PRC2"
N_BINS = 16
COUPLING_LAYER = 0xC0DE  # a hash "layer" no generator reaches: uniforms, not weight signs
_BIN_HEAD = struct.Struct("<BBIII")


class CodingError(ValueError):
    pass


def coupling_seed(client_seed: int) -> int:
    """The uint32 seed of a client's sampling uniforms, from its per-round seed."""
    return int(client_seed) & MASK32


def shared_uniforms(seed: int, n: int) -> np.ndarray:
    """n uniforms in (0, 1) from the seed contract's hash: the same on every platform."""
    h = hash_numpy(coupling_seed(seed), COUPLING_LAYER, np.arange(n, dtype=np.uint32))
    return (h.astype(np.float64) + 0.5) / 4294967296.0


def coupled_sample(p: np.ndarray, seed: int) -> np.ndarray:
    """A Bernoulli(p) mask (uint8) drawn with the shared uniforms of ``seed``."""
    p = np.asarray(p, np.float64).reshape(-1)
    return (shared_uniforms(seed, p.size) < p).astype(np.uint8)


# u < q / 255 for u = (h + 0.5) / 2^32  <=>  h < ceil(fl(q / 255) * 2^32 - 0.5): an integer test
_THRESHOLDS = np.minimum(np.ceil(np.arange(256) / 255.0 * 4294967296.0 - 0.5),
                         MASK32).astype(np.uint32)


class Shared:
    """What both sides derive from the downlink ``q`` once per round (the server then decodes
    every client's upload against it): per-weight thresholds and the certainty bins."""

    def __init__(self, q: np.ndarray):
        self.q = np.ascontiguousarray(np.asarray(q, np.uint8).reshape(-1))
        self.n = self.q.size
        self.index = np.arange(self.n, dtype=np.uint32)
        self.threshold = _THRESHOLDS[self.q]
        self.certain = self.q == 255  # h < 2^32 always; the uint32 threshold stops at 2^32 - 1
        dist = np.abs(self.q.astype(np.int16) * 2 - 255)  # 1..255, larger = more certain
        bins = np.minimum(dist * N_BINS // 256, N_BINS - 1)
        self.order = np.argsort(bins, kind="stable")  # weights grouped bin by bin
        self.bounds = np.concatenate([[0], np.cumsum(np.bincount(bins, minlength=N_BINS))])

    def reference(self, seed: int) -> np.ndarray:
        """What the server expects the mask to be: the same uniforms against the global q."""
        ref = hash_numpy(coupling_seed(seed), COUPLING_LAYER, self.index) < self.threshold
        ref |= self.certain
        return ref.view(np.uint8)


def reference_mask(q: np.ndarray, seed: int) -> np.ndarray:
    return Shared(q).reference(seed)


def _shared(q) -> Shared:
    return q if isinstance(q, Shared) else Shared(q)


def _rice_encode(gaps: np.ndarray, k: int) -> tuple[bytes, bytes]:
    """Unary stream (quotient ones, then a zero) and remainder stream (k bits each)."""
    quo = gaps >> k
    ends = np.cumsum(quo + 1) - 1  # the terminating zero of each unary code
    unary = np.ones(int(ends[-1]) + 1, np.uint8)
    unary[ends] = 0
    rem = ((gaps[:, None] >> np.arange(k - 1, -1, -1)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(unary).tobytes(), np.packbits(rem).tobytes()


def _rice_decode(unary: np.ndarray, rem: np.ndarray, k: int, count: int) -> np.ndarray:
    zeros = np.flatnonzero(np.unpackbits(unary) == 0)
    if zeros.size < count:
        raise CodingError("coded mask is truncated or corrupted (unary stream too short)")
    quo = np.diff(np.concatenate([[-1], zeros[:count]])) - 1
    if k == 0:
        return quo
    bits = np.unpackbits(rem, count=count * k).reshape(count, k).astype(np.int64)
    return (quo << k) | (bits @ (1 << np.arange(k - 1, -1, -1)))


def encode(mask: np.ndarray, q: np.ndarray | Shared, seed: int) -> bytes:
    """Code a 0/1 mask given the shared 8-bit global probability ``q`` and the client's seed."""
    mask = np.asarray(mask, np.uint8).reshape(-1)
    sh = _shared(q)
    if mask.size != sh.n:
        raise CodingError(f"mask has {mask.size} entries, the global state {sh.n}")
    resid = (mask ^ sh.reference(seed))[sh.order]
    parts = [MAGIC, struct.pack("<IB", mask.size, N_BINS)]
    for b in range(N_BINS):
        r = resid[sh.bounds[b]:sh.bounds[b + 1]]
        best = (0, 0, r.size, b"", np.packbits(r).tobytes())
        ones = np.flatnonzero(r)
        if not ones.size:
            best = (1, 0, 0, b"", b"")
        elif ones.size < r.size // 3:
            gaps = np.diff(np.concatenate([[-1], ones])) - 1
            k = max(0, int(np.round(np.log2(max(np.log(2) * gaps.mean(), 1.0)))))
            unary, rem = _rice_encode(gaps, k)
            if len(unary) + len(rem) < len(best[4]):
                best = (1, k, ones.size, unary, rem)
        mode, k, symbols, first, second = best
        parts.append(_BIN_HEAD.pack(mode, k, symbols, len(first), len(first) + len(second))
                     + first + second)
    return b"".join(parts)


def decode(data: bytes, q: np.ndarray | Shared, seed: int) -> np.ndarray:
    """Inverse of ``encode``; raises CodingError on a malformed stream."""
    sh = _shared(q)
    try:
        if data[:4] != MAGIC:
            raise CodingError("not a prism-edge coded mask (bad magic)")
        n, n_bins = struct.unpack_from("<IB", data, 4)
        if n != sh.n or n_bins != N_BINS:
            raise CodingError(f"coded mask is for {n} weights, the global state has {sh.n}")
        sorted_resid = np.zeros(n, np.uint8)
        off = 9
        for b in range(N_BINS):
            mode, k, symbols, ulen, size = _BIN_HEAD.unpack_from(data, off)
            off += _BIN_HEAD.size
            if off + size > len(data) or ulen > size or k > 31:
                raise CodingError("coded mask is truncated or corrupted (bin header)")
            payload = np.frombuffer(data, np.uint8, size, off)
            off += size
            lo, hi = int(sh.bounds[b]), int(sh.bounds[b + 1])
            if mode == 0:
                if symbols != hi - lo or size != (hi - lo + 7) // 8:
                    raise CodingError("coded mask is corrupted (raw bin of the wrong size)")
                sorted_resid[lo:hi] = np.unpackbits(payload, count=hi - lo)
            elif mode == 1 and symbols:
                gaps = _rice_decode(payload[:ulen], payload[ulen:], k, symbols)
                pos = np.cumsum(gaps + 1) - 1
                if pos[-1] >= hi - lo or gaps.min() < 0:
                    raise CodingError("coded mask is corrupted (position past its bin)")
                sorted_resid[lo + pos] = 1
            elif mode not in (0, 1):
                raise CodingError(f"coded mask is corrupted (unknown bin mode {mode})")
        if off != len(data):
            raise CodingError("coded mask has trailing bytes")
    except CodingError:
        raise
    except struct.error:
        raise CodingError("coded mask is truncated (a header runs past the end of the data)"
                          ) from None
    except (IndexError, ValueError) as exc:
        raise CodingError(f"coded mask is truncated or corrupted ({exc})") from None
    resid = np.empty(n, np.uint8)
    resid[sh.order] = sorted_resid
    return resid ^ sh.reference(seed)


def ideal_bits(mask: np.ndarray, q: np.ndarray) -> float:
    """Cross-entropy of the mask under p = q/255 in bits: what an ideal coder would need for a
    mask drawn independently of the shared uniforms."""
    p = np.clip(np.asarray(q, np.float64) / 255.0, 1e-6, 1 - 1e-6)
    m = np.asarray(mask).astype(bool)
    return float(-(np.log2(p[m]).sum() + np.log2(1 - p[~m]).sum()))
