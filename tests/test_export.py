import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from device_client.generate import OnnxGenerator
from exporters.onnx_export import OPSET, build_model, export
from prism_edge.architectures import ARCHITECTURES, build_generator
from prism_edge.bitsfile import encode, write_bits
from prism_edge.masked import layer_sizes, set_flat_mask


def make_mask_file(tmp_path, arch="mnist-small", seed=42, p=0.6):
    gen = build_generator(arch, seed)
    mask = (np.random.default_rng(1).random(gen.num_masked) < p).astype(np.uint8)
    path = tmp_path / f"{arch}.bits"
    write_bits(path, mask, gen.describe(), layer_sizes(gen), seed, {"dataset": "mnist",
                                                                     "privacy": "no differential privacy"})
    set_flat_mask(gen, mask)
    return path, gen


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_parity_size_and_batching(tmp_path, arch):
    path, gen = make_mask_file(tmp_path, arch)
    out = tmp_path / "g.onnx"
    info = export(path, 42, out)
    onnx.checker.check_model(onnx.load(str(out)))
    assert out.stat().st_size <= 1.03 * gen.num_masked / 8 + 32 * 1024
    assert info["opset"] == OPSET
    z = np.random.default_rng(0).standard_normal((6, gen.nz)).astype(np.float32)
    with torch.no_grad():
        ref = gen(torch.from_numpy(z)).numpy()
    for optimize in (True, False):
        g = OnnxGenerator(out, optimize=optimize)
        y = g.run(z)
        assert np.abs(y - ref).max() < 1e-4
        singles = np.concatenate([g.run(z[i:i + 1]) for i in range(len(z))])
        assert np.abs(singles - y).max() < 1e-5


def test_dense_export_matches_and_is_large(tmp_path):
    path, gen = make_mask_file(tmp_path)
    compact, dense = tmp_path / "c.onnx", tmp_path / "d.onnx"
    export(path, 42, compact)
    export(path, 42, dense, dense=True)
    assert dense.stat().st_size > 25 * compact.stat().st_size
    z = np.random.default_rng(3).standard_normal((4, gen.nz)).astype(np.float32)
    assert np.abs(OnnxGenerator(compact).run(z) - OnnxGenerator(dense).run(z)).max() < 1e-5


def test_uint8_output_and_metadata(tmp_path):
    path, gen = make_mask_file(tmp_path)
    f, u = tmp_path / "f.onnx", tmp_path / "u.onnx"
    export(path, 42, f)
    export(path, 42, u, uint8_output=True)
    gu = OnnxGenerator(u)
    z = np.random.default_rng(0).standard_normal((4, gen.nz)).astype(np.float32)
    a = gu.run(z)
    assert a.dtype == np.uint8
    want = np.clip(np.rint((OnnxGenerator(f).run(z) + 1) * 127.5), 0, 255)
    assert np.abs(a.astype(int) - want).max() <= 1
    meta = gu.metadata
    assert json.loads(meta["arch"])["name"] == "mnist-small"
    assert meta["dataset"] == "mnist" and meta["privacy"] == "no differential privacy"
    assert len(meta["seed_fingerprint"]) == 32 and meta["version"]
    r = subprocess.run([sys.executable, "-m", "prism_edge.cli", "inspect", str(u)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "seed_fingerprint" in r.stdout and "mnist-small" in r.stdout


def cli(*args):
    return subprocess.run([sys.executable, "-m", "prism_edge.cli", *args], capture_output=True,
                          text=True)


def assert_user_error(r, text):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert text in r.stderr, r.stderr


def test_export_bad_inputs_leave_no_file(tmp_path):
    path, gen = make_mask_file(tmp_path)
    out = tmp_path / "out.onnx"
    assert_user_error(cli("export", "--mask", str(path), "--seed", "7", "-o", str(out)),
                      "does not match")
    data = path.read_bytes()
    (tmp_path / "trunc.bits").write_bytes(data[:-100])
    assert_user_error(cli("export", "--mask", str(tmp_path / "trunc.bits"), "--seed", "42",
                          "-o", str(out)), "CRC32")
    bad = bytearray(data)
    bad[-20] ^= 0x10
    (tmp_path / "flip.bits").write_bytes(bytes(bad))
    assert_user_error(cli("export", "--mask", str(tmp_path / "flip.bits"), "--seed", "42",
                          "-o", str(out)), "corrupted")
    (tmp_path / "arch.bits").write_bytes(encode(np.ones(10, np.uint8), {"name": "nope", "config": {}},
                                                [10], 42))
    assert_user_error(cli("export", "--mask", str(tmp_path / "arch.bits"), "--seed", "42",
                          "-o", str(out)), "unknown architecture")
    assert_user_error(cli("export", "--mask", str(path), "--seed", "42",
                          "-o", str(tmp_path / "missing" / "g.onnx")), "does not exist")
    (tmp_path / "adir.onnx").mkdir()
    assert_user_error(cli("export", "--mask", str(path), "--seed", "42",
                          "-o", str(tmp_path / "adir.onnx")), "is a directory")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


NO_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name == "PIL":
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
try:
    import torch  # noqa
    raise SystemExit("torch imported")
except ImportError:
    pass
from device_client.generate import OnnxGenerator, generate_to_file
a = generate_to_file(sys.argv[1], 9, 5, sys.argv[2])
b = OnnxGenerator(sys.argv[1]).generate(9, seed=5)
c = OnnxGenerator(sys.argv[1]).generate(9, seed=6)
assert (a == b).all() and not (a == c).all()
assert "torch" not in sys.modules
print("ok", a.shape)
"""


def test_device_generation_without_torch(tmp_path):
    path, gen = make_mask_file(tmp_path)
    model = tmp_path / "g.onnx"
    export(path, 42, model)
    png = tmp_path / "s.png"
    r = subprocess.run([sys.executable, "-c", NO_TORCH, str(model), str(png)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "ok (9, 1, 28, 28)" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_cli_png_and_npy(tmp_path):
    path, gen = make_mask_file(tmp_path)
    model = tmp_path / "g.onnx"
    export(path, 42, model)
    r = cli("generate", "--model", str(model), "-n", "16", "--seed", "0", "-o", str(tmp_path / "a.npy"))
    assert r.returncode == 0, r.stderr
    a = np.load(tmp_path / "a.npy")
    b = np.load(tmp_path / "a.npy")
    assert a.shape == (16, 1, 28, 28) and (a == b).all()
    assert cli("generate", "--model", str(model), "-o", str(tmp_path / "a.png")).returncode == 0
    assert_user_error(cli("generate", "--model", str(tmp_path / "none.onnx")), "does not exist")


def test_build_model_refuses_other_seed():
    gen = build_generator("mnist-small", 1)
    with pytest.raises(ValueError):
        build_model(gen, 2)
