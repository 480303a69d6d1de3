"""The fast paths of issue 17: the fused native cast against the tensor-op kernel (forward bits, gradients, per
channel), and the per-layer MAC plans (float32, weight limbs, float64) at their worst-case sums."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import qfx
from qfx import native
from qfx.format import FixedFormat, Overflow, Quant
from qfx.nn import FixedQuantizer, QConv2d, QLinear
from qfx.nn.mac import plan_mac

needs_native = pytest.mark.skipif(not native.available(), reason="no C++ compiler: the fused kernel is not built")


def _run(q: FixedQuantizer, x: torch.Tensor, fused: bool):
    x = x.clone().requires_grad_(True)
    for p in (q.frac_bits, q.width):
        p.grad = None
    with native.enabled(fused):
        y = q(x)
        (y * torch.linspace(-1, 2, y.numel()).reshape(y.shape)).sum().backward()
    grads = [p.grad.clone() if p.grad is not None else None for p in (q.frac_bits, q.width)]
    return y.detach(), x.grad, grads


@needs_native
@pytest.mark.parametrize("quant", list(Quant))
@pytest.mark.parametrize(("overflow", "sat_bits"), [(o, 0) for o in Overflow] + [(Overflow.WRAP_SM, 2)])
@pytest.mark.parametrize("channels", [None, 5])
def test_fused_learned_cast_equals_tensor_ops(quant: Quant, overflow: Overflow, sat_bits: int, channels) -> None:
    torch.manual_seed(1)
    fmt = FixedFormat(6, 2, True, quant, overflow, sat_bits)
    q = FixedQuantizer(fmt, learn_width=True, channels=channels, channel_axis=1)
    if channels:
        with torch.no_grad():
            q.frac_bits.copy_(torch.tensor([4.0, 3.0, 5.2, 1.0, 2.6]))
    x = torch.randn(7, 5, 3, 4) * 6
    x[0, 0, 0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    y_f, gx_f, g_f = _run(q, x, True)
    y_t, gx_t, g_t = _run(q, x, False)
    assert torch.equal(torch.isnan(y_f), torch.isnan(y_t))
    assert torch.equal(torch.nan_to_num(y_f), torch.nan_to_num(y_t))
    assert torch.equal(torch.nan_to_num(gx_f), torch.nan_to_num(gx_t))
    finite = torch.isfinite(x).all()
    for a, b in zip(g_f, g_t, strict=True):
        assert a.shape == b.shape
        if finite:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


@needs_native
def test_fused_cast_float64_to_float32_and_shapes() -> None:
    fmt = FixedFormat.parse("ap_fixed<8,3,AP_RND,AP_SAT>")
    x = torch.randn(4, 6, dtype=torch.float64).t()  # non-contiguous
    with native.enabled(True):
        a = qfx.cast(x, fmt)
    with native.enabled(False):
        b = qfx.cast(x, fmt)
    assert a.dtype == b.dtype and torch.equal(a, b)
    q = FixedQuantizer(fmt)
    with native.enabled(True):
        c = q(x)
    with native.enabled(False):
        d = q(x)
    assert torch.equal(c, d) and torch.equal(c, b)
    empty = torch.zeros(0, 3)
    assert qfx.cast(empty, fmt).shape == (0, 3) and q(empty).shape == (0, 3)


# ------------------------------------------------------------------------------------------------ MAC plans
def test_plans_follow_the_exact_bound() -> None:
    # 8-bit unsigned input, 8-bit signed weight: 255 * 128 * n <= 2**24 up to n = 514
    assert plan_mac(8, False, 8, True, 514).describe() == "float32"
    assert plan_mac(8, False, 8, True, 515).describe() == "float32 x 2 limbs"
    assert plan_mac(12, True, 12, True, 256).describe() == "float32 x 3 limbs"
    assert plan_mac(16, True, 16, True, 4096).describe() == "float64"
    with pytest.raises(ValueError, match="53 bits"):
        plan_mac(30, True, 30, True, 64)


WORST = [  # (input, weight, fan-in, plan)
    ("ap_ufixed<8,2>", "ap_fixed<8,1>", 514, "float32"),
    ("ap_ufixed<8,2>", "ap_fixed<8,1>", 600, "float32 x 2 limbs"),
    ("ap_fixed<12,3>", "ap_fixed<12,2>", 256, "float32 x 3 limbs"),
    ("ap_fixed<16,3>", "ap_fixed<16,2>", 300, "float64"),
]


@pytest.mark.parametrize(("fx", "fw", "n", "plan"), WORST)
def test_linear_worst_case_sums_are_exact(fx: str, fw: str, n: int, plan: str) -> None:
    """Every product at its largest magnitude (the sum the plan's bound is about), and random codes."""
    fmt_x, fmt_w = FixedFormat.parse(fx), FixedFormat.parse(fw)
    frac = fmt_x.frac_bits + fmt_w.frac_bits
    out = FixedFormat(53, 53 - frac)  # holds every sum: the output is the accumulator itself
    layer = QLinear(n, 4, bias=False, input=fmt_x, weight=fmt_w, output=out, learn_binary_point=False)
    assert layer.mac_plan().describe() == plan
    gen = torch.Generator().manual_seed(n)
    x_codes = torch.randint(fmt_x.min_code, fmt_x.max_code + 1, (6, n), generator=gen)
    x_codes[0] = fmt_x.max_code if not fmt_x.signed else fmt_x.min_code
    w_codes = torch.randint(fmt_w.min_code, fmt_w.max_code + 1, (4, n), generator=gen)
    w_codes[0] = fmt_w.min_code
    w_codes[1] = fmt_w.max_code
    with torch.no_grad():
        layer.weight.copy_(w_codes.double() * fmt_w.lsb)
    x = x_codes.double() * fmt_x.lsb
    y = layer(x.float() if fmt_x.width <= 24 else x)
    expected = (x_codes @ w_codes.T).double() * (fmt_x.lsb * fmt_w.lsb)
    assert torch.equal(y.double(), expected)


@pytest.mark.parametrize("n_in", [16, 64])  # 144 terms: one limb; 576: two limbs
def test_conv_gradients_equal_the_float_gradients(n_in: int) -> None:
    """Gradients are float arithmetic under the user's precision switches (as in float training): pinned to IEEE
    here, since an earlier test may leave TF32/bf16 switched on."""
    from qfx.nn.exact import exact_arithmetic

    with exact_arithmetic("cpu"):
        _check_conv_gradients(n_in)


def _check_conv_gradients(n_in: int) -> None:
    torch.manual_seed(0)
    layer = QConv2d(n_in, 8, 3, 1, 1, input="ap_ufixed<8,3>", weight="ap_fixed<8,1>", output="ap_fixed<24,12>")
    assert layer.mac_plan().limbs == (1 if n_in == 16 else 2)
    x = (torch.randint(0, 256, (2, n_in, 6, 6)).float() / 32).requires_grad_(True)
    y = layer(x)
    g = torch.randn_like(y)
    y.backward(g)
    w = layer.quantized_weight().detach().requires_grad_(True)
    x2 = x.detach().double().requires_grad_(True)
    ref = F.conv2d(x2, w.double(), layer.bias.double().detach(), 1, 1)
    mask = (ref >= -2048) & (ref < 2048)  # inside the output format: the straight-through gradient passes
    (ref * mask).backward(g.double())
    torch.testing.assert_close(x.grad.double(), x2.grad, rtol=1e-5, atol=1e-5)
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


def test_generic_operation_gradient_by_recomputation() -> None:
    """An operation that is neither a linear layer nor a plain convolution gets its gradient by autograd."""
    from qfx.nn.mac import MacPlan, exact_mac

    torch.manual_seed(0)
    x = torch.randn(3, 5, dtype=torch.float64).round().requires_grad_(True)
    w = torch.randn(4, 5, dtype=torch.float64).round().requires_grad_(True)
    module = torch.nn.Identity()
    y = exact_mac(module, lambda a, b: a @ b.T, x, w, torch.tensor(0.0), MacPlan(0, 0))
    assert y.dtype == torch.float64 and torch.equal(y, x @ w.T)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(3, 4, dtype=torch.float64) @ w.detach())
    torch.testing.assert_close(w.grad, torch.ones(3, 4, dtype=torch.float64).T @ x.detach())


# ------------------------------------------------------------------------------------------------ no host sync
def test_khot_on_device_equals_khot_of_the_format() -> None:
    from qfx.khot import project_khot

    torch.manual_seed(0)
    layer = QLinear(16, 8, input="ap_ufixed<6,2>", weight="ap_fixed<6,1,AP_RND,AP_SAT>", khot=2)
    for frac in (5.0, 3.0, 7.4):
        with torch.no_grad():
            layer.weight_quantizer.frac_bits.fill_(frac)
        q = layer.weight_quantizer
        expected = project_khot(q(layer.weight), q.format, 2)
        assert torch.equal(layer.quantized_weight(), expected.to(torch.float32))


def test_qat_step_never_reads_a_tensor_on_the_host(monkeypatch) -> None:
    """Forward and backward of QAT layers (learned binary points, K-hot) make no .item()/.tolist()/bool() calls:
    on a GPU each would wait for the device. Reads before the first step (static widths, plans) are allowed."""
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 10)
    )
    x = torch.rand(16, 1, 8, 8)
    for khot in (None, 2):
        q = qfx.quantize_(model, qfx.QuantizeConfig(mode="qat", khot=khot), x)
        q(x).sum().backward()  # first step: static formats are read once

        def refuse(*args, **kwargs):
            raise AssertionError("host synchronization in a QAT step")

        with monkeypatch.context() as m:
            for name in ("item", "tolist", "__bool__", "__int__", "__float__"):
                m.setattr(torch.Tensor, name, refuse)
            for fused in (True, False):
                with native.enabled(fused):
                    q(x).sum().backward()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU: the device check runs only where one is")
@pytest.mark.parametrize("learned", [False, True])
def test_cuda_compiled_casts_equal_the_cpu_kernel(learned: bool) -> None:
    """On CUDA the fused cast is torch.compile's (inductor/Triton) fusion of the tensor-op kernel: every mode, fixed
    and learned, gives the CPU kernel's bits (which the oracle tests hold to the ap_fixed headers)."""
    x = torch.cat([torch.arange(-4096, 4097, dtype=torch.float32) / 128, torch.tensor([1e30, -1e30, 2.0**-140])])
    for quant in Quant:
        for overflow in Overflow:
            fmt = FixedFormat(7, 3, quant=quant, overflow=overflow, sat_bits=2 if overflow.wraps else 0)
            torch._dynamo.reset()  # a fresh compilation per format (not the recompile limit's eager fallback)
            if learned:
                q = FixedQuantizer(fmt)
                expected = q(x).detach()
                got = torch.compile(q.cuda(), fullgraph=True)(x.cuda()).detach().cpu()
            else:
                expected = qfx.cast(x, fmt)
                got = torch.compile(lambda t, f=fmt: qfx.cast(t, f), fullgraph=True)(x.cuda()).cpu()
            assert torch.equal(got, expected), str(fmt)


def test_without_a_compiler_the_tensor_op_kernel_runs(tmp_path, monkeypatch) -> None:
    """No C++ compiler (or a failed build): a warning, then every cast runs the tensor-op kernel, same bits."""
    fmt = FixedFormat.parse("ap_fixed<8,3,AP_RND,AP_SAT>")
    x = torch.randn(1000) * 8
    expected = qfx.cast(x, fmt)
    monkeypatch.setenv("QFX_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_failed", None)
    with pytest.warns(UserWarning, match="fused CPU cast kernel unavailable"):
        assert native.library() is None
    assert not native.available() and not native.usable(x)
    assert torch.equal(qfx.cast(x, fmt), expected)
    q = FixedQuantizer(fmt)
    y = q(x.requires_grad_(True))
    y.sum().backward()
    assert x.grad is not None and q.frac_bits.grad is not None
