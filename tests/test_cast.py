"""qfx.cast: hand-checked values, dtypes, special values, errors, gradients, devices and torch.compile.

The proof of exactness against the real ap_fixed headers lives in test_cast_exact.py.
"""

import math

import pytest
import torch

import qfx
from qfx import FixedFormat, Overflow, Quant

# +-1.25 with an LSB of 0.5, the table in docs/concepts.md
MODE_TABLE = {
    Quant.TRN: (1.0, -1.5),
    Quant.TRN_ZERO: (1.0, -1.0),
    Quant.RND: (1.5, -1.0),
    Quant.RND_ZERO: (1.0, -1.0),
    Quant.RND_MIN_INF: (1.0, -1.5),
    Quant.RND_INF: (1.5, -1.5),
    Quant.RND_CONV: (1.0, -1.0),
}


@pytest.mark.parametrize("quant", list(Quant))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quantization_table(quant: Quant, dtype: torch.dtype) -> None:
    y = qfx.cast(torch.tensor([1.25, -1.25], dtype=dtype), FixedFormat(4, 3, quant=quant, overflow=Overflow.SAT))
    assert tuple(y.tolist()) == MODE_TABLE[quant]
    assert y.dtype == dtype


def test_issue_example() -> None:
    y = qfx.cast(torch.tensor([1.25, -1.25]), FixedFormat.parse("ap_fixed<4,3,AP_RND,AP_SAT>"))
    assert str(y) == "tensor([ 1.5000, -1.0000])"


def test_rounding_carry_overflows() -> None:
    assert qfx.cast(torch.tensor([3.99]), "ap_fixed<8,3,AP_RND,AP_WRAP>").item() == -4.0
    assert qfx.cast(torch.tensor([3.99]), "ap_fixed<8,3,AP_RND,AP_SAT>").item() == 4.0 - 2**-5


@pytest.mark.parametrize(
    ("fmt", "values", "expected"),
    [
        # range -2 .. 1.75, LSB 0.25
        ("ap_fixed<4,2,AP_TRN,AP_SAT>", [2.5, -3.0, 1.75, -2.0], [1.75, -2.0, 1.75, -2.0]),
        ("ap_fixed<4,2,AP_TRN,AP_SAT_ZERO>", [2.5, -3.0, 1.75, -2.0], [0.0, 0.0, 1.75, -2.0]),
        ("ap_fixed<4,2,AP_TRN,AP_SAT_SYM>", [2.5, -3.0, 1.75, -2.0], [1.75, -1.75, 1.75, -1.75]),
        ("ap_fixed<4,2,AP_TRN,AP_WRAP>", [2.5, -3.0, 4.0, -2.0], [-1.5, 1.0, 0.0, -2.0]),
        ("ap_ufixed<4,2,AP_TRN,AP_WRAP>", [4.5, -0.25], [0.5, 3.75]),
        ("ap_ufixed<4,2,AP_TRN,AP_SAT>", [4.5, -0.25], [3.75, 0.0]),
    ],
)
def test_overflow_examples(fmt: str, values: list[float], expected: list[float]) -> None:
    assert qfx.cast(torch.tensor(values, dtype=torch.float64), fmt).tolist() == expected


def test_sat_sym_never_produces_the_minimum() -> None:
    fmt = FixedFormat(6, 3, overflow=Overflow.SAT_SYM)
    x = torch.linspace(-10, 10, 4001, dtype=torch.float64)
    y = qfx.cast(x, fmt)
    assert y.min().item() == -fmt.max
    assert fmt.min not in y.tolist()


def test_sat_sym_one_bit_is_sat() -> None:
    # The header saturates low to the code (min | 1); with one bit that is min itself.
    x = torch.tensor([-3.0, -0.5, 0.0, 2.0], dtype=torch.float64)
    assert qfx.cast(x, "ap_fixed<1,1,AP_TRN,AP_SAT_SYM>").tolist() == [-1.0, -1.0, 0.0, 0.0]


def test_negative_and_large_int_bits() -> None:
    # ap_fixed<4,-2>: LSB 2**-6, range [-1/8, 1/8)
    y = qfx.cast(torch.tensor([0.05, -0.2], dtype=torch.float64), "ap_fixed<4,-2,AP_RND,AP_SAT>")
    assert y.tolist() == [3 * 2**-6, -0.125]
    # ap_ufixed<4,10>: LSB 64
    y = qfx.cast(torch.tensor([100.0, 2000.0, -5.0], dtype=torch.float64), "ap_ufixed<4,10,AP_RND,AP_SAT>")
    assert y.tolist() == [128.0, 960.0, 0.0]


def test_tiny_negative_truncates_to_minus_one_lsb() -> None:
    # x * 2**F underflows to zero for F < 0; the code must still be -1 (floor of a negative value).
    for dtype in (torch.float32, torch.float64):
        tiny = torch.tensor([-torch.finfo(dtype).tiny / 4, torch.finfo(dtype).tiny / 4], dtype=dtype)
        assert qfx.cast(tiny, "ap_fixed<8,10>").tolist() == [-4.0, 0.0]


def test_output_dtype_follows_the_format() -> None:
    x32 = torch.tensor([1.0 / 3.0], dtype=torch.float32)
    assert qfx.cast(x32, "ap_fixed<24,4>").dtype == torch.float32
    assert qfx.cast(x32, "ap_fixed<25,4>").dtype == torch.float64
    assert qfx.cast(x32.double(), "ap_fixed<8,4>").dtype == torch.float64
    assert qfx.cast(x32.half(), "ap_fixed<8,4>").dtype == torch.float16
    assert qfx.cast(x32.half(), "ap_fixed<16,4>").dtype == torch.float32
    assert qfx.cast(x32.bfloat16(), "ap_fixed<8,4>").dtype == torch.bfloat16
    assert qfx.cast(x32.half(), "ap_fixed<8,-20>").dtype == torch.float32  # LSB below float16's normals
    assert qfx.result_dtype(FixedFormat(8, 200), torch.float32) == torch.float64  # values beyond float32's range
    assert qfx.result_dtype(FixedFormat(8, -130), torch.float32) == torch.float64  # LSB below float32's normals


def test_wide_formats_are_exact_in_float64() -> None:
    # 2**24 + 1 is not a float32; a 30-bit format must not lose it.
    x = torch.tensor([2.0**24 + 1.0, -(2.0**40) - 3.0], dtype=torch.float64)
    assert qfx.cast(x, "ap_fixed<48,48>").tolist() == x.tolist()
    x = torch.tensor([1.0 + 2.0**-40], dtype=torch.float32)  # float32 rounds this to 1.0 ...
    assert qfx.cast(x, "ap_fixed<48,8>").item() == 1.0  # ... and the cast sees exactly that value
    third = torch.tensor([1 / 3], dtype=torch.float64)
    y = qfx.cast(third, "ap_fixed<53,1,AP_RND_CONV>")
    assert y.item() == math.ldexp(round(math.ldexp(1 / 3, 52)), -52)


def test_float32_round_half_pitfall() -> None:
    x = torch.tensor([0.5 - 2.0**-25, 2.0**23 + 1.0], dtype=torch.float32)
    y = qfx.cast(x, "ap_fixed<25,25,AP_RND,AP_SAT>")
    assert y.tolist() == [0.0, 2.0**23 + 1.0]


@pytest.mark.parametrize("overflow", list(Overflow))
@pytest.mark.parametrize("quant", list(Quant))
def test_nan_propagates(quant: Quant, overflow: Overflow) -> None:
    fmt = FixedFormat(6, 3, quant=quant, overflow=overflow, sat_bits=2 if overflow.wraps else 0)
    y = qfx.cast(torch.tensor([float("nan"), 1.0]), fmt)
    assert math.isnan(y[0].item()) and y[1].item() == 1.0


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("ap_fixed<6,3,AP_RND,AP_SAT>", [3.875, -4.0]),
        ("ap_fixed<6,3,AP_RND,AP_SAT_SYM>", [3.875, -3.875]),
        ("ap_fixed<6,3,AP_RND,AP_SAT_ZERO>", [0.0, 0.0]),
        ("ap_fixed<6,3,AP_RND,AP_WRAP>", [0.0, 0.0]),
        ("ap_fixed<6,3,AP_RND,AP_WRAP,1>", [0.0, -4.0]),
        ("ap_ufixed<6,3,AP_RND,AP_WRAP,2>", [6.0, 6.0]),
    ],
)
def test_infinities(fmt: str, expected: list[float]) -> None:
    assert qfx.cast(torch.tensor([math.inf, -math.inf]), fmt).tolist() == expected


def test_no_negative_zero() -> None:
    y = qfx.cast(torch.tensor([-0.01, -0.0, -0.03]), "ap_fixed<8,4,AP_RND_ZERO,AP_SAT>")
    assert [math.copysign(1.0, v) for v in y.tolist()] == [1.0, 1.0, 1.0]


def test_shapes_and_non_contiguous_inputs() -> None:
    x = torch.randn(4, 6, 5, dtype=torch.float64).transpose(0, 2)[:, ::2]
    y = qfx.cast(x, "ap_fixed<8,3,AP_RND,AP_SAT>")
    assert y.shape == x.shape
    assert torch.equal(y, qfx.cast(x.contiguous(), "ap_fixed<8,3,AP_RND,AP_SAT>"))


def test_bad_inputs() -> None:
    with pytest.raises(TypeError, match="floating-point tensor"):
        qfx.cast(torch.tensor([1, 2]), "ap_fixed<8,3>")
    with pytest.raises(TypeError, match=r"needs a torch.Tensor, not list"):
        qfx.cast([1.0], "ap_fixed<8,3>")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"cast supports width <= 53 \(exact in float64\), not 64"):
        qfx.cast(torch.tensor([1.0]), "ap_fixed<64,8>")
    with pytest.raises(ValueError, match="cannot parse 'fixed8'"):
        qfx.cast(torch.tensor([1.0]), "fixed8")
    with pytest.raises(TypeError, match="FixedFormat or a C\\+\\+ type string, not int"):
        qfx.cast(torch.tensor([1.0]), 8)  # type: ignore[arg-type]


def test_codes() -> None:
    fmt = FixedFormat(8, 3)
    assert qfx.codes(torch.tensor([1.25, -4.0]), fmt).tolist() == [40, -128]
    with pytest.raises(ValueError, match="not all multiples of the LSB"):
        qfx.codes(torch.tensor([0.01]), fmt)


# ---------------------------------------------------------------------------------------------------- gradients
def test_straight_through_gradient_saturating() -> None:
    x = torch.tensor([-5.0, -4.0, -0.3, 0.0, 3.9, 3.99, 7.0], requires_grad=True)
    qfx.cast(x, "ap_fixed<8,3,AP_RND,AP_SAT>").backward(torch.arange(1.0, 8.0))
    # -4.0 and 3.99 round to codes -128 and 128; 128 is out of range, so its gradient stops
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0]


@pytest.mark.parametrize("overflow", [Overflow.WRAP, Overflow.WRAP_SM])
def test_straight_through_gradient_wrap_is_identity(overflow: Overflow) -> None:
    x = torch.tensor([-5.0, 0.3, 7.0], requires_grad=True)
    qfx.cast(x, FixedFormat(8, 3, overflow=overflow)).backward(torch.tensor([1.0, 2.0, 3.0]))
    assert x.grad.tolist() == [1.0, 2.0, 3.0]


def test_gradient_dtype_matches_input_when_promoted() -> None:
    x = torch.tensor([0.5, 200.0], dtype=torch.float32, requires_grad=True)
    y = qfx.cast(x, "ap_fixed<40,8,AP_TRN,AP_SAT>")
    assert y.dtype == torch.float64
    y.sum().backward()
    assert x.grad.dtype == torch.float32 and x.grad.tolist() == [1.0, 0.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU: the device check runs only where one is")
def test_cuda_matches_cpu() -> None:
    x = torch.arange(-4096, 4097, dtype=torch.float32) / 128
    for quant in Quant:
        for overflow in Overflow:
            fmt = FixedFormat(7, 3, quant=quant, overflow=overflow, sat_bits=2 if overflow.wraps else 0)
            assert torch.equal(qfx.cast(x.cuda(), fmt).cpu(), qfx.cast(x, fmt)), str(fmt)
            assert torch.equal(qfx.cast(x.double().cuda(), fmt).cpu(), qfx.cast(x.double(), fmt)), str(fmt)


def test_torch_compile_matches_eager() -> None:
    x = torch.linspace(-12, 12, 9601, dtype=torch.float32)
    formats = [FixedFormat(8, 3, quant=Quant.RND, overflow=Overflow.SAT), FixedFormat(7, 2, overflow=Overflow.WRAP_SM)]
    for fmt in formats:
        compiled = torch.compile(lambda t, f=fmt: qfx.cast(t, f), fullgraph=True)
        assert torch.equal(compiled(x), qfx.cast(x, fmt)), str(fmt)
