"""Which layers of a fully parallel design to build as adder graphs instead of DSP multiplies.

Plain constant weights normally become one ``*`` per weight (a DSP slice each, or LUTs where the synthesizer
decides). Built multiplier-free (canonical signed digits and shared sub-sums, :mod:`qfx.rtl.cmvm`) they take no
DSP at all, at a cost in LUTs. This is worth it where DSPs are the scarce resource: :func:`multiplier_free_layers`
picks the layers to move so that the plan's DSPs fit the board. It is kept apart from the cost model
(:mod:`qfx.plan.cost`), whose DSP estimate it reads and does not change.
"""

from __future__ import annotations

from qfx.plan import Plan

__all__ = ["multiplier_free_layers"]


def multiplier_free_layers(p: Plan) -> frozenset[str]:
    """Layers of ``p`` to build without multipliers: when the plan's DSPs exceed the board's usable share
    (``margin`` of its DSP slices), the layers with the most DSPs first, until the rest fit; none otherwise."""
    limit = p.margin * p.board.resources.dsp
    used = p.total.dsp
    chosen = []
    for la in sorted(p.layers, key=lambda la: (-la.estimate.dsp, la.node)):
        if used <= limit or la.estimate.dsp == 0:
            break
        chosen.append(la.node)
        used -= la.estimate.dsp
    return frozenset(chosen)
