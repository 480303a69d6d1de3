"""qfx.data: the digits split, and the MNIST / CIFAR-10 readers on tiny files written here in the original formats."""

import gzip
import io
import os
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import qfx
from qfx import data

# --------------------------------------------------------------------------------------------------------- digits


def test_digits_shapes_and_dtypes() -> None:
    ds = data.load_digits("all")
    assert isinstance(ds, TensorDataset)
    x, y = ds.tensors
    assert x.shape == (1797, *data.info("digits").input_shape) and x.dtype == torch.float32
    assert y.shape == (1797,) and y.dtype == torch.int64
    assert set(y.tolist()) == set(range(data.info("digits").num_classes))


def test_digits_are_exact_sixteenths_of_the_pixels() -> None:
    from sklearn.datasets import load_digits

    x = data.load_digits("all").tensors[0]
    assert x.min() == 0 and x.max() == 1
    sixteenths = x * 16
    assert torch.equal(sixteenths, sixteenths.round())  # representable with 4 fraction bits
    assert torch.equal(qfx.cast(x, qfx.FixedFormat.parse("ap_ufixed<5,1>")), x)
    assert np.array_equal(sixteenths.squeeze(1).numpy(), load_digits().images)


@pytest.mark.parametrize(("fraction", "n_test"), [(0.25, 450), (0.2, 360), (0.5, 899)])
def test_digits_split_sizes(fraction: float, n_test: int) -> None:
    train = data.load_digits("train", test_fraction=fraction)
    test = data.load_digits("test", test_fraction=fraction)
    assert (len(train), len(test)) == (1797 - n_test, n_test)


def test_digits_split_is_deterministic_and_pinned() -> None:
    first, again = data.load_digits("test"), data.load_digits("test")
    assert all(torch.equal(a, b) for a, b in zip(first.tensors, again.tensors, strict=True))
    # Pinned, so that a change in NumPy's RandomState stream or in the allocation would show up here.
    _, test_idx = data.stratified_split(data.load_digits("all").tensors[1].numpy(), 0.25, 0)
    assert test_idx[:8].tolist() == [3, 7, 13, 16, 19, 22, 26, 36] and int(test_idx.sum()) == 387217
    other = data.load_digits("test", seed=1).tensors[0]
    assert not torch.equal(first.tensors[0], other)


def test_digits_split_is_stratified() -> None:
    all_counts = torch.bincount(data.load_digits("all").tensors[1])
    train_counts = torch.bincount(data.load_digits("train").tensors[1], minlength=10)
    test_counts = torch.bincount(data.load_digits("test").tensors[1], minlength=10)
    assert (train_counts > 0).all() and (test_counts > 0).all()
    assert torch.equal(train_counts + test_counts, all_counts)
    assert ((test_counts - all_counts * 0.25).abs() < 1).all()


def _rows(ds: TensorDataset) -> list[tuple]:
    x, y = ds.tensors
    return sorted(zip(map(tuple, x.flatten(1).tolist()), y.tolist(), strict=True))


def test_digits_train_and_test_partition_the_data() -> None:
    labels = data.load_digits("all").tensors[1].numpy()
    train_idx, test_idx = data.stratified_split(labels, 0.25, 0)
    assert not set(train_idx) & set(test_idx)
    assert sorted([*train_idx, *test_idx]) == list(range(len(labels)))
    train, test = data.load_digits("train"), data.load_digits("test")
    merged = TensorDataset(*(torch.cat(pair) for pair in zip(train.tensors, test.tensors, strict=True)))
    assert _rows(merged) == _rows(data.load_digits("all"))


def test_bad_split_and_fraction() -> None:
    with pytest.raises(ValueError, match=re.escape("split must be 'train', 'test' or 'all', not 'valid'")):
        data.load_digits("valid")
    for fraction in (0.0, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="test_fraction"):
            data.load_digits("test", test_fraction=fraction)


# ---------------------------------------------------------------------------------------------------------- MNIST


def _idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def _write_mnist(folder: Path, gz: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n in (("train", 5), ("t10k", 3)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0, 0, :2] = (0, 255)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        _write(folder / f"{prefix}-images-idx3-ubyte", _idx_bytes(images), gz)
        _write(folder / f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels), gz)
        arrays["test" if prefix == "t10k" else prefix] = images, labels
    return arrays


@pytest.mark.parametrize(("subdir", "gz"), [(".", False), (".", True), ("MNIST/raw", False), ("MNIST/raw", True)])
def test_mnist_reads_idx_files(tmp_path: Path, subdir: str, gz: bool) -> None:
    arrays = _write_mnist(tmp_path / subdir, gz)
    for split in ("train", "test"):
        x, y = data.load_mnist(tmp_path, split).tensors
        images, labels = arrays[split]
        assert x.shape == (len(images), *data.info("mnist").input_shape) and x.dtype == torch.float32
        assert torch.equal(x, torch.from_numpy(images).float().unsqueeze(1) / 255)
        assert x.min() == 0 and x.max() == 1
        assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    x, y = data.dataset("mnist", str(tmp_path), "all").tensors
    assert len(x) == len(y) == 8 and y.tolist() == [*arrays["train"][1], *arrays["test"][1]]


def test_mnist_missing_files_name_the_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        data.load_mnist(tmp_path, "test")
    message = str(err.value)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        for folder in (tmp_path, tmp_path / "MNIST" / "raw"):
            assert str(folder / name) in message and str(folder / (name + ".gz")) in message
    assert "train-images" not in message and "MNIST/raw" in message
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_mnist(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("train-images-idx3-ubyte", b"\x00\x00\x08\x01" + bytes(8), "bad magic number 0x00000801"),
        ("train-images-idx3-ubyte", _idx_bytes(np.zeros((5, 28, 28), np.uint8))[:-1], r"shape \(5, 28, 28\)"),
        ("train-images-idx3-ubyte", b"\x00\x00\x08\x03\x00", "truncated idx header"),
        ("train-images-idx3-ubyte", _idx_bytes(np.zeros((5, 8, 8), np.uint8)), "28x28"),
        ("train-labels-idx1-ubyte", _idx_bytes(np.zeros(4, np.uint8)), "4 labels for 5 images"),
        ("train-labels-idx1-ubyte", _idx_bytes(np.full(5, 10, np.uint8)), "label 10 out of range"),
        ("train-labels-idx1-ubyte.gz", b"not gzip at all", "corrupted gzip"),
    ],
)
def test_mnist_corrupted_files_name_the_file(tmp_path: Path, name: str, payload: bytes, error: str) -> None:
    _write_mnist(tmp_path)
    (tmp_path / name.removesuffix(".gz")).unlink()
    _write(tmp_path / name, payload)
    with pytest.raises(ValueError, match=error) as err:
        data.load_mnist(tmp_path)
    assert str(tmp_path / name) in str(err.value)


# ------------------------------------------------------------------------------------------------------- CIFAR-10


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 str opcodes, as the original CIFAR-10 batches (pickled by Python 2) have them."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _pickle_batch(batch: object, style: str) -> bytes:
    if style != "python2":
        return pickle.dumps(batch, protocol=int(style))
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(batch)
    return buffer.getvalue().replace(b"numpy._core.", b"numpy.core.")  # as NumPy 1.x named it


def _write_cifar(folder: Path, style: str = "python2", str_keys: bool = False) -> dict[str, list]:
    rng = np.random.default_rng(1)
    batches: dict[str, list] = {"train": [], "test": []}
    for name, n in [*((f"data_batch_{i}", 2) for i in range(1, 6)), ("test_batch", 3)]:
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        batch = {b"batch_label": name.encode(), b"data": pixels, b"labels": labels, b"filenames": [b"x.png"] * n}
        if str_keys:
            batch = {key.decode(): value for key, value in batch.items()}
        _write(folder / name, _pickle_batch(batch, style))
        batches["test" if name == "test_batch" else "train"].append((pixels, labels))
    return batches


@pytest.mark.parametrize(("style", "str_keys"), [("python2", False), ("2", False), ("4", True), ("5", False)])
def test_cifar10_reads_python_batches(tmp_path: Path, style: str, str_keys: bool) -> None:
    batches = _write_cifar(tmp_path / "cifar-10-batches-py", style, str_keys)
    for split in ("train", "test"):
        x, y = data.load_cifar10(tmp_path, split).tensors
        pixels = np.concatenate([p for p, _ in batches[split]])
        assert x.shape == (len(pixels), *data.info("cifar10").input_shape) and x.dtype == torch.float32
        n, c, h, w = 1, 2, 3, 4  # CIFAR rows are 1024 red, 1024 green, 1024 blue pixels, each image row-major
        assert x[n, c, h, w] == pixels[n, c * 1024 + h * 32 + w] / np.float32(255)
        assert torch.equal(x.flatten(1), torch.from_numpy(pixels).float() / 255)
        assert y.dtype == torch.int64 and y.tolist() == [label for _, ls in batches[split] for label in ls]
    assert len(data.dataset("cifar10", tmp_path / "cifar-10-batches-py", "all")) == 13  # root may be the batch dir


def test_cifar10_missing_files_name_the_paths(tmp_path: Path) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError) as err:
        data.load_cifar10(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_3") in message and "data_batch_2" not in message
    assert "cifar-10-python.tar.gz" in message
    assert len(data.load_cifar10(tmp_path, "test")) == 3


class _Sneaky:
    def __reduce__(self) -> tuple:
        return os.getcwd, ()


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"garbage", "not a CIFAR-10 python batch"),
        (pickle.dumps([1, 2, 3]), "a list, not a dict"),
        (pickle.dumps({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}), r"shape \(N, 3072\)"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}), "uint8"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "labels"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "1 labels for 2 images"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, -1]}), "label -1 out of range"),
        (pickle.dumps({b"data": _Sneaky(), b"labels": []}), "refusing to load global"),
    ],
)
def test_cifar10_corrupted_files_name_the_file(tmp_path: Path, payload: bytes, error: str) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-py")
    path = _write(tmp_path / "cifar-10-batches-py" / "test_batch", payload)
    with pytest.raises(ValueError, match=error) as err:
        data.load_cifar10(tmp_path, "test")
    assert str(path) in str(err.value)


# ----------------------------------------------------------------------------------------------------- dispatcher


def test_dataset_dispatch_and_info(tmp_path: Path) -> None:
    assert torch.equal(data.dataset("digits", split="test").tensors[0], data.load_digits("test").tensors[0])
    assert data.info("cifar10") == data.DatasetInfo("cifar10", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="'digits', 'mnist', 'cifar10'"):
        data.dataset("imagenet")
    with pytest.raises(ValueError, match="'digits', 'mnist', 'cifar10'"):
        data.info("imagenet")
    with pytest.raises(ValueError, match="pass root="):
        data.dataset("mnist")
    with pytest.raises(ValueError, match="split must be"):
        data.dataset("cifar10", tmp_path, "valid")
    with pytest.raises(AttributeError):
        data.info("mnist").num_classes = 11  # frozen
