"""The fully parallel plan as streaming units: every layer unrolled, one sample per clock, joined by the same
valid/ready streams and AXI4-Stream top as the folded design (:mod:`qfx.rtl.stream`), so that one writer
(:mod:`qfx.rtl.stream_generate`), one top template and one testbench serve both.

Each IR node becomes a combinational layer module (:mod:`qfx.rtl.lower`: exact wires, adder graphs, ``qfx_cast``;
``hls/templates/rtl/layers.v.j2``) wrapped in a *stage* unit (``stream/stage.v.j2``): a register with valid/ready
after every ``register_every``-th layer (a sample per clock, the ready path combinational), the other stages
pure wiring. Every stream carries a whole tensor in one word. Where branches of different register depth meet (a
residual add), the earlier tensor passes through delay stages, so that both arrive in the same clock; a tensor
read by several units goes through an eager fork. The latency is the register stages on the way to the output.
"""

from __future__ import annotations

from collections.abc import Callable

from qfx.ir.constants import printable, sanitize
from qfx.ir.graph import Graph, Reshape
from qfx.rtl.layer import Layer
from qfx.rtl.lower import lower_node
from qfx.rtl.stream import RtlDesign

__all__ = ["TOP_NAMES", "render_parallel"]

#: names the AXI4-Stream top declares itself (stream/top.v.j2)
TOP_NAMES = ("ap_clk", "ap_rst_n", "rst", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "m_axis_tdata",
             "m_axis_tvalid", "m_axis_tready")  # fmt: skip


def _ports(count: int) -> list[str]:
    return ["s"] + [f"s{k + 1}" for k in range(1, count)]


def render_parallel(
    fused: Graph, top: str, register_every: int, env, lower: Callable[..., Layer] = lower_node
) -> tuple[RtlDesign, list[Layer], int]:
    """(the units, streams and modules of the fully parallel design of the cast-fused ``fused``; its layer modules
    for layers.v.j2; its latency in clocks). ``lower(graph, node, module)`` builds a layer module."""
    taken = {top, *TOP_NAMES}
    out = RtlDesign()
    first = fused.nodes[0]
    width = {t: v.size * v.fmt.width for t, v in fused.tensors.items() if v.fmt is not None}
    stream = {first.output: sanitize("t_" + first.output, taken)}  # tensor -> the stream carrying it
    stage = {first.output: 0}  # tensor -> its register stage
    bits = {stream[first.output]: width[first.output]}  # stream -> bits
    readers: dict[str, list[tuple[int, str]]] = {}  # stream -> (unit index, port) reading it
    delayed: dict[tuple[str, int], str] = {}
    layers: list[Layer] = []
    delay_modules: dict[int, str] = {}
    out.streams.append(dict(name=stream[first.output], bits=width[first.output], fifo=0, comment="input"))

    def read(s: str, unit: int, port: str) -> None:
        readers.setdefault(s, []).append((unit, port))

    def new_stream(name: str, b: int, comment: str) -> str:
        s = sanitize(name, taken)
        bits[s] = b
        out.streams.append(dict(name=s, bits=b, fifo=0, comment=printable(comment)))
        return s

    def at_stage(tensor: str, s: int) -> str:
        """The stream of ``tensor`` delayed to register stage ``s`` (delay stages made on demand)."""
        name, have = stream[tensor], stage[tensor]
        while have < s:
            have += 1
            key = (tensor, have)
            if key not in delayed:
                w = width[tensor]
                if w not in delay_modules:
                    delay_modules[w] = sanitize(f"{top}_delay_{w}", taken)
                    out.modules[delay_modules[w]] = env.get_template("stream/stage.v.j2").render(
                        u=dict(node=f"{w}-bit words", op="delay", module=delay_modules[w], layer=None,
                               registered=True, bits=w, inputs=[dict(port="s", bits=w)]))  # fmt: skip
                delayed[key] = new_stream(f"{name}_d{have - stage[tensor]}", w,
                                          f"{tensor} one clock later, to meet a branch in stage {have}")  # fmt: skip
                out.units.append(dict(module=delay_modules[w], inst=sanitize(f"u_{delayed[key]}", taken),
                                      node=printable(tensor), op="delay", ports=[("m", delayed[key])]))  # fmt: skip
                read(name, len(out.units) - 1, "s")
            name = delayed[key]
        return name

    count = 0
    for node in fused.nodes[1:]:
        if isinstance(node, Reshape):  # the same bits in the same order: the input's stream
            stream[node.output], stage[node.output] = stream[node.inputs[0]], stage[node.inputs[0]]
            continue
        count += 1
        layer = lower(fused, node, sanitize(f"{top}_{node.name}", taken))
        s_in = max(stage[t] for t in node.inputs)
        sources = [at_stage(t, s_in) for _, t, _ in layer.inputs]
        layer.node, layer.output = printable(layer.node), (printable(layer.output[0]), layer.output[1])
        layer.inputs = [(port, printable(tensor), w) for port, tensor, w in layer.inputs]
        registered = register_every > 0 and count % register_every == 0
        module = sanitize(f"{layer.module}_stage", taken)
        ports = _ports(len(sources))
        inputs = [dict(port=p, bits=bits[s], layer_port=lp)
                  for p, s, (lp, _, _) in zip(ports, sources, layer.inputs, strict=True)]  # fmt: skip
        out.modules[module] = env.get_template("stream/stage.v.j2").render(
            u=dict(node=layer.node, op=node.op, module=module, layer=layer.module, registered=registered,
                   bits=layer.output[1], inputs=inputs))  # fmt: skip
        what = f"{node.output}: {fused.tensors[node.output].size} x {layer.out_fmt}"
        stream[node.output] = new_stream("t_" + node.output, layer.output[1], what)
        stage[node.output] = s_in + registered
        out.units.append(dict(module=module, node=layer.node, op=node.op, ports=[("m", stream[node.output])]))
        for p, s in zip(ports, sources, strict=True):
            read(s, len(out.units) - 1, p)
        layers.append(layer)
        out.layers.append(dict(node=layer.node, op=layer.op, module=module, layer_module=layer.module,
                               multipliers=layer.multipliers, registered=registered))  # fmt: skip
        out.multipliers += layer.multipliers
    output = stream[fused.outputs[0]]
    read(output, -1, "top")
    _forks(out, readers, bits, taken, env, top)
    return out, layers, stage[fused.outputs[0]]


def _forks(out: RtlDesign, readers: dict[str, list[tuple[int, str]]], bits: dict[str, int], taken: set[str], env,
           top: str) -> None:  # fmt: skip
    """Connect every stream to its readers: one reader directly, several through an eager fork. A reader -1 is the
    top's output port, which reads the stream named ``out.output``."""
    for s, rs in readers.items():
        if len(rs) == 1:
            unit, port = rs[0]
            if unit < 0:
                out.output = s
            else:
                out.units[unit]["ports"].append((port, s))
            continue
        module = sanitize(f"{top}_{s}_fork", taken)
        out.modules[module] = env.get_template("stream/fork.v.j2").render(
            u=dict(node=s, module=module, outputs=len(rs), bits=bits[s]))
        fork_ports = [("s", s)]
        for k, (unit, port) in enumerate(rs):
            branch = sanitize(f"{s}_r{k}", taken)
            out.streams.append(dict(name=branch, bits=bits[s], fifo=0, comment=f"{s}, reader {k + 1} of {len(rs)}"))
            fork_ports.append((f"m{k}", branch))
            if unit < 0:
                out.output = branch
            else:
                out.units[unit]["ports"].append((port, branch))
        out.units.append(dict(module=module, node=s, op="fork", ports=fork_ports))
