"""Every new op of issue 12 through quantize_ (PTQ and QAT) -> export_qonnx (qonnx's execution checked bit for bit
inside) -> qfx.ir.from_qonnx -> the IR interpreter, which must give the PyTorch model's codes; and the errors that
quantize_ raises for what it cannot make fixed point."""

from __future__ import annotations

import operator

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

import qfx
from qfx.ir import from_qonnx
from qfx.quantize import QuantizeConfig, QuantizeError, quantize_
from qfx.tables import BOUNDED, TableError, function_range

FAST = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def roundtrip(model: nn.Module, x: torch.Tensor, path, **config) -> nn.Module:
    """Quantize, export (qonnx == PyTorch checked by the export), import, and compare the IR's codes with PyTorch's,
    in PTQ and QAT mode; returns the PTQ model."""
    models = []
    for mode in ("ptq", "qat"):
        q = quantize_(model, QuantizeConfig(mode=mode, **config), x).eval()
        onnx_path = qfx.export_qonnx(q, x, path / f"{mode}.onnx")
        graph = from_qonnx(onnx_path)
        with torch.no_grad():
            want = qfx.codes(q(x), graph.fmt(graph.outputs[0])).numpy()
        got = graph.run(x.numpy())
        assert got.shape == want.shape or got.size == want.size
        assert np.array_equal(got.reshape(want.shape), want), f"{mode}: IR != PyTorch"
        models.append(q)
    return models[0]


class Seq(nn.Module):
    """A layer in front (so the op's input has a trained-like format), the op under test, a layer behind."""

    def __init__(self, op, features: int = 6, out: int = 4) -> None:
        super().__init__()
        self.fc1, self.op, self.fc2 = nn.Linear(5, features), op, nn.Linear(features, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.op(self.fc1(x)))


class Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _x(*shape: int, seed: int = 0, scale: float = 2.0) -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * scale


# ------------------------------------------------------------------------------------------------ activations
@pytest.mark.parametrize(
    "op",
    [
        nn.ReLU6(), nn.Hardtanh(), nn.Hardtanh(-0.5, 0.75), nn.Hardtanh(0.0, 2.0), nn.LeakyReLU(), nn.LeakyReLU(0.2),
        nn.Sigmoid(), nn.Tanh(), nn.Dropout(0.3), nn.Identity(),
    ],
    ids=lambda m: repr(m),
)  # fmt: skip
def test_activation_modules(op: nn.Module, tmp_path) -> None:
    torch.manual_seed(0)
    roundtrip(Seq(op), _x(16, 5), tmp_path)


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 3), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.fc1(x) * 4, inplace=True)
        x = F.hardtanh(self.fc2(F.dropout(x, 0.5, self.training)), -1.5, 1.5)
        x = F.leaky_relu(x, 0.1) + torch.tanh(x)
        x = torch.sigmoid(self.fc3(x.relu())) + F.sigmoid(self.fc4(x))
        return x.tanh()


def test_functional_activations(tmp_path) -> None:
    torch.manual_seed(1)
    roundtrip(Functional(), _x(16, 5), tmp_path)


@FAST
@given(slope=st.floats(0.001, 0.9), width=st.integers(3, 10), seed=st.integers(0, 99))
def test_leaky_relu_slope_is_an_exact_constant(slope: float, width: int, seed: int, tmp_path_factory) -> None:
    torch.manual_seed(seed)
    q = roundtrip(Seq(nn.LeakyReLU(slope)), _x(16, 5, seed=seed), tmp_path_factory.mktemp("l"), weight_width=width)
    leaky = q.op
    assert leaky.alpha == leaky.alpha_code * 2.0**-leaky.slope_format.frac_bits
    assert leaky.slope_format.width == width and abs(leaky.alpha - slope) <= 2.0**-leaky.slope_format.frac_bits


@FAST
@given(width=st.integers(3, 12), function=st.sampled_from(["sigmoid", "tanh"]), seed=st.integers(0, 99))
def test_tables_follow_the_input_format(width: int, function: str, seed: int, tmp_path_factory) -> None:
    torch.manual_seed(seed)
    op = nn.Sigmoid() if function == "sigmoid" else nn.Tanh()
    x = _x(32, 5, seed=seed, scale=4.0)
    q = roundtrip(Seq(op), x, tmp_path_factory.mktemp("t"), activation_width=width)
    table = q.op
    assert table.output_quantizer.format.width == width
    # QAT: the producer's binary point moves, the table follows it (no stale table)
    q.fc1.output_quantizer.frac_bits.data += 1
    with torch.no_grad():
        y = table(q.fc1(q.qfx_input(x)))
    assert len(table._tables) == 2 and torch.equal(y, table(q.fc1(q.qfx_input(x))))


def test_table_gradient_is_the_float_functions() -> None:
    torch.manual_seed(0)
    q = quantize_(Seq(nn.Sigmoid()), QuantizeConfig(), _x(8, 5)).train()
    x = q.fc1(q.qfx_input(_x(8, 5))).detach().requires_grad_(True)
    q.op(x).sum().backward()
    assert torch.allclose(x.grad, torch.sigmoid(x) * (1 - torch.sigmoid(x)))


TABLE_MODULES = [
    nn.Hardsigmoid(), nn.Hardswish(), nn.SiLU(), nn.Mish(), nn.ELU(), nn.GELU(), nn.GELU(approximate="tanh"),
    nn.Softplus(),
]  # fmt: skip


@pytest.mark.parametrize("op", TABLE_MODULES, ids=lambda m: repr(m))
def test_table_modules(op: nn.Module, tmp_path) -> None:
    """Each function as a table: PyTorch = qonnx = IR; its output format holds the function over the whole input
    format (no entry saturates), and training passes the float function's gradient."""
    torch.manual_seed(0)
    q = roundtrip(Seq(op), _x(32, 5, scale=4.0), tmp_path)
    _, in_fmt, out_fmt = q.op.table()
    lo, hi = function_range(q.op.function, in_fmt)
    assert out_fmt.signed == (lo < 0)
    if q.op.function not in BOUNDED:  # the whole range, to within rounding
        assert out_fmt.min_code * out_fmt.lsb - out_fmt.lsb <= lo and hi <= out_fmt.max_code * out_fmt.lsb + out_fmt.lsb
    x = q.fc1(q.qfx_input(_x(8, 5))).detach().requires_grad_(True)
    q.train().op(x).sum().backward()
    ref = x.detach().clone().requires_grad_(True)
    op(ref).sum().backward()
    assert torch.allclose(x.grad, ref.grad)


class MoreFunctional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        x = F.hardswish(x) + F.silu(x * 0.5)
        x = torch.clamp(F.gelu(x, approximate="tanh"), -1.0, 2.0) + x.clamp(min=0.25) + torch.clip(F.elu(x), max=1)
        x = self.fc2(x.unsqueeze(1).squeeze(1)) + torch.reshape(F.softplus(x), (-1, 8))
        return F.hardsigmoid(self.fc3(F.mish(x)))


def test_more_functional_tables_clamps_and_reshapes(tmp_path) -> None:
    torch.manual_seed(2)
    roundtrip(MoreFunctional(), _x(16, 5), tmp_path)


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda x: F.elu(x, alpha=0.5), r"call torch\.nn\.functional\.elu at .*ELU with alpha=0\.5 has no table"),
        (lambda x: F.softplus(x, beta=2), r"softplus with beta=2, threshold=20\.0 has no table"),
        (lambda x: torch.clamp(x, x * 0.5), r"call torch\.clamp at .*the bounds must be numbers"),
        (lambda x: x.clamp(min=1000.0), r"call Tensor\.clamp at .*leaves no range"),
        (lambda x: sum(x.chunk(2, dim=1)), r"forward of Sequential cannot be traced by torch\.fx: .*no loop over"),
    ],
)
def test_table_and_clamp_errors(fn, message: str) -> None:
    model = nn.Sequential(nn.Linear(4, 4), Fn(fn))
    with pytest.raises(QuantizeError, match=message):
        quantize_(model, QuantizeConfig(), torch.rand(2, 4))
    with pytest.raises(QuantizeError, match=r"module 1 \(ELU\).*alpha=2\.0 has no table"):
        quantize_(nn.Sequential(nn.Linear(4, 4), nn.ELU(2.0)), QuantizeConfig(), torch.rand(2, 4))


def test_hardswish_table_in_rtl_equals_the_ir(tmp_path) -> None:
    """A new table function needs nothing new downstream: the table is data (Lookup), simulated here in Icarus."""
    import shutil

    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not found: install Icarus Verilog (apt install iverilog)")
    import qfx.rtl

    torch.manual_seed(3)
    x = _x(24, 5, scale=4.0)
    q = quantize_(Seq(nn.Hardswish()), QuantizeConfig(), x).eval()
    graph = from_qonnx(qfx.export_qonnx(q, x, tmp_path / "h.onnx"))
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl")
    got = qfx.rtl.simulate(rtl, x.numpy().astype(np.float64), simulator="icarus").codes
    want = np.asarray(graph.run(x.numpy()), dtype=np.int64)
    assert np.array_equal(np.asarray(got, dtype=np.int64).reshape(want.shape), want)


class PReLUNet(nn.Module):
    """PReLU per channel after a 2-D and a 1-D convolution (slopes of both signs, one above 1), one slope after a
    linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act = nn.Conv2d(2, 4, 3), nn.PReLU(4)
        self.conv1d, self.act1d = nn.Conv1d(4, 3, 2), nn.PReLU(3)
        self.fc, self.act_fc, self.out = nn.Linear(9, 6), nn.PReLU(), nn.Linear(6, 3)
        with torch.no_grad():
            self.act.weight.copy_(torch.tensor([0.25, -0.5, 1.5, 0.1]))
            self.act1d.weight.copy_(torch.tensor([0.3, 0.05, -0.2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(x))  # (N, 4, 4, 4)
        y = self.act1d(self.conv1d(y.mean(3)))  # (N, 3, 3): a mean over the columns only
        return self.out(self.act_fc(self.fc(y.flatten(1))))


def test_prelu_per_channel_and_shared(tmp_path) -> None:
    torch.manual_seed(7)
    x = _x(16, 2, 6, 6, scale=2.0)
    q = roundtrip(PReLUNet(), x, tmp_path)
    slopes = {name: m.slopes() for name, m in q.named_modules() if isinstance(m, qfx.nn.QPReLU)}
    assert len(slopes) == 3 and slopes["act"].detach().tolist()[1:3] == [-0.5, 1.5]


def test_prelu_slopes_train_in_qat() -> None:
    torch.manual_seed(1)
    q = quantize_(Seq(nn.PReLU(6)), QuantizeConfig(mode="qat"), _x(32, 5)).train()
    prelu = next(m for m in q.modules() if isinstance(m, qfx.nn.QPReLU))
    before = prelu.slopes().clone()
    opt = torch.optim.SGD(q.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        q(_x(32, 5, scale=3.0)).square().sum().backward()
        opt.step()
    assert prelu.weight.grad is not None and not torch.equal(prelu.slopes(), before)
    codes = prelu.slopes() * 2.0**prelu.slope_quantizer.format.frac_bits
    assert torch.equal(codes, codes.round())  # still codes of the slope format


def _require_icarus() -> None:
    import shutil

    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not found: install Icarus Verilog (apt install iverilog)")


def _stream_rtl_equals_ir(graph, xs: np.ndarray, out, seed: int):
    """The folded streaming Verilog of ``graph`` (planned for the Ultra96-V2) equals the IR under 30 % valid gaps
    and ready stalls (Icarus), and keeps the plan's clocks per sample (within 2 %, as issue 14 asks)."""
    import qfx.rtl
    from qfx.plan import plan

    want = np.asarray(graph.run(xs), dtype=np.int64).reshape(len(xs), -1)
    p = plan(graph, "ultra96v2", parallel=False)
    rtl = qfx.rtl.generate(graph, out, architecture="stream", plan=p)
    stressed = qfx.rtl.simulate(rtl, xs, simulator="icarus", seed=seed, valid_gaps=0.3, ready_stalls=0.3)
    assert np.array_equal(np.asarray(stressed.codes, dtype=np.int64).reshape(want.shape), want)
    free = qfx.rtl.simulate(rtl, xs, simulator="icarus")
    assert abs(free.cycles_per_sample - p.cycles) <= 0.02 * p.cycles, (free.cycles_per_sample, p.cycles)


def _quantized_graph(model: nn.Module, x: torch.Tensor, path):
    """PTQ of ``model`` on ``x``, exported (qonnx = PyTorch checked inside) and imported."""
    q = quantize_(model, QuantizeConfig(), x).eval()
    return from_qonnx(qfx.export_qonnx(q, x, path))


def test_prelu_in_the_folded_stream_rtl_keeps_the_plans_pace(tmp_path) -> None:
    """The fork of PReLU's input (relu and difference paths) meets again twice: the FIFOs the plan sizes there
    hold the faster path, so the measured clocks per sample are the plan's (Icarus)."""
    _require_icarus()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(3, 8, 5, padding=2), nn.PReLU(8), nn.MaxPool1d(2), nn.Conv1d(8, 16, 3), nn.ReLU())
    x = _x(16, 3, 32)
    graph = _quantized_graph(model, x, tmp_path / "p.onnx")
    _stream_rtl_equals_ir(graph, x[:3].numpy().astype(np.float64), tmp_path / "rtl", seed=2)


class Extrema(nn.Module):
    """|x|, element-wise maxima and minima of two branches in each spelling, and F.prelu with a module's slopes."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.fc = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, 3, padding=1), nn.Linear(48, 3)
        self.slopes = nn.Parameter(torch.tensor([0.25, -0.125, 0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(x)
        y = torch.maximum(a, b) + torch.min(a, b) + a.max(torch.relu(b)) - torch.abs(a) + b.abs()
        y = F.prelu(torch.minimum(y, a), self.slopes)
        return self.fc(y.flatten(1))


def test_abs_maximum_minimum_and_functional_prelu(tmp_path) -> None:
    torch.manual_seed(11)
    q = roundtrip(Extrema(), _x(16, 2, 4, 4), tmp_path)
    kinds = sorted(m.kind for m in q.modules() if isinstance(m, qfx.nn.QExtremum))
    assert kinds == ["max", "max", "min", "min"] and sum(isinstance(m, qfx.nn.QAbs) for m in q.modules()) == 2


@pytest.mark.parametrize(("fn", "message"), [
    (lambda a, b: torch.max(a, 1).values, r"torch.max .*not a reduction over a dim"),
    (lambda a, b: torch.maximum(a, torch.ones(1)), r"maximum or minimum of two tensors"),
    (lambda a, b: torch.minimum(a, b[:, :1]), r"indexing a tensor is not supported"),
])  # fmt: skip
def test_extrema_errors(fn, message: str) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return fn(self.a(x), self.b(x))

    with pytest.raises(QuantizeError, match=message):
        quantize_(Net(), QuantizeConfig(), _x(8, 4))


def test_abs_and_maximum_in_the_folded_stream_rtl(tmp_path) -> None:
    """The compositions (relu, differences, sums on forks) under gaps and stalls, at the plan's pace (Icarus)."""
    _require_icarus()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv1d(2, 4, 3, padding=1), nn.Conv1d(2, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.abs(torch.maximum(self.a(x), self.b(x)) - 0.5)

    torch.manual_seed(2)
    x = _x(16, 2, 12)
    graph = _quantized_graph(Net(), x, tmp_path / "m.onnx")
    _stream_rtl_equals_ir(graph, x[:3].numpy().astype(np.float64), tmp_path / "rtl", seed=5)


class SpatialCat(nn.Module):
    """Two branches of one input joined along rows, columns or a 1-D length (``dim``), then a ReLU."""

    def __init__(self, dim: int, one_d: bool = False) -> None:
        super().__init__()
        conv = nn.Conv1d if one_d else nn.Conv2d
        self.dim, self.a, self.b = dim, conv(2, 3, 3, padding=1), conv(2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.cat([self.a(x), self.b(x)], dim=self.dim))


@pytest.mark.parametrize(("dim", "one_d"), [(2, False), (-1, False), (2, True)])
def test_concatenation_along_spatial_dims_in_the_folded_stream_rtl(dim: int, one_d: bool, tmp_path) -> None:
    """torch.cat along rows, columns or a 1-D length: PyTorch = qonnx = IR = stream RTL under gaps and stalls, at
    the plan's pace (the FIFOs hold the runs the concatenation reads one input at a time; Icarus)."""
    torch.manual_seed(4)
    x = _x(16, 2, 6) if one_d else _x(16, 2, 5, 4)
    q = roundtrip(SpatialCat(dim, one_d), x, tmp_path)
    _require_icarus()
    graph = from_qonnx(qfx.export_qonnx(q, x, tmp_path / "c.onnx"))
    _stream_rtl_equals_ir(graph, x[:3].numpy().astype(np.float64), tmp_path / "rtl", seed=3)


class Gates(nn.Module):
    """Products of two tensors as models write them: a gated unit, swish and hard-swish spelled out, ``*=``."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, 1)
        self.fc = nn.Linear(3 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.a(x)) * torch.sigmoid(self.b(x))  # a gated unit
        y = y * F.relu6(y + 3) / 6  # hard swish, as MobileNetV3 code writes it
        z = self.c(x)
        z *= torch.sigmoid(z)  # swish
        return self.fc(torch.mul(y, z).flatten(1))


def test_products_of_two_tensors(tmp_path) -> None:
    torch.manual_seed(9)
    q = roundtrip(Gates(), _x(16, 2, 4, 4), tmp_path)
    assert sum(isinstance(m, qfx.nn.QMul) for m in q.modules()) == 4


def test_products_of_two_tensors_in_rtl_equal_the_ir(tmp_path) -> None:
    """The gated model as fully parallel Verilog and as folded streaming Verilog (gaps and stalls, the plan's
    pace): every code equals the IR's (Icarus)."""
    import qfx.rtl

    _require_icarus()
    torch.manual_seed(9)
    x = _x(16, 2, 4, 4)
    graph = _quantized_graph(Gates(), x, tmp_path / "g.onnx")
    xs = x[:3].numpy().astype(np.float64)
    want = np.asarray(graph.run(xs), dtype=np.int64).reshape(3, -1)
    parallel = qfx.rtl.simulate(qfx.rtl.generate(graph, tmp_path / "parallel"), xs, simulator="icarus")
    assert np.array_equal(np.asarray(parallel.codes, dtype=np.int64).reshape(want.shape), want)
    _stream_rtl_equals_ir(graph, xs, tmp_path / "stream", seed=6)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation as torchvision writes it (gate first, (N, C, 1, 1)), with ``expand_as`` and with
    ``w[:, :, None]`` (1-D)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.conv1d = nn.Conv2d(2, 4, 3, padding=1), nn.Conv1d(4, 4, 1)
        self.down, self.up = nn.Conv2d(4, 2, 1), nn.Conv2d(2, 4, 1)
        self.fc1, self.fc2, self.out = nn.Linear(4, 2), nn.Linear(2, 4), nn.Linear(4 * 4 * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))  # (N, 4, 4, 4)
        w = F.hardsigmoid(self.up(F.relu(self.down(F.adaptive_avg_pool2d(y, 1)))))
        y = w * y
        n, c = y.size(0), y.size(1)
        g = torch.sigmoid(self.fc2(F.relu(self.fc1(y.mean((2, 3)))))).view(n, c, 1, 1)
        y = y * g.expand_as(y)
        z = self.conv1d(y.mean(2))  # (N, 4, 4)
        z = z * torch.sigmoid(z.mean(-1))[:, :, None]
        return self.out(torch.cat([y.mean(3), z], 2).flatten(1))


def test_squeeze_and_excitation(tmp_path, toolchain) -> None:
    """Per-channel gates in three spellings: PyTorch = qonnx = IR, then HLS (fully parallel and streaming, g++
    C-simulation) and Verilog (fully parallel, and folded streaming under gaps and stalls at the plan's pace:
    the map waits in a FIFO for its gate, computed from the same map; Icarus) equal to the IR."""
    import qfx.hls
    import qfx.rtl
    from qfx.plan import plan

    torch.manual_seed(12)
    x = _x(16, 2, 4, 4)
    q = roundtrip(SqueezeExcite(), x, tmp_path)
    assert sum(isinstance(m, qfx.nn.QMul) for m in q.modules()) == 3
    graph = from_qonnx(qfx.export_qonnx(q, x, tmp_path / "se.onnx"))
    xs = x.numpy().astype(np.float64)
    want = np.asarray(graph.run(xs), dtype=np.int64).reshape(len(xs), -1)
    folded = plan(graph, "ultra96v2", parallel=False)
    for arch in ("parallel", "stream"):
        project = qfx.hls.generate(graph, tmp_path / f"hls_{arch}", architecture=arch, plan=folded if arch == "stream"
                                   else None)  # fmt: skip
        got = np.asarray(qfx.hls.csim(project, xs), dtype=np.int64).reshape(want.shape)
        assert np.array_equal(got, want), arch
    _require_icarus()
    rtl = qfx.rtl.simulate(qfx.rtl.generate(graph, tmp_path / "rtl"), xs[:4], simulator="icarus")
    assert np.array_equal(np.asarray(rtl.codes, dtype=np.int64).reshape(want[:4].shape), want[:4])
    _stream_rtl_equals_ir(graph, xs[:4], tmp_path / "stream", seed=8)


class LongGate(nn.Module):
    """A short 1-D map whose gate takes two dense layers: the gate comes many samples' clocks after its map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc1, self.fc2, self.out = nn.Conv1d(3, 8, 3, padding=1), nn.Linear(8, 2), nn.Linear(2, 8), \
            nn.Linear(8 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))
        b, c, _ = y.size()
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(y.mean(-1))))).view(b, c, 1)
        return self.out((y * w.expand_as(y)).flatten(1))


class InvertedResidualSE(nn.Module):
    """MobileNetV3's block: expand, depthwise, squeeze-and-excitation, project, and the residual around them all."""

    def __init__(self) -> None:
        super().__init__()
        self.expand, self.dw = nn.Conv2d(4, 8, 1), nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc1, self.fc2, self.project = nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 1), nn.Conv2d(8, 4, 1)
        self.out = nn.Linear(4 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.hardswish(self.dw(F.hardswish(self.expand(x))))
        y = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(y, 1))))) * y
        return self.out((self.project(y) + x).flatten(1))


@pytest.mark.parametrize(("model", "shape"), [(LongGate, (3, 6)), (InvertedResidualSE, (4, 4, 4))])
def test_a_gate_many_samples_behind_its_map_keeps_the_plans_pace(model, shape, tmp_path) -> None:
    """The map's FIFO holds the maps of every sample whose gate is still being computed (about twelve for the
    1-D map), and so does a residual around the gate: the folded stream design keeps the plan's pace (FIFOs of
    one or two maps stall them: 24 clocks for 8, 476 for 256 in benchmarks/bench_styles.py)."""
    _require_icarus()
    torch.manual_seed(0)
    x = _x(16, *shape)
    graph = _quantized_graph(model(), x, tmp_path / "g.onnx")
    _stream_rtl_equals_ir(graph, x[:3].numpy().astype(np.float64), tmp_path / "rtl", seed=4)


@pytest.mark.parametrize(("fn", "message"), [
    (lambda a, b: a * b[:, :1], r"indexing a tensor is not supported"),
    (lambda a, b: a.unsqueeze(2) * b.unsqueeze(1), r"only tensors of one shape, or a feature map and one value per"),
    (lambda a, b: a.unsqueeze(2).expand(8, 4, 3) + b.unsqueeze(2), r"expanding a tensor is supported only as a factor"),
    (lambda a, b: a / b, r"only division by a constant is supported \(not by a tensor\)"),
])  # fmt: skip
def test_product_errors(fn, message: str) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return fn(self.a(x), self.b(x))

    with pytest.raises(QuantizeError, match=message):
        quantize_(Net(), QuantizeConfig(), _x(8, 4))


class Constants(nn.Module):
    """Offsets and signs by constants, numbers and a per-channel buffer (input normalization as users write it)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, -0.25, 1.0]).reshape(1, 3, 1, 1))
        self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / 0.5
        x = self.conv(x)
        x = torch.relu(1.5 - x) + (-x).relu() + torch.sub(x, 0.25) + (2 + x)
        return self.fc(x.flatten(1)) - 1


class Differences(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.fc = nn.Linear(5, 6), nn.Linear(5, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), torch.relu(self.b(x))
        d = a - b
        d -= torch.sub(b, a)
        return self.fc(d.sub(b))


def test_difference_of_two_tensors(tmp_path) -> None:
    """``a - b`` of two tensors: exact in ap_fixed's signed difference type (qonnx Sub, the IR's Add with
    subtract), then the learned output format."""
    torch.manual_seed(9)
    q = roundtrip(Differences(), _x(16, 5), tmp_path)
    assert sum(isinstance(m, qfx.nn.QAdd) and m.subtract for m in q.modules()) == 4


def test_constant_offsets_and_negation(tmp_path) -> None:
    torch.manual_seed(4)
    q = roundtrip(Constants(), _x(16, 3, 4, 4), tmp_path)
    offsets = [m for m in q.modules() if isinstance(m, qfx.nn.QScale) and m.offset is not None]
    assert len(offsets) == 5 and offsets[0].offset.shape == (1, 3, 1, 1)


class TutorialLeNet(nn.Module):
    """PyTorch's 60-minute-blitz LeNet: it loops over ``x.size()[1:]`` to count the features to flatten."""

    def __init__(self, whole_size: bool = False) -> None:
        super().__init__()
        self.whole_size = whole_size
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2 = nn.Linear(16 * 5 * 5, 32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, self.num_flat_features(x))
        return self.fc2(F.relu(self.fc1(x)))

    def num_flat_features(self, x: torch.Tensor) -> int:
        size = x.size() if self.whole_size else x.size()[1:]
        n = 1
        for s in size:
            n *= s
        return n


def test_forward_may_loop_over_a_shape_without_the_batch(tmp_path) -> None:
    torch.manual_seed(5)
    q = roundtrip(TutorialLeNet(), _x(6, 1, 32, 32), tmp_path)
    assert q(_x(3, 1, 32, 32)).shape == (3, 10)  # the loop's 400 is a constant; the batch stays free
    with pytest.raises(QuantizeError, match=r"forward of TutorialLeNet cannot be traced.*holds the batch size"):
        quantize_(TutorialLeNet(whole_size=True), QuantizeConfig(), _x(6, 1, 32, 32))


class MaxPools(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.conv1d = nn.Conv2d(2, 4, 3, padding=1), nn.Conv1d(4, 4, 3, padding=1)
        self.gmp, self.fc = nn.AdaptiveMaxPool2d((2, 1)), nn.Linear(4 * 2 + 4 + 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        a = torch.flatten(self.gmp(x), 1)
        b = F.adaptive_max_pool2d(x, 1).flatten(1)
        c = F.adaptive_max_pool1d(self.conv1d(x.flatten(2)), 1).squeeze(-1)
        return self.fc(torch.cat([a, b, c], dim=1))


def test_adaptive_max_pools_are_max_pools(tmp_path) -> None:
    torch.manual_seed(6)
    q = roundtrip(MaxPools(), _x(8, 2, 4, 6), tmp_path)
    pools = [m for m in q.modules() if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d))]
    assert sorted(str(m.kernel_size) for m in pools) == ["(2, 6)", "(4, 6)", "24"]
    with pytest.raises(QuantizeError, match=r"adaptive max pooling from \(4, 6\) to \(3, 1\) has windows"):
        quantize_(nn.Sequential(nn.Conv2d(2, 2, 1), nn.AdaptiveMaxPool2d((3, 1))), QuantizeConfig(), _x(2, 2, 4, 6))


@pytest.mark.parametrize("softmax", ["argmax", "logits"])
def test_log_softmax_keeps_the_order_of_the_logits(softmax: str, tmp_path) -> None:
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.LogSoftmax(dim=1))
    (tmp_path / "m").mkdir()
    (tmp_path / "f").mkdir()
    roundtrip(model, _x(16, 5), tmp_path / "m", softmax=softmax)
    roundtrip(nn.Sequential(nn.Linear(5, 4), Fn(lambda x: F.log_softmax(x, dim=-1))), _x(16, 5), tmp_path / "f",
              softmax=softmax)  # fmt: skip
    with pytest.raises(QuantizeError, match=r"module 3 \(LogSoftmax\).*has no table.*softmax='logits'"):
        quantize_(model, QuantizeConfig(), _x(4, 5))


class ChannelsLast1d(nn.Module):
    """A 1-D CNN over (N, L, C) time series: the input is permuted to (N, C, L) first."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv, self.fc = nn.Conv1d(3, 4, 3, padding=1), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 1) if self.how == "permute" else torch.transpose(x, 1, 2)
        x = F.relu(self.conv(x))
        return self.fc(F.adaptive_max_pool1d(x, 1).squeeze(-1))


@pytest.mark.parametrize("how", ["permute", "transpose"])
def test_transposed_input_is_a_host_step_through_the_chain(how: str, tmp_path) -> None:
    """The input's transpose moves to the host (the cast commutes with it): PyTorch = qonnx = IR = RTL."""
    import shutil

    import qfx.rtl
    from qfx.ir import host
    from qfx.verify import verify_chain

    torch.manual_seed(8)
    x = _x(12, 16, 3)
    q = quantize_(ChannelsLast1d(how), QuantizeConfig(), x).eval()
    path = qfx.export_qonnx(q, x, tmp_path / "m.onnx")
    graph = from_qonnx(path)
    assert [s.op for s in graph.host_pre] == ["transpose"] and graph.tensors[graph.inputs[0]].shape == (3, 16)
    assert "x.transpose(0, 2, 1)" in host.describe(graph.host_pre)[0]
    with torch.no_grad():
        want = qfx.codes(q(x), graph.fmt(graph.outputs[0])).numpy()
    assert np.array_equal(graph.run(host.pre(graph.host_pre, x.numpy())).reshape(want.shape), want)
    rtl, simulators = None, ()
    if shutil.which("iverilog"):
        rtl, simulators = qfx.rtl.generate(graph, tmp_path / "rtl"), ("icarus",)
    report = verify_chain(path, x.numpy().astype(np.float64), model=q, rtl_dir=rtl, simulators=simulators)
    assert report.ok and len(report.links) == 3 + len(simulators), report


def test_transpose_inside_the_network_is_refused() -> None:
    class Inside(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(3, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).permute(0, 2, 1).flatten(1)

    with pytest.raises(QuantizeError, match=r"call Tensor\.permute at .*only the model's input may be transposed"):
        quantize_(Inside(), QuantizeConfig(), _x(4, 3, 5))
    with pytest.raises(QuantizeError, match=r"call Tensor\.transpose at .*moves the batch axis"):
        quantize_(Fn(lambda x: x.transpose(0, 1)), QuantizeConfig(), _x(4, 3, 5))


class Sums(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.conv1d, self.fc = nn.Conv2d(2, 3, 3), nn.Conv1d(3, 3, 1), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        a = x.sum(dim=(2, 3))
        b = torch.sum(self.conv1d(x.flatten(2)), dim=-1)
        return self.fc(torch.cat([a, b], dim=1))


def test_sums_over_the_map(tmp_path) -> None:
    """``x.sum(dims)`` over every spatial dim: the IR's global sum (no division), exact then cast."""
    torch.manual_seed(10)
    q = roundtrip(Sums(), _x(8, 2, 5, 6), tmp_path)
    assert [m.mean for m in q.modules() if isinstance(m, qfx.nn.QGlobalAvgPool)] == [False, False]
    with pytest.raises(QuantizeError, match=r"call Tensor\.sum at .*only a sum over every spatial dim"):
        quantize_(Seq(Fn(lambda x: x.sum(dim=1, keepdim=True) + x)), QuantizeConfig(), _x(4, 5))


# ------------------------------------------------------------------------------------------------ softmax
class Classifier(nn.Module):
    def __init__(self, how: str = "functional") -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 8), nn.Linear(8, 5)
        self.how, self.softmax = how, nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(F.relu(self.fc1(x)))
        if self.how == "module":
            return self.softmax(x)
        return F.softmax(x, dim=1) if self.how == "functional" else torch.softmax(x, -1)


@pytest.mark.parametrize("how", ["functional", "module", "torch"])
def test_softmax_table(how: str, tmp_path) -> None:
    torch.manual_seed(2)
    x = _x(32, 5, scale=3.0)
    q = roundtrip(Classifier(how), x, tmp_path)
    y = q(x)
    fmt = q.get_submodule(next(n for n, m in q.named_modules() if isinstance(m, qfx.nn.QSoftmax))).output_quantizer
    qfx.codes(y, fmt.format)  # fixed point, not float probabilities
    assert torch.all(y >= 0) and torch.all(y <= 1) and (y.sum(dim=1) - 1).abs().max() < 0.1


@FAST
@given(width=st.integers(4, 12), seed=st.integers(0, 99))
def test_softmax_follows_the_input_width(width: int, seed: int, tmp_path_factory) -> None:
    torch.manual_seed(seed)
    roundtrip(Classifier(), _x(16, 5, seed=seed, scale=3.0), tmp_path_factory.mktemp("s"), activation_width=width)


def test_softmax_argmax_and_logits(tmp_path) -> None:
    torch.manual_seed(3)
    x, model = _x(32, 5, scale=3.0), Classifier()
    (tmp_path / "a").mkdir()
    (tmp_path / "l").mkdir()
    q = roundtrip(model, x, tmp_path / "a", softmax="argmax")
    index = q(x)
    assert index.shape == (32,) and torch.equal(index, index.round()) and 0 <= index.min() and index.max() <= 4
    agree = (index == torch.argmax(model(x), dim=1)).float().mean().item()
    assert agree > 0.8  # the quantized logits' argmax: mostly the float model's class
    q = roundtrip(model, x, tmp_path / "l", softmax="logits")
    assert not any(isinstance(m, qfx.nn.QSoftmax) for m in q.modules()) and q(x).min() < 0


def test_softmax_gradient_is_the_float_softmaxs() -> None:
    torch.manual_seed(0)
    q = quantize_(Classifier(), QuantizeConfig(), _x(8, 5)).train()
    softmax = next(m for m in q.modules() if isinstance(m, qfx.nn.QSoftmax))
    x = q.fc2(F.relu(q.fc1(q.qfx_input(_x(8, 5))))).detach().requires_grad_(True)
    (softmax(x) * torch.arange(5.0)).sum().backward()
    ref = x.detach().requires_grad_(True)
    (torch.softmax(ref, -1) * torch.arange(5.0)).sum().backward()
    assert torch.allclose(x.grad, ref.grad)


# ------------------------------------------------------------------------------------------------ 1-D maps
class Conv1dNet(nn.Module):
    def __init__(self, kernel: int, stride: int, padding, dilation: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 8, kernel, stride, padding, dilation, groups)
        self.bn = nn.BatchNorm1d(8)
        self.dw = nn.Conv1d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.MaxPool1d(2)
        self.avg = nn.AvgPool1d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = self.dw(F.max_pool1d(x, 2, 1, 1))
        return torch.cat([self.pool(x), self.avg(x), F.avg_pool1d(x, 2)], dim=1).mean(-1)


@FAST
@given(
    kernel=st.integers(1, 4), stride=st.integers(1, 2), padding=st.sampled_from([0, 1, "same"]),
    dilation=st.integers(1, 2), groups=st.sampled_from([1, 2, 4]), width=st.sampled_from([6, 8, 12]),
)  # fmt: skip
def test_conv1d(kernel, stride, padding, dilation, groups, width, tmp_path_factory) -> None:
    if padding == "same":
        stride = 1
    torch.manual_seed(kernel * 7 + groups)
    model = Conv1dNet(kernel, stride, padding, dilation, groups)
    with torch.no_grad():
        model.bn.running_var.uniform_(0.5, 2)
    roundtrip(
        model,
        _x(4, 4, 16),
        tmp_path_factory.mktemp("c"),
        weight_width=width,
        activation_width=width,
        input_width=width,
    )  # fmt: skip  (12 bits: float64 convolutions, lowered to MatMul by execute_qonnx)


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "groups"), [(3, 2, 0, 2, 4), (4, 1, "same", 1, 2)])
def test_conv1d_gemm_path_is_exact(kernel, stride, padding, dilation, groups) -> None:
    """QConv1d's CUDA path (im2col + GEMM of the height-1 2-D convolution), checked on the CPU."""
    from qfx.nn.layers import _GemmConv2d

    g = torch.Generator().manual_seed(kernel)
    x = torch.randint(-128, 128, (2, 4, 17), generator=g).double()
    w = torch.randint(-128, 128, (8, 4 // groups, kernel), generator=g).double()
    pad = padding if isinstance(padding, str) else (0, padding)
    gemm = _GemmConv2d(torch.Size((8, 4 // groups, 1, kernel)), (1, stride), pad, (1, dilation), groups)
    got = gemm(x.unsqueeze(2), w.unsqueeze(2)).squeeze(2)
    assert torch.equal(got, F.conv1d(x, w, None, stride, padding, dilation, groups))


def test_adaptive_pools_with_exact_windows(tmp_path) -> None:
    class Pools(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(2, 4, 3)
            self.pool = nn.AdaptiveAvgPool1d(3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)  # (N, 4, 12)
            a = F.adaptive_avg_pool1d(y, 4)
            b = self.pool(y)
            c = F.adaptive_avg_pool1d(y, 1).flatten(1)
            return torch.cat([a.flatten(1), b.flatten(1), c], 1)

    roundtrip(Pools(), _x(4, 2, 14), tmp_path)


# ------------------------------------------------------------------------------------------------ 2-D maps
class Maps(nn.Module):
    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, kernel, padding="same")
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1, groups=2)
        self.up = nn.UpsamplingNearest2d(scale_factor=2) if kernel == 3 else nn.Upsample(scale_factor=2)
        self.pad = nn.ZeroPad2d((0, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))  # (N, 4, 8, 8)
        y = self.pad(F.max_pool2d(y, 2, 1))  # (N, 4, 7, 7) -> (N, 4, 8, 8)
        z = F.interpolate(F.max_pool2d(y, 2), scale_factor=2, mode="nearest")
        w = self.up(F.avg_pool2d(y, 2)) * 0.5
        y = self.conv2(torch.cat([z, w], dim=1)) + F.pad(F.avg_pool2d(y, 3, 1), (1, 1, 1, 1))
        y = F.adaptive_avg_pool2d(y, 2) + 2 * F.interpolate(F.adaptive_avg_pool2d(y, (1, 1)), size=(2, 2))
        return y.view(y.size(0), -1) / 4


@pytest.mark.parametrize("kernel", [2, 3, 4])
def test_maps_cat_upsample_pad_scale(kernel: int, tmp_path) -> None:
    torch.manual_seed(kernel)
    roundtrip(Maps(kernel), torch.rand(4, 2, 8, 8), tmp_path)


def test_mean_reshape_and_shape_plumbing(tmp_path) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4, 3)
            self.register_buffer("gain", torch.tensor([0.5, 1.0, -0.75, 2.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            n, c = y.shape[0], y.size(1) * y.dim() // 4
            y = y.mean((2, 3)).reshape(n, c) * self.gain
            return self.fc(y.view(x.size(0), -1).contiguous())

    roundtrip(Net(), torch.rand(4, 1, 6, 6), tmp_path)


def test_shape_queries_as_call_arguments(tmp_path) -> None:
    """Pools whose kernel is read off the tensor (``F.avg_pool2d(x, x.shape[2:])``, ``x.size(-1)``), as DS-CNN
    code is often written: the values calibration saw are the kernel; the queries leave no node behind."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.conv1d = nn.Conv1d(4, 4, 3)
            self.fc = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.relu(self.conv(x))  # (N, 4, 6, 6)
            a = F.avg_pool2d(y, y.shape[2:])
            b = F.max_pool2d(y, kernel_size=(y.size(2), y.size(-1)))
            z = self.conv1d(F.avg_pool2d(y, (y.size(2), 1)).squeeze(2) - y.mean(dim=2, keepdim=True).squeeze(2))
            c = F.max_pool1d(z, z.size(-1)) + a.view(a.size(0), 4, 1)
            return self.fc(torch.cat([b.flatten(1), c.flatten(1)], 1))

    q = roundtrip(Net(), torch.rand(4, 1, 8, 8), tmp_path)
    queries = [n for n in q.graph.nodes if n.target in ("size", getattr) or n.target is operator.getitem]
    assert [n.name for n in queries if any(u.target != "view" for u in n.users)] == []  # a.size(0) feeds view


def test_wide_grouped_2d_conv_runs_lowered(tmp_path) -> None:
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1, groups=6))
    roundtrip(model, torch.rand(3, 4, 7, 7), tmp_path, weight_width=12, activation_width=12, input_width=12)


def test_batchnorm1d_folds_into_linear_and_conv1d() -> None:
    from qfx.nn import fold_batchnorm

    torch.manual_seed(0)
    for layer, bn, x in (
        (nn.Linear(5, 6), nn.BatchNorm1d(6), _x(16, 5)),
        (nn.Conv1d(2, 6, 3), nn.BatchNorm1d(6), _x(16, 2, 9)),
    ):
        with torch.no_grad():
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
        q = quantize_(nn.Sequential(layer, bn), QuantizeConfig(mode="ptq", weight_width=12, bias_width=16), x).eval()
        folded = fold_batchnorm(q.get_submodule("0"), q.get_submodule("1")).eval()
        with torch.no_grad():
            err = (folded(q.qfx_input(x)) - q(x)).abs().max().item()
        assert (
            type(folded) is type(q.get_submodule("0"))
            and err <= 4 * 2.0 ** -q.get_submodule("1").output_quantizer.format.frac_bits
        )


# ------------------------------------------------------------------------------------------------ errors
class Selu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        x = F.selu(x)
        return self.fc2(x)


def test_the_float_model_is_left_untouched() -> None:
    torch.manual_seed(0)
    model = Conv1dNet(3, 1, 1, 1, 1).eval()
    model.pool.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantize_(model, QuantizeConfig(), [_x(8, 4, 16, seed=s) for s in range(3)])
    assert not model.training and model.pool.training and not model.bn.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert type(model.conv) is nn.Conv1d


def test_unsupported_call_is_named_with_its_line() -> None:
    with pytest.raises(
        QuantizeError,
        match=r"^call torch\.nn\.functional\.selu at forward line \d+ of test_frontend_ops\.py \(x = F\.selu\(x\)\): "
        r"not supported by quantize_; supported: .*torch\.nn\.functional\.relu",
    ):
        quantize_(Selu(), QuantizeConfig(), torch.rand(2, 4))


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda x: torch.exp(x), r"call torch\.exp at .*: not supported by quantize_"),
        (lambda x: x / x, r"call operator\.truediv at .*only division by a constant is supported"),
        (lambda x: x[:, 0:2], r"call operator\.getitem at .*indexing a tensor is not supported"),
        (lambda x: F.softmax(x, dim=0), r"call torch\.nn\.functional\.softmax at .*only the last dim"),
        (lambda x: torch.add(x, x, alpha=2), r"call torch\.add at .*alpha != 1 is not supported"),
        (lambda x: x.tolist(), r"call Tensor\.tolist at .*turns a tensor into a Python value"),
        (lambda x: x.reshape(len(x), -1), r"calls len\(\) on a tensor: that is its batch size.*x\.size\(0\)"),
        (lambda x: x * int(x.size(1)), r"turns a traced value into a Python number"),
    ],
)
def test_unsupported_float_operations_are_refused(fn, message: str) -> None:
    model = nn.Sequential(nn.Linear(4, 4), Fn(fn))
    with pytest.raises(QuantizeError, match=message):
        quantize_(model, QuantizeConfig(), torch.rand(2, 4))


def test_a_layer_called_twice_is_refused() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.fc(x))

    with pytest.raises(QuantizeError, match=r"module fc \(Linear\) is called 2 times in forward"):
        quantize_(Twice(), QuantizeConfig(), torch.rand(2, 4))


def test_map_errors() -> None:
    def check(fn, message: str, x=None) -> None:
        model = nn.Sequential(nn.Conv1d(2, 2, 1), Fn(fn))
        with pytest.raises(QuantizeError, match=message):
            quantize_(model, QuantizeConfig(), x if x is not None else torch.rand(2, 2, 8))

    check(lambda x: F.interpolate(x, scale_factor=1.5), r"interpolate .*is not by integer factors|not an integer")
    check(lambda x: F.interpolate(x, scale_factor=2, mode="linear"), r"mode 'linear' is not supported")
    check(lambda x: F.pad(x, (1, 1), value=1.0), r"call torch\.nn\.functional\.pad .*value 1\.0 .*only zero padding")
    check(lambda x: F.pad(x, (1, 1), mode="reflect"), r"padding mode 'reflect' is not supported")
    check(lambda x: F.adaptive_avg_pool1d(x, 3), r"adaptive average pooling from \(8,\) to \(3,\) has windows")
    check(lambda x: torch.cat([x, x], dim=0), r"concatenation along dim 0: .*not the batch")
    check(lambda x: F.max_pool1d(x, 2, ceil_mode=True), r"ceil_mode=True is not supported")
    with pytest.raises(QuantizeError, match=r"module 1 \(AdaptiveAvgPool2d\).*windows of different sizes"):
        quantize_(nn.Sequential(nn.Conv2d(1, 2, 1), nn.AdaptiveAvgPool2d(3)), QuantizeConfig(), torch.rand(2, 1, 8, 8))


def test_table_too_wide_is_refused_at_quantize_time() -> None:
    for op, what in ((nn.Sigmoid(), r"module op \(sigmoid table\)"), (nn.Softmax(dim=1), r"module op \(softmax\)")):
        with pytest.raises(TableError, match=what + r".*has 20 bits, so its table would need 2\*\*20 entries"):
            quantize_(Seq(op), QuantizeConfig(activation_width=20), _x(4, 5))
    model = nn.Sequential(nn.Linear(4, 4), Fn(torch.tanh))
    with pytest.raises(TableError, match=r"call torch\.tanh \(tanh table\) at forward line \d+ .*17 bits"):
        quantize_(model, QuantizeConfig(activation_width=17), torch.rand(2, 4))


def test_new_modules_pickle_in_checkpoints(tmp_path) -> None:
    from qfx.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    x = torch.rand(4, 2, 8, 8)
    q = quantize_(Maps(2), QuantizeConfig(), x).eval()
    q2 = quantize_(Classifier(), QuantizeConfig(), _x(4, 5)).eval()
    q3 = quantize_(Seq(nn.Sigmoid()), QuantizeConfig(), _x(4, 5)).eval()
    q4 = quantize_(Seq(nn.Hardswish()), QuantizeConfig(), _x(4, 5)).eval()
    q5 = quantize_(Constants(), QuantizeConfig(), _x(4, 3, 4, 4)).eval()  # offsets, per-channel ones too
    q6 = quantize_(ChannelsLast1d("permute"), QuantizeConfig(), _x(4, 16, 3)).eval()
    q7 = quantize_(TutorialLeNet(), QuantizeConfig(), _x(4, 1, 32, 32)).eval()
    q8 = quantize_(PReLUNet(), QuantizeConfig(), _x(4, 2, 6, 6)).eval()
    q9 = quantize_(Extrema(), QuantizeConfig(), _x(4, 2, 4, 4)).eval()
    for model, inp in ((q, x), (q2, _x(4, 5)), (q3, _x(4, 5)), (q4, _x(4, 5)), (q5, _x(4, 3, 4, 4)),
                       (q6, _x(4, 16, 3)), (q7, _x(4, 1, 32, 32)), (q8, _x(4, 2, 6, 6)),
                       (q9, _x(4, 2, 4, 4))):  # fmt: skip
        model(inp)  # fill the caches: they must not end up in the file
        save_checkpoint(tmp_path / "m.qfx", Checkpoint(model, inp))
        back = load_checkpoint(tmp_path / "m.qfx").model
        assert torch.equal(back(inp), model(inp))
        table = next((m for m in back.modules() if isinstance(m, qfx.nn.QTable)), None)
        if table is not None:  # the table still reads its producer's (reloaded) quantizer
            assert table.input_source is back.fc1.output_quantizer


def test_execute_qonnx_takes_a_path_a_proto_or_a_wrapper_and_any_batch(tmp_path) -> None:
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv1d(4, 6, 3, groups=2), nn.ReLU(), nn.Conv1d(6, 6, 3, padding="same", groups=6))
    x = _x(3, 4, 12)
    q = quantize_(model, QuantizeConfig(mode="ptq", weight_width=12, activation_width=12, input_width=12), x).eval()
    path = qfx.export_qonnx(q, x, tmp_path / "m.onnx")  # 12-bit: float64 convolutions, lowered to run
    x5 = _x(5, 4, 12, seed=9)
    with torch.no_grad():
        want = q(x5).double().numpy()
    for source in (path, str(path), onnx.load(path), ModelWrapper(str(path))):
        assert np.array_equal(qfx.execute_qonnx(source, x5.numpy()), want)


def test_lowered_graph_declares_one_type_per_matmul(tmp_path) -> None:
    """Every MatMul the lowering makes or keeps reads operands of one declared type (a lowered one whose weight
    stayed float32 made onnxruntime refuse the node, depending on which Python wrappers were reused)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from qfx.export.execute import _elem_types, lower_wide_convs

    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)
    )
    x = torch.rand(3, 2, 8, 8)
    q = quantize_(model, QuantizeConfig(mode="ptq", weight_width=12, activation_width=12, input_width=12), x).eval()
    lowered = lower_wide_convs(ModelWrapper(str(qfx.export_qonnx(q, x, tmp_path / "m.onnx"))))
    types = _elem_types(lowered)
    matmuls = [n for n in lowered.graph.node if n.op_type == "MatMul"]
    assert len(matmuls) >= 3  # two lowered convolutions and the linear layer
    for n in matmuls:
        assert types[n.input[0]] == types[n.input[1]], (n.name, n.input)
