"""The ``.bits`` mask file: one binary mask, 1 bit per weight. Format in docs/BITS_FORMAT.md.

    offset  size  field
    0       8     magic  b"PRISMBIT"
    8       2     version (uint16 little-endian) = 1
    10      2     flags (uint16) = 0
    12      4     header length H (uint32)
    16      H     header: UTF-8 JSON {arch, layers, total, fingerprint, meta}
    16+H    P     mask bits, np.packbits order (MSB first), P = ceil(total / 8), zero padding
    16+H+P  4     CRC32 of every byte before it (uint32)
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_bytes_atomic
from .errors import ArchitectureMismatchError, BitsFormatError, PrismError, SeedMismatchError
from .seeded import check_seed

MAGIC = b"PRISMBIT"
VERSION = 1
PREFIX = struct.Struct("<8sHHI")
CRC = struct.Struct("<I")
FINGERPRINT_ITERATIONS = 100_000
MAX_HEADER = 1 << 20


def seed_fingerprint(seed: int, arch: dict) -> str:
    """A slow salted hash that verifies a seed without storing it.

    The salt is derived from the architecture so files are reproducible. It cannot be inverted
    except by trying seeds (about 50 ms each): a small seed such as 42 is found at once, a random
    32-bit seed takes CPU-years. The seed is a key to the weights, not a secret of the model.
    """
    seed = check_seed(seed)
    salt = hashlib.sha256(b"prism-edge-fingerprint-v1" + _canonical(arch)).digest()[:16]
    digest = hashlib.pbkdf2_hmac("sha256", seed.to_bytes(4, "big"), salt, FINGERPRINT_ITERATIONS)
    return digest[:16].hex()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class MaskFile:
    arch: dict
    layers: list[int]
    packed: np.ndarray
    fingerprint: str
    meta: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return int(sum(self.layers))

    def mask(self) -> np.ndarray:
        """The flat 0/1 mask as uint8."""
        return np.unpackbits(self.packed, count=self.total)

    def layer_masks(self) -> list[np.ndarray]:
        return np.split(self.mask(), np.cumsum(self.layers)[:-1])

    def verify_seed(self, seed: int) -> None:
        if seed_fingerprint(seed, self.arch) != self.fingerprint:
            raise SeedMismatchError(
                f"seed {seed} does not match this mask's seed fingerprint "
                f"{self.fingerprint[:12]}...; pass the --seed used in training")

    def check_layers(self, layers: list[int]) -> None:
        if list(layers) != list(self.layers):
            raise ArchitectureMismatchError(
                f"mask holds layers {self.layers} but architecture {self.arch.get('name')} has "
                f"{list(layers)}; use the architecture the mask was trained with")


def encode(mask: np.ndarray, arch: dict, layers: list[int], seed: int, meta: dict | None = None
           ) -> bytes:
    """Serialise a flat 0/1 mask into the .bits byte layout."""
    mask = np.asarray(mask).reshape(-1)
    if mask.size != sum(layers):
        raise ArchitectureMismatchError(
            f"mask has {mask.size} entries but the layers sum to {sum(layers)}")
    if mask.size and not np.isin(mask, (0, 1)).all():
        raise ValueError("a mask must hold only 0 and 1")
    header = {"arch": arch, "layers": [int(n) for n in layers], "total": int(mask.size),
              "fingerprint": seed_fingerprint(seed, arch), "meta": meta or {}}
    head = _canonical(header)
    body = PREFIX.pack(MAGIC, VERSION, 0, len(head)) + head + np.packbits(mask.astype(bool)).tobytes()
    return body + CRC.pack(zlib.crc32(body))


def write_bits(path: str | Path, mask: np.ndarray, arch: dict, layers: list[int], seed: int,
               meta: dict | None = None) -> int:
    """Write a .bits file atomically; returns its size in bytes."""
    data = encode(mask, arch, layers, seed, meta)
    write_bytes_atomic(path, data)
    return len(data)


def decode(data: bytes, source: str = "mask") -> MaskFile:
    """Parse and validate .bits bytes; every defect raises BitsFormatError naming it."""
    fix = "re-download or re-export the file"
    if len(data) < PREFIX.size + CRC.size:
        raise BitsFormatError(f"{source} is truncated ({len(data)} bytes, smaller than any .bits "
                              f"file); {fix}")
    magic, version, flags, head_len = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise BitsFormatError(f"{source} is not a prism-edge .bits file (magic {magic!r}); "
                              "pass a mask written by prism-edge")
    if version != VERSION:
        raise BitsFormatError(f"{source} has .bits version {version}, this prism-edge reads "
                              f"version {VERSION}; upgrade prism-edge or re-export the mask")
    if flags != 0:
        raise BitsFormatError(f"{source} has unknown flags {flags:#06x}; the file is corrupted, {fix}")
    (stored_crc,) = CRC.unpack_from(data, len(data) - CRC.size)
    if zlib.crc32(data[:-CRC.size]) != stored_crc:
        raise BitsFormatError(f"{source} failed its CRC32 check (truncated or corrupted); {fix}")
    if head_len > MAX_HEADER or PREFIX.size + head_len > len(data) - CRC.size:
        raise BitsFormatError(f"{source} has an impossible header length {head_len}; {fix}")
    try:
        header = json.loads(data[PREFIX.size:PREFIX.size + head_len])
        arch, layers, total = header["arch"], [int(n) for n in header["layers"]], int(header["total"])
        fingerprint, meta = str(header["fingerprint"]), dict(header.get("meta", {}))
    except (ValueError, KeyError, TypeError) as exc:
        raise BitsFormatError(f"{source} has an unreadable header ({exc}); {fix}") from exc
    if sum(layers) != total or any(n <= 0 for n in layers):
        raise BitsFormatError(f"{source} header lists layers {layers} that do not sum to {total}")
    payload = np.frombuffer(data, np.uint8, offset=PREFIX.size + head_len,
                            count=len(data) - CRC.size - PREFIX.size - head_len)
    if payload.size != (total + 7) // 8:
        raise BitsFormatError(f"{source} holds {payload.size} mask bytes, expected "
                              f"{(total + 7) // 8} for {total} weights; {fix}")
    if total % 8 and payload[-1] & ((1 << (8 - total % 8)) - 1):
        raise BitsFormatError(f"{source} has non-zero padding bits; {fix}")
    return MaskFile(arch, layers, payload.copy(), fingerprint, meta)


def read_bits(path: str | Path) -> MaskFile:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise PrismError(f"mask file {p} does not exist; check the path") from None
    except OSError as exc:
        raise PrismError(f"cannot read mask file {p}: {exc.strerror}") from None
    return decode(data, str(p))


def load_generator(path: str | Path, seed: int):
    """Read a .bits file, verify seed and architecture, and return a generator with its mask."""
    from .architectures import ArchitectureError, build_from_description
    from .masked import layer_sizes, set_flat_mask

    mf = read_bits(path)
    mf.verify_seed(seed)
    try:
        gen = build_from_description(mf.arch, seed)
    except ArchitectureError as exc:
        raise PrismError(f"{path}: {exc}") from None
    mf.check_layers(layer_sizes(gen))
    set_flat_mask(gen, mf.mask())
    gen.eval()
    return gen, mf
