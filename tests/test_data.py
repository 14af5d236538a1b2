import numpy as np
import pytest
from PIL import Image

from prism_edge.data import load_dataset
from prism_edge.errors import DataError
from prism_edge.partition import parse_split, partition


def test_mnist_and_fashion_load(mnist_train, mnist_test, data_root):
    assert mnist_train.images.shape == (60000, 1, 28, 28)
    assert mnist_test.images.shape == (10000, 1, 28, 28)
    assert mnist_train.images.min() == -1.0 and mnist_train.images.max() == 1.0
    assert np.bincount(mnist_test.labels.numpy()).tolist()[:2] == [980, 1135]
    fm = load_dataset("fashion-mnist", "test", data_root)
    assert (np.bincount(fm.labels.numpy()) == 1000).all()


def test_missing_dataset_names_the_variable(tmp_path):
    with pytest.raises(DataError, match="PRISM_EDGE_DATA"):
        load_dataset("mnist", "train", tmp_path)


def test_corrupted_file_fails_checksum(tmp_path, data_root):
    d = tmp_path / "mnist"
    d.mkdir()
    for f in (data_root / "mnist").iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    p = d / "t10k-labels-idx1-ubyte.gz"
    b = bytearray(p.read_bytes())
    b[100] ^= 1
    p.write_bytes(bytes(b))
    with pytest.raises(DataError, match="MD5"):
        load_dataset("mnist", "test", tmp_path)


def test_image_folder_labelled_and_unlabelled(tmp_path):
    for cls in ("cats", "dogs"):
        (tmp_path / "lab" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 30), (i * 50, 100, 200)).save(tmp_path / "lab" / cls / f"{i}.png")
    ds = load_dataset(str(tmp_path / "lab"), size=32, channels=3)
    assert ds.images.shape == (6, 3, 32, 32) and ds.classes == ["cats", "dogs"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert -1.0 <= ds.images.min() and ds.images.max() <= 1.0
    (tmp_path / "flat").mkdir()
    Image.new("L", (28, 28), 0).save(tmp_path / "flat" / "a.jpg")
    ds = load_dataset(str(tmp_path / "flat"), size=28, channels=1)
    assert ds.labels is None and ds.images.shape == (1, 1, 28, 28)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG/JPEG"):
        load_dataset(str(tmp_path / "empty"))


def check_disjoint_cover(parts, n):
    allidx = np.concatenate(parts)
    assert len(allidx) == n and len(np.unique(allidx)) == n


@pytest.mark.parametrize("spec", ["iid", "shards:2", "shards:4", "dirichlet:0.1", "dirichlet:100"])
def test_partitions_disjoint_and_covering(mnist_train, spec):
    labels = mnist_train.labels.numpy()
    parts = partition(labels, len(labels), 10, spec, seed=0)
    assert len(parts) == 10
    check_disjoint_cover(parts, len(labels))
    again = partition(labels, len(labels), 10, spec, seed=0)
    assert all((a == b).all() for a, b in zip(parts, again))


def classes_per_client(parts, labels, min_share=0.02):
    return [int((np.bincount(labels[p], minlength=10) / len(p) >= min_share).sum()) for p in parts]


def test_label_skew_is_as_intended(mnist_train):
    labels = mnist_train.labels.numpy()
    n = len(labels)
    assert min(classes_per_client(partition(labels, n, 10, "iid", 0), labels)) == 10
    # 2 label-sorted shards per client -> at most 2 (occasionally 3 at a boundary) classes each
    assert max(classes_per_client(partition(labels, n, 10, "shards:2", 0), labels)) <= 3
    low = np.mean(classes_per_client(partition(labels, n, 10, "dirichlet:0.1", 0), labels))
    high = np.mean(classes_per_client(partition(labels, n, 10, "dirichlet:100", 0), labels))
    assert low < 5 and high == 10
    small = partition(labels, n, 50, "dirichlet:0.05", 0)
    assert min(len(p) for p in small) >= 10


def test_bad_split_specs():
    for bad in ("shards", "shards:0", "dirichlet:-1", "random", "iid:3"):
        with pytest.raises(Exception, match="not understood"):
            parse_split(bad)
