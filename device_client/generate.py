"""On-device generation with onnxruntime and numpy only (no torch, no Pillow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from prism_edge.errors import PrismError
from prism_edge.latent import by_class_latents, latents

META_PREFIX = "prism_edge."


class OnnxGenerator:
    """An exported prism-edge generator in an onnxruntime session."""

    def __init__(self, path: str | Path, threads: int | None = None, optimize: bool = True):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise PrismError(f"{path} does not exist; export one with `prism-edge export`")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise PrismError(f"{path} cannot be loaded by onnxruntime ({str(exc)[:120]}); "
                             "re-export it with `prism-edge export`") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k[len(META_PREFIX):]: v for k, v in meta.items() if k.startswith(META_PREFIX)}
        if "nz" not in self.metadata:
            raise PrismError(f"{path} is not a prism-edge generator (no prism_edge metadata)")
        self.nz = int(self.metadata["nz"])
        self.classes = int(self.metadata.get("classes", 0))
        self.uint8 = self.metadata.get("output") == "uint8"
        self.out_shape = tuple(json.loads(self.metadata["output_shape"]))

    def run(self, z: np.ndarray, as_uint8: bool | None = None) -> np.ndarray:
        """Images for latents ``z`` (n, nz): float in [-1, 1], or uint8 if the model outputs it."""
        z = np.ascontiguousarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise PrismError(f"latent must have shape (n, {self.nz}), got {z.shape}")
        (y,) = self.session.run(["image"], {"z": z})
        if as_uint8 is False and y.dtype == np.uint8:
            return y.astype(np.float32) / 127.5 - 1.0
        return y

    def generate(self, n: int, seed: int = 0, label: int | None = None, by_class: bool = False
                 ) -> np.ndarray:
        """``n`` images from latents drawn with numpy's PCG64 seeded by ``seed`` (deterministic);
        ``label``: only that class; ``by_class``: ``n`` of each class in class order (both for a
        class-conditional model)."""
        if by_class:
            return self.run(by_class_latents(n, self.nz, seed, self.classes))
        return self.run(latents(n, self.nz, seed, self.classes, label))


def generate_to_file(model: str | Path, n: int, seed: int, out: str | Path,
                     threads: int | None = None, label: int | None = None,
                     by_class: bool = False) -> np.ndarray:
    """Generate ``n`` images (``n`` per class with ``by_class``, a grid row each) and write a
    PNG grid or ``.npy``; returns the images."""
    from prism_edge.images import save_samples

    images = OnnxGenerator(model, threads).generate(n, seed, label, by_class)
    save_samples(images, out, n if by_class else None)
    return images
