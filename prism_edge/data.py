"""Datasets as float tensors in [-1, 1]: MNIST / Fashion-MNIST (gzip IDX) and image folders.

Where the files come from, first match wins: the ``data_dir`` argument (CLI ``--data-dir``), the
environment variable ``PRISM_EDGE_DATA``, then a download of the standard files into
``~/.cache/prism-edge/data`` (or ``$PRISM_EDGE_CACHE``). A directory may hold the files directly or
in a subfolder named after the dataset (``mnist/``, ``fashion-mnist/``), as ``../shared/data`` does.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.request
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from .errors import DataError

ENV_DATA = "PRISM_EDGE_DATA"
ENV_CACHE = "PRISM_EDGE_CACHE"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}

# name -> {split: (images file, md5, labels file, md5)}; md5s are the ones torchvision checks.
IDX_FILES = {
    "mnist": {
        "train": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                  "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        "test": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                 "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    "fashion-mnist": {
        "train": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                  "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        "test": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79",
                 "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
}
MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}


@dataclass
class Dataset:
    name: str
    raw: np.ndarray  # (N, C, H, W) uint8: kept compact, converted on demand
    labels: torch.Tensor | None  # (N,) int64, or None for an unlabeled folder
    classes: list[str]
    files: list[Path]

    def __len__(self) -> int:
        return self.raw.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.raw.shape[1:])  # type: ignore[return-value]

    @cached_property
    def images(self) -> torch.Tensor:
        """All images as float32 in [-1, 1] (N, C, H, W)."""
        return to_float(self.raw)

    def take(self, idx: np.ndarray) -> torch.Tensor:
        """Only the selected images as float32, so a device holds just its partition."""
        return to_float(self.raw[np.asarray(idx)])


    def fingerprint(self) -> str:
        """Identifies the data by its files' content (for caches keyed on data)."""
        h = hashlib.sha256(self.name.encode())
        for f in sorted(self.files):
            h.update(f.name.encode())
            h.update(_md5(f).encode())
        return h.hexdigest()[:16]


def to_float(raw: np.ndarray) -> torch.Tensor:
    out = raw.astype(np.float32)
    out /= 127.5  # in place: no further temporaries of the whole array
    out -= 1.0
    return torch.from_numpy(out)


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE, Path.home() / ".cache" / "prism-edge"))


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _parse_idx(path: Path) -> np.ndarray:
    # readinto a preallocated array: no second copy of the decompressed bytes (device memory)
    with gzip.open(path, "rb") as fh:
        magic, n = struct.unpack(">II", fh.read(8))
        if magic == 2051:
            rows, cols = struct.unpack(">II", fh.read(8))
            shape: tuple[int, ...] = (n, rows, cols)
        elif magic == 2049:
            shape = (n,)
        else:
            raise DataError(f"{path} is not an IDX file (magic {magic})")
        out = np.empty(shape, np.uint8)
        view = memoryview(out).cast("B")
        # in 1 MiB pieces: one big readinto makes gzip build a temporary copy of the whole file
        for start in range(0, out.size, 1 << 20):
            piece = view[start:start + (1 << 20)]
            if fh.readinto(piece) != len(piece):
                raise DataError(f"{path} is truncated; replace it with the standard file")
    return out


def _find_idx_dir(name: str, data_dir: Path | None) -> Path:
    wanted = [f for split in IDX_FILES[name].values() for f in split[0::2]]
    candidates = []
    if data_dir is not None:
        candidates = [data_dir / name, data_dir]
    else:
        env = os.environ.get(ENV_DATA)
        if env:
            candidates = [Path(env) / name, Path(env)]
    for cand in candidates:
        if all((cand / f).is_file() for f in wanted):
            return cand
    if candidates:
        raise DataError(
            f"{name} files ({wanted[0]}, ...) not found in {candidates[-1]} or {candidates[0]}; "
            f"point --data-dir or {ENV_DATA} at a folder holding them")
    return _download(name, wanted)


def _download(name: str, wanted: list[str]) -> Path:
    target = cache_dir() / "data" / name
    target.mkdir(parents=True, exist_ok=True)
    for fname in wanted:
        dest = target / fname
        if dest.is_file():
            continue
        url = MIRRORS[name] + fname
        tmp = dest.with_suffix(".part")
        try:
            with urllib.request.urlopen(url, timeout=30) as resp, open(tmp, "wb") as out:
                out.write(resp.read())
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DataError(
                f"{name} is not available locally and downloading {url} failed ({exc}); "
                f"set {ENV_DATA} (or --data-dir) to a folder with the IDX files") from None
        tmp.replace(dest)
    return target


def load_idx_dataset(name: str, split: str = "train", data_dir: str | Path | None = None
                     ) -> Dataset:
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    folder = _find_idx_dir(name, Path(data_dir) if data_dir is not None else None)
    img_file, img_md5, lab_file, lab_md5 = IDX_FILES[name][split]
    for fname, md5 in ((img_file, img_md5), (lab_file, lab_md5)):
        if _md5(folder / fname) != md5:
            raise DataError(f"{folder / fname} fails its MD5 check (corrupted or not the standard "
                            f"file); replace it with the standard {name} file")
    images = _parse_idx(folder / img_file)
    labels = _parse_idx(folder / lab_file)
    return Dataset(name, images[:, None], torch.from_numpy(labels.astype(np.int64)),
                   [str(i) for i in range(10)], [folder / img_file, folder / lab_file])


def _image_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; pass a folder of PNG/JPEG images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"image folder {root} holds no PNG/JPEG images; add images or fix the path")
    return files


def _folder_classes(root: Path, files: list[Path]) -> list[str]:
    """First-level subfolder names when every image sits in one, else [] (unlabeled)."""
    if any(p.parent == root for p in files):
        return []
    return sorted({p.relative_to(root).parts[0] for p in files})


def dataset_classes(name: str) -> int:
    """How many labelled classes ``name`` has (0: unlabeled), without reading any image."""
    if name in IDX_FILES:
        return 10
    root = Path(name)
    return len(_folder_classes(root, _image_files(root)))


def load_image_folder(path: str | Path, size: int, channels: int, split: str | None = None
                      ) -> Dataset:
    """Every image under ``path``; labels are the first-level subfolder names when all images
    sit in subfolders, else the set is unlabeled. Centre-cropped to square and resized.
    ``split``: "test" keeps every 6th image (in sorted order), "train" the others; None all."""
    from PIL import Image

    root = Path(path)
    files = _image_files(root)
    if split is not None and len(files) >= 12:
        files = [f for i, f in enumerate(files) if (i % 6 == 5) == (split == "test")]
    classes = _folder_classes(root, files)
    labelled = bool(classes)
    mode = "L" if channels == 1 else "RGB"
    arrays, labels = [], []
    for p in files:
        try:
            img = Image.open(p).convert(mode)
        except OSError as exc:
            raise DataError(f"cannot read image {p} ({exc}); remove or replace it") from None
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        img = img.resize((size, size), Image.BICUBIC)
        a = np.asarray(img, dtype=np.uint8).reshape(size, size, channels)
        arrays.append(a.transpose(2, 0, 1))
        if labelled:
            labels.append(classes.index(p.relative_to(root).parts[0]))
    y = torch.tensor(labels, dtype=torch.int64) if labelled else None
    return Dataset(root.name, np.stack(arrays), y, classes, files)


def load_dataset(name: str, split: str = "train", data_dir: str | Path | None = None,
                 size: int = 28, channels: int = 1) -> Dataset:
    """``name`` is ``mnist``, ``fashion-mnist`` or a path to a folder of images."""
    if name in IDX_FILES:
        ds = load_idx_dataset(name, split, data_dir)
    else:
        ds = load_image_folder(name, size, channels, split)
    if len(ds) == 0:
        raise DataError(f"dataset {name} is empty; set {ENV_DATA} or --data-dir to real data")
    return ds
