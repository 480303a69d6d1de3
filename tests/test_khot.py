"""K-hot weights: NAF digits, the allowed-code tables, the nearest-value projection and the backend digit view."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import qfx
from qfx import FixedFormat
from qfx.khot import khot_codes, khot_digits, naf_digits, project_khot


def _recombine(shifts: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Integer sum of the digits, exact in int64."""
    return (signs.to(torch.int64) * (torch.ones_like(shifts) << shifts)).sum(-1)


def _check_naf_form(shifts: torch.Tensor, signs: torch.Tensor) -> None:
    """Used slots come first, most significant first, and no two nonzero digits are adjacent."""
    used = signs != 0
    assert torch.all(used[..., 1:] <= used[..., :-1]), "an unused slot precedes a used one"
    both = used[..., 1:] & used[..., :-1]
    assert torch.all((shifts[..., :-1] - shifts[..., 1:])[both] >= 2), "adjacent or unordered digits"
    assert torch.all(shifts[~used] == 0)


def _min_weight_bruteforce(limit: int, bound: int = 4096, max_exp: int = 12) -> dict[int, int]:
    """Fewest signed powers of two summing to each |c| <= limit, by breadth-first search over sums."""
    dist = np.full(2 * bound + 1, -1)
    dist[bound] = 0
    frontier, level = np.array([0]), 0
    steps = np.array([s * (1 << e) for e in range(max_exp + 1) for s in (1, -1)])
    while (dist[bound - limit : bound + limit + 1] < 0).any():
        level += 1
        nxt = (frontier[:, None] + steps[None, :]).ravel()
        nxt = np.unique(nxt[np.abs(nxt) <= bound])
        nxt = nxt[dist[nxt + bound] < 0]
        dist[nxt + bound] = level
        frontier = nxt
    return {c: int(dist[c + bound]) for c in range(-limit, limit + 1)}


# ------------------------------------------------------------------------------------------------ naf_digits
def test_naf_exhaustive_12_bits() -> None:
    codes = torch.arange(-(2**12), 2**12 + 1)
    shifts, signs = naf_digits(codes)
    assert shifts.shape == signs.shape == (codes.numel(), 7)  # ceil(14 / 2) digits for |c| <= 2**12
    assert shifts.dtype == torch.int64 and signs.dtype == torch.int8
    assert torch.equal(_recombine(shifts, signs), codes)
    _check_naf_form(shifts, signs)
    counts = (signs != 0).sum(-1)
    minimal = _min_weight_bruteforce(256)
    for c, w in minimal.items():
        assert counts[c + 2**12].item() == w, c


def test_naf_known_values() -> None:
    shifts, signs = naf_digits(torch.tensor([7, -7, 0, 12345]))
    assert shifts[0, :2].tolist() == [3, 0] and signs[0, :2].tolist() == [1, -1]  # 7 = 8 - 1
    assert signs[1, :2].tolist() == [-1, 1]
    assert signs[2].tolist() == [0] * shifts.shape[1]
    assert _recombine(shifts, signs).tolist() == [7, -7, 0, 12345]


def test_naf_shapes_and_max_digits() -> None:
    codes = torch.tensor([[1, 2], [3, -4]], dtype=torch.int32)
    shifts, signs = naf_digits(codes, max_digits=4)
    assert shifts.shape == (2, 2, 4)
    assert torch.equal(_recombine(shifts, signs), codes.long())
    assert naf_digits(torch.zeros(0, dtype=torch.int64))[0].shape == (0, 0)
    assert naf_digits(torch.zeros(3, dtype=torch.int64))[0].shape == (3, 0)
    with pytest.raises(ValueError, match=r"code 21 needs 3 nonzero NAF digits, more than max_digits=2"):
        naf_digits(torch.tensor([1, 21, 43]), max_digits=2)  # 21 = 16 + 4 + 1
    with pytest.raises(TypeError):
        naf_digits(torch.tensor([1.0]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**62) + 1, 2**62 - 1), min_size=1, max_size=20))
def test_naf_property_wide_codes(values: list[int]) -> None:
    codes = torch.tensor(values, dtype=torch.int64)
    shifts, signs = naf_digits(codes)
    assert _recombine(shifts, signs).tolist() == values
    _check_naf_form(shifts, signs)


# ------------------------------------------------------------------------------------------------ khot_codes
def _khot_bruteforce(fmt: FixedFormat, k: int) -> list[int]:
    terms = [s * (1 << e) for e in range(fmt.width + 1) for s in (1, -1)]
    sums = {sum(c) for j in range(k + 1) for c in itertools.combinations_with_replacement(terms, j)}
    return sorted(c for c in sums if fmt.min_code <= c <= fmt.max_code)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("width", range(1, 9))
def test_khot_codes_match_bruteforce(width: int, signed: bool) -> None:
    fmt = FixedFormat(width, 2, signed=signed)
    for k in (1, 2, 3):
        table = khot_codes(fmt, k)
        assert table.dtype == torch.int64
        assert table.tolist() == _khot_bruteforce(fmt, k), (str(fmt), k)


def test_khot_codes_width_16_against_naf_weight() -> None:
    for signed in (True, False):
        fmt = FixedFormat(16, 4, signed=signed)
        every = torch.arange(fmt.min_code, fmt.max_code + 1)
        weight = (naf_digits(every)[1] != 0).sum(-1)
        for k in (1, 2, 3, 4, 9):
            assert torch.equal(khot_codes(fmt, k), every[weight <= k]), (signed, k)


def test_khot_codes_width_24() -> None:
    fmt = FixedFormat(24, 8)
    table = khot_codes(fmt, 3)
    assert 10_000 < table.numel() < 20_000
    assert torch.all(table[1:] > table[:-1])
    assert table[0].item() == fmt.min_code and table[-1].item() <= fmt.max_code
    assert (naf_digits(table)[1] != 0).sum(-1).max().item() == 3
    assert khot_codes(FixedFormat(24, 0, signed=False), 4).numel() > table.numel()


def test_khot_codes_copy_and_errors() -> None:
    fmt = FixedFormat(6, 2)
    table = khot_codes(fmt, 1)
    table.fill_(0)
    assert khot_codes(fmt, 1).tolist() == [-32, -16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16]
    with pytest.raises(ValueError, match=r"k must be >= 1, not 0"):
        khot_codes(fmt, 0)
    with pytest.raises(ValueError, match=r"width <= 32"):
        khot_codes(FixedFormat(33, 2), 2)


# ------------------------------------------------------------------------------------------------ project_khot
def _nearest_bruteforce(x: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Nearest allowed value (float64, exact here), ties to the smaller magnitude; NaN stays NaN."""
    x = np.clip(x, allowed[0], allowed[-1])  # beyond the ends the nearest is the end (also for +-inf)
    dist = np.abs(x[:, None] - allowed[None, :])
    best = dist.min(axis=1, keepdims=True)
    cand = np.where(dist == best, np.abs(allowed)[None, :], np.inf)
    out = allowed[cand.argmin(axis=1)]
    return np.where(np.isnan(x), np.nan, out)


FORMATS = ["ap_fixed<6,2>", "ap_ufixed<5,1>", "ap_fixed<4,-2>", "ap_fixed<5,8>", "ap_fixed<8,3>", "ap_ufixed<7,7>"]


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("text", FORMATS)
def test_project_is_nearest_allowed_value(text: str, k: int) -> None:
    fmt = FixedFormat.parse(text)
    allowed = (khot_codes(fmt, k).double() * fmt.lsb).numpy()
    # a quarter-LSB grid (every midpoint between allowed values is on it) beyond both ends, and random values
    grid = np.arange(fmt.min_code * 4 - 12, fmt.max_code * 4 + 13) * (fmt.lsb / 4)
    rand = np.random.default_rng(0).uniform(fmt.min * 1.5 - 1, fmt.max * 1.5 + 1, 500)
    x = np.concatenate([grid, rand, [np.inf, -np.inf, 1e30, -1e30]])
    for dtype in (torch.float32, torch.float64):
        xt = torch.tensor(x, dtype=dtype)
        y = project_khot(xt, fmt, k)
        expected = _nearest_bruteforce(xt.double().numpy(), allowed)
        assert y.dtype == dtype
        assert np.array_equal(y.double().numpy(), expected), (text, k, dtype)


def test_project_float32_next_to_midpoints() -> None:
    """Inputs one float32 ulp either side of every midpoint: the float32 comparisons must be exact."""
    fmt = FixedFormat(24, 4)  # the widest format computed in float32
    allowed = khot_codes(fmt, 2).double() * fmt.lsb
    mids = ((allowed[1:] + allowed[:-1]) / 2).float()
    assert torch.equal(mids.double(), (allowed[1:] + allowed[:-1]) / 2)
    x = torch.cat([mids, torch.nextafter(mids, mids + 1), torch.nextafter(mids, mids - 1)])
    y = project_khot(x, fmt, 2)
    assert y.dtype == torch.float32
    chunks = [_nearest_bruteforce(part.double().numpy(), allowed.numpy()) for part in x.split(4096)]
    assert np.array_equal(y.double().numpy(), np.concatenate(chunks))


def test_tie_rule_toward_smaller_magnitude() -> None:
    fmt = FixedFormat.parse("ap_fixed<8,4>")  # k = 1: 0, +-2**-4 ... +-4, and -8
    x = torch.tensor([0.75, -0.75, 3.0, -3.0, 6.0, -6.0, -12.0, 0.09375, -0.09375, 2**-5, -(2**-5)])
    y = project_khot(x, fmt, 1)
    assert y.tolist() == [0.5, -0.5, 2.0, -2.0, 4.0, -4.0, -8.0, 0.0625, -0.0625, 0.0, 0.0]
    assert not torch.signbit(y).any() or torch.all(y[torch.signbit(y)] < 0)  # no -0.0


def test_saturation_nan_and_negative_zero() -> None:
    fmt = FixedFormat.parse("ap_fixed<6,2>")
    y = project_khot(torch.tensor([100.0, -100.0, math.inf, -math.inf, math.nan, -0.0, -1e-9]), fmt, 2)
    top = khot_codes(fmt, 2)[-1].item() * fmt.lsb
    assert y[:4].tolist() == [top, fmt.min, top, fmt.min]
    assert math.isnan(y[4].item())
    assert y[5:].tolist() == [0.0, 0.0] and not torch.signbit(y[5:]).any()


@pytest.mark.parametrize(
    ("text", "dtype"),
    [
        ("ap_fixed<8,2>", torch.float32),
        ("ap_fixed<8,2>", torch.float64),
        ("ap_fixed<8,2>", torch.float16),
        ("ap_fixed<24,4>", torch.float32),
        ("ap_fixed<30,4>", torch.float32),
        ("ap_ufixed<32,40>", torch.float32),
    ],
)
def test_dtype_rules(text: str, dtype: torch.dtype) -> None:
    fmt = FixedFormat.parse(text)
    x = torch.randn(50, generator=torch.Generator().manual_seed(1)).to(dtype) * fmt.max / 2
    y = project_khot(x, fmt, 2)
    assert y.dtype == qfx.result_dtype(fmt, dtype)
    khot_digits(y, fmt, 2)  # exactly representable K-hot values


def test_straight_through_gradient() -> None:
    fmt = FixedFormat.parse("ap_fixed<6,2>")  # range -2 .. 1.9375
    x = torch.tensor([-3.0, -2.0, -0.3, 0.7, 1.9375, 1.95, 5.0], requires_grad=True)
    (project_khot(x, fmt, 1) * torch.arange(1.0, 8.0)).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0]
    xd = torch.randn(5, dtype=torch.float64, requires_grad=True)
    project_khot(xd, FixedFormat(30, 2), 2).sum().backward()
    assert xd.grad.dtype == torch.float64


def test_torch_compile_matches_eager() -> None:
    fmt = FixedFormat.parse("ap_fixed<8,2>")
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(2)) * 1.5
    compiled = torch.compile(lambda t: project_khot(t, fmt, 2), fullgraph=True)
    xc, xe = x.clone().requires_grad_(), x.clone().requires_grad_()
    yc, ye = compiled(xc), project_khot(xe, fmt, 2)
    assert torch.equal(yc, ye)
    (yc * x).sum().backward()
    (ye * x).sum().backward()
    assert torch.equal(xc.grad, xe.grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    fmt = FixedFormat.parse("ap_fixed<10,3>")
    x = torch.randn(1000, generator=torch.Generator().manual_seed(3)) * 3
    assert torch.equal(project_khot(x.cuda(), fmt, 2).cpu(), project_khot(x, fmt, 2))


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 12),
    int_bits=st.integers(-6, 16),
    signed=st.booleans(),
    k=st.integers(1, 4),
    values=st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=1, max_size=30),
)
def test_project_property(width: int, int_bits: int, signed: bool, k: int, values: list[float]) -> None:
    fmt = FixedFormat(width, int_bits, signed=signed)
    x = torch.tensor(values, dtype=torch.float32)
    y = project_khot(x, fmt, k)
    allowed = (khot_codes(fmt, k).double() * fmt.lsb).numpy()
    assert np.array_equal(y.double().numpy(), _nearest_bruteforce(x.double().numpy(), allowed))
    naf_digits(qfx.codes(y, fmt), max_digits=k)


# ------------------------------------------------------------------------------------------------ khot_digits
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize(
    "text", ["ap_fixed<8,2>", "ap_ufixed<6,3>", "ap_fixed<6,-3>", "ap_fixed<5,9>", "ap_fixed<16,4>", "ap_fixed<32,8>"]
)
def test_khot_digits_round_trip(text: str, k: int) -> None:
    fmt = FixedFormat.parse(text)
    x = torch.randn(7, 9, generator=torch.Generator().manual_seed(k), dtype=torch.float64) * fmt.max
    y = project_khot(x, fmt, k)
    shifts, signs = khot_digits(y, fmt, k)
    assert shifts.shape == signs.shape == (7, 9, k)
    assert torch.equal((signs.double() * torch.pow(2.0, shifts.double())).sum(-1), y.double())
    naf_shifts, naf_signs = naf_digits(qfx.codes(y, fmt), max_digits=k)
    assert torch.equal(naf_signs, signs)
    assert torch.equal(torch.where(naf_signs != 0, naf_shifts - fmt.frac_bits, 0), shifts)


def test_khot_digits_errors() -> None:
    fmt = FixedFormat.parse("ap_fixed<8,2>")  # LSB 2**-6
    with pytest.raises(ValueError, match=r"value 0\.3 is not a value of ap_fixed<8,2>"):
        khot_digits(torch.tensor([0.5, 0.3, 0.7], dtype=torch.float64), fmt, 2)
    with pytest.raises(ValueError, match=r"value 5\.0 is not a value"):
        khot_digits(torch.tensor([5.0]), fmt, 2)
    with pytest.raises(ValueError, match=r"value nan is not a value"):
        khot_digits(torch.tensor([math.nan]), fmt, 2)
    with pytest.raises(ValueError, match=r"value 0\.34375 of ap_fixed<8,2> needs 3 nonzero digits, more than k=2"):
        khot_digits(torch.tensor([0.25, 0.34375]), fmt, 2)  # code 22 = 32 - 8 - 2


# ------------------------------------------------------------------------------------------------ the test
def test_khot_layer_weights_are_sums_of_k_digits() -> None:
    """Every weight of a K-hot layer has <= K nonzero CSD digits and equals the sum of its digits exactly."""
    fmt, k = FixedFormat.parse("ap_fixed<8,2>"), 2
    w = torch.randn(32, 64, generator=torch.Generator().manual_seed(0)) * 0.5
    wq = project_khot(w, fmt, k)
    shifts, signs = khot_digits(wq, fmt, k)
    assert shifts.shape == (32, 64, k)
    assert torch.all((signs != 0).sum(-1) <= k)
    assert torch.equal((signs.float() * torch.pow(2.0, shifts.float())).sum(-1), wq)
    _, naf_signs = naf_digits(qfx.codes(wq, fmt))
    assert naf_signs.shape[-1] <= k
