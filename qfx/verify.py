"""The verification chain in one call: the same inputs through every link, integer output codes compared for equality.

Links, in the order a model travels: the PyTorch model, qonnx's ``execute_onnx`` on the QONNX file, the IR's
integer interpreter (the reference every other link is compared with), the HLS project's C-simulation (g++ against
the ap_fixed headers), and the RTL simulation (cocotb on Verilator or Icarus). A link is skipped only when it was
not asked for; one mismatching code anywhere makes the chain fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qfx.ir import Graph, from_qonnx

__all__ = ["ChainReport", "LinkResult", "verify_chain"]

REFERENCE = "IR interpreter"


@dataclass(frozen=True)
class LinkResult:
    """One link's outcome against the reference: how many output codes differ (``None`` when skipped)."""

    link: str
    runs_on: str
    vectors: int
    codes: int
    mismatches: int | None
    seconds: float
    note: str = ""

    @property
    def skipped(self) -> bool:
        return self.mismatches is None


@dataclass(frozen=True)
class ChainReport:
    """Every link's result; ``ok`` when no link that ran disagrees with the reference in any code."""

    links: tuple[LinkResult, ...]
    reference: str = REFERENCE

    @property
    def ok(self) -> bool:
        return all(link.mismatches == 0 for link in self.links if not link.skipped)

    def table(self) -> str:
        """A Markdown table: one row per link."""
        lines = [
            "| link | runs on | vectors | codes compared | mismatches | time (s) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in self.links:
            shown = "reference" if r.link == self.reference else ("skipped" if r.skipped else str(r.mismatches))
            note = f" ({r.note})" if r.note else ""
            lines.append(f"| {r.link} | {r.runs_on}{note} | {r.vectors} | {r.codes} | {shown} | {r.seconds:.1f} |")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"reference": self.reference, "ok": self.ok, "links": [vars(r) for r in self.links]}


def _grid_codes(values: np.ndarray, frac_bits: int) -> np.ndarray:
    """Float outputs on the output format's grid -> integer codes; a value off the grid becomes a sentinel that
    can equal no code (so it counts as a mismatch rather than being rounded into agreement)."""
    scaled = np.asarray(values, dtype=np.float64) * 2.0**frac_bits
    exact = np.isfinite(scaled) & (scaled == np.round(scaled))
    return np.where(exact, np.round(np.where(exact, scaled, 0.0)), np.nan)


def _mismatches(codes: np.ndarray, reference: np.ndarray) -> int:
    codes = np.asarray(codes, dtype=np.float64).reshape(reference.shape[0], -1)
    return int(np.count_nonzero(codes != reference.reshape(reference.shape[0], -1)))


def qonnx_codes(path: str | os.PathLike, x: np.ndarray, frac_bits: int) -> np.ndarray:
    """Output codes of qonnx's ``execute_onnx`` on the batch ``x`` (:func:`qfx.export.execute_qonnx`)."""
    from qfx.export.execute import execute_qonnx

    return _grid_codes(execute_qonnx(path, x), frac_bits)


def _float32(graph: Graph, x: np.ndarray) -> np.ndarray:
    """``x`` for a float32 graph input without changing the batch: itself when float32 holds it exactly, else the
    values of its input codes (the graph's first node casts the input, so the codes, not the doubles, are what every
    link computes from)."""
    from qfx.ir.graph import Cast
    from qfx.ir.intcast import float_codes

    x32 = x.astype(np.float32)
    if x.dtype == np.float32 or np.array_equal(x32.astype(np.float64), x):
        return x32
    first = graph.nodes[0]
    if isinstance(first, Cast) and list(first.inputs) == list(graph.inputs):
        fmt = graph.fmt(first.output)
        values = float_codes(x, fmt).astype(np.float64) * 2.0**-fmt.frac_bits
        if np.array_equal(values.astype(np.float32).astype(np.float64), values):
            return values.astype(np.float32)
    raise ValueError("the QONNX model takes float32 inputs, and these float64 inputs are not exactly float32 nor "
                     "quantized by a first cast that float32 can hold: give float32 inputs")  # fmt: skip


def _torch_codes(model, x: np.ndarray, frac_bits: int) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x))
    return _grid_codes(out.double().numpy(), frac_bits)


def _hosted_qonnx(path: Path, graph: Graph, raw: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The QONNX link of a model with host-side float steps: qonnx's float32 output on the raw inputs against the
    host's float tail applied to the reference codes, bit for bit; each output that agrees counts as its reference
    code, each that does not as no code."""
    from qfx.export.execute import execute_qonnx
    from qfx.ir import host

    n = reference.shape[0]
    frac_bits = graph.fmt(graph.outputs[0]).frac_bits
    theirs = np.asarray(execute_qonnx(path, raw), dtype=np.float32).reshape(n, -1)
    mine = host.post(graph.host_post, reference.astype(np.int64), frac_bits).reshape(n, -1)
    if theirs.shape != mine.shape:
        return np.full(reference.shape, np.nan)
    same = theirs.view(np.uint32) == mine.view(np.uint32)
    return np.where(same, reference.reshape(n, -1), np.nan)


def verify_chain(
    qonnx_path: str | os.PathLike,
    x: np.ndarray,
    *,
    model=None,
    hls_dir: str | os.PathLike | None = None,
    rtl_dir: str | os.PathLike | None = None,
    simulators: Sequence[str] = ("verilator",),
    progress: Callable[[str], None] | None = None,
) -> ChainReport:
    """Run the float batch ``x`` through every link given and compare output codes with the IR interpreter's.

    ``qonnx_path`` is the exported model; ``model`` (a QFX torch module), ``hls_dir`` (from :func:`qfx.hls.generate`)
    and ``rtl_dir`` (from :func:`qfx.rtl.generate`, simulated on each of ``simulators``) add their links.
    ``progress`` is called with each link's name before it runs. A model with host-side float steps (Brevitas'
    input pre-processing and float tail, ``graph.host_pre`` / ``host_post``) takes raw inputs ``x`` (float32): the
    host's steps make the IR's, the HLS project's and the RTL's inputs, and qonnx's float output is compared bit for
    bit with the host's float tail of the reference codes.
    """
    path = Path(qonnx_path)
    graph: Graph = from_qonnx(path)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"{path}: the chain checks models with one input and one output, not {graph.inputs}")
    x = np.asarray(x)
    if x.dtype.kind not in "f":  # integers become doubles; float64 stays float64 (a float32 copy is another batch)
        x = x.astype(np.float64)
    x = np.ascontiguousarray(x)
    frac_bits = graph.fmt(graph.outputs[0]).frac_bits
    n = x.shape[0]
    say = progress or (lambda _name: None)
    from qfx.ir import host

    moves = not graph.host_post and all(s.op in host.MOVES for s in graph.host_pre)  # e.g. a transposed input
    raw, hosted = x, bool(graph.host_pre or graph.host_post) and not moves
    if hosted:  # the host's float32 steps around the integer design (Brevitas' pre-processing, its float tail)
        raw = x.astype(np.float32)
    x = host.pre(graph.host_pre, raw) if graph.host_pre else x

    say(REFERENCE)
    start = time.perf_counter()
    reference = np.asarray(graph.run(x), dtype=np.int64).astype(np.float64)
    links = [LinkResult(REFERENCE, "numpy, integer codes", n, reference.size, 0, time.perf_counter() - start)]

    def add(link: str, runs_on: str, compute: Callable[[], tuple[np.ndarray, str]]) -> None:
        say(link)
        start = time.perf_counter()
        codes, note = compute()
        seconds = time.perf_counter() - start
        links.append(LinkResult(link, runs_on, n, reference.size, _mismatches(codes, reference), seconds, note))

    if model is not None:
        import torch

        add("PyTorch model", f"torch {torch.__version__}, CPU", lambda: (_torch_codes(model, raw, frac_bits), ""))
    if hosted:
        add("QONNX", "qonnx execute_onnx (onnxruntime)", lambda: (_hosted_qonnx(path, graph, raw, reference), "raw "
            "inputs; the host's float steps around the codes, float32 outputs compared bit for bit"))  # fmt: skip
    else:
        add("QONNX", "qonnx execute_onnx (onnxruntime)", lambda: (qonnx_codes(path, _float32(graph, raw), frac_bits),
                                                                 ""))  # fmt: skip
    if hls_dir is not None:
        from qfx.hls import csim_run

        def hls() -> tuple[np.ndarray, str]:
            result = csim_run(hls_dir, x.reshape(n, -1))
            return result.codes, "cached build" if result.cached else f"build {result.compile_s:.0f} s"

        add("HLS C-simulation", "g++, ap_fixed headers of hls4ml", hls)
    if rtl_dir is not None:
        from qfx.rtl import simulate

        for simulator in simulators:

            def rtl(simulator: str = simulator) -> tuple[np.ndarray, str]:
                result = simulate(rtl_dir, x, simulator=simulator)
                return result.codes, f"build {result.build_s:.0f} s, {result.vectors_per_s:.0f} vectors/s"

            add(f"RTL ({simulator.capitalize()})", "cocotb testbench", rtl)
    # Reference first, then the links in the order a model travels through them.
    order = ["PyTorch model", "QONNX", REFERENCE]
    links.sort(key=lambda r: order.index(r.link) if r.link in order else len(order))
    return ChainReport(tuple(links))
