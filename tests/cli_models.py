"""A model file as a user would write one for ``qfx train --model tests/cli_models.py:tiny``: a function that takes
the data set's description and returns a float ``nn.Module``. Small enough that Yosys maps it in seconds."""

from torch import nn

from qfx.data import DatasetInfo


def tiny(info: DatasetInfo) -> nn.Module:
    """4x4 max pooling of the image, then 4 -> 6 -> classes."""
    c, h, w = info.input_shape
    features = c * (h // 4) * (w // 4)
    return nn.Sequential(
        nn.MaxPool2d(4), nn.Flatten(), nn.Linear(features, 6), nn.ReLU(), nn.Linear(6, info.num_classes)
    )


def not_a_model() -> str:
    return "a string"
