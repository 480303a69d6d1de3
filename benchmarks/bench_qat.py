"""QAT overhead: train-step time of a QFX model over the same float model, and over the same network quantized with
Brevitas' fixed-point quantizers, all measured in one run (ResNet-20 at CIFAR-10 shape).

    .venv/bin/python benchmarks/bench_qat.py                     # CPU (and CUDA when present), batch 128 and 512
    .venv/bin/python benchmarks/bench_qat.py --batches 128 --steps 3

QFX quantizes every tensor (input, weights, biases, batch norm, activations, residual sums) to 8 bits with learned
binary points; Brevitas uses Int8WeightPerTensorFixedPoint weights and Int8/Uint8ActPerTensorFixedPoint activations.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

import qfx
from qfx.quantize import QuantizeConfig, quantize_

COMMAND = "python benchmarks/bench_qat.py " + " ".join(sys.argv[1:])


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.down is None else self.down(x)
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + skip)


class ResNet20(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def brevitas_resnet20() -> nn.Module | None:
    """The same network with Brevitas fixed-point quantizers, or None when Brevitas is not installed."""
    try:
        import brevitas.nn as qnn
        from brevitas.quant import (
            Int8ActPerTensorFixedPoint,
            Int8WeightPerTensorFixedPoint,
            Uint8ActPerTensorFixedPoint,
        )
    except ImportError:
        return None

    def conv(cin, cout, k, stride, pad):
        return qnn.QuantConv2d(cin, cout, k, stride, pad, bias=False, weight_quant=Int8WeightPerTensorFixedPoint)

    class QBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                conv(cin, cout, 3, stride, 1),
                nn.BatchNorm2d(cout),
                qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint),
                conv(cout, cout, 3, 1, 1),
                nn.BatchNorm2d(cout),
                qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint),
            )
            self.down = nn.Identity()
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(
                    conv(cin, cout, 1, stride, 0), nn.BatchNorm2d(cout),
                    qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint),
                )  # fmt: skip
            self.relu = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.relu(self.body(x) + self.down(x))

    layers: list[nn.Module] = [
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint),
        conv(3, 16, 3, 1, 1), nn.BatchNorm2d(16), qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint),
    ]  # fmt: skip
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(QBlock(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), qnn.QuantLinear(64, 10, bias=True,
               weight_quant=Int8WeightPerTensorFixedPoint)]  # fmt: skip
    return nn.Sequential(*layers)


def step_time(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Best time of one SGD train step (forward, backward, update) after two warm-up steps."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    best = float("inf")
    for i in range(steps + 2):
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        if i >= 2:
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int, default=[128, 512])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (best is kept)")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"qfx {qfx.__version__}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    header = f"{'device':>6} {'batch':>5} {'float ms':>9} {'QFX ms':>9} {'Brevitas ms':>12} {'QFX/float':>9} "
    print(header + f"{'Brevitas/float':>14} {'QFX/Brevitas':>12}")
    for device in devices:
        for batch in args.batches:
            torch.manual_seed(0)
            x = torch.rand(batch, 3, 32, 32, device=device)
            y = torch.randint(0, 10, (batch,), device=device)
            float_model = ResNet20().to(device)
            qfx_model = quantize_(ResNet20(), QuantizeConfig(mode="qat"), x[:64].cpu()).to(device)
            t_float = step_time(float_model, x, y, args.steps)
            t_qfx = step_time(qfx_model, x, y, args.steps)
            brev = brevitas_resnet20()
            t_brev = step_time(brev.to(device), x, y, args.steps) if brev is not None else float("nan")
            print(
                f"{device:>6} {batch:>5} {t_float * 1e3:9.1f} {t_qfx * 1e3:9.1f} {t_brev * 1e3:12.1f} "
                f"{t_qfx / t_float:9.2f} {t_brev / t_float:14.2f} {t_qfx / t_brev:12.2f}"
            )
    if "cuda" not in devices:
        print("CUDA: no GPU here, the GPU ratios were not measured.")
    print(f"\nReproduce: {COMMAND.strip()}")


if __name__ == "__main__":
    main()
