"""Board files: every bundled board validates, names and aliases resolve, and each bad input gives one exact error."""

import math
import re
from pathlib import Path

import pytest

from qfx.boards import Board, BoardError, Resources, boards_dir, list_boards, load_board

BUNDLED = sorted(boards_dir().glob("*.toml"))

GOOD = """\
name = "myboard"
title = "My Board"
vendor = "Me"
family = "Artix-7"
yosys_family = "xc7"
part = "xc7a35ticsg324-1L"
clock_period_ns = 8

[resources]
lut = 20800
ff = 41600
dsp = 90
bram = 50
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "foo.toml"
    path.write_text(text)
    return path


def expect_error(path: Path, msg: str) -> None:
    with pytest.raises(BoardError, match=f"^{re.escape(f'{path}: {msg}')}$"):
        load_board(path)


def test_bundled_folder_has_the_expected_boards() -> None:
    names = {p.stem for p in BUNDLED}
    assert {"ultra96v2", "pynq_z2", "zcu104", "arty_a7_100t", "alveo_u250"} <= names


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_board_is_valid(path: Path) -> None:
    board = load_board(path.stem)
    assert board == load_board(path)
    assert board.name == path.stem
    res = board.resources
    assert min(res.lut, res.ff, res.dsp, res.bram) > 0
    assert res.ff == 2 * res.lut  # every AMD 7-series / UltraScale+ CLB has two flip-flops per LUT
    assert 1.0 <= board.clock_period_ns <= 20.0
    assert board.url is None or board.url.startswith("https://")
    # The part number decides the Yosys family: xc7* is 7-series, xczu*/xcu*/xcvu* UltraScale+.
    part = board.part.lower()
    if part.startswith("xc7"):
        assert board.yosys_family == "xc7" and res.uram == 0
    else:
        assert re.match(r"xc(zu|u|vu|ku)\d", part), part
        assert board.yosys_family == "xcup"


def test_data_sheet_totals() -> None:
    """Spot checks against DS891 / DS190 / DS180 / DS962, so a typo in a file cannot pass the generic checks."""
    assert load_board("ultra96v2").resources == Resources(70_560, 141_120, 360, 216)
    assert load_board("pynq_z2").resources == Resources(53_200, 106_400, 220, 140)
    assert load_board("zcu104").resources == Resources(230_400, 460_800, 1_728, 312, 96)
    assert load_board("arty_a7_100t").resources == Resources(63_400, 126_800, 240, 135)
    assert load_board("alveo_u250").resources == Resources(1_728_000, 3_456_000, 12_288, 2_688, 1_280)


def test_list_boards_sorted() -> None:
    names = [b.name for b in list_boards()]
    assert names == sorted(p.stem for p in BUNDLED)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("Ultra96-V2", "ultra96v2"),
        ("ultra96-v2", "ultra96v2"),
        ("ULTRA96V2", "ultra96v2"),
        ("pynq-z2", "pynq_z2"),
        ("PYNQ Z2", "pynq_z2"),
        ("arty-a7-100t", "arty_a7_100t"),
        ("u250", "alveo_u250"),
        ("alveo-u250", "alveo_u250"),
        ("ZCU104", "zcu104"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    assert load_board(alias).name == name


def test_unknown_board() -> None:
    known = ", ".join(p.stem for p in BUNDLED)
    msg = f"unknown board 'ultra69'; known boards: {known}"
    with pytest.raises(BoardError, match=f"^{re.escape(msg)}$"):
        load_board("ultra69")


def test_user_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    board = load_board(path)
    assert load_board(str(path)) == board
    assert board == Board(
        "myboard", "My Board", "Me", "Artix-7", "xc7", "xc7a35ticsg324-1L", 8.0, Resources(20800, 41600, 90, 50)
    )
    assert isinstance(board.clock_period_ns, float)
    assert board.clock_mhz == 125.0


@pytest.mark.parametrize(
    ("old", "new", "msg"),
    [
        ('part = "xc7a35ticsg324-1L"\n', "", "field 'part' is missing"),
        ("dsp = 90", "dsp = -3", "resources.dsp must be an int >= 0, not -3"),
        ("bram = 50", "bram = 1.5", "resources.bram must be an int >= 0, not 1.5"),
        ("lut = 20800\n", "", "field 'resources.lut' is missing"),
        ('"xc7"', '"xc9"', "yosys_family must be 'xc7' or 'xcup', not 'xc9'"),
        ("part =", "prat =", "unknown field 'prat' (did you mean 'part'?)"),
        ("ff =", "fff =", "unknown field 'resources.fff' (did you mean 'resources.ff'?)"),
        ("clock_period_ns = 8", "clock_period_ns = 0", "clock_period_ns must be a number > 0, not 0"),
        ('title = "My Board"', "title = 3", "title must be a non-empty string, not 3"),
    ],
)
def test_bad_field(tmp_path: Path, old: str, new: str, msg: str) -> None:
    assert old in GOOD
    expect_error(write(tmp_path, GOOD.replace(old, new, 1)), msg)


def test_resources_not_a_table(tmp_path: Path) -> None:
    expect_error(write(tmp_path, GOOD.split("[resources]")[0] + "resources = 1\n"), "resources must be a table, not 1")


def test_malformed_toml(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('part = "xc7a35ticsg324-1L"', 'part "xc7a35ticsg324-1L"'))
    expect_error(path, "invalid TOML: Expected '=' after a key in a key/value pair (at line 6, column 6)")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match=r"nope\.toml: cannot read board file: No such file or directory$"):
        load_board(tmp_path / "nope.toml")


def test_bundled_error_names_boards_folder() -> None:
    path = boards_dir() / "does_not_exist.toml"
    with pytest.raises(BoardError, match=r"^boards/does_not_exist\.toml: cannot read"):
        load_board(path)


def test_utilization() -> None:
    board = load_board("pynq_z2")  # 53,200 LUT, 106,400 FF, 220 DSP, 140 BRAM, no URAM
    util = board.utilization(Resources(lut=26_600, ff=10_640, dsp=55, bram=7))
    assert util == {"lut": 50.0, "ff": 10.0, "dsp": 25.0, "bram": 5.0, "uram": 0.0}
    partial = board.utilization({"dsp": 220, "bram": 3.5})  # missing resources count as 0; half BRAMs are fine
    assert partial == {"lut": 0.0, "ff": 0.0, "dsp": 100.0, "bram": 2.5, "uram": 0.0}
    assert math.isinf(board.utilization({"uram": 1})["uram"])
    assert load_board("zcu104").utilization({"uram": 24})["uram"] == 25.0
    with pytest.raises(ValueError, match="unknown resource 'luts'"):
        board.utilization({"luts": 1})
