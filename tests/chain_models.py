"""The four models every link of the verification chain is checked on, built once per test session.

Each starts from a float model trained for a few epochs on digits and is quantized with PTQ (training is not
what these tests check): an MLP, a CNN with batch norm + residual add + max and global average pooling, a K-hot
CNN (both CNNs also with 2 channels instead of 8, ``*_tiny``, for the fully parallel RTL), and an MLP whose
output casts use the wrap-around and unusual rounding modes (AP_WRAP, AP_WRAP_SM with 0-2 saturation bits,
AP_SAT_ZERO, AP_RND, AP_RND_MIN_INF, ...) with binary points moved so that overflows happen.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from qfx import FixedFormat, Overflow, Quant, QuantizeConfig, quantize_
from qfx.data import load_digits
from qfx.kernel import Mode
from qfx.nn import FixedQuantizer
from qfx.train import DigitsCNN, DigitsMLP, train

MODEL_NAMES = ("mlp", "cnn", "khot", "wrap")
# The RTL is fully parallel (one adder per weight), so its tests use the same CNN with 2 channels, not 8.
RTL_MODEL_NAMES = ("mlp", "cnn_tiny", "khot_tiny", "wrap")

EXOTIC = [
    ("AP_RND", "AP_WRAP", 0),
    ("AP_RND_MIN_INF", "AP_WRAP_SM", 0),
    ("AP_RND_ZERO", "AP_WRAP", 2),
    ("AP_RND_INF", "AP_WRAP_SM", 1),
    ("AP_TRN_ZERO", "AP_SAT_ZERO", 0),
    ("AP_RND", "AP_WRAP_SM", 2),
]


def digits_test() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits("test", seed=0).tensors
    return x, y


@functools.cache
def _float_model(kind: str, channels: int = 8) -> nn.Module:
    torch.manual_seed(0)
    model = DigitsCNN(channels=channels) if kind == "cnn" else DigitsMLP()
    return train(model, load_digits("train", seed=0), epochs=3, lr=3e-3, seed=0, desc=f"{kind} float")


def _exotic(model: nn.Module) -> None:
    """Give every output quantizer of ``model`` one of the exotic modes, one integer bit short of calibration."""
    quantizers = [m.output_quantizer for m in model.modules() if hasattr(m, "output_quantizer")]
    for k, q in enumerate(quantizers):
        quant, overflow, sat_bits = EXOTIC[k % len(EXOTIC)]
        q.mode = Mode(True, Quant.from_name(quant), Overflow.from_name(overflow), sat_bits)
        with torch.no_grad():
            q.frac_bits += 1  # one integer bit fewer: the largest values now overflow
        q.max_width = max(q.max_width, sat_bits)


@functools.cache
def chain_model(name: str) -> nn.Module:
    """A quantized model by name (see the module docstring); evaluation mode."""
    train_x = load_digits("train", seed=0).tensors[0]
    if name == "mlp":
        model = quantize_(_float_model("mlp"), QuantizeConfig(mode="ptq"), train_x)
    elif name == "cnn":
        model = quantize_(_float_model("cnn"), QuantizeConfig(mode="ptq"), train_x)
    elif name == "khot":
        model = quantize_(_float_model("cnn"), QuantizeConfig(mode="ptq", khot=2), train_x)
    elif name == "cnn_tiny":
        model = quantize_(_float_model("cnn", channels=2), QuantizeConfig(mode="ptq"), train_x)
    elif name == "khot_tiny":
        model = quantize_(_float_model("cnn", channels=2), QuantizeConfig(mode="ptq", khot=2), train_x)
    elif name == "wrap":
        model = quantize_(_float_model("mlp"), QuantizeConfig(mode="ptq", activation_width=7), train_x)
        _exotic(model)
    else:
        raise KeyError(name)
    return model.eval()


def output_format(model: torch.fx.GraphModule) -> FixedFormat:
    """Format of the model's output: the output quantizer of the module that produces it."""
    out = next(n for n in model.graph.nodes if n.op == "output").args[0]
    module = model.get_submodule(out.target)
    return module.format if isinstance(module, FixedQuantizer) else module.output_quantizer.format


def brevitas_export(path: str, kind: str) -> str:
    """Export a small network quantized with Brevitas' fixed-point quantizers, with Brevitas' own QONNX exporter
    (as a user would): ``kind`` "cnn" (conv, ReLU, max pool, linear) or "mlp" (two linear layers)."""
    import pytest

    brevitas_nn = pytest.importorskip("brevitas.nn", reason="brevitas not installed")
    from brevitas.export import export_qonnx
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint

    torch.manual_seed(0)
    act, weight = Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint
    first = brevitas_nn.QuantIdentity(act_quant=act, return_quant_tensor=True)
    if kind == "cnn":
        body = [
            brevitas_nn.QuantConv2d(1, 8, 3, padding=1, weight_quant=weight, bias=False, return_quant_tensor=True),
            brevitas_nn.QuantReLU(act_quant=act, return_quant_tensor=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
            brevitas_nn.QuantLinear(8 * 16, 10, weight_quant=weight, bias=False),
        ]
    else:
        body = [
            nn.Flatten(),
            brevitas_nn.QuantLinear(64, 32, weight_quant=weight, bias=False, return_quant_tensor=True),
            brevitas_nn.QuantReLU(act_quant=act, return_quant_tensor=True),
            brevitas_nn.QuantLinear(32, 10, weight_quant=weight, bias=False),
        ]
    net = nn.Sequential(first, *body, brevitas_nn.QuantIdentity(act_quant=act)).eval()
    export_qonnx(net, digits_test()[0][:1], path, dynamo=False)
    return path


def qonnx_codes(path: str, x: torch.Tensor, fmt: FixedFormat):
    """Output codes of qonnx's ``execute_onnx`` on the batch ``x`` (the file's batch size changed to fit); an output
    off ``fmt``'s grid fails the test rather than being truncated into agreement."""
    import numpy as np

    from qfx.verify import qonnx_codes as run_qonnx

    codes = run_qonnx(path, x.numpy(), fmt.frac_bits)
    assert not np.isnan(codes).any(), f"qonnx output of {path} is off the grid of {fmt}"
    return codes.astype(np.int64)
