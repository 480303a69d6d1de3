"""FixedFormat: construction, validation, properties and the C++ type round trip."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qfx import FixedFormat, Overflow, Quant


@st.composite
def formats(draw) -> FixedFormat:
    width = draw(st.integers(1, 64))
    signed = draw(st.booleans())
    overflows = list(Overflow) if signed else [o for o in Overflow if o is not Overflow.WRAP_SM]
    overflow = draw(st.sampled_from(overflows))
    sat_bits = draw(st.integers(0, width)) if overflow.wraps else 0
    return FixedFormat(
        width, draw(st.integers(-40, 80)), signed, draw(st.sampled_from(list(Quant))), overflow, sat_bits
    )


@given(formats())
def test_cpp_type_round_trips(fmt: FixedFormat) -> None:
    assert FixedFormat.parse(str(fmt)) == fmt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ap_fixed<8,3>", FixedFormat(8, 3)),
        ("ap_ufixed<6,2>", FixedFormat(6, 2, signed=False)),
        ("ap_fixed<8,3,AP_RND,AP_SAT>", FixedFormat(8, 3, quant=Quant.RND, overflow=Overflow.SAT)),
        ("ap_fixed< 8 , -2 , AP_RND_CONV >", FixedFormat(8, -2, quant=Quant.RND_CONV)),
        ("ap_fixed<8,3,AP_TRN,AP_WRAP,2>", FixedFormat(8, 3, sat_bits=2)),
        ("ap_int<8>", FixedFormat(8, 8)),
        ("ap_uint<4>", FixedFormat(4, 4, signed=False)),
    ],
)
def test_parse(text: str, expected: FixedFormat) -> None:
    assert FixedFormat.parse(text) == expected


def test_str_omits_trailing_defaults_only() -> None:
    assert str(FixedFormat(8, 3)) == "ap_fixed<8,3>"
    assert str(FixedFormat(8, 3, quant=Quant.RND)) == "ap_fixed<8,3,AP_RND>"
    assert str(FixedFormat(8, 3, overflow=Overflow.SAT)) == "ap_fixed<8,3,AP_TRN,AP_SAT>"
    assert str(FixedFormat(6, 2, signed=False, sat_bits=1)) == "ap_ufixed<6,2,AP_TRN,AP_WRAP,1>"


def test_properties() -> None:
    f = FixedFormat.parse("ap_fixed<8,3>")
    assert (f.frac_bits, f.lsb, f.min, f.max) == (5, 2**-5, -4.0, 4.0 - 2**-5)
    assert (f.min_code, f.max_code) == (-128, 127)
    u = FixedFormat.parse("ap_ufixed<6,2>")
    assert (u.frac_bits, u.lsb, u.min, u.max) == (4, 0.0625, 0.0, 4.0 - 0.0625)
    n = FixedFormat(4, -2)  # the LSB weighs 2**-6; values in [-1/8, 1/8)
    assert (n.frac_bits, n.min, n.max) == (6, -0.125, 0.125 - 2**-6)
    big = FixedFormat(4, 10, signed=False)  # LSB 64
    assert (big.frac_bits, big.lsb, big.max) == (-6, 64.0, 15 * 64.0)


def test_modes_accept_names() -> None:
    f = FixedFormat(8, 3, quant="RND", overflow="AP_SAT_SYM")
    assert (f.quant, f.overflow) == (Quant.RND, Overflow.SAT_SYM)


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FixedFormat(8, 3).width = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0, "int_bits": 0}, "width must be between 1 and 1024, not 0"),
        ({"width": -3, "int_bits": 0}, "width must be between 1 and 1024, not -3"),
        ({"width": 2000, "int_bits": 0}, "width must be between 1 and 1024, not 2000"),
        ({"width": 8.0, "int_bits": 3}, "width must be an integer, not 8.0"),
        ({"width": True, "int_bits": 3}, "width must be an integer, not True"),
        ({"width": 8, "int_bits": "3"}, "int_bits must be an integer, not '3'"),
        ({"width": 8, "int_bits": 3, "sat_bits": 9}, r"sat_bits must be between 0 and width \(8\), not 9"),
        ({"width": 8, "int_bits": 3, "sat_bits": -1}, r"sat_bits must be between 0 and width \(8\), not -1"),
        ({"width": 8, "int_bits": 3, "overflow": "SAT", "sat_bits": 2}, "sat_bits applies to AP_WRAP"),
        ({"width": 8, "int_bits": 3, "signed": False, "overflow": "WRAP_SM"}, "AP_WRAP_SM needs a signed format"),
        ({"width": 8, "int_bits": 3, "quant": "AP_ROUND"}, "quant must be one of AP_TRN, .* not 'AP_ROUND'"),
        ({"width": 8, "int_bits": 3, "overflow": "CLAMP"}, "overflow must be one of AP_SAT, .* not 'CLAMP'"),
        ({"width": 8, "int_bits": 3, "signed": 1}, "signed must be True or False, not 1"),
    ],
)
def test_invalid_formats_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FixedFormat(**kwargs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ap_fixed<8>", "takes 2 to 5 arguments"),
        ("ap_fixed<8,3,AP_RND,AP_SAT,0,1>", "takes 2 to 5 arguments"),
        ("ap_fixed<8,3,AP_FOO>", "quant must be one of .* not 'AP_FOO'"),
        ("ap_fixed<8,3,AP_RND,AP_BAR>", "overflow must be one of .* not 'AP_BAR'"),
        ("ap_fixed<x,3>", "width must be an integer, not 'x'"),
        ("ap_fixed<0,0>", "width must be between 1 and 1024, not 0"),
        ("ap_ufixed<8,3,AP_TRN,AP_WRAP_SM>", "AP_WRAP_SM needs a signed format"),
        ("float", "cannot parse 'float' as a fixed-point type"),
        ("ap_int<8,3>", "ap_int takes exactly one argument"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FixedFormat.parse(text)
