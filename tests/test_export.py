"""QONNX export: qonnx's own executor reproduces the PyTorch model's output codes exactly."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from chain_models import MODEL_NAMES, chain_model, digits_test, output_format
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.general.intquant import int_quant
from torch import nn

from qfx import FixedFormat, Overflow, Quant, QuantizeConfig, cast, codes, quantize_
from qfx.export import ExportError, export_qonnx
from qfx.export.quant import quant_node_spec
from qfx.nn import QConv2d, QInput


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_qonnx_execution_equals_pytorch(name: str, tmp_path, summary) -> None:
    model = chain_model(name)
    x, _ = digits_test()
    path = export_qonnx(model, x, tmp_path / f"{name}.onnx")
    wrapper = ModelWrapper(str(path))
    got = execute_onnx(wrapper, {wrapper.graph.input[0].name: x.numpy()})[wrapper.graph.output[0].name]
    with torch.no_grad():
        expected = model(x)
    fmt = output_format(model)
    mismatches = int((codes(torch.from_numpy(got.astype(np.float64)), fmt) != codes(expected, fmt)).sum())
    summary(f"qonnx execute_onnx vs PyTorch, {name}: {x.shape[0]} inputs, {expected.numel()} codes, {mismatches} "
            "mismatches")  # fmt: skip
    assert mismatches == 0


def test_quant_nodes_where_they_are_exact_fixedcast_elsewhere(tmp_path) -> None:
    x, _ = digits_test()
    assert "FixedCast" in _ops(export_qonnx(chain_model("wrap"), x[:8], tmp_path / "wrap.onnx"))
    float_model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    q = quantize_(float_model, QuantizeConfig(mode="ptq", quant=Quant.RND_CONV), x)
    ops = _ops(export_qonnx(q, x[:8], tmp_path / "conv.onnx"))
    assert "Quant" in ops and "FixedCast" not in ops


@pytest.mark.parametrize("quant", list(Quant))
@pytest.mark.parametrize("overflow", [Overflow.SAT, Overflow.SAT_SYM])
@pytest.mark.parametrize("signed", [True, False])
def test_quant_node_spec_matches_qonnx_execution(quant: Quant, overflow: Overflow, signed: bool) -> None:
    """Where the export uses a Quant node, qonnx's int_quant equals qfx.cast on a fine grid of values."""
    fmt = FixedFormat(6, 2, signed, quant, overflow)
    spec = quant_node_spec(fmt)
    if spec is None:
        assert quant not in (Quant.TRN, Quant.TRN_ZERO, Quant.RND_CONV)
        return
    grid = np.arange(-300, 301, dtype=np.float64) / 32  # eighth-LSB steps across and beyond the range
    got = int_quant(grid, np.float64(fmt.lsb), np.float64(0), np.float64(6), spec["signed"], spec["narrow"],
                    spec["rounding_mode"])  # fmt: skip
    assert np.array_equal(got, cast(torch.from_numpy(grid), fmt).numpy())


def test_half_up_is_not_exact_in_qonnx() -> None:
    """Why AP_RND_INF uses FixedCast: qonnx's HALF_UP adds 0.5 in floating point, which rounds."""
    x = np.array([0.5 - 2.0**-54])
    assert int_quant(x, np.float64(1), np.float64(0), np.float64(8), 1, 0, "HALF_UP")[0] == 1.0
    assert cast(torch.from_numpy(x), FixedFormat(8, 8, True, Quant.RND_INF, Overflow.SAT)).item() == 0.0


def test_float_model_is_refused(tmp_path) -> None:
    with pytest.raises(ExportError, match=r"module 1: Linear is not a QFX layer; run qfx.quantize_"):
        export_qonnx(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), torch.zeros(2, 1, 8, 8), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_conv_wider_than_float32_exports_in_float64_and_beyond_53_bits_is_refused(tmp_path) -> None:
    model = nn.Sequential(
        QInput("ap_fixed<12,4,AP_RND,AP_SAT>"),
        QConv2d(1, 4, 3, input="ap_fixed<12,4,AP_RND,AP_SAT>", weight="ap_fixed<12,1,AP_RND,AP_SAT>"),
    )  # 28-bit sums: float64 operands, run lowered to MatMul by the export's check
    export_qonnx(model, torch.rand(2, 1, 8, 8) * 8 - 4, tmp_path / "wide.onnx")
    from qfx.export.builder import Builder, sum_type

    with pytest.raises(ExportError, match=r"module m: the sum needs 55 bits, more than float64's 53-bit"):
        sum_type(Builder(label="m"), 55, "the sum")
    assert [p.name for p in tmp_path.iterdir()] == ["wide.onnx"]
