"""Every zoo model (tests/zoo.py) through the chain's first links, with random weights and calibration data:
quantize_ (PTQ, and QAT with one training step that changes the loss) -> export_qonnx (qonnx's execution checked
bit for bit inside) -> qfx.ir.from_qonnx -> the IR interpreter, whose codes must equal the PyTorch model's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from zoo import ZOO, build, example_input

import qfx
from qfx.ir import from_qonnx, host
from qfx.quantize import QuantizeConfig, quantize_


def _exported_codes_match(q: nn.Module, x: torch.Tensor, path) -> int:
    """Export ``q`` (the export checks qonnx == PyTorch), import it, and compare the IR's codes; returns how many
    codes were compared."""
    q.eval()
    graph = from_qonnx(qfx.export_qonnx(q, x, path))
    with torch.no_grad():
        want = qfx.codes(q(x), graph.fmt(graph.outputs[0])).numpy()
    got = graph.run(host.pre(graph.host_pre, x.numpy()))  # a transposed input: the host's step first
    assert np.array_equal(got.reshape(want.shape), want), f"{int(np.sum(got.reshape(want.shape) != want))} mismatches"
    return want.size


def _train_step(q: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """One SGD step on a fixed random target; the loss before and after."""
    q.train()
    target = torch.rand_like(q(x).detach().float())
    opt = torch.optim.SGD([p for p in q.parameters() if p.requires_grad], lr=0.05)

    def loss() -> torch.Tensor:
        return nn.functional.mse_loss(q(x).float(), target)

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss().item()
    return before.item(), after


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_through_quantize_export_and_ir(name: str, tmp_path, summary) -> None:
    model = build(name)
    x = example_input(name, batch=4)
    calibration = [example_input(name, batch=8, seed=s) for s in (2, 3)]
    compared = 0
    q = quantize_(model, QuantizeConfig(mode="ptq"), calibration)
    compared += _exported_codes_match(q, x, tmp_path / "ptq.onnx")
    q = quantize_(model, QuantizeConfig(mode="qat"), calibration)
    before, after = _train_step(q, x)
    assert np.isfinite(after) and after != before, f"QAT step did not change the loss ({before} -> {after})"
    compared += _exported_codes_match(q, x, tmp_path / "qat.onnx")
    summary(f"zoo {name}: PyTorch = qonnx = IR, {compared} codes (PTQ + QAT), 0 mismatches")
