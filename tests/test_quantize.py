"""quantize_: float model -> QFX model, PTQ and QAT from the same calibrated formats."""

import pytest
import torch
from torch import nn

import qfx
from qfx.nn import QAdd, QBatchNorm2d, QConv2d, QInput, QLinear, QReLU
from qfx.quantize import LayerConfig, QuantizeConfig, int_bits_for, quantize_


class ResNetLet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        h = torch.relu(self.bn2(self.conv2(h)) + h)
        return self.fc(torch.flatten(self.gap(self.pool(h)), 1))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_every_layer_is_replaced_and_wired() -> None:
    torch.manual_seed(0)
    x = torch.rand(32, 1, 8, 8)
    q = quantize_(ResNetLet().eval(), QuantizeConfig(mode="ptq"), x)
    kinds = {type(m) for m in q.modules()}
    assert {QInput, QConv2d, QBatchNorm2d, QReLU, QAdd, QLinear} <= kinds
    assert not any(type(m) in (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.ReLU) for m in q.modules())
    assert q.conv1.input_source is q.qfx_input
    assert q.conv2.input_source is q.relu.output_quantizer
    assert q.fc.input_source is q.gap.output_quantizer  # through flatten and the global pool
    y = q(x)
    assert torch.equal(y, qfx.cast(y, q.fc.output_quantizer.format))


def test_ptq_calibrates_binary_points_to_the_data() -> None:
    torch.manual_seed(0)
    model = mlp().eval()
    x = torch.rand(64, 1, 8, 8) * 3
    q = quantize_(model, QuantizeConfig(mode="ptq", input_width=6), x)
    fmt_in = q.qfx_input.format
    assert (fmt_in.width, fmt_in.signed) == (6, False)
    assert fmt_in.max >= 2.9 and fmt_in.int_bits == int_bits_for(x.max().item(), signed=False)
    w_fmt = q.get_submodule("1").weight_quantizer.format
    assert w_fmt.int_bits == int_bits_for(model[1].weight.abs().max().item(), signed=True)
    assert not any(p.requires_grad for n, p in q.named_parameters() if n.endswith("frac_bits"))


def test_overrides_by_module_name() -> None:
    config = QuantizeConfig(weight_width=8, overrides={"3": LayerConfig(weight_width=4, output_width=12)})
    q = quantize_(mlp(), config, torch.rand(8, 1, 8, 8))
    assert q.get_submodule("1").weight_quantizer.format.width == 8
    assert q.get_submodule("3").weight_quantizer.format.width == 4
    assert q.get_submodule("3").output_quantizer.format.width == 12


def test_qat_trains_and_learns_binary_points() -> None:
    torch.manual_seed(0)
    x, target = torch.rand(128, 1, 8, 8), torch.randint(0, 10, (128,))
    q = quantize_(mlp(), QuantizeConfig(mode="qat"), x)
    opt = torch.optim.Adam(q.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(q(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3
    assert q.get_submodule("1").weight_quantizer.frac_bits.grad is not None


def test_bad_config_and_unsupported_modules() -> None:
    with pytest.raises(ValueError, match="weight_width must be an integer from 1 to 24, not 0"):
        QuantizeConfig(weight_width=0)
    with pytest.raises(ValueError, match="mode must be 'qat' or 'ptq', not 'int8'"):
        QuantizeConfig(mode="int8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"module 1: LSTM is not supported by quantize_"):
        quantize_(nn.Sequential(nn.Flatten(), nn.LSTM(4, 4)), QuantizeConfig(), torch.rand(2, 1, 2, 2))


def test_khot_layers_have_at_most_k_digits_per_weight() -> None:
    from qfx.khot import khot_digits
    from qfx.nn import QConv2d

    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8)
    q = quantize_(ResNetLet(), QuantizeConfig(khot=2), x)
    layers = [m for m in q.modules() if isinstance(m, (QLinear, QConv2d))]
    assert len(layers) == 3 and all(m.khot == 2 for m in layers)
    for m in layers:
        w = m.quantized_weight().detach()
        shifts, signs = khot_digits(w, m.weight_quantizer.format, 2)  # raises if any weight needs more digits
        assert torch.equal((signs.double() * torch.exp2(shifts.double())).sum(-1), w.double())
    with pytest.raises(ValueError, match="khot must be None or an integer from 1 to 8, not 0"):
        QuantizeConfig(khot=0)


def test_resource_cost_shrinks_learned_widths() -> None:
    from qfx.nn import enable_width_learning, resource_cost

    torch.manual_seed(0)
    x, target = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    q = quantize_(mlp(), QuantizeConfig(), x)
    with pytest.raises(ValueError, match="needs a forward pass first"):
        resource_cost(q)
    enable_width_learning(q, max_width=16)
    q(x)
    start = resource_cost(q).item()
    assert start == 8 * 8 * 64 * 32 + 8 * 8 * 32 * 10  # input bits x weight bits x MACs, both layers
    opt = torch.optim.Adam(q.parameters(), lr=0.05)
    for _ in range(30):
        loss = nn.functional.cross_entropy(q(x), target) + 1e-4 * resource_cost(q)
        opt.zero_grad()
        loss.backward()
        opt.step()
    q(x)
    assert resource_cost(q).item() < start
    assert q.get_submodule("1").weight_quantizer.format.width < 8
    with pytest.raises(ValueError, match="max_width must be between 1 and 24, not 30"):
        enable_width_learning(q, max_width=30)
