import numpy as np
import pytest

from prism_edge.architectures import build_generator
from prism_edge.bitsfile import decode, encode, load_generator, read_bits, write_bits
from prism_edge.errors import ArchitectureMismatchError, BitsFormatError, SeedMismatchError
from prism_edge.masked import layer_sizes

ARCH = {"name": "tiny", "config": {}}
LAYERS = [13, 7, 21]


def small_file(seed=5) -> tuple[bytes, np.ndarray]:
    mask = (np.random.default_rng(1).random(sum(LAYERS)) < 0.5).astype(np.uint8)
    return encode(mask, ARCH, LAYERS, seed, {"kind": "sample"}), mask


def test_roundtrip():
    data, mask = small_file()
    mf = decode(data)
    assert (mf.mask() == mask).all() and mf.layers == LAYERS and mf.meta == {"kind": "sample"}
    mf.verify_seed(5)
    with pytest.raises(SeedMismatchError, match="pass the --seed used in training"):
        mf.verify_seed(6)


def test_every_single_byte_flip_is_caught():
    data, _ = small_file()
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= flip
            with pytest.raises(BitsFormatError):
                decode(bytes(bad))


def test_every_truncation_is_caught():
    data, _ = small_file()
    for n in range(len(data)):
        with pytest.raises(BitsFormatError):
            decode(data[:n])
    with pytest.raises(BitsFormatError):
        decode(data + b"\0")


@pytest.mark.parametrize("field,value,msg", [
    (slice(0, 8), b"NOTPRISM", "not a prism-edge .bits file"),
    (slice(8, 10), (2).to_bytes(2, "little"), "version 2"),
])
def test_specific_messages(field, value, msg):
    data = bytearray(small_file()[0])
    data[field] = value
    with pytest.raises(BitsFormatError, match=msg):
        decode(bytes(data))


def test_wrong_architecture_and_seed_on_load(tmp_path):
    gen = build_generator("mnist-small", 3)
    mask = np.ones(gen.num_masked, np.uint8)
    path = tmp_path / "m.bits"
    write_bits(path, mask, gen.describe(), layer_sizes(gen), 3)
    loaded, mf = load_generator(path, 3)
    assert mf.total == gen.num_masked
    with pytest.raises(SeedMismatchError):
        load_generator(path, 4)
    other = build_generator("cifar-small")
    with pytest.raises(ArchitectureMismatchError, match="use the architecture"):
        read_bits(path).check_layers(layer_sizes(other))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "x.bits"
    with pytest.raises(ArchitectureMismatchError):
        write_bits(path, np.ones(5, np.uint8), ARCH, LAYERS, 1)
    assert list(tmp_path.iterdir()) == []


def test_bits_per_weight_close_to_one():
    gen = build_generator("paper-resnet")
    data = encode(np.zeros(gen.num_masked, np.uint8), gen.describe(), layer_sizes(gen), 0)
    assert len(data) * 8 / gen.num_masked < 1.001
