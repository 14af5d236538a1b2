"""Human-readable descriptions of the files prism-edge writes (for `prism-edge inspect`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import PrismError


def describe_bits(path: Path) -> dict[str, Any]:
    from .bitsfile import read_bits

    mf = read_bits(path)
    size = path.stat().st_size
    layers = [{"index": i, "weights": int(m.size), "ones": float(m.mean())}
              for i, m in enumerate(mf.layer_masks())]
    ones = sum(r["ones"] * r["weights"] for r in layers) / mf.total
    return {
        "file": str(path),
        "format": ".bits v1",
        "architecture": mf.arch.get("name"),
        "config": mf.arch.get("config"),
        "masked weights": mf.total,
        "fraction of ones": round(ones, 4),
        "seed fingerprint": mf.fingerprint,
        "size (bytes)": size,
        "bits per weight": round(8 * size / mf.total, 4),
        "meta": mf.meta,
        "layers": layers,
    }


def describe_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PrismError(f"{path} does not exist; check the path")
    if path.suffix == ".onnx":
        from exporters.onnx_export import describe_onnx

        return describe_onnx(path)
    return describe_bits(path)
