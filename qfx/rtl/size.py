"""How large a fully parallel Verilog design :func:`qfx.rtl.generate` accepts (checked before anything is built).

The RTL backend gives every multiply-accumulate, comparison and table read of the network its own logic, so the
netlist, the Verilog, and the time to simulate and synthesize it grow with the number of nonzero weights times
the positions they are applied at. The estimate is the backends' shared one (:func:`qfx.backends.unrolled_size`:
shapes and nonzero weight counts only, a fraction of a second even for a 4096 x 4096 dense layer); these are the
RTL's bounds on it.
"""

from __future__ import annotations

from qfx.backends import DesignTooLarge, SizeLimits, check_size
from qfx.ir.graph import Graph

__all__ = ["RTL_HINT", "RTL_LIMITS", "DesignTooLarge", "check_rtl_size"]

#: Measured on 2 cores: a 480 x 480 dense layer (216k terms) becomes 20 MB of Verilog in 12 s; Verilator builds
#: about 3,000 adders in 40 s, so the largest accepted design takes tens of minutes to build for simulation
#: (Yosys synthesis: longer). Weights are Verilog literals (no compile cost of their own), tables ``case``
#: functions.
RTL_LIMITS = SizeLimits(macs=131_072, constants=1 << 20, table_entries=1 << 18, elements=1 << 18)

RTL_HINT = (
    "make the model smaller (fewer channels, a smaller input, a stride or pool earlier) or fold it with the "
    "streaming HLS backend (qfx.backends.hls.stream.generate_stream)"
)


def check_rtl_size(graph: Graph) -> None:
    """Raise :class:`DesignTooLarge`, naming the largest layer, when ``graph`` exceeds :data:`RTL_LIMITS`."""
    check_size(graph, "RTL", RTL_LIMITS, RTL_HINT)
