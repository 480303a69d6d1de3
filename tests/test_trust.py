"""Data files never run code: QONNX domains are checked before qonnx imports anything, board files are validated
and every string from them is escaped in the generated TCL, cfg and Markdown."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
import pytest
from test_robustness import edit_qonnx, tiny_qonnx

from qfx.boards import BoardError, load_board
from qfx.ir import IRError, from_qonnx
from qfx.safety import check_part, md_escape, tcl_quote

EVIL = "import pathlib\npathlib.Path(__file__).with_name('PWNED').write_text('ran')\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_qonnx(tmp_path_factory.mktemp("trust") / "tiny.onnx")


def _evil_domain(model: onnx.ModelProto) -> None:
    node = next(n for n in model.graph.node if n.op_type == "Relu")
    node.domain = "evil_ops"
    model.opset_import.add(domain="evil_ops", version=1)


@pytest.mark.parametrize("entry", ["from_qonnx", "qonnx_codes"])
def test_unknown_domain_is_refused_before_qonnx_imports_it(entry, tiny, tmp_path, monkeypatch) -> None:
    (tmp_path / "evil_ops.py").write_text(EVIL)
    bad = edit_qonnx(tiny, tmp_path / "bad.onnx", _evil_domain)
    monkeypatch.syspath_prepend(str(tmp_path))  # the attacker's module is importable, as beside a file in cwd
    monkeypatch.chdir(tmp_path)
    if entry == "from_qonnx":
        with pytest.raises(IRError, match="evil_ops"):
            from_qonnx(bad)
    else:
        import numpy as np

        from qfx.safety import UntrustedInput
        from qfx.verify import qonnx_codes

        with pytest.raises(UntrustedInput, match="evil_ops"):
            qonnx_codes(bad, np.zeros((1, 16), dtype=np.float32), 0)
    assert "evil_ops" not in sys.modules
    assert not (tmp_path / "PWNED").exists()


def test_unknown_domain_through_the_cli(tiny, tmp_path, monkeypatch, capsys) -> None:
    from qfx.cli import EXIT_USAGE, main

    (tmp_path / "evil_ops.py").write_text(EVIL)
    bad = edit_qonnx(tiny, tmp_path / "bad.onnx", _evil_domain)
    monkeypatch.syspath_prepend(str(tmp_path))
    for argv in (["hls", str(bad), "-o", str(tmp_path / "prj")], ["verify", str(bad), "--limit", "2"]):
        assert main([*argv, "-q"]) == EXIT_USAGE
        assert "evil_ops" in capsys.readouterr().err
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "prj").exists()


BOARD = """name = "{name}"
title = "{title}"
vendor = "Me"
family = "Zynq"
yosys_family = "xc7"
part = "{part}"
clock_period_ns = 10.0
[resources]
lut = 100
ff = 100
dsp = 1
bram = 1
"""


def _board(tmp_path: Path, name="mine", title="My board", part="xc7z020clg400-1") -> Path:
    path = tmp_path / f"{name if name.isidentifier() else 'b'}.toml"
    path.write_text(BOARD.format(name=name, title=title, part=part))
    return path


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("part", "xc7z020clg400-1\\nexec sh -c {touch PWNED}", "control character"),
        ("part", "xc7z020 ; exec sh", "not a part name"),
        ("part", "xc7[exec sh]", "not a part name"),
        ("title", "Board\\nexec sh -c {touch PWNED}", "control character"),
        ("title", "Board\\u0007", "control character"),
        ("name", "a b", "name"),
    ],
)
def test_board_files_are_validated(field, value, message, tmp_path) -> None:
    path = _board(tmp_path, **{field: value})
    with pytest.raises(BoardError, match=message):
        load_board(path)


def test_board_strings_are_escaped_in_generated_files(tiny, tmp_path) -> None:
    from qfx.hls import generate

    title = "Lab [exec touch PWNED] $env(HOME) `x` *b* \\\\"
    board = load_board(_board(tmp_path, title=title.replace("\\", "\\\\")))
    assert board.title == title
    out = generate(from_qonnx(tiny), tmp_path / "prj", board=board, tool="vitis")
    tcl = (out / "build_prj.tcl").read_text()
    first = tcl.splitlines()[0]
    assert first.startswith("#") and first.endswith("ns clock.")  # the title stays in its comment
    assert 'set_part "xc7z020clg400-1"' in tcl
    assert not first.rstrip().endswith("\\")
    readme = (out / "README.md").read_text()
    assert "\\[exec touch PWNED\\]" in readme and "\\*b\\*" in readme
    cfg = (out / "hls_config.cfg").read_text().splitlines()
    assert cfg[0].startswith("#") and cfg[3] == "part=xc7z020clg400-1"


def test_escaping_helpers() -> None:
    assert tcl_quote('a"b[c]$d{e}\\') == '"a\\"b\\[c\\]\\$d\\{e\\}\\\\"'
    assert md_escape("a|b*c") == "a\\|b\\*c"
    for part in ("xc7z020clg400-1", "xczu3eg-sbva484-1-i", "xcu250-figd2104-2L-e", "xcvc1902-vsva2197-2MP-e-S"):
        assert check_part(part) == part


def test_report_tables_escape_cells_from_results_json() -> None:
    from qfx.report import Table

    table = Table(["model", "acc"], [["evil | <script>x</script>\nnext", "1"]]).markdown().splitlines()
    assert len(table) == 3 and table[2].count(" | ") == 1  # one row, two cells: the pipe and newline stay inside
    assert "<script>" not in table[2] and "\\|" in table[2]


@pytest.mark.parametrize("folder", ["hls", "rtl"])
@pytest.mark.parametrize("inside", ["results.json", "sub/results.json", "link/results.json"])
def test_verify_record_inside_the_verified_folder_is_refused(folder, inside, tiny, tmp_path, capsys) -> None:
    """`qfx verify --hls/--rtl DIR --record DIR/...` would change the very folder it vouches for: refused before any
    work, naming the path (also through a symbolic link that leads into the folder)."""
    from test_cli import assert_one_line_error

    from qfx.cli import EXIT_USAGE, main

    checked = tmp_path / folder
    (checked / "sub").mkdir(parents=True)
    (checked / "sub" / "keep.txt").write_text("unchanged")
    (tmp_path / "link").symlink_to(checked / "sub")
    record = (tmp_path if inside.startswith("link") else checked) / inside
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["verify", str(tiny), f"--{folder}", str(checked), "--limit", "2", "--record", str(record),
                 "-q"]) == EXIT_USAGE  # fmt: skip
    assert_one_line_error(capsys.readouterr().err, str(record), f"--{folder} folder", "choose another output")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_verify_record_beside_the_verified_folder_is_allowed(tiny, tmp_path) -> None:
    from qfx.guard import refuse_inside

    (tmp_path / "hls").mkdir()
    refuse_inside([("--record", tmp_path / "hls-results.json")], [("--hls folder", tmp_path / "hls")])
    refuse_inside([("--record", tmp_path / "results.json")], [("--hls folder", tmp_path / "hls")])
