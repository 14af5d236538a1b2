"""Turning a model file into a sampler: latent (n, nz) -> images (n, C, H, W) in [-1, 1]."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import PrismError

Sampler = Callable[[np.ndarray], np.ndarray]


def torch_sampler(mask_path: str | Path, seed: int) -> tuple[Sampler, int, dict]:
    """A .bits mask plus its seed, run with torch."""
    import torch

    from .bitsfile import load_generator

    gen, mf = load_generator(mask_path, seed)

    def sample(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return gen(torch.from_numpy(np.ascontiguousarray(z, np.float32))).numpy()

    return sample, gen.nz, {"architecture": gen.describe(), "classes": gen.config.classes,
                            **mf.meta}


def onnx_sampler(model_path: str | Path, threads: int | None = None) -> tuple[Sampler, int, dict]:
    """An exported ONNX generator, run with onnxruntime (float output)."""
    from device_client.generate import OnnxGenerator

    g = OnnxGenerator(model_path, threads=threads)
    return (lambda z: g.run(z, as_uint8=False)), g.nz, g.metadata


def open_sampler(model: str | Path, seed: int | None) -> tuple[Sampler, int, dict]:
    path = Path(model)
    if not path.is_file():
        raise PrismError(f"{path} does not exist; pass an exported .onnx or a .bits mask")
    if path.suffix == ".onnx":
        return onnx_sampler(path)
    if seed is None:
        raise PrismError(f"{path} is a mask: pass --seed, the seed used in training")
    return torch_sampler(path, seed)
