"""QFX layers against integer references: output codes equal, for random formats, in float32 and float64 paths."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import qfx
from qfx import FixedFormat, Quant
from qfx.nn import (
    QAdd,
    QAvgPool2d,
    QBatchNorm2d,
    QConv2d,
    QGlobalAvgPool2d,
    QInput,
    QLinear,
    QMaxPool2d,
    QReLU,
    accumulator_format,
)
from qfx.nn.exact import add_format, product_format


def random_values(fmt: FixedFormat, shape: tuple[int, ...], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact values of ``fmt`` (float64) and their int64 codes, uniformly over the whole code range."""
    span = fmt.max_code - fmt.min_code + 1
    codes = torch.randint(0, span, shape, generator=gen, dtype=torch.int64) + fmt.min_code
    return codes.to(torch.float64) * fmt.lsb, codes


def cast_exact(acc_codes: torch.Tensor, frac_bits: int, out: FixedFormat) -> torch.Tensor:
    """Integer reference for the output: the exact accumulator (code, LSB) cast into ``out``; returns codes."""
    assert acc_codes.abs().max().item() < 2**53
    value = acc_codes.to(torch.float64) * 2.0**-frac_bits  # exact: fewer than 53 significant bits
    return qfx.codes(qfx.cast(value, out), out)


def align(codes: torch.Tensor, frac_from: int, frac_to: int) -> torch.Tensor:
    assert frac_to >= frac_from
    return codes * (1 << (frac_to - frac_from))


CASES = [
    # (input, weight, bias, output, fan-in): the last two need float64 (more than 24 accumulator bits)
    ("ap_ufixed<8,1>", "ap_fixed<8,1,AP_RND_CONV,AP_SAT>", "ap_fixed<12,4>", "ap_fixed<8,4,AP_RND,AP_SAT>", 16),
    ("ap_fixed<6,2>", "ap_fixed<4,0,AP_RND,AP_SAT>", "ap_fixed<8,6>", "ap_fixed<10,5,AP_TRN,AP_WRAP>", 64),
    ("ap_fixed<12,3>", "ap_fixed<12,2,AP_RND_CONV,AP_SAT>", "ap_fixed<16,6>", "ap_fixed<16,8,AP_RND_ZERO,AP_SAT>", 256),
    ("ap_ufixed<16,8>", "ap_fixed<14,-1,AP_RND,AP_SAT>", "ap_fixed<20,10>", "ap_fixed<18,12,AP_RND,AP_SAT_SYM>", 300),
]


@pytest.mark.parametrize(("fx", "fw", "fb", "fo", "n"), CASES)
def test_qlinear_matches_integer_reference(fx: str, fw: str, fb: str, fo: str, n: int) -> None:
    gen = torch.Generator().manual_seed(n)
    fmt_x, fmt_w, fmt_b, fmt_o = (FixedFormat.parse(t) for t in (fx, fw, fb, fo))
    layer = QLinear(n, 7, input=fmt_x, weight=fmt_w, bias_format=fmt_b, output=fmt_o, learn_binary_point=False)
    x, x_codes = random_values(fmt_x, (33, n), gen)
    w, w_codes = random_values(fmt_w, (7, n), gen)
    b, b_codes = random_values(fmt_b, (7,), gen)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    y = layer(x.to(torch.float32) if fmt_x.width <= 24 else x)
    frac = max(fmt_x.frac_bits + fmt_w.frac_bits, fmt_b.frac_bits)
    acc = align(x_codes @ w_codes.T, fmt_x.frac_bits + fmt_w.frac_bits, frac) + align(b_codes, fmt_b.frac_bits, frac)
    assert torch.equal(qfx.codes(y, fmt_o), cast_exact(acc, frac, fmt_o))
    acc_fmt = layer.accumulator_format()
    assert acc_fmt.frac_bits == frac
    assert acc.abs().max().item() <= acc_fmt.max_code  # the declared accumulator holds it


def test_float32_would_not_be_exact_here() -> None:
    # The third case's accumulator has 12 + 12 + 8 = 32 bits: float32 arithmetic drops low bits, QFX does not.
    gen = torch.Generator().manual_seed(0)
    fmt_x, fmt_w = FixedFormat.parse("ap_fixed<12,3>"), FixedFormat.parse("ap_fixed<12,2>")
    x, x_codes = random_values(fmt_x, (64, 256), gen)
    w, w_codes = random_values(fmt_w, (5, 256), gen)
    exact = (x_codes @ w_codes.T).to(torch.float64) * 2.0 ** -(fmt_x.frac_bits + fmt_w.frac_bits)
    naive = (x.float() @ w.float().T).double()
    assert not torch.equal(naive, exact)
    layer = QLinear(256, 5, bias=False, input=fmt_x, weight=fmt_w, output="ap_fixed<40,20>", learn_binary_point=False)
    with torch.no_grad():
        layer.weight.copy_(w)
    assert torch.equal(layer(x.float()).double(), exact)


@pytest.mark.parametrize(("stride", "padding", "groups"), [(1, 1, 1), (2, 0, 1), (1, 1, 2)])
@pytest.mark.parametrize("wide", [False, True])
def test_qconv2d_matches_integer_reference(stride: int, padding: int, groups: int, wide: bool) -> None:
    gen = torch.Generator().manual_seed(stride * 10 + padding + groups)
    fmt_x = FixedFormat.parse("ap_fixed<10,4>" if wide else "ap_ufixed<6,1>")
    fmt_w = FixedFormat.parse("ap_fixed<10,1,AP_RND,AP_SAT>" if wide else "ap_fixed<5,1,AP_RND,AP_SAT>")
    fmt_b, fmt_o = FixedFormat.parse("ap_fixed<12,5>"), FixedFormat.parse("ap_fixed<9,5,AP_RND_CONV,AP_SAT>")
    cin, cout, k = 4, 6, 3
    layer = QConv2d(
        cin,
        cout,
        k,
        stride,
        padding,
        groups=groups,
        input=fmt_x,
        weight=fmt_w,
        bias_format=fmt_b,
        output=fmt_o,
        learn_binary_point=False,
    )
    x, x_codes = random_values(fmt_x, (2, cin, 9, 9), gen)
    w, w_codes = random_values(fmt_w, (cout, cin // groups, k, k), gen)
    b, b_codes = random_values(fmt_b, (cout,), gen)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    y = layer(x.float())
    # integer reference: unfold moves codes (exactly representable), then an int64 matmul per group
    cols = F.unfold(x_codes.double(), k, padding=padding, stride=stride).long()  # (N, cin*k*k, L)
    per_group = cin // groups * k * k
    outs = []
    for g in range(groups):
        wg = w_codes[g * cout // groups : (g + 1) * cout // groups].reshape(cout // groups, -1)
        outs.append(wg @ cols[:, g * per_group : (g + 1) * per_group])
    acc = torch.cat(outs, dim=1)
    frac = max(fmt_x.frac_bits + fmt_w.frac_bits, fmt_b.frac_bits)
    acc = align(acc, fmt_x.frac_bits + fmt_w.frac_bits, frac) + align(b_codes, fmt_b.frac_bits, frac)[None, :, None]
    side = (9 + 2 * padding - k) // stride + 1
    expected = cast_exact(acc, frac, fmt_o).reshape(2, cout, side, side)
    assert torch.equal(qfx.codes(y, fmt_o), expected)


def test_qbatchnorm_is_a_fixed_point_affine() -> None:
    gen = torch.Generator().manual_seed(3)
    fmt_x = FixedFormat.parse("ap_fixed<8,4>")
    bn = QBatchNorm2d(3, learn=False, output="ap_fixed<10,5,AP_RND,AP_SAT>")
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.7, -2.2]))
        bn.bias.copy_(torch.tensor([0.1, -0.3, 1.0]))
    x, x_codes = random_values(fmt_x, (4, 3, 5, 5), gen)
    for training in (True, False):
        bn.train(training)
        scale, shift = bn.folded_affine(x.float())
        s_fmt, t_fmt, o_fmt = bn.scale_quantizer.format, bn.shift_quantizer.format, bn.output_quantizer.format
        s_codes = qfx.codes(qfx.cast(scale.detach().double(), s_fmt), s_fmt)
        t_codes = qfx.codes(qfx.cast(shift.detach().double(), t_fmt), t_fmt)
        if training:
            bn.running_mean.zero_()  # forward below updates the statistics again; undo the update from above
            bn.running_var.fill_(1.0)
            bn.num_batches_tracked.zero_()
        y = bn(x.float())
        frac = max(fmt_x.frac_bits + s_fmt.frac_bits, t_fmt.frac_bits)
        acc = align(x_codes * s_codes[None, :, None, None], fmt_x.frac_bits + s_fmt.frac_bits, frac)
        acc = acc + align(t_codes, t_fmt.frac_bits, frac)[None, :, None, None]
        assert torch.equal(qfx.codes(y, o_fmt), cast_exact(acc, frac, o_fmt))


def test_relu_add_and_pools_match_integer_reference() -> None:
    gen = torch.Generator().manual_seed(5)
    fmt = FixedFormat.parse("ap_fixed<9,4>")
    x, x_codes = random_values(fmt, (2, 3, 6, 6), gen)
    out = FixedFormat.parse("ap_ufixed<6,3,AP_RND,AP_SAT>")
    relu = QReLU(out, learn=False)
    assert torch.equal(qfx.codes(relu(x.float()), out), cast_exact(x_codes.clamp(min=0), fmt.frac_bits, out))
    clipped = QReLU(out, max_value=2.0, learn=False)
    ref = cast_exact(x_codes.clamp(0, 2 << fmt.frac_bits), fmt.frac_bits, out)
    assert torch.equal(qfx.codes(clipped(x.float()), out), ref)

    fmt_b = FixedFormat.parse("ap_fixed<7,2>")
    b, b_codes = random_values(fmt_b, x.shape, gen)
    add_out = FixedFormat.parse("ap_fixed<8,4,AP_RND_CONV,AP_WRAP>")
    frac = max(fmt.frac_bits, fmt_b.frac_bits)
    ref = cast_exact(align(x_codes, fmt.frac_bits, frac) + align(b_codes, fmt_b.frac_bits, frac), frac, add_out)
    assert torch.equal(qfx.codes(QAdd(add_out, learn=False)(x.float(), b.float()), add_out), ref)
    assert add_format(fmt, fmt_b) == FixedFormat(10, 5)  # F = max(5, 5), I = max(4, 2) + 1

    assert torch.equal(QMaxPool2d(2)(x.float()).double(), F.max_pool2d(x, 2))

    pool_out = FixedFormat.parse("ap_fixed<10,4,AP_TRN,AP_SAT>")
    sums = F.avg_pool2d(x_codes.double(), 2, divisor_override=1).long()  # area 4: a shift by 2
    ref = cast_exact(sums, fmt.frac_bits + 2, pool_out)
    assert torch.equal(qfx.codes(QAvgPool2d(2, output=pool_out, learn=False)(x.float()), pool_out), ref)

    # area 9 is no power of two: multiply by 1/9 rounded into ap_ufixed<18,0,AP_RND,AP_SAT>
    recip = FixedFormat.parse("ap_ufixed<18,0,AP_RND,AP_SAT>")
    r_code = round(2**18 / 9)
    sums = F.avg_pool2d(x_codes.double(), 3, divisor_override=1).long()
    ref = cast_exact(sums * r_code, fmt.frac_bits + 18, pool_out)
    layer = QAvgPool2d(3, output=pool_out, reciprocal=recip, learn=False)
    assert torch.equal(qfx.codes(layer(x.float()), pool_out), ref)

    sums = x_codes.sum(dim=(-2, -1))  # 36 = not a power of two
    ref = cast_exact(sums * round(2**18 / 36), fmt.frac_bits + 18, pool_out)
    gap = QGlobalAvgPool2d(output=pool_out, reciprocal=recip, learn=False)
    assert torch.equal(qfx.codes(gap(x.float()), pool_out), ref)


def test_autocast_and_tf32_cannot_change_results() -> None:
    gen = torch.Generator().manual_seed(1)
    fmt_x = FixedFormat.parse("ap_fixed<8,2>")
    layer = QLinear(32, 4, input=fmt_x, learn_binary_point=False)
    x, _ = random_values(fmt_x, (16, 32), gen)
    plain = layer(x.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = layer(x.float())
    assert torch.equal(plain, under_autocast)


def _tf32_sensitive_models() -> list[tuple[str, torch.nn.Module, torch.Tensor]]:
    """Quantized layers whose float32 multiply-accumulates TF32 or a transform-based convolution would round.

    The MLP's first QLinear sums 16 products of a 16-bit input and a 4-bit weight: one float32 limb, so a TF32
    matmul would round the input. The CNN's first QConv2d takes a 16-bit input (three weight limbs, float32); the
    3x3, 5x5 and 11x11 convolutions after it have 576- to 3872-term sums in two limbs, shapes for which cuDNN has
    Winograd and FFT algorithms, which do not add exactly; the bare 5x5 QConv2d gets FFT on an H100.
    """
    nn = torch.nn
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))
    x_mlp = torch.randn(64, 16) * 3
    cnn = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 32, 5, padding=2), nn.ReLU(),
        nn.Conv2d(32, 32, 11, padding=5), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    x_cnn = torch.randn(8, 3, 32, 32) * 3
    models = []
    for name, model, x, weight_width in (("mlp", mlp, x_mlp, 4), ("cnn", cnn, x_cnn, 8)):
        config = qfx.QuantizeConfig(input_width=16, weight_width=weight_width, mode="ptq")
        models.append((name, qfx.quantize_(model.eval(), config, x).eval(), x))
    # cuDNN's heuristics alone (no benchmark) pick an FFT kernel for this shape on an H100 (cuDNN 9.19); its
    # rounding errors flip about 1.5% of the outputs, which round 4 bits below the accumulator's LSB
    gen = torch.Generator().manual_seed(7)
    fmt_x, fmt_w = FixedFormat.parse("ap_ufixed<8,3>"), FixedFormat.parse("ap_fixed<8,1>")
    conv = QConv2d(64, 32, 5, padding=2, input=fmt_x, weight=fmt_w, bias_format="ap_fixed<16,6>",
                   output="ap_fixed<16,8,AP_RND,AP_SAT>", learn_binary_point=False)  # fmt: skip
    with torch.no_grad():
        conv.weight.copy_(random_values(fmt_w, tuple(conv.weight.shape), gen)[0])
    models.append(("conv5x5", conv, random_values(fmt_x, (8, 64, 32, 32), gen)[0].float()))
    return models


def _switch_tf32_on(api: str):
    """Turn TF32 on for every CUDA matmul and convolution through one generation of torch's switches; returns
    the function that puts the previous settings back."""
    b = torch.backends
    if api == "allow_tf32":
        saved = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32)
        b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = True

        def restore() -> None:
            b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = saved

        return restore
    if not hasattr(b.cuda.matmul, "fp32_precision"):
        pytest.skip(f"torch {torch.__version__} has no fp32_precision switches (torch >= 2.9)")
    switches = [b, b.cuda.matmul, b.cudnn, b.cudnn.conv]
    saved = [s.fp32_precision for s in switches]
    for s in switches:
        s.fp32_precision = "tf32"

    def restore() -> None:
        for s, value in zip(switches, saved, strict=True):
            s.fp32_precision = value

    return restore


def _switch_states() -> list:
    b = torch.backends
    states = [getattr(s, "fp32_precision", None) for s in (b, b.cuda.matmul, b.cudnn, b.cudnn.conv)]
    for read in (lambda: b.cuda.matmul.allow_tf32, lambda: b.cudnn.allow_tf32):
        try:
            states.append(read())
        except RuntimeError as e:  # torch >= 2.9 refuses to read a legacy flag that the new switches contradict
            states.append(type(e).__name__)
    return states


@pytest.mark.skipif(not hasattr(torch.backends.cuda.matmul, "fp32_precision"), reason="torch < 2.9")
def test_layers_run_under_the_fp32_precision_switches() -> None:
    """TF32 / bf16 turned on through torch's fp32_precision switches only: the layers ran into torch's refusal to
    read the legacy allow_tf32 flag then (RuntimeError, on the CPU too); now they run, exactly, and put every
    switch back. (The bf16 switch changes oneDNN's convolutions on CPUs with AMX-BF16.)"""
    gen = torch.Generator().manual_seed(3)
    fmt_x = FixedFormat.parse("ap_fixed<16,4>")
    lin = QLinear(16, 8, input=fmt_x, weight="ap_fixed<4,1>", learn_binary_point=False)
    conv = QConv2d(4, 4, 3, padding=1, input=fmt_x, learn_binary_point=False)
    x_lin, x_conv = random_values(fmt_x, (32, 16), gen)[0].float(), random_values(fmt_x, (2, 4, 8, 8), gen)[0].float()
    with torch.no_grad():
        expected = (lin(x_lin), conv(x_conv))
    b = torch.backends
    switches = [(b, "tf32"), (b.cuda.matmul, "tf32"), (b.cudnn.conv, "tf32"), (b.mkldnn, "bf16")]
    saved = [s.fp32_precision for s, _ in switches]
    try:
        for s, value in switches:
            s.fp32_precision = value
        before = _switch_states()
        with torch.no_grad():
            assert torch.equal(lin(x_lin), expected[0])
            assert torch.equal(conv(x_conv), expected[1])
        assert _switch_states() == before
    finally:
        for (s, _), value in zip(switches, saved, strict=True):
            s.fp32_precision = value


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("api", ["allow_tf32", "fp32_precision"])
def test_cuda_with_tf32_enabled_equals_cpu(api: str) -> None:
    """TF32 switched on globally (either API) and cuDNN autotuning cannot make a quantized model's CUDA output
    differ from its CPU output by a single bit, and the layers leave the switches as they found them."""
    models = _tf32_sensitive_models()
    with torch.no_grad():
        expected = [model(x) for _, model, x in models]
    benchmark = torch.backends.cudnn.benchmark
    restore = _switch_tf32_on(api)
    try:
        switches = _switch_states()
        for (name, model, x), cpu in zip(models, expected, strict=True):
            with torch.no_grad():
                torch.backends.cudnn.benchmark = False  # cuDNN's heuristics
                gpu = model.cuda()(x.cuda()).cpu()
                torch.backends.cudnn.benchmark = True  # every cuDNN algorithm timed, the fastest kept
                gpu_tuned = model(x.cuda()).cpu()
            assert torch.equal(gpu, cpu), f"{name}: CUDA output differs from CPU with TF32 enabled ({api})"
            assert torch.equal(gpu_tuned, cpu), f"{name}: CUDA output differs from CPU under cudnn.benchmark ({api})"
        assert _switch_states() == switches, "the layers did not put the TF32 switches back"
    finally:
        torch.backends.cudnn.benchmark = benchmark
        restore()


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "groups"),
    [(3, 1, (1, 2), 1, 1), (3, 1, "same", 1, 1), ((2, 5), 1, "same", (1, 2), 2), ((2, 5), 2, (1, 2), (1, 2), 2),
     ((4, 3), 3, "valid", 1, 2)],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_gemm_convolution_matches_conv2d(kernel, stride, padding, dilation, groups) -> None:
    """The im2col + GEMM convolution QConv2d uses on CUDA (never FFT/Winograd) equals F.conv2d, here in float64."""
    from qfx.nn.layers import _GemmConv2d

    gen = torch.Generator().manual_seed(5)
    x = torch.randint(-64, 64, (2, 4, 11, 13), generator=gen).double()
    conv = torch.nn.Conv2d(4, 6, kernel, stride, padding, dilation, groups, bias=False).double()
    w = torch.randint(-8, 8, conv.weight.shape, generator=gen).double()
    got = _GemmConv2d(w.shape, conv.stride, conv.padding, conv.dilation, groups)(x, w)
    assert torch.equal(got, F.conv2d(x, w, None, conv.stride, conv.padding, conv.dilation, groups))


def test_accumulator_and_product_formats() -> None:
    x, w = FixedFormat.parse("ap_ufixed<8,1>"), FixedFormat.parse("ap_fixed<6,2>")
    assert product_format(x, w) == FixedFormat(14, 3)
    assert accumulator_format(x, w, 64) == FixedFormat(20, 9)
    assert accumulator_format(x, w, 1) == FixedFormat(14, 3)
    with pytest.raises(ValueError, match="terms must be >= 1, not 0"):
        accumulator_format(x, w, 0)


def test_layers_train_end_to_end() -> None:
    torch.manual_seed(0)
    qin = QInput("ap_ufixed<8,1,AP_RND,AP_SAT>", learn_binary_point=False)
    conv = QConv2d(1, 4, 3, padding=1, input=qin)
    bn, relu, gap = QBatchNorm2d(4), QReLU(), QGlobalAvgPool2d()
    fc = QLinear(4, 3, input=gap.output_quantizer)
    params = [p for m in (conv, bn, fc) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=0.05)
    x, target = torch.rand(16, 1, 8, 8), torch.randint(0, 3, (16,))
    losses = []
    for _ in range(30):
        y = fc(gap(relu(bn(conv(qin(x))))))
        loss = F.cross_entropy(y, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    out = fc.output_quantizer.format
    assert torch.equal(y, qfx.cast(y, out))  # outputs lie on the output grid


def test_quant_modes_reach_the_output() -> None:
    layer = QLinear(
        2,
        1,
        bias=False,
        input="ap_fixed<8,4>",
        weight="ap_fixed<8,4>",
        learn_binary_point=False,
        output=FixedFormat(8, 8, quant=Quant.RND_CONV),
    )
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 0.5]]))
    y = layer(torch.tensor([[1.0, 2.0], [1.0, 4.0]]))  # 1.5 -> 2 (ties to even), 2.5 -> 2
    assert y.flatten().tolist() == [2.0, 2.0]
    assert np.isfinite(y.detach().numpy()).all()


def test_fold_batchnorm_into_conv() -> None:
    from qfx.nn import fold_batchnorm

    torch.manual_seed(0)
    qin = QInput("ap_ufixed<8,1,AP_RND,AP_SAT>", learn_binary_point=False)
    conv = QConv2d(1, 4, 3, padding=1, input=qin, weight="ap_fixed<12,1,AP_RND,AP_SAT>", learn_binary_point=False)
    bn = QBatchNorm2d(
        4,
        learn=False,
        scale="ap_fixed<16,4,AP_RND,AP_SAT>",
        shift="ap_fixed<16,6,AP_RND,AP_SAT>",
        output="ap_fixed<12,5,AP_RND,AP_SAT>",
    )
    x = qin(torch.rand(8, 1, 8, 8))
    bn.train()
    bn(conv(x))  # running statistics
    bn.eval()
    folded = fold_batchnorm(conv, bn)
    assert isinstance(folded, QConv2d) and folded.bias is not None
    assert folded.output_quantizer.format == bn.output_quantizer.format
    y_two, y_one = bn(conv(x)), folded(x)
    assert torch.equal(y_one, qfx.cast(y_one, folded.output_quantizer.format))  # on the output grid
    # Not bit-exact by design (the unfolded pair rounds twice): they differ by at most the conv output's rounding
    # seen through the scale, plus the output roundings.
    scale, _ = bn.folded_affine()
    tol = conv.output_quantizer.format.lsb * scale.abs().max().item() + 2 * bn.output_quantizer.format.lsb
    assert (y_two - y_one).abs().max().item() <= tol
    with pytest.raises(ValueError, match="needs a QBatchNorm2d with 4 channels"):
        fold_batchnorm(conv, QBatchNorm2d(3))
