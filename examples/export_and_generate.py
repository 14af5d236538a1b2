"""Export a trained mask to ONNX and generate on the device side, from Python.

    python examples/export_and_generate.py runs/quickstart/final.bits 42

The generation half needs only onnxruntime and numpy (what a Raspberry Pi installs).
"""

import sys

from device_client.generate import OnnxGenerator
from exporters.onnx_export import export
from prism_edge.images import save_grid

mask, seed = sys.argv[1], int(sys.argv[2])

# On the server: seed + 1-bit mask -> compact ONNX (weights are rebuilt inside the graph).
info = export(mask, seed, "generator.onnx")
print(f"generator.onnx: {info['bytes']:,} bytes, {info['bits_per_weight']:.3f} bits/weight")

# On the device: onnxruntime + numpy only.
gen = OnnxGenerator("generator.onnx", threads=2)
images = gen.generate(64, seed=0)  # same latent seed, same images
print("images", images.shape, images.dtype, "from", gen.metadata["arch"])
save_grid(images, "device_samples.png", nrow=8)
print("wrote device_samples.png")
