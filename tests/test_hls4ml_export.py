"""hls4ml export: the hls4ml model's compile() + predict() equals the IR interpreter and PyTorch bit for bit."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from chain_models import brevitas_export, chain_model, digits_test, output_format, qonnx_codes
from torch import nn

from qfx import QuantizeConfig, codes, quantize_
from qfx.data import load_digits
from qfx.export import Hls4mlExportError, export_qonnx, hls4ml_codes, to_hls4ml
from qfx.export.hls4ml import MARKER, hls4ml_precision
from qfx.format import FixedFormat, Overflow, Quant
from qfx.ir import (
    Add,
    Affine,
    Cast,
    Conv2d,
    Dense,
    GlobalSum,
    Graph,
    MaxPool2d,
    Relu,
    Reshape,
    SumPool2d,
    Tensor,
    from_qonnx,
)
from qfx.result_types import accumulator_format, add_format, product_format, sub_format

CHAIN = ("mlp", "wrap", "cnn_tiny")
F = FixedFormat.parse


@pytest.fixture(scope="module")
def hls4ml():
    return pytest.importorskip("hls4ml", reason="hls4ml not installed")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Graph]:
    folder = tmp_path_factory.mktemp("qonnx")
    x, _ = digits_test()
    return {n: from_qonnx(export_qonnx(chain_model(n), x, folder / f"{n}.onnx")) for n in CHAIN}


def _torch_codes(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return codes(model(x), output_format(model)).numpy()


@pytest.mark.parametrize("name", CHAIN)
def test_hls4ml_equals_ir_and_pytorch(name: str, graphs, tmp_path, toolchain, summary) -> None:
    x, _ = digits_test()
    model, graph = chain_model(name), graphs[name]
    # the MLP goes in as the torch model (export + import inside to_hls4ml), the others as IR graphs
    source = model if name == "mlp" else graph
    hls_model = to_hls4ml(source, tmp_path / name, example_input=x)
    start = time.perf_counter()
    hls_model.compile()
    compile_s = time.perf_counter() - start
    got = hls4ml_codes(hls_model, x.numpy())
    ir = np.asarray(graph.run(x.numpy()), dtype=np.int64)
    reference = _torch_codes(model, x)
    mismatches = int((got != ir).sum()) + int((got != reference).sum())
    summary(f"hls4ml predict vs PyTorch and IR, {name}: {x.shape[0]} inputs, {ir.size} codes, {mismatches} "
            f"mismatches (compiled in {compile_s:.1f} s)")  # fmt: skip
    assert x.shape[0] >= 200 and mismatches == 0
    defines = (tmp_path / name / "firmware" / "defines.h").read_text()
    if name == "wrap":  # the modes hls4ml's own parser lacks reach the C++ all the same
        assert "AP_WRAP_SM,1>" in defines and "AP_WRAP_SM,0>" in defines and "AP_SAT_ZERO" in defines
        config = (tmp_path / name / "hls4ml_config.yml").read_text()
        assert "AP_WRAP_SM,1>" in config and "!!python" not in config  # types recorded as C++ strings
    assert (tmp_path / name / MARKER).is_file()


def test_io_stream_equals_ir(graphs, tmp_path, toolchain, summary, monkeypatch) -> None:
    """io_stream: hls4ml adds layers that move values (zero padding before a convolution, a clone of the stream
    the residual block reads twice); they keep their input's type, and the codes equal the IR's. A mover that
    changed a type, or any other added layer, fails the read-back check."""
    from hls4ml.model.types import FixedPrecisionType

    from qfx.export import hls4ml_types
    from qfx.export.hls4ml import _check, _Lowering

    x, _ = digits_test()
    graph = graphs["cnn_tiny"]
    hls_model = to_hls4ml(graph, tmp_path / "stream", io_type="io_stream")
    added = {layer.class_name for layer in hls_model.get_layers()} - {d["class_name"] for d in _lowered(graph)}
    assert {"ZeroPadding2D", "Clone"} <= added
    hls_model.compile()
    got = hls4ml_codes(hls_model, x.numpy())
    mismatches = int((got != np.asarray(graph.run(x.numpy()))).sum())
    summary(f"hls4ml io_stream predict vs IR, cnn_tiny: {x.shape[0]} inputs, {got.size} codes, {mismatches} "
            "mismatches")  # fmt: skip
    assert mismatches == 0
    low = _Lowering(graph)
    low.run()
    pad = next(layer for layer in hls_model.get_layers() if layer.class_name == "ZeroPadding2D")
    pad.get_output_variable().type.precision = FixedPrecisionType(16, 6)
    with pytest.raises(Hls4mlExportError, match=rf'layer "{pad.name}" \(ZeroPadding2D, added by hls4ml\) turns '
                       r"ap_u?fixed<[^>]*> into ap_fixed<16,6>: it must only move values"):  # fmt: skip
        _check(hls_model, low)
    monkeypatch.setattr(hls4ml_types, "_STREAM_MOVERS", ("Repack", "Clone"))  # as if hls4ml added an unknown one
    with pytest.raises(Hls4mlExportError, match=rf'hls4ml added layer "{pad.name}" \(ZeroPadding2D\)'):
        _check(hls_model, low)


def _lowered(graph: Graph) -> list[dict]:
    from qfx.export.hls4ml import _Lowering

    low = _Lowering(graph)
    low.run()
    return low.layers


def _layout_model() -> nn.Module:
    """Conv, batch norm, a 2x2 average pool, a 1x1 conv, a padded max pool, a strided conv with uneven padding and
    a flatten of a 2-channel image (the transpose back to NCHW order), then two linear layers; PTQ on random
    weights (only exactness is checked)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.AvgPool2d(2), nn.Conv2d(4, 3, 1),
        nn.MaxPool2d(2, stride=1, padding=1), nn.Conv2d(3, 2, 2, stride=2, padding=(1, 0)), nn.Flatten(),
        nn.Linear(2 * 3 * 2, 16), nn.ReLU(), nn.Linear(16, 10),
    ).eval()  # fmt: skip
    return quantize_(net, QuantizeConfig(mode="ptq"), load_digits("train", seed=0).tensors[0]).eval()


def test_layouts_and_pooling(tmp_path, toolchain, summary) -> None:
    x, _ = digits_test()
    model = _layout_model()
    graph = from_qonnx(export_qonnx(model, x[:1], tmp_path / "layout.onnx"))
    hls_model = to_hls4ml(model, tmp_path / "layout", example_input=x[:1], backend="Vitis")  # the other backend
    kinds = {layer.class_name for layer in hls_model.get_layers()}
    assert {"Conv2D", "PointwiseConv2D", "BatchNormalization", "Pooling2D", "Transpose", "Dense"} <= kinds
    hls_model.compile()
    got = hls4ml_codes(hls_model, x.numpy())
    mismatches = int((got != np.asarray(graph.run(x.numpy()))).sum()) + int((got != _torch_codes(model, x)).sum())
    summary(f"hls4ml (Vitis) predict vs PyTorch and IR, conv/pool/flatten model: {x.shape[0]} inputs, "
            f"{got.size} codes, {mismatches} mismatches")  # fmt: skip
    assert mismatches == 0


def test_brevitas_model_through_hls4ml(tmp_path, toolchain, summary) -> None:
    """A Brevitas QONNX export (conv, ReLU, max pool, flatten of an 8-channel image, linear) through the IR."""
    path = brevitas_export(str(tmp_path / "brevitas.onnx"), "cnn")
    graph = from_qonnx(path)
    hls_model = to_hls4ml(graph, tmp_path / "brevitas")
    hls_model.compile()
    x, _ = digits_test()
    got = hls4ml_codes(hls_model, x.numpy())
    expected = qonnx_codes(path, x, graph.fmt(graph.outputs[0]))
    mismatches = int((got != expected).sum()) + int((got != np.asarray(graph.run(x.numpy()))).sum())
    summary(f"hls4ml predict vs qonnx and IR on a Brevitas CNN export: {x.shape[0]} inputs, {expected.size} codes, "
            f"{mismatches} mismatches")  # fmt: skip
    assert mismatches == 0


def _graph(nodes: list, tensors: list[tuple[str, tuple, FixedFormat | None]], out: str, name: str) -> Graph:
    return Graph({t: Tensor(t, s, f) for t, s, f in tensors}, nodes, [tensors[0][0]], [out], name=name)


def _modes_graph() -> Graph:
    """A hand-built IR graph: unflatten to a 4-channel image (reshape + transpose), per-channel affine, ReLU6,
    global average, a dense and a per-element affine on flat tensors, an add, a standalone cast after a reshape;
    formats with AP_SAT_SYM, AP_WRAP / AP_WRAP_SM with saturation bits, AP_SAT_ZERO, negative integer bits."""
    rng = np.random.default_rng(0)
    a, b, c = F("ap_fixed<10,3,AP_RND_CONV,AP_SAT_SYM>"), F("ap_fixed<8,4,AP_RND_INF,AP_WRAP,1>"), F("ap_ufixed<6,3>")
    d, e = F("ap_fixed<7,2,AP_RND_MIN_INF,AP_SAT_ZERO>"), F("ap_fixed<9,3,AP_RND_ZERO,AP_WRAP_SM,2>")
    g, h = F("ap_fixed<8,2,AP_RND,AP_WRAP_SM>"), F("ap_fixed<8,3,AP_RND_CONV,AP_WRAP,3>")
    out = F("ap_ufixed<5,-1,AP_RND_CONV,AP_WRAP,1>")
    s_fmt, b_fmt, w_fmt, s2 = F("ap_fixed<6,2>"), F("ap_fixed<8,3>"), F("ap_fixed<5,1>"), F("ap_ufixed<4,1>")
    wb_fmt = s_fmt
    relu_acc, sums, quarter = FixedFormat(9, 5), FixedFormat(8, 5, signed=False), FixedFormat(1, -1, signed=False)
    i64 = np.int64
    nodes = [
        Cast("in_cast", ["x"], "xq", None),
        Reshape("unflatten", ["xq"], "img", a),
        Affine("bn", ["img"], "bn_out", add_format(product_format(a, s_fmt), b_fmt), scale=rng.integers(-32, 32, 4),
               scale_fmt=s_fmt, shift=rng.integers(-128, 128, 4), shift_fmt=b_fmt),
        Relu("relu6", ["bn_out"], "r6", relu_acc, max_code=6 << relu_acc.frac_bits),
        GlobalSum("gsum", ["r6"], "sums", sums),
        Affine("gmean", ["sums"], "mean", product_format(sums, quarter), scale=np.ones(4, i64), scale_fmt=quarter),
        Dense("fc", ["xq"], "fc_out", accumulator_format(a, w_fmt, 16, wb_fmt), weight=rng.integers(-16, 16, (4, 16)),
              weight_fmt=w_fmt, bias=rng.integers(-32, 32, 4), bias_fmt=wb_fmt),
        Affine("scale", ["fc_out"], "scaled", product_format(e, s2), scale=rng.integers(0, 16, 4), scale_fmt=s2),
        Add("add", ["mean", "scaled"], "sum2", add_format(d, g)),
        Reshape("same", ["sum2"], "flat", h),
        Cast("out_cast", ["flat"], "y", h),
    ]  # fmt: skip
    tensors = [("x", (16,), None), ("xq", (16,), a), ("img", (4, 2, 2), a), ("bn_out", (4, 2, 2), b),
               ("r6", (4, 2, 2), c), ("sums", (4,), sums), ("mean", (4,), d), ("fc_out", (4,), e),
               ("scaled", (4,), g), ("sum2", (4,), h), ("flat", (4,), h), ("y", (4,), out)]  # fmt: skip
    return _graph(nodes, tensors, "y", "modes")


def test_hand_built_graph_every_mode(tmp_path, toolchain, summary) -> None:
    graph = _modes_graph()
    x = np.random.default_rng(1).uniform(-5, 5, (300, 16))
    ir = np.asarray(graph.run(x))
    hls_model = to_hls4ml(graph, tmp_path / "modes")
    assert [lay.get_attr("activation") for lay in hls_model.get_layers() if lay.class_name == "Activation"] == [
        "relu6", "linear"
    ]  # fmt: skip
    hls_model.compile()
    got = hls4ml_codes(hls_model, x)
    mismatches = int((got != ir).sum())
    summary(f"hls4ml predict vs IR, hand-built graph (relu6, unflatten, global average, WRAP_SM, ...): "
            f"{x.shape[0]} inputs, {ir.size} codes, {mismatches} mismatches")  # fmt: skip
    assert mismatches == 0 and len(np.unique(ir)) > 10


@pytest.mark.parametrize(
    "fmt",
    ["ap_fixed<16,6,AP_RND_CONV,AP_SAT>", "ap_ufixed<8,-2,AP_TRN_ZERO,AP_SAT_ZERO>", "ap_fixed<7,9,AP_RND_MIN_INF>",
     "ap_fixed<9,3,AP_RND_ZERO,AP_WRAP,2>", "ap_fixed<5,1,AP_RND_INF,AP_SAT_SYM>", "ap_fixed<7,1,AP_RND,AP_WRAP_SM,1>",
     "ap_ufixed<4,4>"],
)  # fmt: skip
def test_precision_strings_read_back(fmt: str, hls4ml) -> None:
    from hls4ml.backends import get_backend

    from qfx.export.hls4ml_types import _format_of

    precision = hls4ml_precision(F(fmt))
    assert isinstance(precision, str) == ("WRAP_SM" not in fmt)
    parsed = get_backend("Vivado").convert_precision_string(precision)
    assert _format_of(parsed) == F(fmt)
    if isinstance(precision, str):
        assert precision.count(",") == 4  # all five template arguments, sat_bits included


def _small(node, x_shape, x_fmt, out_shape, out_fmt) -> Graph:
    tensors = [("x", x_shape, None), ("xq", x_shape, x_fmt), ("y", out_shape, out_fmt)]
    return _graph([Cast("in_cast", ["x"], "xq", None), node], tensors, "y", "bad")


A8 = F("ap_fixed<8,3>")
UNSUPPORTED = {
    "bare_sum": (_small(GlobalSum("gsum", ["xq"], "y", F("ap_fixed<12,7>")), (2, 4, 4), A8, (2,), F("ap_fixed<12,7>")),
                 r'node "gsum": hls4ml has no exact window sum'),
    "relu3": (_small(Relu("relu3", ["xq"], "y", A8, max_code=3 << 5), (8,), A8, (8,), A8),
              r'node "relu3": a ReLU clipped at 3: hls4ml\'s clipped ReLUs stop at 1 \(relu1\) or 6'),
    "groups": (_small(Conv2d("dw", ["xq"], "y", F("ap_fixed<20,8>"), weight=np.ones((2, 1, 3, 3), np.int64),
                             weight_fmt=A8, padding=(1, 1, 1, 1), groups=2), (2, 4, 4), A8, (2, 4, 4),
                      F("ap_fixed<20,8>")),
               r'node "dw": a grouped convolution \(groups=2\)'),
    "unsigned_pad": (_small(MaxPool2d("mp", ["xq"], "y", F("ap_ufixed<8,3>"), padding=(1, 1, 1, 1)), (2, 4, 4),
                            F("ap_ufixed<8,3>"), (2, 3, 3), F("ap_ufixed<8,3>")),
                     r'node "mp": hls4ml pads a max pool with the code whose MSB alone is set'),
    "avg3x3": (_small(SumPool2d("box", ["xq"], "y", F("ap_fixed<12,7>"), kernel=(3, 3), stride=(1, 1)), (2, 4, 4),
                      A8, (2, 2, 2), F("ap_fixed<12,7>")),
               r'node "box": hls4ml has no exact window sum'),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_node_names_it_and_writes_nothing(case: str, hls4ml, tmp_path) -> None:
    graph, message = UNSUPPORTED[case]
    with pytest.raises(Hls4mlExportError, match=message):
        to_hls4ml(graph, tmp_path / "p")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_foreign_folder(graphs, hls4ml, tmp_path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"mine exists and is not a QFX hls4ml project; pass force=True"):
        to_hls4ml(graphs["mlp"], foreign)
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(tmp_path.iterdir())) == 1
    to_hls4ml(graphs["mlp"], foreign, force=True)
    assert not (foreign / "notes.txt").exists() and (foreign / MARKER).is_file()
    hls_model = to_hls4ml(graphs["mlp"], foreign, project_name="again")  # an export is simply regenerated
    assert hls_model.config.get_output_dir() == str(foreign) and (foreign / "firmware" / "again.cpp").is_file()
    assert str(foreign) in (foreign / "hls4ml_config.yml").read_text() and len(list(tmp_path.iterdir())) == 1


def test_a_type_hls4ml_changed_is_an_error(graphs, hls4ml, tmp_path) -> None:
    """The read-back check: were an hls4ml optimizer to change a type QFX set, the export would fail."""
    from hls4ml.model.types import FixedPrecisionType

    from qfx.export.hls4ml import _check, _Lowering

    low = _Lowering(graphs["mlp"])
    low.run()
    hls_model = to_hls4ml(graphs["mlp"], tmp_path / "p")
    _check(hls_model, low)  # as exported: every type as set
    hls_model.graph["net_3_matmul"].get_attr("accum_t").precision = FixedPrecisionType(16, 6)
    with pytest.raises(Hls4mlExportError, match=r'layer "net_3_matmul": hls4ml\'s accum type is ap_fixed<16,6>, '
                       r"not the ap_fixed<25,8> QFX set"):  # fmt: skip
        _check(hls_model, low)


def test_bad_arguments(graphs, hls4ml, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"backend must be one of Vivado, Vitis"):
        to_hls4ml(graphs["mlp"], tmp_path / "p", backend="Quartus")
    with pytest.raises(ValueError, match=r"io_type must be 'io_parallel' or 'io_stream'"):
        to_hls4ml(graphs["mlp"], tmp_path / "p", io_type="io_serial")
    with pytest.raises(ValueError, match=r"a torch model needs example_input"):
        to_hls4ml(chain_model("mlp"), tmp_path / "p")
    with pytest.raises(TypeError, match=r"source must be a qfx.ir.Graph or a QFX torch model, not str"):
        to_hls4ml("model.onnx", tmp_path / "p")
    assert list(tmp_path.iterdir()) == []


def test_missing_hls4ml_is_one_clear_error(graphs, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "hls4ml", None)  # `import hls4ml` now raises ImportError
    with pytest.raises(ImportError, match=r"to_hls4ml needs hls4ml \(pip install 'qfx\[sim\]'\)"):
        to_hls4ml(graphs["mlp"], tmp_path / "p")
    assert list(tmp_path.iterdir()) == []


def test_module_imports_neither_torch_nor_hls4ml() -> None:
    """``import qfx.export`` works without hls4ml; the module is torch-free like everything downstream of the IR."""
    import qfx.export.hls4ml as module

    tree = ast.parse(Path(module.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top for a in n.names] + [n.module for n in top if isinstance(n, ast.ImportFrom)]
    assert not any(str(n).split(".")[0] in ("torch", "hls4ml") for n in names)


def test_quant_and_overflow_enums_cover_hls4ml(hls4ml) -> None:
    """Every ap_fixed mode QFX has maps: hls4ml knows each rounding mode and all overflow modes but AP_WRAP_SM."""
    from hls4ml.model.types import RoundingMode, SaturationMode

    assert {q.name for q in Quant} == {m.name for m in RoundingMode}
    assert {o.name for o in Overflow} - {m.name for m in SaturationMode} == {"WRAP_SM"}


def _new_ops_graph(seed: int) -> Graph:
    """Pad (asymmetric), nearest upsampling, leaky ReLU, a difference, a four-way channel concatenation with mixed
    formats and output modes, concatenations along rows and columns, then a feature concatenation of two dense
    layers."""
    from test_hls_ops import Builder, exact_acc, max_abs, out_fmt

    from qfx.ir.graph import Concat, LeakyRelu, Pad, Upsample

    rng = np.random.default_rng(seed)
    x = F("ap_fixed<7,2>")
    b = Builder("new_ops", (2, 3, 4), x)
    pad = b.add(Pad("pad", ["x"], "", x, padding=(1, 0, 2, 1)), (2, 6, 5), out_fmt(rng, x))
    up = b.add(Upsample("up", ["x"], "", x, scale=(2, 1)), (2, 6, 4), x)
    up = b.add(Pad("up_pad", [up], "", x, padding=(0, 1, 0, 0)), (2, 6, 5), x)
    alpha_fmt = F("ap_ufixed<4,0>")
    acc = product_format(x, alpha_fmt)
    leaky = b.add(LeakyRelu("leaky", [pad], "", product_format(b.tensors[pad].fmt, alpha_fmt), alpha=3,
                            alpha_fmt=alpha_fmt), (2, 6, 5), out_fmt(rng, acc))  # fmt: skip
    diff_acc = sub_format(b.tensors[pad].fmt, x)
    diff = b.add(Add("diff", [pad, up], "", diff_acc, subtract=True), (2, 6, 5), out_fmt(rng, diff_acc))
    parts = [pad, up, leaky, diff]
    fmts = [b.tensors[p].fmt for p in parts]
    frac, ints = max(f.frac_bits for f in fmts), max(f.int_bits + (not f.signed) for f in fmts)
    cat_acc = FixedFormat(ints + frac, ints, True)
    cat = b.add(Concat("cat", parts, "", cat_acc, axis=0), (8, 6, 5), out_fmt(rng, cat_acc))
    fmt = b.tensors[cat].fmt
    rows = b.add(Concat("rows", [cat, cat], "", fmt, axis=1), (8, 12, 5), fmt)
    cat = b.add(Concat("cols", [rows, rows], "", fmt, axis=2), (8, 12, 10), fmt)
    flat = b.add(Reshape("flat", [cat], "", fmt), (960,), fmt)
    dense = []
    for k, n in enumerate((3, 4)):
        w_fmt = F("ap_fixed<4,1>")
        w = rng.integers(-8, 8, size=(n, 960))
        acc = exact_acc(max_abs(fmt) * 8 * 960, fmt.frac_bits + 3)
        dense.append(b.add(Dense(f"fc{k}", [flat], "", acc, weight=w, weight_fmt=w_fmt), (n,), out_fmt(rng, acc)))
    fmts = [b.tensors[p].fmt for p in dense]
    frac, ints = max(f.frac_bits for f in fmts), max(f.int_bits + (not f.signed) for f in fmts)
    acc = FixedFormat(ints + frac, ints, True)
    b.add(Concat("features", dense, "", acc, axis=0), (7,), out_fmt(rng, acc))
    return b.graph()


def test_new_ops_through_hls4ml(hls4ml, tmp_path, toolchain, summary) -> None:
    """ZeroPadding2D, Resize (nearest), LeakyReLU, Subtract and Concatenate chains compute the IR's codes exactly."""
    graph = _new_ops_graph(3)
    rng = np.random.default_rng(4)
    x = np.ldexp(rng.integers(-64, 64, size=(64, 2, 3, 4)).astype(np.float64), -5)
    hls_model = to_hls4ml(graph, tmp_path / "new_ops")
    hls_model.compile()
    got = hls4ml_codes(hls_model, x)
    want = np.asarray(graph.run(x), dtype=np.int64)
    mismatches = int((got != want).sum())
    summary(f"hls4ml predict vs IR, pad/upsample/leaky ReLU/concat: {x.shape[0]} inputs, {want.size} codes, "
            f"{mismatches} mismatches")  # fmt: skip
    assert mismatches == 0


def test_ops_hls4ml_cannot_compute_are_refused(tmp_path) -> None:
    """Table functions, softmax, argmax and two-sided clips stop with one error naming the node and why."""
    import test_hls_ops as ops

    rng = np.random.default_rng(0)
    cases = [
        ("lookup", 0, "table", r"hls4ml's sigmoid/tanh read their own 1,024-entry tables"),
        ("softmax", 0, "softmax", r"hls4ml's softmax uses its own exp/inverse"),
        ("argmax", 0, "argmax", r"hls4ml has no argmax layer"),
        ("clip", 0, "clip", r"hls4ml has no clip between two bounds"),
        ("pad_upsample", 1, "pad", r"1-D feature maps such as \[\d+, \d+\] are not exported to hls4ml"),
    ]
    for op, k, node, why in cases:
        graph = ops.CASES[op](rng, k)
        with pytest.raises(Hls4mlExportError, match=rf'^node "{node}": {why}'):
            to_hls4ml(graph, tmp_path / op)
    assert list(tmp_path.iterdir()) == []
