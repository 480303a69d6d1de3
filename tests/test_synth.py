"""qfx.synth: Yosys synth_xilinx cell counts per layer and in total, family and board handling, the cache, errors.

The designs are hand-written Verilog in ``tests/synth_fixtures`` (copied to a temporary folder, since Yosys' files
go next to the sources). Each Yosys run takes 5-10 s, so the runs are shared through module-scoped fixtures.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qfx import synth
from qfx.boards import load_board
from qfx.synth import CellCounts, classify

FIXTURES = Path(__file__).parent / "synth_fixtures"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the fixture designs, with a cache folder beside them."""
    root = tmp_path_factory.mktemp("synth")
    for name in ("hier", "mul", "bad"):
        shutil.copytree(FIXTURES / name, root / name)
    return root


@pytest.fixture(scope="module")
def hier_xc7(work: Path) -> synth.SynthReport:
    return synth.report(work / "hier", cache=work / "cache")


def test_hierarchy_per_layer_counts(hier_xc7: synth.SynthReport) -> None:
    r = hier_xc7
    assert (r.family, r.top, r.board, r.utilization, r.cached) == ("xc7", "hier", None, {}, False)
    assert list(r.layers) == ["sa_a", "mul"]
    assert r.modules == {"sa_a": "hier_sa", "mul": "hier_mul"}
    mul, sa = r.layers["mul"], r.layers["sa_a"]
    assert mul.dsp >= 1  # a multiply of two variables goes to a DSP slice
    assert sa.dsp == 0 and sa.lut > 0 and sa.carry > 0  # shifts and adds: LUTs and carry chains only
    assert r.total.dsp == mul.dsp
    # The top's own logic (a registered 14-bit sum) is the rest: layers plus glue add up to the total.
    glue = synth._difference(r.total, mul + sa)
    assert glue.lut > 0 and glue.ff == 14 and glue.carry > 0
    assert r.yosys_s > 0 and r.log_path is not None and r.log_path.is_file()
    table = r.table()
    assert "| sa_a | hier_sa |" in table and "| (top) | hier |" in table and "| **total** | hier |" in table
    assert "% of" not in table
    # logic depth per layer (Yosys ltp after mapping): a path of at least one cell in each layer, in the table
    assert set(r.depth) == {"sa_a", "mul"} and all(d >= 1 for d in r.depth.values())
    assert table.splitlines()[0].endswith("| depth |") and f"| {r.depth['sa_a']} |" in table


def test_module_instantiated_twice_counts_twice(work: Path, hier_xc7: synth.SynthReport) -> None:
    # The same folder, its marker overridden by top=: one instance of the shift-add module on its own.
    one = synth.report(work / "hier", top="hier_sa", sources=["blocks.v"], cache=False)
    assert one.top == "hier_sa" and one.total.lut > 0 and one.total.ff == 13
    assert hier_xc7.layers["sa_a"] == one.total.times(2)
    assert one.layers == {}  # layer modules of the marker are not under this top


def test_folder_without_marker(work: Path) -> None:
    r = synth.report(work / "mul", top="mul8", cache=False)  # sources: every *.v in the folder
    assert r.total.dsp == 1 and r.total.lut == 0 and r.total.carry == 0
    assert r.layers == {}


def test_folder_without_marker_loads_its_memory_images(tmp_path: Path) -> None:
    """Other Verilog that reads a ROM image with $readmemh: the image next to it goes to Yosys too (512 x 36 bits
    with a registered read is one RAMB18 of block RAM, half a RAMB36)."""
    rows = [(k * 2654435761) % (1 << 36) for k in range(512)]
    (tmp_path / "rom.mem").write_text("".join(f"{w:09x}\n" for w in rows))
    (tmp_path / "rom.v").write_text(
        "module rom(input wire clk, input wire [8:0] a, output reg [35:0] q);\n"
        "    reg [35:0] m [0:511];\n    initial $readmemh(\"rom.mem\", m);\n"
        "    always @(posedge clk) q <= m[a];\nendmodule\n"
    )
    r = synth.report(tmp_path, "xcup", top="rom", cache=False)
    assert r.total.bram == 0.5 and r.total.lut == 0


def test_board_sets_family_and_utilization(work: Path) -> None:
    board = load_board("zcu104")
    r = synth.report(work / "hier", board="ZCU104", cache=False)
    assert r.family == "xcup" == board.yosys_family and r.board == board
    assert r.layers["mul"].dsp >= 1 and r.layers["sa_a"].dsp == 0
    assert r.utilization == board.utilization(
        {"lut": r.total.lut + r.total.lutram + r.total.srl, "ff": r.total.ff, "dsp": r.total.dsp, "bram": 0}
    )
    assert 0 < r.utilization["lut"] < 1 and 0 < r.utilization["dsp"] < 1
    assert "| % of zcu104 |" in r.table()


def test_cache_hit_runs_no_yosys(work: Path, hier_xc7: synth.SynthReport, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_yosys(*args: object, **kwargs: object) -> None:
        raise AssertionError("Yosys ran although the result is cached")

    monkeypatch.setattr(synth, "_run_yosys", no_yosys)
    again = synth.report(work / "hier", cache=work / "cache")
    assert again.cached and again.total == hier_xc7.total and again.layers == hier_xc7.layers
    assert again.yosys_s == hier_xc7.yosys_s and again.log_path is not None and again.log_path.is_file()
    assert again.wall_s == 0 and again.jobs == hier_xc7.jobs == 3  # one Yosys run per module: hier, hier_sa, hier_mul
    entries = list((work / "cache").glob("*.json"))
    assert len(entries) == 3 and all(len(e.stem) == 64 for e in entries)  # sha256 of a module's files + family
    # a module is keyed by its own files: the multiplier as a top of its own is the same job, already cached
    alone = synth.report(work / "hier", top="hier_mul", sources=["blocks.v"], cache=work / "cache")
    assert alone.cached and alone.total == hier_xc7.layers["mul"]


def test_same_modules_under_other_names_come_from_the_cache(
    work: Path, hier_xc7: synth.SynthReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys leave a module's own name out: the same design with every module renamed (as a regenerated streaming
    design whose top has another name) is all cached, its black boxes renamed with it."""

    def no_yosys(*args: object, **kwargs: object) -> None:
        raise AssertionError("Yosys ran although every module is cached under another name")

    monkeypatch.setattr(synth, "_run_yosys", no_yosys)
    copy = tmp_path / "renamed"
    shutil.copytree(FIXTURES / "hier", copy)
    for f in list(copy.iterdir()):
        text = f.read_text().replace("hier", "other")
        f.unlink()
        (copy / f.name.replace("hier", "other")).write_text(text)
    again = synth.report(copy, cache=work / "cache")
    assert again.cached and again.top == "other" and again.modules == {"sa_a": "other_sa", "mul": "other_mul"}
    assert again.total == hier_xc7.total and again.layers == hier_xc7.layers and again.depth == hier_xc7.depth


def test_per_module_counts_equal_the_whole_design(work: Path, hier_xc7: synth.SynthReport) -> None:
    whole = synth.report(work / "hier", cache=work / "cache", per_module=False)
    assert whole.jobs == 1 and not whole.cached
    assert whole.total == hier_xc7.total and whole.layers == hier_xc7.layers and whole.depth == hier_xc7.depth


def test_cache_key_follows_module_contents_and_family(
    work: Path, hier_xc7: synth.SynthReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake_yosys(cmd: list[str], script: Path, cwd: Path, log_path: Path, *rest: object) -> None:
        calls.append(cwd.name)
        raise RuntimeError("stub")

    monkeypatch.setattr(synth, "_run_yosys", fake_yosys)
    copy = tmp_path / "hier"
    shutil.copytree(FIXTURES / "hier", copy)
    top = copy / "hier.v"
    top.write_text(top.read_text() + "// outside every module: the same modules, all cached\n")
    assert synth.report(copy, cache=work / "cache").cached and not calls
    top.write_text(top.read_text().replace("y0 + y1", "y0 - y1"))
    with pytest.raises(RuntimeError, match="stub"):
        synth.report(copy, cache=work / "cache")
    assert calls == ["hier_xc7"]  # only the top changed: its layers' modules come from the cache
    with pytest.raises(RuntimeError, match="stub"):
        synth.report(work / "hier", "xcup", cache=work / "cache", workers=1)
    assert len(calls) >= 2 and all(c.endswith("_xcup") for c in calls[1:])  # another family: nothing cached
    assert synth.report(work / "hier", cache=work / "cache").cached  # the unchanged design still hits


def test_split_stream_design_into_module_jobs() -> None:
    """A streaming unit with a ROM and qfx_cast instances: one job per plain module, parameterized modules inline,
    the units as black boxes in the top's job, each ROM image with the unit that reads it."""
    from qfx.synth_jobs import split

    lib = (
        "module qfx_cast #(parameter IW = 8) (input wire [IW-1:0] a, output wire [IW-1:0] y);\n"
        "  assign y = a;\nendmodule\n"
    )
    units = (
        "`default_nettype none\n// module in a comment\nmodule t_u1_fold (\n    input  wire clk,\n"
        '    output reg [7:0] m_data\n);\n  reg [7:0] rom [0:3];\n  initial $readmemh("t_u1.mem", rom);\n'
        "  wire [7:0] y0;\n  qfx_cast #(.IW(8)) c0 (.a(rom[0]), .y(y0));\n"
        "  always @(posedge clk) m_data <= y0;\nendmodule\n`default_nettype wire\n"
    )
    top = "module t (input wire clk, output wire [7:0] y);\n  t_u1_fold u (.clk(clk), .m_data(y));\nendmodule\n"
    sources = {"qfx_cast.v": lib.encode(), "t_units.v": units.encode(), "t.v": top.encode(), "t_u1.mem": b"01\n"}
    jobs = {j.top: j for j in split(sources, "t", flatten=False)}
    assert set(jobs) == {"t", "t_u1_fold"}
    assert jobs["t"].stubs == ("t_u1_fold",) and set(jobs["t"].files) == {"t.v"}
    assert "(* blackbox *)" in jobs["t"].files["t.v"].decode() and "qfx_cast" not in jobs["t"].files["t.v"].decode()
    unit = jobs["t_u1_fold"]
    assert unit.stubs == () and set(unit.files) == {"t_u1_fold.v", "t_u1.mem"}
    assert "module qfx_cast" in unit.files["t_u1_fold.v"].decode()
    assert [j.whole for j in split(sources, "t", flatten=True)] == [True]
    macro = {**sources, "t.v": b"`define W 8\n" + top.encode()}
    assert [j.whole for j in split(macro, "t", flatten=False)] == [True]  # the preprocessor: one whole-design run


def test_family_validation(work: Path) -> None:
    with pytest.raises(ValueError, match=r"'xc7', 'xcup'.*not 'xc6s'"):
        synth.report(work / "hier", "xc6s")
    with pytest.raises(ValueError, match="not 'XC7'"):
        synth.report(work / "hier", family="XC7")


def test_missing_folder_marker_and_source(work: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        synth.report(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"qfx_rtl\.json"):
        synth.report(work / "mul")
    with pytest.raises(FileNotFoundError, match=r"missing\.v"):
        synth.report(work / "hier", sources=["blocks.v", "missing.v"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Verilog sources"):
        synth.report(tmp_path / "empty", top="x")


def test_yosys_failure_reports_log_tail(work: Path) -> None:
    # the module is synthesized on its own, from a file of its text (line 2 of it is line 3 of the source)
    with pytest.raises(RuntimeError, match=r"(?s)Yosys failed.*broken\.v:2: ERROR: syntax error") as info:
        synth.report(work / "bad", top="broken", cache=False)
    with pytest.raises(RuntimeError, match=r"(?s)Yosys failed.*broken\.v:3: ERROR: syntax error"):
        synth.report(work / "bad", top="broken", cache=False, per_module=False)
    log = work / "bad" / "yosys" / "broken_xc7.log"
    assert str(log) in str(info.value) and log.is_file()  # the log is kept


def test_classify_cell_types() -> None:
    cells = {
        "LUT1": 1, "LUT6": 2, "FDRE": 3, "FDCE": 1, "CARRY4": 2, "CARRY8": 1, "DSP48E2": 1, "RAMB18E1": 1,
        "RAMB36E2": 2, "RAM32M": 1, "RAM64X1D": 1, "SRL16E": 2, "SRLC32E": 1, "MUXF7": 1, "URAM288": 1, "BUFG": 1,
        "INV": 2, "$scopeinfo": 3,
    }  # fmt: skip
    c = classify(cells)
    assert c == CellCounts(lut=5, ff=4, carry=3, dsp=1, bram=2.5, lutram=6, srl=3, muxf=1, uram=1, other={"BUFG": 1})
    assert c.total_luts == 14 and c.resources()["lut"] == 14
    assert c + c == c.times(2)


def test_timeout_stops_yosys(work: Path) -> None:
    with pytest.raises(RuntimeError, match="timeout"):
        synth.report(work / "hier", timeout=0.2, cache=False)


def test_depth_of_a_layer_includes_its_submodules(tmp_path: Path) -> None:
    """A fully parallel layer is a stage unit around the layer's combinational module: the layer's depth is that
    module's adder tree and cast, not the stage's handshake alone."""
    import numpy as np

    import qfx.rtl
    from qfx.format import FixedFormat
    from qfx.ir.graph import Cast, Dense, Graph, Relu, Tensor

    f, h = FixedFormat(8, 3), FixedFormat(8, 4)
    t = {"x": Tensor("x", (16,), None), "q": Tensor("q", (16,), f), "d": Tensor("d", (8,), h),
         "r": Tensor("r", (8,), h)}  # fmt: skip
    w = np.random.default_rng(0).integers(-100, 100, size=(8, 16))
    nodes = [Cast("in", ["x"], "q", f), Dense("fc", ["q"], "d", FixedFormat(24, 12), weight=w,
                                               weight_fmt=FixedFormat(8, 2)), Relu("relu", ["d"], "r", h)]  # fmt: skip
    rtl = qfx.rtl.generate(Graph(t, nodes, ["x"], ["r"], name="deep"), tmp_path / "deep")
    r = synth.report(rtl, "xcup", cache=False)
    assert r.modules["fc"].endswith("_stage")
    assert r.depth["fc"] > r.depth["relu"] >= 1
