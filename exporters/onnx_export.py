"""Export a seed + 1-bit mask as a compact ONNX generator.

The graph stores no float weights. For each masked layer it holds the packed mask bytes and a
uint32 layer key; the weights are rebuilt inside the graph with the seed contract's hash
(uint32 Mul / BitwiseXor / BitShift), the bits are unpacked (BitShift / BitwiseAnd), and
``sign * mask * scale`` is reshaped to the layer's weight. All of that depends only on constants,
so onnxruntime folds it once when the session loads. ``dense=True`` writes plain fp32 weights
instead, for comparison.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from prism_edge import __version__
from prism_edge.architectures import Generator, Norm, ResBlock, Reshape, Up2
from prism_edge.atomic import atomic_path
from prism_edge.masked import (
    MaskedConv2d,
    MaskedConvTranspose2d,
    MaskedLayer,
    MaskedLinear,
)
from prism_edge.seeded import INDEX_MUL, MIX_MUL1, MIX_MUL2, layer_key
from prism_edge.upsample_conv import DECONV_TAPS

OPSET = 18
META_PREFIX = "prism_edge."


class _Builder:
    def __init__(self, seed: int, dense: bool):
        self.seed, self.dense = seed, dense
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, value: np.ndarray, hint: str = "c") -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    # -- the seed contract inside the graph -------------------------------------------------
    def _mul(self, x: str, c: int) -> str:
        return self.op("Mul", [x, self.const(np.array(c, np.uint32))])

    def _xorshift(self, x: str, k: int) -> str:
        shifted = self.op("BitShift", [x, self.const(np.array(k, np.uint32))], direction="RIGHT")
        return self.op("BitwiseXor", [x, shifted])

    def weight(self, layer: MaskedLayer) -> str:
        if self.dense:
            return self.const((layer.frozen * layer.fixed_mask()).numpy().astype(np.float32), "w")
        count = layer.numel
        i = layer.layer_index
        idx = self.op("Cast", [self.op("Range", [self.const(np.array(0, np.int64)),
                                                 self.const(np.array(count, np.int64)),
                                                 self.const(np.array(1, np.int64))])],
                      to=TensorProto.UINT32)
        x = self.op("BitwiseXor", [self._mul(idx, INDEX_MUL),
                                   self.const(np.array(layer_key(self.seed, i), np.uint32), "key")])
        x = self._mul(self._xorshift(x, 16), MIX_MUL1)
        x = self._mul(self._xorshift(x, 15), MIX_MUL2)
        x = self._xorshift(x, 16)
        sign_bit = self.op("BitShift", [x, self.const(np.array(31, np.uint32))], direction="RIGHT")
        # packed mask bytes -> bits, MSB first (numpy.packbits order)
        packed = np.packbits(layer.fixed_mask().numpy().reshape(-1))
        byt = self.op("Cast", [self.const(packed.reshape(-1, 1), f"mask{i}")], to=TensorProto.UINT32)
        bits = self.op("BitwiseAnd", [
            self.op("BitShift", [byt, self.const(np.arange(7, -1, -1, dtype=np.uint32))],
                    direction="RIGHT"),
            self.const(np.array(1, np.uint32))])
        bits = self.op("Slice", [self.op("Reshape", [bits, self.const(np.array([-1], np.int64))]),
                                 self.const(np.array([0], np.int64)),
                                 self.const(np.array([count], np.int64))])
        # value = (1 - 2 * sign) * mask * scale, computed as mask * (scale - 2 * scale * sign)
        sgn = self.op("Cast", [sign_bit], to=TensorProto.FLOAT)
        mag = self.op("Sub", [self.const(np.array(layer.scale, np.float32)),
                              self.op("Mul", [sgn, self.const(np.array(2 * layer.scale, np.float32))])])
        w = self.op("Mul", [mag, self.op("Cast", [bits], to=TensorProto.FLOAT)])
        return self.op("Reshape", [w, self.const(np.array(layer.shape, np.int64))], f"w{i}")

    # -- modules -------------------------------------------------------------------------------
    def module(self, m: nn.Module, x: str) -> str:
        if isinstance(m, nn.Sequential):
            children = list(m)
            i = 0
            while i < len(children):
                nxt = children[i + 1] if i + 1 < len(children) else None
                if isinstance(children[i], Up2) and isinstance(nxt, MaskedConv2d) and nxt.stride == 1:
                    x = self.up2_conv(nxt, x)
                    i += 2
                else:
                    x = self.module(children[i], x)
                    i += 1
            return x
        if isinstance(m, MaskedLinear):
            wt = self.op("Transpose", [self.weight(m)], perm=[1, 0])
            return self.op("MatMul", [x, wt])
        if isinstance(m, MaskedConv2d):
            k = m.shape[-1]
            return self.op("Conv", [x, self.weight(m)], kernel_shape=[k, k],
                           strides=[m.stride] * 2, pads=[m.padding] * 4)
        if isinstance(m, MaskedConvTranspose2d):
            k = m.shape[-1]
            return self.op("ConvTranspose", [x, self.weight(m)], kernel_shape=[k, k],
                           strides=[m.stride] * 2, pads=[m.padding] * 4)
        if isinstance(m, Reshape):
            return self.op("Reshape", [x, self.const(np.array([-1, *m.shape], np.int64))])
        if isinstance(m, Norm):
            return self.group_norm(x, m.groups, m.eps)
        if isinstance(m, nn.ReLU):
            return self.op("Relu", [x])
        if isinstance(m, nn.Tanh):
            return self.op("Tanh", [x])
        if isinstance(m, Up2):
            return self.op("Resize", [x, "", self.const(np.array([1, 1, 2, 2], np.float32))],
                           mode="nearest", coordinate_transformation_mode="asymmetric",
                           nearest_mode="floor")
        if isinstance(m, ResBlock):
            return self.op("Add", [self.module(m.main, x), self.module(m.shortcut, x)])
        raise TypeError(f"the ONNX exporter does not know module {type(m).__name__}")

    def up2_conv(self, m: MaskedConv2d, x: str) -> str:
        """Nearest 2x upsampling then a stride-1 conv, computed without the upsampled tensor, as
        in training (prism_edge/upsample_conv.py): a stride-2 ConvTranspose with a 4x4 kernel
        made from the 3x3 one by the same tap matrix."""
        k = m.shape[-1]
        if k == 1 and m.padding == 0:
            return self.module(Up2(), self.module(m, x))
        if k != 3 or m.padding != 1:
            return self.module(m, self.module(Up2(), x))
        cout, cin = m.shape[0], m.shape[1]
        w9 = self.op("Reshape", [self.weight(m), self.const(np.array([cout, cin, 9], np.int64))])
        k4 = self.op("Reshape", [self.op("MatMul", [w9, self.const(DECONV_TAPS)]),
                                 self.const(np.array([cout, cin, 4, 4], np.int64))])
        return self.op("ConvTranspose", [x, self.op("Transpose", [k4], perm=[1, 0, 2, 3])],
                       kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])

    def label_latent(self, z: str, nz: int, classes: int, scale: float) -> str:
        """architectures.label_latent: z[:, :K] -> scale * one-hot(argmax z[:, :K])."""
        if not classes:
            return z

        def cols(lo: int, hi: int) -> str:
            return self.op("Slice", [z, self.const(np.array([lo], np.int64)),
                                     self.const(np.array([hi], np.int64)),
                                     self.const(np.array([1], np.int64))])

        label = self.op("ArgMax", [cols(0, classes)], axis=1, keepdims=1)  # (N, 1) int64
        hot = self.op("Equal", [label, self.const(np.arange(classes, dtype=np.int64)[None])])
        scaled = self.op("Mul", [self.op("Cast", [hot], to=TensorProto.FLOAT),
                                 self.const(np.array(scale, np.float32))])
        return self.op("Concat", [scaled, cols(classes, nz)], axis=1)

    def group_norm(self, x: str, groups: int, eps: float) -> str:
        # (N, C, H, W) -> (N, G, C/G*H*W): InstanceNormalization over that is exactly group norm,
        # and onnxruntime runs it as one fused kernel.
        shape = self.op("Shape", [x])
        g = self.op("Reshape", [x, self.const(np.array([0, groups, -1], np.int64))])
        ones = self.const(np.ones(groups, np.float32))
        zeros = self.const(np.zeros(groups, np.float32))
        normed = self.op("InstanceNormalization", [g, ones, zeros], epsilon=eps)
        return self.op("Reshape", [normed, shape])


def build_model(gen: Generator, seed: int, uint8_output: bool = False, dense: bool = False,
                metadata: dict | None = None) -> onnx.ModelProto:
    """The ONNX model of ``gen`` with its installed (fixed) mask."""
    if gen.seed != seed:
        raise ValueError("the generator's frozen weights were built from another seed")
    b = _Builder(seed, dense)
    y = b.module(gen.body, b.label_latent("z", gen.nz, gen.config.classes,
                                          gen.config.label_scale))
    if uint8_output:
        scaled = b.op("Mul", [b.op("Add", [y, b.const(np.array(1.0, np.float32))]),
                              b.const(np.array(127.5, np.float32))])
        clipped = b.op("Clip", [b.op("Round", [scaled]), b.const(np.array(0, np.float32)),
                                b.const(np.array(255, np.float32))])
        y = b.op("Cast", [clipped], to=TensorProto.UINT8)
    b.nodes.append(helper.make_node("Identity", [y], ["image"]))
    c, h, w = gen.out_shape
    graph = helper.make_graph(
        b.nodes, f"prism_edge_{gen.arch}",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", gen.nz])],
        [helper.make_tensor_value_info("image", TensorProto.UINT8 if uint8_output
                                       else TensorProto.FLOAT, ["batch", c, h, w])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="prism-edge", producer_version=__version__)
    model.ir_version = 9
    meta = {"version": __version__, "arch": json.dumps(gen.describe(), sort_keys=True),
            "nz": str(gen.nz), "output": "uint8" if uint8_output else "float",
            "output_shape": json.dumps(list(gen.out_shape)), "opset": str(OPSET),
            "weights": "dense-fp32" if dense else "seed+1bit-mask",
            "masked_weights": str(gen.num_masked), "classes": str(gen.config.classes)}
    for key, value in {**meta, **(metadata or {})}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(
            key=META_PREFIX + key, value=value if isinstance(value, str) else json.dumps(value)))
    onnx.checker.check_model(model)
    return model


def export(mask_path: str | Path, seed: int, out_path: str | Path, uint8_output: bool = False,
           dense: bool = False) -> dict:
    """Read and verify a .bits mask, build the ONNX graph, write it atomically."""
    from prism_edge.bitsfile import load_generator

    gen, mf = load_generator(mask_path, seed)
    meta = {"seed_fingerprint": mf.fingerprint, "dataset": mf.meta.get("dataset", "unknown"),
            "privacy": mf.meta.get("privacy", "unknown"), "mask_kind": mf.meta.get("kind", "")}
    model = build_model(gen, seed, uint8_output, dense, meta)
    data = model.SerializeToString()
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(data)
    return {"path": str(out_path), "bytes": len(data), "masked_weights": gen.num_masked,
            "bits_per_weight": 8 * len(data) / gen.num_masked, "opset": OPSET}


def describe_onnx(path: Path) -> dict:
    """What `prism-edge inspect model.onnx` shows."""
    from prism_edge.errors import PrismError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for bad files
        raise PrismError(f"{path} is not a readable ONNX model ({type(exc).__name__}); "
                         "re-export it") from None
    meta = {p.key[len(META_PREFIX):]: p.value for p in model.metadata_props
            if p.key.startswith(META_PREFIX)}
    size = path.stat().st_size
    info = {"file": str(path), "format": f"ONNX opset {model.opset_import[0].version}",
            "size (bytes)": size, "producer": f"{model.producer_name} {model.producer_version}"}
    info.update(meta)
    if "masked_weights" in meta:
        info["bits per weight"] = round(8 * size / int(meta["masked_weights"]), 4)
    return info

