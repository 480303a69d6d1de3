"""Models written the way users write them (not the zoo's), through every link: PyTorch = qonnx = IR = HLS
C-simulation (streaming) = folded streaming Verilog (Icarus, 20 % valid gaps and ready stalls), planned for a board;
the measured clocks per sample next to the plan's.

Each model below is a common idiom: classic LeNet-5 (tanh, average pools, ``x.view(-1, n)``), an inception block,
a ResNet block with ``+=``, a TCN (strided and dilated 1-D convolutions), a DS-CNN block whose pool reads its kernel
off the tensor, DCGAN-style 4x4/2 convolutions, PReLU, an MLPerf-Tiny-AD-style autoencoder, a VGG-style CNN, a
TFC-style MLP with Hardtanh, a KWS DS-CNN with a 10x4 stride-2 first layer, gated units (``tanh(a) * sigmoid(b)``,
hard-swish spelled out), a MobileNetV3 inverted residual with squeeze-and-excitation. Random weights, PTQ
calibrated on random data (``--qat``: QAT, 3 steps; ``--khot``: K = 2 weights).

    .venv/bin/python benchmarks/bench_styles.py                        # every model (about 6 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_styles.py --models tcn gates --khot
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import qfx
import qfx.hls
import qfx.rtl
from qfx.ir import from_qonnx, host
from qfx.plan import plan


class LeNetClassic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.f1, self.f2, self.f3 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(torch.tanh(self.c1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.c2(x)), 2)
        x = x.view(-1, 16 * 5 * 5)
        return self.f3(torch.tanh(self.f2(torch.tanh(self.f1(x)))))


class Inception(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 5, padding=2)
        self.fc = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x)), F.relu(self.c(x))], dim=1)
        return self.fc(y.mean(dim=(2, 3)))


class ResBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.c1, self.b1 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        out = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        out += x
        return self.fc(F.adaptive_avg_pool2d(F.relu(out), (1, 1)).flatten(1))


class TCN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv1d(2, 8, 7, stride=2, padding=3), nn.BatchNorm1d(8)
        self.c2, self.c3 = nn.Conv1d(8, 8, 3, dilation=2, padding=2), nn.Conv1d(8, 8, 4, stride=2, padding=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool1d(F.relu(self.b1(self.c1(x))), 2)
        x = F.relu(self.c2(x)) + x
        return self.fc(torch.mean(F.relu(self.c3(x)), dim=-1))


class DSBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c0, self.b0 = nn.Conv2d(1, 8, (5, 3), stride=(2, 1), padding=(2, 1), bias=False), nn.BatchNorm2d(8)
        self.dw, self.b1 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False), nn.BatchNorm2d(8)
        self.pw, self.b2 = nn.Conv2d(8, 12, 1, bias=False), nn.BatchNorm2d(12)
        self.fc = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.b0(self.c0(x)))
        x = F.relu(self.b2(self.pw(F.relu(self.b1(self.dw(x))))))
        x = F.avg_pool2d(x, x.shape[2:])  # the kernel read off the tensor
        return self.fc(x.view(x.size(0), -1))


class DCGAN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 4, stride=2, padding=1), nn.Conv2d(8, 8, 4, stride=2, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.c2(F.leaky_relu(self.c1(x), 0.2)), 0.2)
        return torch.sigmoid(self.fc(x.flatten(1)))


class PReLUCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.p1, self.bn = nn.Conv1d(3, 8, 5, padding=2), nn.PReLU(8), nn.BatchNorm1d(8)
        self.c2, self.pool, self.fc = nn.Conv1d(8, 16, 3), nn.AdaptiveAvgPool1d(1), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool1d(self.bn(self.p1(self.c1(x))), 2)
        return self.fc(self.pool(F.relu(self.c2(x))).squeeze(-1))


def autoencoder() -> nn.Module:
    dims, layers = [128, 32, 32, 8, 32, 32, 128], []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers)


def vgg() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10),
    )  # fmt: skip


def tfc() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Hardtanh(), nn.Linear(32, 32), nn.BatchNorm1d(32),
        nn.Hardtanh(), nn.Linear(32, 10), nn.BatchNorm1d(10),
    )  # fmt: skip


class KWS(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c0, self.b0 = nn.Conv2d(1, 8, (10, 4), stride=(2, 2), padding=(5, 1)), nn.BatchNorm2d(8)
        self.dw, self.b1 = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8)
        self.pw, self.b2 = nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.b0(self.c0(x)))
        x = F.relu(self.b2(self.pw(F.relu(self.b1(self.dw(x))))))
        return F.softmax(self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)), dim=1)


class Gates(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv1d(2, 6, 3, padding=1), nn.Conv1d(2, 6, 3, padding=1)
        self.c, self.fc = nn.Conv1d(2, 6, 1), nn.Linear(6 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.a(x)) * torch.sigmoid(self.b(x))
        y = y * F.relu6(y + 3) / 6
        z = self.c(x)
        return self.fc((y + z * torch.sigmoid(z)).flatten(1))


class MobileNetV3Block(nn.Module):
    """An inverted residual with squeeze-and-excitation, as torchvision writes it (hard-swish, hard-sigmoid gate)."""

    def __init__(self) -> None:
        super().__init__()
        def unit(conv: nn.Conv2d) -> nn.Sequential:
            return nn.Sequential(conv, nn.BatchNorm2d(conv.out_channels), nn.Hardswish())

        self.stem = unit(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False))
        self.expand = unit(nn.Conv2d(8, 16, 1, bias=False))
        self.dw = unit(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False))
        self.fc1, self.fc2 = nn.Conv2d(16, 4, 1), nn.Conv2d(4, 16, 1)
        self.project = nn.Sequential(nn.Conv2d(16, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.classifier = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.dw(self.expand(x))
        scale = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(y, 1)))))
        y = self.project(scale * y) + x
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


MODELS = {
    "lenet_classic": (LeNetClassic, (1, 28, 28)), "inception": (Inception, (4, 8, 8)),
    "resnet_block": (ResBlock, (3, 8, 8)), "tcn": (TCN, (2, 64)), "ds_cnn_block": (DSBlock, (1, 20, 10)),
    "dcgan": (DCGAN, (3, 16, 16)), "prelu_cnn1d": (PReLUCNN, (3, 32)), "autoencoder": (autoencoder, (128,)),
    "vgg": (vgg, (3, 16, 16)), "tfc": (tfc, (1, 8, 8)), "kws": (KWS, (1, 25, 10)), "gates": (Gates, (2, 8)),
    "mobilenet_v3_se": (MobileNetV3Block, (3, 16, 16)),
}  # fmt: skip


def run(name: str, tmp: Path, mode: str, khot: int | None, vectors: int, board: str) -> dict:
    """One model through every link; its figures."""
    build, shape = MODELS[name]
    torch.manual_seed(0)
    model = build().eval()
    q = qfx.quantize_(model, qfx.QuantizeConfig(mode=mode, khot=khot), torch.randn(64, *shape))
    if mode == "qat":
        q.train()
        opt = torch.optim.Adam(q.parameters(), lr=0.01)
        for _ in range(3):
            opt.zero_grad()
            q(torch.randn(16, *shape)).float().square().mean().backward()
            opt.step()
    q.eval()
    x = torch.randn(vectors, *shape, generator=torch.Generator().manual_seed(1))
    graph = from_qonnx(qfx.export_qonnx(q, x, tmp / f"{name}.onnx"))  # raises unless qonnx == PyTorch
    xs = host.pre(graph.host_pre, x.numpy().astype(np.float64))
    ir = np.asarray(graph.run(xs), dtype=np.int64).reshape(vectors, -1)
    with torch.no_grad():
        torch_codes = qfx.codes(q(x), graph.fmt(graph.outputs[0])).numpy().reshape(vectors, -1)
    p = plan(graph, board, parallel=False)
    hls = qfx.hls.generate(graph, tmp / f"{name}_hls", architecture="stream", plan=p, tool="vitis")
    csim = np.asarray(qfx.hls.csim(hls, xs), dtype=np.int64).reshape(ir.shape)
    rtl = qfx.rtl.generate(graph, tmp / f"{name}_rtl", architecture="stream", plan=p)
    stressed = qfx.rtl.simulate(rtl, xs, simulator="icarus", seed=1, valid_gaps=0.2, ready_stalls=0.2)
    free = qfx.rtl.simulate(rtl, xs[: min(vectors, 3)], simulator="icarus")
    rtl_codes = np.asarray(stressed.codes, dtype=np.int64).reshape(ir.shape)
    mismatches = int((torch_codes != ir).sum() + (csim != ir).sum() + (rtl_codes != ir).sum())
    return dict(model=name, codes=int(ir.size), mismatches=mismatches, measured=free.cycles_per_sample,
                planned=p.cycles, lut=p.total.lut, dsp=p.total.dsp)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--qat", action="store_true", help="QAT (3 steps) instead of PTQ")
    ap.add_argument("--khot", action="store_true", help="K-hot weights, K = 2")
    ap.add_argument("--vectors", type=int, default=8)
    ap.add_argument("--board", default="ultra96v2")
    args = ap.parse_args()
    if shutil.which("iverilog") is None:
        raise SystemExit("bench_styles needs Icarus Verilog (apt install iverilog)")
    print("| model | codes | mismatches | clocks measured | clocks planned | LUT (plan) | DSP (plan) | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="qfx-styles-") as tmp:
        for name in args.models:
            start = time.perf_counter()
            r = run(name, Path(tmp), "qat" if args.qat else "ptq", 2 if args.khot else None, args.vectors,
                    args.board)  # fmt: skip
            failed += r["mismatches"] > 0 or abs(r["measured"] - r["planned"]) > 0.02 * r["planned"]
            print(f"| {name} | {r['codes']} | {r['mismatches']} | {r['measured']:,.0f} | {r['planned']:,} | "
                  f"{r['lut']:,} | {r['dsp']} | {time.perf_counter() - start:.0f} |", flush=True)  # fmt: skip
    print(f"\n{len(args.models)} models, {failed} with a mismatch or a pace off the plan by more than 2 %")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
