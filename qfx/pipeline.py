"""The steps behind ``qfx train`` / ``qfx demo``: resolve a model, train it in float, quantize it, fine-tune it with
the exact fixed-point forward pass, and record what each layer's format became.

Every quantized model starts from one trained float model: PTQ calibrates the formats on the training data and
stops there; QAT calibrates the same formats, then trains weights and binary points together.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from qfx.data import DatasetInfo
from qfx.nn import FixedQuantizer
from qfx.quantize import QuantizeConfig, quantize_
from qfx.train import evaluate, train

__all__ = ["PRESETS", "TrainOutcome", "build_model", "layer_formats", "train_quantized"]

Progress = Callable[[str, int], Callable[[], None]]  # (title, total) -> advance()


class DigitsDemoMLP(nn.Module):
    """The demo's network: 64 pixels -> ``hidden`` -> 10 classes, small enough to synthesize in a minute."""

    def __init__(self, in_features: int = 64, hidden: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _mlp(info: DatasetInfo) -> nn.Module:
    c, h, w = info.input_shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(c * h * w, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, info.num_classes)
    )


def _small_mlp(info: DatasetInfo) -> nn.Module:
    c, h, w = info.input_shape
    return DigitsDemoMLP(c * h * w, 16, info.num_classes)


def _cnn(channels: int) -> Callable[[DatasetInfo], nn.Module]:
    def build(info: DatasetInfo) -> nn.Module:
        from qfx.train import DigitsCNN

        if info.input_shape[0] != 1 or info.num_classes != 10:
            raise ValueError(f"preset 'cnn' takes 1-channel images and 10 classes, not {info.name}")
        return DigitsCNN(channels=channels)

    return build


PRESETS: dict[str, tuple[Callable[[DatasetInfo], nn.Module], str]] = {
    "mlp-small": (_small_mlp, "input -> 16 -> classes, ReLU (the demo's model)"),
    "mlp": (_mlp, "input -> 64 -> 32 -> classes, ReLU"),
    "cnn": (_cnn(8), "conv-BN-ReLU, residual block, max pool, global average pool, linear (8 channels)"),
    "cnn-tiny": (_cnn(2), "the same CNN with 2 channels (small enough for fully parallel RTL)"),
}


def _load_attribute(spec: str) -> Callable:
    """``package.module:function`` or ``path/to/file.py:function`` -> the function."""
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise ValueError(f"model {spec!r}: give a preset ({', '.join(PRESETS)}) or 'module:function'")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise FileNotFoundError(f"model {spec!r}: file {path} does not exist")
        name = f"qfx_user_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # the checkpoint pickles classes by module name
        module_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise ValueError(f"model {spec!r}: cannot import {where!r} ({exc})") from None
    if not hasattr(module, attr):
        raise ValueError(f"model {spec!r}: {where} has no attribute {attr!r}")
    return getattr(module, attr)


def build_model(spec: str, info: DatasetInfo) -> nn.Module:
    """A float model from a preset name or a ``module:function`` (the function may take the :class:`DatasetInfo`)."""
    if spec in PRESETS:
        return PRESETS[spec][0](info)
    factory = _load_attribute(spec)
    if isinstance(factory, type) and issubclass(factory, nn.Module):
        model = factory()
    elif callable(factory):
        params = inspect.signature(factory).parameters
        model = factory(info) if params else factory()
    else:
        raise ValueError(f"model {spec!r} is not callable")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def layer_formats(model: nn.Module) -> list[dict]:
    """Every quantizer of a QFX model: its name and the width / integer bits / fraction bits it holds now."""
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, FixedQuantizer):
            fmt = module.format
            label = name.removesuffix("_quantizer").replace(".", "/") or "input"
            rows.append(
                {
                    "name": label,
                    "format": str(fmt),
                    "width": fmt.width,
                    "int_bits": fmt.int_bits,
                    "frac_bits": fmt.frac_bits,
                }
            )
    return rows


@dataclass
class TrainOutcome:
    """The QAT model, the accuracies of its float parent and PTQ twin, and formats before/after QAT."""

    model: nn.Module
    float_accuracy: float
    ptq_accuracy: float
    qat_accuracy: float
    calibrated: list[dict] = field(default_factory=list)
    learned: list[dict] = field(default_factory=list)


def train_float(
    model: nn.Module, train_set: TensorDataset, epochs: int, lr: float, seed: int, progress: Progress | None = None
) -> nn.Module:
    """Train ``model`` in float (Adam, cosine decay); reproducible for a seed on one thread."""
    torch.manual_seed(seed)
    advance = progress("float training", epochs) if progress else None
    return train(model, train_set, epochs, lr, seed, "float", on_epoch=advance)


def train_quantized(
    float_model: nn.Module,
    train_set: TensorDataset,
    test_set: TensorDataset,
    config: QuantizeConfig,
    *,
    epochs: int,
    lr: float = 3e-3,
    seed: int = 0,
    progress: Progress | None = None,
    label: str = "QAT",
    binary_point_lr: float | None = 0.03,
) -> TrainOutcome:
    """PTQ and QAT from the trained ``float_model`` (left untouched); accuracies on ``test_set`` in percent.

    The binary points train at ``binary_point_lr`` (they move in whole bits; see :func:`qfx.train.train`)."""
    calibration = train_set.tensors[0]
    float_accuracy = evaluate(float_model, test_set)
    ptq = quantize_(float_model, replace(config, mode="ptq"), calibration)
    ptq_accuracy = evaluate(ptq, test_set)
    model = quantize_(float_model, replace(config, mode="qat"), calibration)
    calibrated = layer_formats(model)
    torch.manual_seed(seed)
    advance = progress(label, epochs) if progress else None
    model = train(model, train_set, epochs, lr, seed, label, on_epoch=advance, binary_point_lr=binary_point_lr)
    qat_accuracy = evaluate(model, test_set)
    return TrainOutcome(model.eval(), float_accuracy, ptq_accuracy, qat_accuracy, calibrated, layer_formats(model))
