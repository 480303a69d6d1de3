"""The standard model zoo of the test suite: float ``nn.Module`` s written the way users write them.

Functional forms (``F.relu``, ``F.max_pool2d``, ``torch.flatten``, ``x.view(x.size(0), -1)``, ``torch.cat``,
``F.interpolate``, ``torch.sigmoid``, ``F.softmax``, ``F.gelu``, ``torch.clamp``, ``x.permute``) are used on purpose:
:func:`qfx.quantize_` must understand them as it does their modules. Every entry of :data:`ZOO` gives a builder and
the input shape (batch excluded); the ``*_tiny`` variants are small enough for hardware tests (HLS C-simulation, RTL
simulation).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ZOO", "ZooModel", "build", "example_input"]


class JetTagger(nn.Module):
    """hls4ml's jet tagger: 16 features -> 64 -> 32 -> 32 -> 5 classes, batch norm, ReLU, softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(16, 64), nn.BatchNorm1d(64)
        self.fc2, self.bn2 = nn.Linear(64, 32), nn.BatchNorm1d(32)
        self.fc3, self.bn3 = nn.Linear(32, 32), nn.BatchNorm1d(32)
        self.fc4 = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.fc2(x)))
        x = F.relu(self.bn3(self.fc3(x)))
        return F.softmax(self.fc4(x), dim=1)


class LeNet5(nn.Module):
    """LeNet-5 on 1x28x28 (``size=28``) or a smaller square image."""

    def __init__(self, size: int = 28, c1: int = 6, c2: int = 16, f1: int = 120, f2: int = 84) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        side = (size // 2 - 4) // 2
        self.fc1 = nn.Linear(c2 * side * side, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.fc3 = nn.Linear(f2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class ResidualStack(nn.Module):
    """Two 3x3 convolutions with batch norm; a 1x1 strided convolution on the shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(y + s)


class ResNet8(nn.Module):
    """MLPerf Tiny image classification ResNet-8 (3x32x32, 16/32/64 channels, 10 classes)."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), size: int = 32) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.conv = nn.Conv2d(3, c1, 3, padding=1)
        self.bn = nn.BatchNorm2d(c1)
        self.stack1 = ResidualStack(c1, c1, 1)
        self.stack2 = ResidualStack(c1, c2, 2)
        self.stack3 = ResidualStack(c2, c3, 2)
        self.pool = size // 4
        self.fc = nn.Linear(c3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = self.stack3(self.stack2(self.stack1(x)))
        x = F.avg_pool2d(x, self.pool)
        x = x.view(x.size(0), -1)
        return self.fc(x)


class DSCNN(nn.Module):
    """MLPerf Tiny keyword spotting DS-CNN (1x49x10 MFCCs, depthwise-separable blocks, 12 classes)."""

    def __init__(self, channels: int = 64, blocks: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, channels, (10, 4), stride=2, padding=(5, 1))
        self.bn = nn.BatchNorm2d(channels)
        layers: list[nn.Module] = []
        for _ in range(blocks):
            layers += [
                nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.Conv2d(channels, channels, 1),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
            ]
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = self.pool(self.blocks(x))
        return self.fc(torch.flatten(x, 1))


class AutoEncoder(nn.Module):
    """MLPerf Tiny anomaly detection autoencoder: 640-128-128-128-128-8-128-128-128-128-640."""

    def __init__(self, inputs: int = 640, hidden: int = 128, code: int = 8) -> None:
        super().__init__()
        sizes = [inputs, hidden, hidden, hidden, hidden, code, hidden, hidden, hidden, hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(hidden, inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


class CNN1d(nn.Module):
    """A 1-D CNN on (C, L) sequences: Conv1d (same padding, dilation), BatchNorm1d, MaxPool1d, adaptive pool."""

    def __init__(self, channels: int = 2, length: int = 64, c1: int = 8, c2: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, c1, 5, padding="same")
        self.bn1 = nn.BatchNorm1d(c1)
        self.pool1 = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(c1, c2, 3, dilation=2)
        self.bn2 = nn.BatchNorm1d(c2)
        self.pool2 = nn.AdaptiveAvgPool1d(4)
        self.fc = nn.Linear(c2 * 4, classes)
        assert (length // 2 - 4) % 4 == 0, "the adaptive pool's windows must be exact"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.relu(self.bn1(self.conv1(x))))
        x = self.pool2(F.relu(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


class MobileNetV3Mini(nn.Module):
    """MobileNetV3-style blocks: a strided conv with batch norm and hard swish, a depthwise conv with GELU, a
    pointwise conv with SiLU, the pooled map squeezed to a vector, a hard-sigmoid head."""

    def __init__(self, c: int = 8, size: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c)
        self.act = nn.Hardswish()
        self.dw, self.pw = nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, 2 * c, 1)
        self.fc, self.head = nn.Linear(2 * c, classes), nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.stem(x)))
        x = F.gelu(self.dw(x))
        x = F.silu(self.pw(x))
        x = F.adaptive_avg_pool2d(x, 1).squeeze(-1).squeeze(-1)
        return self.head(self.fc(x))


class SeriesCNN(nn.Module):
    """A classifier of channels-last (L, C) series, as a data loader hands them over: permuted to (C, L),
    normalized by a registered per-channel mean and a scale, two conv branches whose difference is clamped, a global
    max pool."""

    def __init__(self, channels: int = 3, c: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.register_buffer("mean", torch.linspace(-0.5, 0.5, channels))  # per channel, as a data set states it
        self.a, self.b = nn.Conv1d(channels, c, 5, padding=2), nn.Conv1d(channels, c, 3, padding=1)
        self.fc = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.permute(0, 2, 1) - self.mean.view(1, -1, 1)) * 2.0
        x = torch.clamp(self.a(x) - self.b(x), -2.0, 2.0)
        return self.fc(F.adaptive_max_pool1d(x, 1).squeeze(-1))


class UNet(nn.Module):
    """A small U-Net-style segmenter: same-padded convs, max pool down, nearest upsampling, skip concatenation,
    per-pixel sigmoid."""

    def __init__(self, c1: int = 8, c2: int = 16) -> None:
        super().__init__()
        self.enc1 = nn.Conv2d(1, c1, 3, padding="same")
        self.enc2 = nn.Conv2d(c1, c2, 3, padding="same")
        self.dec = nn.Conv2d(c2 + c1, c1, 3, padding="same")
        self.head = nn.Conv2d(c1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = F.relu(self.enc1(x))
        e2 = F.relu(self.enc2(F.max_pool2d(e1, 2)))
        up = F.interpolate(e2, scale_factor=2, mode="nearest")
        d = F.relu(self.dec(torch.cat([up, e1], dim=1)))
        return torch.sigmoid(self.head(d))


class BinaryMLP(nn.Module):
    """A binary classifier with a sigmoid output (probability of the positive class)."""

    def __init__(self, features: int = 10) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(features, 32), nn.Linear(32, 16), nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return torch.sigmoid(self.fc3(x))


@dataclass(frozen=True)
class ZooModel:
    """A zoo entry: how to build the float model, its input shape (no batch), whether it is hardware-test sized."""

    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    tiny: bool = False


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel("jet_tagger", JetTagger, (16,), tiny=True),
        ZooModel("lenet5", LeNet5, (1, 28, 28)),
        ZooModel("lenet5_tiny", lambda: LeNet5(size=16, c1=4, c2=8, f1=16, f2=16), (1, 16, 16), tiny=True),
        ZooModel("resnet8", ResNet8, (3, 32, 32)),
        ZooModel("resnet8_tiny", lambda: ResNet8((4, 8, 8), size=8), (3, 8, 8), tiny=True),
        ZooModel("ds_cnn", DSCNN, (1, 49, 10)),
        ZooModel("ds_cnn_tiny", lambda: DSCNN(channels=8, blocks=1), (1, 49, 10), tiny=True),
        ZooModel("autoencoder", AutoEncoder, (640,)),
        ZooModel("autoencoder_tiny", lambda: AutoEncoder(32, 16, 4), (32,), tiny=True),
        ZooModel("cnn1d", CNN1d, (2, 64)),
        ZooModel("cnn1d_tiny", lambda: CNN1d(2, 24, 4, 4, 3), (2, 24), tiny=True),
        ZooModel("unet", UNet, (1, 32, 32)),
        ZooModel("unet_tiny", lambda: UNet(2, 4), (1, 8, 8), tiny=True),
        ZooModel("binary_mlp", BinaryMLP, (10,), tiny=True),
        ZooModel("mobilenet_v3_mini", MobileNetV3Mini, (3, 16, 16), tiny=True),
        ZooModel("series_cnn", SeriesCNN, (32, 3), tiny=True),
    )
}


def build(name: str, seed: int = 0) -> nn.Module:
    """The float model ``name`` with seeded random weights and non-trivial batch-norm statistics (eval mode)."""
    torch.manual_seed(seed)
    model = ZOO[name].build()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def example_input(name: str, batch: int = 4, seed: int = 1) -> torch.Tensor:
    """A random input batch for ``name`` (uniform in [-1, 1); images in [0, 1))."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, *ZOO[name].input_shape)
    x = torch.rand(shape, generator=g)
    return x if len(shape) == 4 else x * 2 - 1
