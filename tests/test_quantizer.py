"""FixedQuantizer and fixed_quantize: learned binary points and widths."""

import math

import pytest
import torch

import qfx
from qfx import FixedFormat, Overflow, Quant
from qfx.nn import FixedQuantizer


def _fit(q: FixedQuantizer, x: torch.Tensor, steps: int = 150, lr: float = 0.1) -> None:
    opt = torch.optim.Adam(q.parameters(), lr=lr)
    for _ in range(steps):
        loss = ((q(x) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_overflowing_tensor_gains_integer_bits() -> None:
    torch.manual_seed(0)
    x = torch.randn(4096) * 20  # |x| up to ~80: needs 8 integer bits
    q = FixedQuantizer("ap_fixed<8,1,AP_RND,AP_SAT>")
    _fit(q, x)
    assert q.format.width == 8
    assert q.format.int_bits >= 7


def test_small_tensor_gains_fraction_bits() -> None:
    torch.manual_seed(0)
    x = torch.randn(4096) * 0.05  # |x| < 0.25: 8 integer bits waste precision
    q = FixedQuantizer("ap_fixed<8,8,AP_RND,AP_SAT>")
    _fit(q, x, steps=300)
    assert q.format.int_bits <= 2


def test_per_channel_formats_follow_each_channel() -> None:
    torch.manual_seed(0)
    w = torch.randn(3, 256) * torch.tensor([[0.01], [1.0], [100.0]])
    q = FixedQuantizer("ap_fixed<8,2,AP_RND_CONV,AP_SAT>", channels=3, channel_axis=0)
    opt = torch.optim.Adam(q.parameters(), lr=0.1)
    for _ in range(300):
        loss = (((q(w) - w) ** 2).sum(dim=1) / (w**2).sum(dim=1)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    int_bits = [f.int_bits for f in q.formats()]
    assert int_bits[0] < int_bits[1] < int_bits[2]
    assert int_bits[2] >= 8  # |w| up to ~300 in channel 2


def test_learned_width_grows_under_overflow() -> None:
    torch.manual_seed(0)
    x = torch.randn(4096) * 20
    q = FixedQuantizer("ap_fixed<4,2,AP_RND,AP_SAT>", learn_binary_point=False, learn_width=True, max_width=16)
    _fit(q, x)
    assert q.format.frac_bits == 2  # fixed binary point
    assert q.format.width >= 9  # range grew to hold |x| ~ 80


@pytest.mark.parametrize("overflow", list(Overflow))
@pytest.mark.parametrize("quant", [Quant.TRN, Quant.RND, Quant.RND_CONV, Quant.RND_ZERO])
def test_forward_equals_cast_with_the_current_format(quant: Quant, overflow: Overflow) -> None:
    torch.manual_seed(1)
    fmt = FixedFormat(6, 2, quant=quant, overflow=overflow, sat_bits=1 if overflow.wraps else 0)
    q = FixedQuantizer(fmt)
    with torch.no_grad():
        q.frac_bits.fill_(3.4)  # rounds to 3
    x = torch.randn(2000) * 6
    assert torch.equal(q(x), qfx.cast(x, q.format))
    assert q.format == FixedFormat(6, 3, quant=quant, overflow=overflow, sat_bits=fmt.sat_bits)


def test_per_channel_forward_equals_cast_per_channel() -> None:
    q = FixedQuantizer("ap_fixed<6,2,AP_RND,AP_SAT>", channels=3, channel_axis=1)
    with torch.no_grad():
        q.frac_bits.copy_(torch.tensor([1.0, 4.0, -2.0]))
    x = torch.randn(5, 3, 7, dtype=torch.float64) * 10
    y = q(x)
    for c, fmt in enumerate(q.formats()):
        assert torch.equal(y[:, c], qfx.cast(x[:, c], fmt))


def test_binary_point_gradient_formula() -> None:
    # q = s * clamp(round(x / s)), s = 2**-F: d q / d F = ln2 * (x - q) inside, -ln2 * q_sat outside.
    x = torch.tensor([0.3, -0.7, 9.0, -9.0], dtype=torch.float64)
    frac = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)  # ap_fixed<5,3>: range -4 .. 3.75
    upstream = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    y = qfx.fixed_quantize(x, frac, 5, quant=Quant.RND, overflow=Overflow.SAT)
    assert y.tolist() == [0.25, -0.75, 3.75, -4.0]
    y.backward(upstream)
    expected = math.log(2) * (1 * (0.3 - 0.25) + 2 * (-0.7 + 0.75) - 3 * 3.75 - 4 * -4.0)
    assert frac.grad.item() == pytest.approx(expected, rel=1e-12)


def test_fixed_quantizer_errors() -> None:
    with pytest.raises(ValueError, match="supports width <= 53, not 60"):
        FixedQuantizer("ap_fixed<60,4>")
    with pytest.raises(ValueError, match="channels must be >= 1, not 0"):
        FixedQuantizer("ap_fixed<8,4>", channels=0)
    with pytest.raises(ValueError, match="must contain the initial frac_bits 4"):
        FixedQuantizer("ap_fixed<8,4>", frac_bits_range=(5, 9))
    q = FixedQuantizer("ap_fixed<8,4>", channels=3, channel_axis=1)
    with pytest.raises(ValueError, match="input has 4 channels on axis 1, the quantizer 3"):
        q(torch.zeros(2, 4))


def test_repr_names_format_and_what_is_learned() -> None:
    assert "ap_fixed<8,4,AP_RND,AP_SAT>, learned: binary point" in repr(FixedQuantizer("ap_fixed<8,4,AP_RND,AP_SAT>"))


def test_torch_compile_forward_and_gradients_match_eager() -> None:
    torch.manual_seed(0)
    q = FixedQuantizer("ap_fixed<8,1,AP_RND,AP_SAT>", channels=4, channel_axis=1)
    x = torch.randn(32, 4) * 10
    compiled = torch.compile(q, fullgraph=True)
    y_compiled, y_eager = compiled(x), q(x)
    assert torch.equal(y_compiled, y_eager)
    y_compiled.sum().backward()
    grad_compiled = q.frac_bits.grad.clone()
    q.frac_bits.grad = None
    y_eager.sum().backward()
    assert torch.allclose(grad_compiled, q.frac_bits.grad)


def test_fixed_quantizer_follows_an_edit_through_data() -> None:
    """A fixed (not learned) quantizer caches its format; an in-place edit through ``.data`` (which bumps no
    version counter) must still reach its output."""
    q = FixedQuantizer("ap_fixed<6,3,AP_RND,AP_SAT>", learn_binary_point=False)
    x = torch.linspace(-5, 5, 101)
    before = q(x)
    q.frac_bits.data += 1
    after = q(x)
    assert q.format.frac_bits == 4 and not torch.equal(before, after)
    assert torch.equal(after, qfx.cast(x, q.format))
