"""The hardware plan: how parallel each layer is, what it costs, and whether the network fits the board.

``plan(graph, board)`` folds the network FINN-style: it finds the fastest balanced pipeline (every layer's cycles
per sample at or below one common target) that fits the board's LUT, FF, DSP and BRAM within a margin; with
``target_fps`` it takes the least resources that reach that throughput instead. Per-layer ``overrides`` fix a
layer's :class:`Folding`. A network that cannot fit even fully folded is refused with the layer that does not fit
and its estimate. The fully parallel design (every multiply-accumulate its own logic, one sample per clock) is the
plan with maximal parallelism. Nothing here imports torch; the emitters render a plan, they decide nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from qfx.boards import Board, load_board
from qfx.ir.graph import Concat, Graph, Mul, Reshape, is_channel_gate
from qfx.ir.passes import fuse_casts
from qfx.plan.cost import Estimate, Folding, Work, estimate, fifo_estimate, work_of

__all__ = ["Estimate", "Folding", "LayerPlan", "Plan", "PlanError", "choose_architecture", "fully_parallel", "plan"]

DEFAULT_MARGIN = 0.8  # use at most this fraction of each board resource
RESOURCES = ("lut", "ff", "dsp", "bram")


class PlanError(ValueError):
    """The network cannot be planned as asked (it does not fit, or an override is invalid); names the layer."""


@dataclass(frozen=True)
class LayerPlan:
    """One node's folding, cycles per sample, latency to its first output and resource estimate."""

    node: str
    op: str
    folding: Folding
    cycles: int
    latency: int
    macs: int
    weights: str  # where the constants live: "none", "logic", "rom"
    estimate: Estimate
    max_folding: Folding


@dataclass(frozen=True)
class Plan:
    """A folded network for a board; ``cycles`` (the slowest layer) is the initiation interval per sample."""

    graph: str
    board: Board
    layers: tuple[LayerPlan, ...]
    fifo_depths: dict[str, int] = field(default_factory=dict)
    margin: float = DEFAULT_MARGIN
    fifos: Estimate = field(default_factory=Estimate)  # FIFOs deeper than 2 words (cost.fifo_estimate)

    @property
    def cycles(self) -> int:
        return max((la.cycles for la in self.layers), default=1)

    @property
    def latency(self) -> int:
        """Clocks from a sample's first input to its last output (estimate)."""
        return sum(la.latency for la in self.layers) + self.cycles

    @property
    def total(self) -> Estimate:
        out = self.fifos
        for la in self.layers:
            out = out + la.estimate
        return out

    @property
    def fps(self) -> float:
        """Samples per second at the board's clock."""
        return self.board.clock_mhz * 1e6 / self.cycles

    def utilization(self) -> dict[str, float]:
        """Percent of each board resource the estimate takes."""
        return {k: v for k, v in self.board.utilization(self.total.as_dict()).items() if k in RESOURCES}

    @property
    def fits(self) -> bool:
        return all(v <= 100 * self.margin for v in self.utilization().values())

    def table(self) -> str:
        """The plan as a Markdown table, one row per layer, then the totals."""
        b = self.board.resources
        rows = ["| layer | op | PE x SIMD x pixels | cycles | MACs | weights | LUT | FF | DSP | BRAM |",
                "|---|---|---|---:|---:|---|---:|---:|---:|---:|"]  # fmt: skip
        for la in self.layers:
            f, e = la.folding, la.estimate
            rows.append(f"| {la.node} | {la.op} | {f.pe} x {f.simd} x {f.pixels} | {la.cycles:,} | {la.macs:,} | "
                        f"{la.weights} | {e.lut:,} | {e.ff:,} | {e.dsp:,} | {e.bram:g} |")  # fmt: skip
        if self.fifos != Estimate():
            e = self.fifos
            rows.append(f"| (FIFOs) | fifo | | | | | {e.lut:,} | {e.ff:,} | {e.dsp:,} | {e.bram:g} |")
        t, u = self.total, self.utilization()
        rows.append(f"| **total** | | | **{self.cycles:,}** | {sum(la.macs for la in self.layers):,} | | "
                    f"{t.lut:,} ({u['lut']:.1f} %) | {t.ff:,} ({u['ff']:.1f} %) | {t.dsp:,} ({u['dsp']:.1f} %) | "
                    f"{t.bram:g} ({u['bram']:.1f} %) |")  # fmt: skip
        rows.append("")
        rows.append(f"{self.board.title}: {b.lut:,} LUT, {b.ff:,} FF, {b.dsp} DSP, {b.bram} BRAM36 at "
                    f"{self.board.clock_mhz:g} MHz; {self.cycles:,} cycles per sample = {self.fps:,.0f} samples/s; "
                    f"latency about {self.latency:,} cycles. Estimates are first-order (docs/plan.md).")  # fmt: skip
        return "\n".join(rows)

    def as_dict(self) -> dict:
        """JSON-able form (for results.json and reports)."""
        return dict(
            graph=self.graph, board=self.board.name, cycles=self.cycles, fps=self.fps, latency=self.latency,
            total=self.total.as_dict(), utilization=self.utilization(), fits=self.fits, margin=self.margin,
            fifo_depths=self.fifo_depths, fifos=self.fifos.as_dict(),
            layers=[dict(node=la.node, op=la.op, pe=la.folding.pe, simd=la.folding.simd, pixels=la.folding.pixels,
                         cycles=la.cycles, latency=la.latency, macs=la.macs, weights=la.weights,
                         **la.estimate.as_dict()) for la in self.layers],
        )  # fmt: skip


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def _candidates(work: Work) -> list[Folding]:
    """Foldings of a node: every PE x SIMD (divisors). Output positions stay one per clock: the streaming units
    take one pixel per stream word (only the fully parallel design, :func:`fully_parallel`, unrolls them). Units
    that move values (pad, upsample, concat) and a per-channel gate take a whole word per clock: one folding."""
    if work.kind in ("move", "gate"):
        return [Folding(work.pe_dim, 1)]
    return [Folding(pe, simd) for pe in _divisors(work.pe_dim) for simd in _divisors(work.simd_dim)]


def _latency(work: Work, f: Folding, cycles: int) -> int:
    """Clocks from the node's first input to its first output: the line-buffer fill (a global sum: its whole
    map), one output's sum, the pipeline (an adder tree of depth log2 SIMD, a cast)."""
    fill = 0
    if work.kind == "sum" and not work.window and work.positions > 1:  # a global sum: out after the whole map
        fill = cycles
    if work.line_buffer_bits and work.in_bits:
        row_bits = work.line_buffer_bits  # (kernel rows - 1) rows of the input
        fill = math.ceil(cycles * min(1.0, row_bits / max(1, row_bits + work.in_bits * work.positions)))
    one_output = (work.pe_dim // f.pe) * (work.simd_dim // f.simd) if work.kind in ("mac", "xnor") else 1
    stages = (work.kind == "mac") + (f.simd > 1) if work.kind in ("mac", "xnor", "sum") else 0  # term, sum registers
    stages += 2 * (work.kind == "softmax")  # max and exponentials, their sum's index, before the products
    return fill + one_output + math.ceil(math.log2(max(1, f.simd))) + 3 + stages


def _weights(work: Work, f: Folding) -> str:
    if work.kind not in ("mac", "xnor", "affine", "threshold"):
        return "none"
    return "logic" if f.pe == work.pe_dim and f.simd == work.simd_dim else "rom"


def _layer(work: Work, f: Folding, full: Folding, streaming: bool = True) -> LayerPlan:
    cycles = work.cycles(f, streaming)
    return LayerPlan(work.node, work.op, f, cycles, _latency(work, f, cycles), work.macs, _weights(work, f),
                     estimate(work, f, streaming), full)  # fmt: skip


def _cost(e: Estimate, board: Board) -> float:
    r = board.resources
    return (
        e.lut / r.lut
        + e.ff / r.ff
        + (e.dsp / r.dsp if r.dsp else 1e9 * e.dsp)
        + (e.bram / r.bram if r.bram else 1e9 * e.bram)
    )


#: Clocks a word spends between two units besides their latencies: the fan-out copy's register, or a FIFO's
#: memory and output register (a path through more units arrives later by this much per unit).
STREAM_HOP = 2


def _fifo_depths(graph: Graph, layers: dict[str, LayerPlan]) -> dict[str, int]:
    """Elements each stream must buffer: 2, or, where paths of different latency meet (a residual add, a
    concatenation), enough to hold the faster path's elements while the slower one catches up."""
    arrival: dict[str, int] = {t: 0 for t in graph.inputs}
    rate: dict[str, float] = {t: 1.0 for t in graph.inputs}  # elements per clock
    depths: dict[str, int] = {}
    after_gate: set[str] = set()  # tensors computed after a per-channel gate
    for node in graph.nodes:
        la = layers.get(node.name)
        start = max(arrival.get(t, 0) for t in node.inputs)
        gated = isinstance(node, Mul) and bool(_run_values(graph, node, 0))
        if gated:  # a per-channel gate: its map waits for all the gate's values, computed from the same map
            gate = node.inputs[1]
            start = max(start, arrival.get(gate, 0) + math.ceil(graph.tensors[gate].size / rate.get(gate, 1.0)))
        if gated or any(t in after_gate for t in node.inputs):
            after_gate.add(node.output)
        if len(node.inputs) > 1:
            for k, t in enumerate(node.inputs):
                behind = start - arrival.get(t, 0)
                run = _run_values(graph, node, k)
                need = math.ceil(behind * rate.get(t, 1.0)) + 2 + run
                # a path through a gate may lag by more than a map (the maps of several samples); others by less
                cap = need if node.output in after_gate else max(2, graph.tensors[t].size + run)
                depths[t] = min(max(2, 1 << (need - 1).bit_length()), cap)
        for t in node.inputs:
            depths.setdefault(t, 2)
        arrival[node.output] = start + (la.latency if la else 0) + (STREAM_HOP if la else 0)
        cycles = la.cycles if la else 1
        rate[node.output] = graph.tensors[node.output].size / max(1, cycles)
    return depths


def _run_values(graph: Graph, node, k: int) -> int:
    """Values input ``k`` delivers while the others are read. A per-channel gate's map: the whole map (its gate
    comes after a global pool of the same map). A concatenation along rows or columns: along rows,
    the first input's map (its producer runs on while the others are read) and twice the others' (a map waits for
    the first input's, the next sample's follows); along columns, its row; 0 for any other node (read word by
    word)."""
    if isinstance(node, Mul) and k == 0:
        gate = graph.tensors[node.inputs[1]].shape
        return graph.tensors[node.inputs[0]].size if is_channel_gate(graph.tensors[node.inputs[0]].shape, gate) else 0
    if not isinstance(node, Concat) or node.axis == 0:
        return 0
    shape = graph.tensors[node.inputs[k]].shape
    if len(shape) == 3 and node.axis == 1:
        return graph.tensors[node.inputs[k]].size * (1 if k == 0 else 2)
    return shape[0] * shape[-1]


def _assemble(graph: Graph, board: Board, chosen: dict[str, LayerPlan], margin: float) -> Plan:
    layers = tuple(chosen[n.name] for n in graph.nodes if n.name in chosen)
    depths = _fifo_depths(graph, chosen)
    streaming = any(la.cycles > 1 for la in layers)  # the fully parallel design has no FIFOs
    return Plan(graph.name, board, layers, depths, margin, fifo_estimate(graph, depths) if streaming else Estimate())


def _fits(e: Estimate, board: Board, margin: float) -> bool:
    r = board.resources
    return e.lut <= margin * r.lut and e.ff <= margin * r.ff and e.dsp <= margin * r.dsp and e.bram <= margin * r.bram


def fully_parallel(graph: Graph, board: str | Board = "ultra96v2", margin: float = DEFAULT_MARGIN) -> Plan:
    """The plan of the fully parallel design: every node fully unrolled, one sample per clock."""
    board = board if isinstance(board, Board) else load_board(board)
    graph = fuse_casts(graph)
    chosen = {}
    for node in graph.nodes:
        if isinstance(node, Reshape):
            continue
        w = work_of(graph, node)
        full = Folding(w.pe_dim, w.simd_dim, w.positions)
        chosen[node.name] = _layer(w, full, full, streaming=False)
    return _assemble(graph, board, chosen, margin)


def plan(
    graph: Graph,
    board: str | Board = "ultra96v2",
    *,
    target_fps: float | None = None,
    overrides: Mapping[str, Folding] | None = None,
    margin: float = DEFAULT_MARGIN,
    parallel: bool = True,
) -> Plan:
    """Fold ``graph`` for ``board``: the fastest balanced pipeline that fits (or the cheapest reaching
    ``target_fps``), within ``margin`` of every resource. Raises :class:`PlanError` naming what does not fit.

    Without ``target_fps`` or ``overrides``, the fully parallel design (one sample per clock) is the fastest of
    all: it is chosen when it fits (``parallel=False`` leaves it out, for a backend that cannot unroll the
    network); with a ``target_fps`` no streaming folding reaches, it is the answer if it fits."""
    board = board if isinstance(board, Board) else load_board(board)
    graph = fuse_casts(graph)
    if not 0 < margin <= 1:
        raise PlanError(f"margin must be in (0, 1], not {margin!r}")
    overrides = dict(overrides or {})
    names = {n.name for n in graph.nodes}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise PlanError(f"overrides name node {unknown[0]!r}, which the graph does not have")
    options: dict[str, list[LayerPlan]] = {}
    for node in graph.nodes:
        if isinstance(node, Reshape):
            continue
        w = work_of(graph, node)
        full = Folding(w.pe_dim, w.simd_dim, w.positions)
        if node.name in overrides:
            try:
                w.check(overrides[node.name])
            except ValueError as e:
                raise PlanError(str(e)) from None
            options[node.name] = [_layer(w, overrides[node.name], full)]
        else:
            options[node.name] = sorted((_layer(w, f, full) for f in _candidates(w)),
                                        key=lambda la: (_cost(la.estimate, board), -la.cycles))  # fmt: skip

    def at(target: int) -> dict[str, LayerPlan] | None:
        chosen = {}
        for name, opts in options.items():
            ok = [la for la in opts if la.cycles <= target]
            if not ok:
                return None
            chosen[name] = ok[0]  # cheapest first
        return chosen

    slowest = max(max(la.cycles for la in opts) for opts in options.values())
    if target_fps is not None:
        if not target_fps > 0:
            raise PlanError(f"target_fps must be > 0, not {target_fps!r}")
        target = math.floor(board.clock_mhz * 1e6 / target_fps)
        if target < 1:
            raise PlanError(f"{target_fps:g} samples/s is faster than one sample per clock at {board.clock_mhz:g} MHz")
        chosen = at(max(target, 1))
        if chosen is None and parallel and not overrides:
            full = fully_parallel(graph, board, margin)
            if full.fits:
                return full
        if chosen is None:
            raise PlanError(f"no folding reaches {target_fps:g} samples/s (fixed overrides are too slow)")
        result = _assemble(graph, board, chosen, margin)
        if not result.fits:
            raise PlanError(_too_large(result, f"at {target_fps:g} samples/s"))
        return result
    if parallel and not overrides:
        full = fully_parallel(graph, board, margin)
        if full.fits:
            return full
    cheapest = _assemble(graph, board, at(slowest), margin)
    if not cheapest.fits:
        raise PlanError(_too_large(cheapest, "even at the slowest folding"))
    targets = sorted({la.cycles for opts in options.values() for la in opts if la.cycles <= slowest})
    lo, hi = 0, len(targets) - 1  # targets[hi] fits; find the smallest that does
    while lo < hi:
        mid = (lo + hi) // 2
        chosen = at(targets[mid])
        if chosen is not None and _fits(sum((la.estimate for la in chosen.values()), Estimate()), board, margin):
            hi = mid
        else:
            lo = mid + 1
    return _assemble(graph, board, at(targets[hi]), margin)


def choose_architecture(
    graph: Graph, board: str | Board, given: Plan | None, unrollable: Callable[[Graph], bool]
) -> tuple[str, Plan | None]:
    """("parallel", None) when the plan (``given``, else the board's plan) is one sample per clock and the backend
    can unroll the network (``unrollable``), else ("stream", a plan that folds it). Both emitters decide by this."""
    chosen = given if given is not None else plan(graph, board)
    if chosen.cycles == 1:
        if unrollable(graph):
            return "parallel", None
        chosen = plan(graph, board, parallel=False)  # fits the board by the estimate, but too large to unroll
    return "stream", chosen


def _too_large(p: Plan, when: str) -> str:
    """One line: the most over-used resource, the layer that takes most of it, the totals."""
    limits = {k: getattr(p.board.resources, k) * p.margin for k in RESOURCES}
    over = max(RESOURCES, key=lambda k: getattr(p.total, k) / limits[k] if limits[k] else math.inf)
    worst = max(p.layers, key=lambda la: getattr(la.estimate, over))
    names = {"lut": "LUTs", "ff": "flip-flops", "dsp": "DSPs", "bram": "BRAM36"}
    total = getattr(p.board.resources, over)
    return (
        f"the network does not fit the {p.board.title} {when}: it needs {getattr(p.total, over):,g} {names[over]} "
        f"(layer {worst.node} alone {getattr(worst.estimate, over):,g}); the board has {total:,} "
        f"({int(p.margin * 100)} % usable: {limits[over]:,.0f})"
    )
