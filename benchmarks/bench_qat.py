"""QAT overhead: train-step time of a QFX model over the same float model, and over the same network quantized with
Brevitas' fixed-point quantizers, all measured in one run (ResNet-20 at CIFAR-10 shape).

    .venv/bin/python benchmarks/bench_qat.py                     # CPU (and CUDA when present), batch 32, 128, 512
    .venv/bin/python benchmarks/bench_qat.py --batches 128 --steps 5
    .venv/bin/python benchmarks/bench_qat.py --profile 128       # also: the top operations of one QFX step

QFX quantizes every tensor (input, weights, biases, batch norm, activations, residual sums) to 8 bits with learned
binary points; Brevitas uses Int8WeightPerTensorFixedPoint weights and Int8/Uint8ActPerTensorFixedPoint activations.
Each time is the median of ``--steps`` train steps after two warm-up steps; the three models alternate step by step,
so a machine shared with other work slows them alike. On CUDA the QFX model also runs under ``torch.compile``.
The script prints which exact multiply-accumulate each QFX layer runs (float32, float32 in weight limbs, float64) and
whether the fused CPU cast kernel is in use.
"""

from __future__ import annotations

import argparse
import statistics
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


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """One SGD train step (forward, backward, update) of ``model``, synchronized on CUDA."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def step() -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()

    return step


def step_times(steps: dict[str, object], repeats: int) -> dict[str, float]:
    """Median seconds per step of each model, after two warm-up steps, the models alternating step by step."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(repeats + 2):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if i >= 2:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def layer_paths(model: nn.Module) -> list[str]:
    """Which exact multiply-accumulate each QFX compute layer runs."""
    out = []
    for name, m in model.named_modules():
        if hasattr(m, "mac_plan"):
            out.append(f"{name}: {m.mac_plan().describe()} ({m.terms()} terms)")
        elif hasattr(m, "_limbs"):
            limbs = m._limbs()
            out.append(f"{name}: " + ("float64" if limbs == 0 else f"float32 x {limbs} limbs"))
    return out


def profile_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rows: int = 15) -> None:
    """Print the operations that take the most time in one QFX train step."""
    step = make_step(model, x, y)
    step()
    step()
    with torch.profiler.profile() as prof:
        step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int, default=[32, 128, 512])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model and batch (the median is kept)")
    parser.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: every one present)")
    parser.add_argument("--profile", type=int, default=None, metavar="BATCH", help="profile one QFX step (CPU)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    try:
        from qfx import native

        fused = "fused CPU cast kernel: " + ("on" if native.available() else "off (tensor ops)")
    except ImportError:
        fused = "fused CPU cast kernel: absent"
    print(f"qfx {qfx.__version__}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {fused}")
    calibration = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    paths = layer_paths(quantize_(ResNet20(), QuantizeConfig(mode="qat"), calibration))
    print("QFX multiply-accumulate per layer: " + "; ".join(paths))
    header = f"{'device':>6} {'batch':>5} {'float ms':>9} {'QFX ms':>9} {'Brevitas ms':>12} {'QFX/float':>9} "
    print(header + f"{'Brevitas/float':>14} {'QFX/Brevitas':>12}")
    for device in devices:
        for batch in args.batches:
            torch.manual_seed(0)
            x = torch.rand(batch, 3, 32, 32, device=device)
            y = torch.randint(0, 10, (batch,), device=device)
            models = {"float": ResNet20(), "QFX": quantize_(ResNet20(), QuantizeConfig(mode="qat"), calibration)}
            brev = brevitas_resnet20()
            if brev is not None:
                models["Brevitas"] = brev
            if device == "cuda":
                models["QFX compiled"] = torch.compile(
                    quantize_(ResNet20(), QuantizeConfig(mode="qat"), calibration).to(device)
                )
                models["float compiled"] = torch.compile(ResNet20().to(device))
            steps = {name: make_step(m.to(device), x, y) for name, m in models.items()}
            t = step_times(steps, args.steps)
            t_brev = t.get("Brevitas", float("nan"))
            print(
                f"{device:>6} {batch:>5} {t['float'] * 1e3:9.1f} {t['QFX'] * 1e3:9.1f} {t_brev * 1e3:12.1f} "
                f"{t['QFX'] / t['float']:9.2f} {t_brev / t['float']:14.2f} {t['QFX'] / t_brev:12.2f}"
            )
            if device == "cuda":
                print(
                    f"{'':>6} {'':>5} compiled: float {t['float compiled'] * 1e3:.1f} ms, QFX "
                    f"{t['QFX compiled'] * 1e3:.1f} ms, QFX compiled / float compiled "
                    f"{t['QFX compiled'] / t['float compiled']:.2f}, QFX compiled / float eager "
                    f"{t['QFX compiled'] / t['float']:.2f}"
                )
    if "cuda" not in devices:
        print("CUDA: not measured here (no GPU); a CUDA result is recorded only from a real GPU run.")
    if args.profile:
        torch.manual_seed(0)
        x = torch.rand(args.profile, 3, 32, 32)
        y = torch.randint(0, 10, (args.profile,))
        print(f"\nProfile of one QFX train step, CPU, batch {args.profile}:")
        profile_step(quantize_(ResNet20(), QuantizeConfig(mode="qat"), calibration), x, y)
    print(f"\nReproduce: {COMMAND.strip()}")


if __name__ == "__main__":
    main()
