"""Names cannot break generated code: a top, layer or tensor named like a C++17, Verilog-2005 or SystemVerilog keyword
or like a name QFX's own code uses is renamed deterministically, and the project still compiles and computes the IR's
codes (HLS C-simulation with g++, RTL simulation with Verilator)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_robustness import tiny_inputs, tiny_qonnx

import qfx.hls
import qfx.rtl
from qfx.ir import from_qonnx
from qfx.ir.constants import sanitize
from qfx.names import CPP17_KEYWORDS, LIBRARY_NAMES, SYSTEMVERILOG_KEYWORDS, VERILOG2005_KEYWORDS, is_reserved
from qfx.resources import data_dir
from qfx.sim import apfixed

ISSUE_NAMES = ["qfx_cast", "weights", "parameters", "x", "y", "N_INPUT", "input_t", "result_t", "ap_fixed", "true",
               "initial"]  # fmt: skip
ALL = sorted(CPP17_KEYWORDS | VERILOG2005_KEYWORDS | SYSTEMVERILOG_KEYWORDS | LIBRARY_NAMES | set(ISSUE_NAMES))


def test_keyword_lists_are_complete_samples() -> None:
    assert len(CPP17_KEYWORDS) >= 84 and len(VERILOG2005_KEYWORDS) >= 123 and len(SYSTEMVERILOG_KEYWORDS) >= 248
    for word in ("alignas", "thread_local", "xor_eq", "nullptr"):
        assert word in CPP17_KEYWORDS
    for word in ("uwire", "pulsestyle_ondetect", "endgenerate"):
        assert word in VERILOG2005_KEYWORDS
    for word in ("logic", "always_ff", "unique0", "interconnect", "nettype"):
        assert word in SYSTEMVERILOG_KEYWORDS


def test_every_keyword_and_qfx_name_is_renamed_deterministically() -> None:
    taken: set[str] = set()
    out = [sanitize(n, taken) for n in ALL]
    assert len(set(out)) == len(out)
    for name, ident in zip(ALL, out, strict=True):
        assert ident != name and not is_reserved(ident) and ident.isidentifier(), (name, ident)
        assert ident == sanitize(name, set())  # the same name always becomes the same identifier
    assert sanitize("QFX_CAST", set()) != "QFX_CAST"  # file names compare without case on some systems


def _compiles(tmp_path: Path, idents: list[str]) -> None:
    """Every identifier declared at namespace and block scope beside the ap_fixed headers and QFX's library."""
    decls = "\n".join(f"static ap_fixed<8, 3> {i}[2];" for i in idents)
    body = "\n".join(f"  int {i} = {k};" for k, i in enumerate(idents))
    src = (f'#include <ap_fixed.h>\n#include <cstdio>\n#include "qfx/qfx.h"\n{decls}\n'
           f"int main() {{\n{body}\n  return 0;\n}}\n")  # fmt: skip
    (tmp_path / "all.cpp").write_text(src)
    inc = data_dir("hls") / "include"
    proc = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-w", f"-I{apfixed.headers_dir()}", f"-I{inc}",
                           str(tmp_path / "all.cpp")], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_renamed_keywords_compile_in_cpp_and_verilog(tmp_path) -> None:
    if shutil.which("g++") is None:
        pytest.skip("g++ not found")
    idents = [sanitize(n, set()) for n in ALL]
    _compiles(tmp_path, idents)
    from qfx.rtl import SimulatorError, runner

    try:
        with runner._tool_path("verilator"):
            wires = "\n".join(f"  wire [1:0] {i} = 2'd{k % 4};" for k, i in enumerate(idents))
            text = f"module names_top(output wire o);\n{wires}\n  assign o = 1'b0;\nendmodule\n"
            (tmp_path / "names.sv").write_text(text)
            proc = subprocess.run(["verilator", "--lint-only", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--sv",
                                   str(tmp_path / "names.sv")], capture_output=True, text=True)  # fmt: skip
    except SimulatorError as exc:
        pytest.skip(str(exc))
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_colliding_names_generate_working_projects(tmp_path) -> None:
    """A top named qfx_cast (it used to replace the Verilog cast library) and layers named like QFX's own
    identifiers: both backends compute the IR's codes."""
    names = {"qfx_input": "x", "fc1": "weights", "act": "initial", "fc2": "y", "act_relu": "N_INPUT",
             "fc1_matmul": "ap_fixed", "fc2_matmul": "result_t", "fc1_bias_add": "true",
             "fc2_bias_add": "input_t"}  # fmt: skip
    graph = from_qonnx(tiny_qonnx(tmp_path / "named.onnx", rename=names), name="qfx_cast")
    x = tiny_inputs(32)
    expected = np.asarray(graph.run(x))
    rtl = qfx.rtl.generate(graph, tmp_path / "rtl")
    library = (data_dir("hls") / "rtl" / "qfx_cast.v").read_text()
    assert (rtl / "qfx_cast.v").read_text() == library  # the library is not replaced by the top
    assert qfx.rtl.read_rtl(rtl)["top"] != "qfx_cast"
    if shutil.which("g++") is not None:
        project = qfx.hls.generate(graph, tmp_path / "hls")
        assert not (project / "firmware" / "weights.h").read_text().startswith("void")
        np.testing.assert_array_equal(qfx.hls.csim(project, x), expected)
    try:
        result = qfx.rtl.simulate(rtl, x)
    except qfx.rtl.SimulatorError as exc:
        pytest.skip(str(exc))
    np.testing.assert_array_equal(result.codes, expected)
