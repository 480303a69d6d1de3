"""IR graph (or QFX model) -> hls4ml ``ModelGraph`` whose ``compile()`` + ``predict()`` equal the IR bit for bit.

Every precision of every hls4ml layer is set from the IR (input, results with their quantization and overflow
modes, accumulators = the nodes' exact ``acc``, weights, biases, scales), then read back after hls4ml's optimizers
ran; a difference is an error. The IR is NCHW, hls4ml's ``io_parallel`` layers channels-last: images are (H, W, C),
conv weights (KH, KW, C_in, C_out), dense weights (in, out), and flattening an image with several channels and
pixels goes through a ``Transpose`` to NCHW order; :func:`hls4ml_codes` transposes inputs and outputs.
hls4ml (the ``sim`` extra) is imported only inside the functions, torch only for a model. See docs/hls4ml.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qfx.backends.output import check_target, staged_folder
from qfx.export.hls4ml_types import Hls4mlExportError, _check, _cpp, _values, hls4ml_codes, hls4ml_precision
from qfx.format import FixedFormat
from qfx.ir.constants import sanitize
from qfx.ir.graph import (
    Add,
    Affine,
    ArgMax,
    Cast,
    Clip,
    Concat,
    Conv2d,
    Dense,
    GlobalSum,
    Graph,
    LeakyRelu,
    Lookup,
    MaxPool2d,
    Mul,
    Node,
    Pad,
    Relu,
    Reshape,
    Softmax,
    SumPool2d,
    Threshold,
    Upsample,
)
from qfx.ir.passes import fuse_casts

__all__ = ["MARKER", "Hls4mlExportError", "hls4ml_codes", "hls4ml_precision", "to_hls4ml"]

#: File QFX writes into each hls4ml project: layouts and output formats (for :func:`hls4ml_codes`).
MARKER = "qfx_hls4ml.json"
BACKENDS = ("Vivado", "Vitis")  # ap_fixed backends with the nnet templates checked here
IO_TYPES = ("io_parallel", "io_stream")
_ONE = FixedFormat(1, 1, signed=False)  # holds 0 and 1: a missing bias, shift or scale


# ------------------------------------------------------------------------------------------------------ lowering
@dataclass
class _Loc:
    """Where an IR tensor lives in hls4ml: the layer producing it and that layer's (channels-last) shape."""

    layer: str
    shape: tuple[int, ...]


def _channels_last(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape


def _mixed(ir_shape: tuple[int, ...], hls_shape: tuple[int, ...]) -> bool:
    """True when hls4ml's flat order differs from NCHW: an (H, W, C) image with several channels and pixels."""
    return len(ir_shape) == 3 and len(hls_shape) == 3 and ir_shape[0] > 1 and ir_shape[1] * ir_shape[2] > 1


_REFUSED = {
    Clip: "hls4ml has no clip between two bounds (only ReLU clipped at 1 or 6, which the IR calls Relu)",
    Lookup: "hls4ml's sigmoid/tanh read their own 1,024-entry tables over a fixed input range, not QFX's table "
    "of every input code; keep it in QFX's own HLS backend (qfx.hls.generate)",
    Softmax: "hls4ml's softmax uses its own exp/inverse tables and formats, not QFX's fixed-point softmax; keep it "
    "in QFX's own HLS backend (qfx.hls.generate), or quantize with softmax='argmax' or 'logits'",
    ArgMax: "hls4ml has no argmax layer; quantize with softmax='logits' and take the argmax on the host",
    Threshold: "hls4ml has no per-channel threshold layer with an output table (a float batch norm before a "
    "quantizer, made exact); its BatchNormalization + activation is float-approximate; keep it in QFX's own HLS "
    "backend (qfx.hls.generate)",
}


class _Lowering:
    """Walks the cast-fused IR graph and produces hls4ml layer dicts and, per layer, the precisions to set."""

    def __init__(self, graph: Graph) -> None:
        self.g = fuse_casts(graph)
        self.layers: list[dict] = []
        self.types: dict[str, dict[str, FixedFormat]] = {}
        self.where: dict[str, _Loc] = {}
        self.names: set[str] = {"input"}
        self.consumers = {t: [n for n in self.g.nodes if t in n.inputs] for t in self.g.tensors}
        self.skip: set[str] = set()  # nodes folded into the layer of the node before them
        self.inputs: list[str] = []

    def fail(self, node: Node, why: str) -> Hls4mlExportError:
        return Hls4mlExportError(f'node "{node.name}": {why}')

    def add(self, kind: str, name: str, inputs: list[str], types: dict, **attrs) -> str:
        """Append an hls4ml layer dict; ``types`` are its precisions by variable (result, accum, weight, ...)."""
        name = sanitize(name, self.names)
        self.layers.append({"class_name": kind, "name": name, "inputs": inputs, **attrs})
        self.types[name] = types
        return name

    def reshape(self, name: str, src: str, shape: tuple[int, ...], fmt: FixedFormat) -> str:
        return self.add("Reshape", name, [src], {"result": fmt}, target_shape=list(shape))

    def transpose(self, name: str, src: str, perm: list[int], fmt: FixedFormat) -> str:
        return self.add("Transpose", name, [src], {"result": fmt}, perm=perm)

    def fmt(self, tensor: str) -> FixedFormat:
        return self.g.tensors[tensor].fmt

    # ---------------------------------------------------------------------------------------------- layouts
    def image(self, tensor: str, node: Node) -> _Loc:
        """``tensor`` as an (H, W, C) hls4ml tensor (inserting a reshape / transpose when it is flat)."""
        ir = self.g.tensors[tensor].shape
        if len(ir) != 3:
            one_d = f"1-D feature maps such as {list(ir)} are not exported to hls4ml; qfx.hls.generate takes them"
            raise self.fail(node, one_d if len(ir) == 2 else f"expects a (C, H, W) input, not {list(ir)}")
        loc, want = self.where[tensor], _channels_last(ir)
        if loc.shape == want:
            return loc
        fmt = self.fmt(tensor)
        if not _mixed(ir, want):  # same flat order either way
            return _Loc(self.reshape(f"{loc.layer}_hwc", loc.layer, want, fmt), want)
        chw = self.reshape(f"{loc.layer}_chw", self.flat(tensor, node).layer, ir, fmt)
        return _Loc(self.transpose(f"{chw}_hwc", chw, [1, 2, 0], fmt), want)

    def flat(self, tensor: str, node: Node) -> _Loc:
        """``tensor`` as a 1-D hls4ml tensor in NCHW order (a transpose first when it is a mixed image)."""
        loc, ir, fmt = self.where[tensor], self.g.tensors[tensor].shape, self.fmt(tensor)
        if len(loc.shape) == 1:
            return loc
        src = loc.layer
        if _mixed(ir, loc.shape):  # (via a 2-D reshape, so that hls4ml keeps the transpose: see the docs)
            src = self.transpose(f"{src}_chw", src, [2, 0, 1], fmt)
            src = self.reshape(f"{src}_2d", src, (ir[0], ir[1] * ir[2]), fmt)
        size = int(np.prod(ir))
        return _Loc(self.reshape(f"{src}_flat", src, (size,), fmt), (size,))

    # ---------------------------------------------------------------------------------------------- nodes
    def run(self) -> None:
        for name in self.g.inputs:
            users = self.consumers[name]
            if len(users) != 1 or not isinstance(users[0], Cast):
                raise Hls4mlExportError(
                    f'input "{name}": hls4ml converts its float input once, into the input layer\'s type, so the '
                    "input must be read by exactly one cast (a quantizer)"
                )
            cast = users[0]
            shape = _channels_last(self.g.tensors[name].shape)
            layer = self.add("InputLayer", name, [], {"result": self.fmt(cast.output)}, input_shape=list(shape))
            self.inputs.append(layer)
            self.where[cast.output] = _Loc(layer, shape)
            self.skip.add(cast.name)
        for node in self.g.nodes:
            if node.name not in self.skip:
                self.visit(node)

    def visit(self, node: Node) -> None:
        out = node.output
        res = self.fmt(out)
        shape = self.g.tensors[out].shape
        if isinstance(node, Cast):  # a cast hls4ml cannot fold into a layer: an assignment in a linear activation
            self.activation(node, "linear", res)
        elif isinstance(node, Dense):
            self.dense(node, res)
        elif isinstance(node, Conv2d):
            self.conv(node, res)
        elif isinstance(node, Affine):
            self.affine(node, res)
        elif isinstance(node, (Add, Mul)):
            if isinstance(node, Mul) and self.g.tensors[node.inputs[0]].shape != self.g.tensors[node.inputs[1]].shape:
                raise self.fail(node, "a feature map times a per-channel gate is not exported to hls4ml (its Merge "
                                "multiplies tensors of one shape); qfx.hls.generate takes it")  # fmt: skip
            a, b = (self.where[t] for t in node.inputs)
            if a.shape != b.shape:  # one is flat, the other an image: meet in the image layout
                a, b = self.image(node.inputs[0], node), self.image(node.inputs[1], node)
            op = "multiply" if isinstance(node, Mul) else "subtract" if node.subtract else "add"
            name = self.add("Merge", node.name, [a.layer, b.layer], {"result": res}, op=op)
            self.where[out] = _Loc(name, a.shape)
        elif isinstance(node, Relu):
            self.relu(node, res)
        elif isinstance(node, MaxPool2d):
            x_fmt = self.fmt(node.inputs[0])
            if any(node.padding) and not x_fmt.signed:
                raise self.fail(node, f"hls4ml pads a max pool with the code whose MSB alone is set, which for the "
                                f"unsigned {x_fmt} is a large value, not one below every input")  # fmt: skip
            self.pool(node, res, "MaxPooling2D", x_fmt)  # a max is exact in the input's type
        elif isinstance(node, (SumPool2d, GlobalSum)):
            self.average(node)
        elif isinstance(node, (Pad, Upsample, Concat, LeakyRelu)):
            getattr(self, node.op)(node, res)
        elif isinstance(node, (Clip, Lookup, Softmax, ArgMax, Threshold)):
            raise self.fail(node, _REFUSED[type(node)])
        elif isinstance(node, Reshape):
            if len(shape) == 1:
                self.where[out] = self.flat(node.inputs[0], node)
            elif len(shape) == 3:
                self.where[out] = self.reshaped_image(node, shape)
            else:
                raise self.fail(node, f"reshape to rank {len(shape)} has no channels-last layout in hls4ml")
        else:
            raise self.fail(node, f"hls4ml export has no rule for {type(node).__name__}")

    def reshaped_image(self, node: Reshape, shape: tuple[int, ...]) -> _Loc:
        flat = self.flat(node.inputs[0], node)
        fmt, want = self.fmt(node.output), _channels_last(shape)
        if not _mixed(shape, want):
            return _Loc(self.reshape(node.name, flat.layer, want, fmt), want)
        chw = self.reshape(f"{node.name}_chw", flat.layer, shape, fmt)
        return _Loc(self.transpose(node.name, chw, [1, 2, 0], fmt), want)

    def activation(self, node: Node, kind: str, res: FixedFormat, layer: str | None = None) -> None:
        """An activation reading ``node``'s input (or, given ``layer``, its output) and writing its output."""
        loc = self.where[node.output if layer else node.inputs[0]]
        size = int(np.prod(loc.shape))
        types = {"result": res, "table": res}  # relu / linear read no lookup table; set it all the same
        name = self.add("Activation", layer or node.name, [loc.layer], types, activation=kind, n_in=size)
        self.where[node.output] = _Loc(name, loc.shape)

    def relu(self, node: Relu, res: FixedFormat) -> None:
        if node.max_code is None:
            return self.activation(node, "relu", res)
        top = node.max_code * 2.0**-node.acc.frac_bits
        if top not in (1.0, 6.0):
            raise self.fail(node, f"a ReLU clipped at {top:g}: hls4ml's clipped ReLUs stop at 1 (relu1) or 6 (relu6)")
        return self.activation(node, f"relu{int(top)}", res)

    def leaky_relu(self, node: LeakyRelu, res: FixedFormat) -> None:
        """hls4ml's ``leaky_relu``: ``x > 0 ? x : alpha * x`` with alpha a ``param_t`` constant (exact product)."""
        loc = self.where[node.inputs[0]]
        alpha = float(_values(np.array([node.alpha]), node.alpha_fmt)[0])
        types = {"result": res, "table": res, "param": node.alpha_fmt}
        name = self.add("LeakyReLU", node.name, [loc.layer], types, activation="leakyrelu", activ_param=alpha,
                        n_in=int(np.prod(loc.shape)))  # fmt: skip
        self.where[node.output] = _Loc(name, loc.shape)

    def moved(self, node: Node, name: str, shape: tuple[int, ...], res: FixedFormat) -> None:
        """After a layer whose result keeps its input's type (padding, resize): the output cast, if any."""
        self.where[node.output] = _Loc(name, shape)
        if res != self.fmt(node.inputs[0]):
            self.activation(node, "linear", res, layer=f"{name}_cast")

    def pad(self, node: Pad, res: FixedFormat) -> None:
        loc = self.image(node.inputs[0], node)
        (h, w, c), (_, ho, wo) = loc.shape, self.g.tensors[node.output].shape
        top, left, bottom, right = node.padding
        name = self.add("ZeroPadding2D", node.name, [loc.layer], {"result": self.fmt(node.inputs[0])},
                        data_format="channels_last", in_height=h, in_width=w, out_height=ho, out_width=wo, n_chan=c,
                        pad_top=top, pad_bottom=bottom, pad_left=left, pad_right=right)  # fmt: skip
        self.moved(node, name, (ho, wo, c), res)

    def upsample(self, node: Upsample, res: FixedFormat) -> None:
        """hls4ml's ``resize_nearest`` (index ``(j * (2**16 * W // W_out + 1)) >> 16``): equals ``j // s`` for an
        integer scale s while ``W_out * s < 2**16`` (the ratio's error times j stays below 1/s)."""
        loc = self.image(node.inputs[0], node)
        (h, w, c), (_, ho, wo) = loc.shape, self.g.tensors[node.output].shape
        if max(ho * node.scale[0], wo * node.scale[1]) >= 1 << 16:
            raise self.fail(node, f"hls4ml's nearest resize indexes {ho}x{wo} outputs with a 16-bit ratio: not exact")
        name = self.add("Resize", node.name, [loc.layer], {"result": self.fmt(node.inputs[0])},
                        data_format="channels_last", in_height=h, in_width=w, out_height=ho, out_width=wo, n_chan=c,
                        algorithm="nearest", align_corners=False)  # fmt: skip
        self.moved(node, name, (ho, wo, c), res)

    def concat(self, node: Concat, res: FixedFormat) -> None:
        """hls4ml's Concatenate takes two inputs (each value assigned to the result type): more inputs chain
        through results in the node's exact ``acc``."""
        ir = self.g.tensors[node.output].shape
        if len(ir) == 3:
            locs = [self.image(t, node) for t in node.inputs]
            axis = {0: -1, 1: 1, 2: 2}[node.axis]  # hls4ml's (H, W, C) with the batch counted, as Keras
        elif len(ir) == 1:
            locs, axis = [self.flat(t, node) for t in node.inputs], -1
        else:
            raise self.fail(node, f"hls4ml export concatenates (C, H, W) maps or vectors, not shape {list(ir)}")
        if len(locs) == 1:
            return self.activation(node, "linear", res)
        dim = axis if axis < 0 else axis - 1
        layer, shape = locs[0].layer, list(locs[0].shape)
        for k, loc in enumerate(locs[1:], start=1):
            last = k == len(locs) - 1
            shape[dim] += loc.shape[dim]
            name = node.name if last else f"{node.name}_part{k}"
            layer = self.add("Concatenate", name, [layer, loc.layer], {"result": res if last else node.acc},
                             op=f"concatenate{len(shape)}d", axis=axis)  # fmt: skip
        self.where[node.output] = _Loc(layer, tuple(shape))

    def dense(self, node: Dense, res: FixedFormat) -> None:
        loc = self.flat(node.inputs[0], node)
        n_out, n_in = node.weight.shape
        bias, bias_fmt = (node.bias, node.bias_fmt) if node.bias is not None else (np.zeros(n_out, np.int64), _ONE)
        name = self.add(
            "Dense", node.name, [loc.layer],
            {"result": res, "accum": node.acc, "weight": node.weight_fmt, "bias": bias_fmt},
            n_in=n_in, n_out=n_out, weight_data=_values(node.weight, node.weight_fmt).T.copy(),
            bias_data=_values(bias, bias_fmt),
        )  # fmt: skip
        self.where[node.output] = _Loc(name, (n_out,))

    def conv(self, node: Conv2d, res: FixedFormat) -> None:
        if node.groups != 1:
            raise self.fail(node, f"a grouped convolution (groups={node.groups}) is not exported to hls4ml")
        if node.dilation != (1, 1):
            raise self.fail(node, f"hls4ml's Conv2D has no dilation (dilation={list(node.dilation)})")
        loc = self.image(node.inputs[0], node)
        c_out, c_in, kh, kw = node.weight.shape
        (h, w, _), (_, ho, wo) = loc.shape, self.g.tensors[node.output].shape
        top, left, bottom, right = node.padding
        bias, bias_fmt = (node.bias, node.bias_fmt) if node.bias is not None else (np.zeros(c_out, np.int64), _ONE)
        shape = (ho, wo, c_out)
        name = self.add(
            "Conv2D", node.name, [loc.layer],
            {"result": res, "accum": node.acc, "weight": node.weight_fmt, "bias": bias_fmt},
            data_format="channels_last", in_height=h, in_width=w, out_height=ho, out_width=wo, n_chan=c_in,
            n_filt=c_out, filt_height=kh, filt_width=kw, stride_height=node.stride[0], stride_width=node.stride[1],
            pad_top=top, pad_bottom=bottom, pad_left=left, pad_right=right, dilation=1,
            weight_data=_values(node.weight, node.weight_fmt).transpose(2, 3, 1, 0).copy(),
            bias_data=_values(bias, bias_fmt),
        )  # fmt: skip
        self.where[node.output] = _Loc(name, shape)

    def affine(self, node: Affine, res: FixedFormat) -> None:
        loc = self.where[node.inputs[0]]
        ir = self.g.tensors[node.inputs[0]].shape
        channels = ir[0]
        scale, scale_fmt = (node.scale, node.scale_fmt) if node.scale is not None else (np.ones(channels, int), _ONE)
        shift, shift_fmt = (node.shift, node.shift_fmt) if node.shift is not None else (np.zeros(channels, int), _ONE)
        s, b = _values(scale, scale_fmt), _values(shift, shift_fmt)
        if np.all(s == 1) and np.all(b == 0):  # hls4ml deletes such a batch norm: it is only the cast
            return self.activation(node, "linear", res)
        if _mixed(ir, _channels_last(ir)):
            loc, n_filt = self.image(node.inputs[0], node), channels
        else:  # NCHW and hls4ml order agree: one scale per element, n_filt = -1
            per = int(np.prod(ir[1:], dtype=np.int64))
            s, b, n_filt = np.repeat(s, per), np.repeat(b, per), -1
        name = self.add(
            "BatchNormalization", node.name, [loc.layer],
            {"result": res, "scale": scale_fmt, "bias": shift_fmt},
            n_in=int(np.prod(loc.shape)), n_filt=n_filt, scale_data=s, bias_data=b,
        )  # fmt: skip
        self.where[node.output] = _Loc(name, loc.shape)

    def pool(self, node: MaxPool2d | SumPool2d, res: FixedFormat, kind: str, accum: FixedFormat, **kw) -> None:
        loc = self.image(node.inputs[0], node)
        (h, w, c), (_, ho, wo) = loc.shape, self.g.tensors[node.output].shape
        top, left, bottom, right = node.padding
        shape = (ho, wo, c)
        name = self.add(
            kind, node.name, [loc.layer], {"result": res, "accum": accum},
            data_format="channels_last", in_height=h, in_width=w, out_height=ho, out_width=wo, n_filt=c,
            pool_height=node.kernel[0], pool_width=node.kernel[1], stride_height=node.stride[0],
            stride_width=node.stride[1], pad_top=top, pad_bottom=bottom, pad_left=left, pad_right=right, **kw,
        )  # fmt: skip
        self.where[node.output] = _Loc(name, shape)

    def average(self, node: SumPool2d | GlobalSum) -> None:
        """A window / global sum followed by a multiplication by 2**-k, k = log2(window): hls4ml's average pooling
        (sum in ``accum_t``, then ``/= 2**k``, exact with k more fraction bits)."""
        shape = self.g.tensors[node.inputs[0]].shape
        area = int(np.prod(node.kernel if isinstance(node, SumPool2d) else shape[1:]))
        users = self.consumers[node.output]
        scale = users[0] if len(users) == 1 and isinstance(users[0], Affine) else None
        k = area.bit_length() - 1
        exact = (
            scale is not None and node.output not in self.g.outputs and scale.shift is None
            and scale.scale is not None and area == 1 << k
            and np.all(_values(scale.scale, scale.scale_fmt) == 2.0**-k) and self.fmt(node.output) == node.acc
        )  # fmt: skip
        if not exact:
            raise self.fail(
                node, "hls4ml has no exact window sum: its average pooling divides by the window size, which QFX "
                "can only match when the sum is followed by a multiplication by 1/size, a power of two (an average "
                "pool over 2**k values)"
            )  # fmt: skip
        acc = node.acc
        accum = FixedFormat(acc.width + k, acc.int_bits, acc.signed)  # the sum, then k more fraction bits
        res = self.fmt(scale.output)
        self.skip.add(scale.name)
        if isinstance(node, SumPool2d):
            self.pool(node, res, "AveragePooling2D", accum, count_pad=True)
        else:
            loc = self.image(node.inputs[0], node)
            h, w, c = loc.shape
            name = self.add("GlobalAveragePooling2D", node.name, [loc.layer], {"result": res, "accum": accum},
                            data_format="channels_last", in_height=h, in_width=w, n_filt=c)  # fmt: skip
            self.where[node.output] = _Loc(name, (c,))
        self.where[scale.output] = self.where.pop(node.output)


# ------------------------------------------------------------------------------------------------------ building
def _graph_of(source: Any, example_input: Any) -> Graph:
    """The IR graph of ``source``: itself, or a QFX torch model exported to QONNX and read back."""
    if isinstance(source, Graph):
        return source
    import torch  # only a model needs it

    from qfx.export.qonnx import export_qonnx
    from qfx.ir.qonnx import from_qonnx

    if not isinstance(source, torch.nn.Module):
        raise TypeError(f"source must be a qfx.ir.Graph or a QFX torch model, not {type(source).__name__}")
    if example_input is None:
        raise ValueError("a torch model needs example_input (a batch of its inputs) to fix the shapes")
    with tempfile.TemporaryDirectory(prefix="qfx_hls4ml_") as tmp:
        path = export_qonnx(source, torch.as_tensor(example_input)[:1], Path(tmp) / "model.onnx")
        return from_qonnx(path, name="qfx_model")


def _layer_config(low: _Lowering, precision: Any) -> dict:
    """hls4ml's per-layer config: each layer's precisions, made by ``precision(fmt)``."""
    layers = {}
    for layer, types in low.types.items():
        vars_ = {var: precision(fmt) for var, fmt in types.items()}
        table = {"table_t": vars_.pop("table")} if "table" in vars_ else {}  # a layer attribute, not a variable
        layers[layer] = {"Precision": vars_, "Trace": False, **table}
    return layers


def _config(low: _Lowering, out_dir: Path, name: str, backend: str, io_type: str, **kw: Any) -> dict:
    from hls4ml.utils.config import create_config

    cfg = create_config(output_dir=str(out_dir), project_name=name, backend=backend, io_type=io_type,
                        part=kw["part"], clock_period=kw["clock_period"])  # fmt: skip
    cfg["HLSConfig"] = {
        "Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": kw["reuse_factor"], "Strategy": "Latency",
                  "BramFactor": 1 << 30, "TraceOutput": False, "BitExact": False},
        "LayerName": _layer_config(low, hls4ml_precision),
    }  # fmt: skip
    return cfg


def _layout(low: _Lowering, hls_model: Any) -> dict:
    """What :func:`hls4ml_codes` needs: each input's and output's IR shape, layout and format."""

    def entry(tensor: str, shape: tuple[int, ...]) -> dict:
        ir = low.g.tensors[tensor].shape
        fmt = low.fmt(tensor)
        return {"tensor": tensor, "shape": list(ir), "channels_last": len(shape) == 3, "format": str(fmt),
                "frac_bits": fmt.frac_bits, "width": fmt.width}  # fmt: skip

    inputs = [entry(low.consumers[t][0].output, low.where[low.consumers[t][0].output].shape) for t in low.g.inputs]
    outputs = [entry(t, low.where[t].shape) for t in low.g.outputs]
    return {"qfx": 1, "project": hls_model.config.get_project_name(), "inputs": inputs, "outputs": outputs}


def to_hls4ml(
    source: Any,
    out_dir: str | os.PathLike,
    *,
    backend: str = "Vivado",
    io_type: str = "io_parallel",
    force: bool = False,
    project_name: str | None = None,
    part: str | None = None,
    clock_period: float = 5,
    reuse_factor: int = 1,
    example_input: Any = None,
) -> Any:
    """An hls4ml ``ModelGraph`` computing ``source`` bit for bit, its project written to ``out_dir``.

    ``source`` is a :class:`qfx.ir.Graph`, or a QFX torch model (from :func:`qfx.quantize_`) together with
    ``example_input`` (a batch; it goes through :func:`qfx.export.export_qonnx` and :func:`qfx.ir.from_qonnx`).
    ``out_dir`` must be absent, empty or an earlier export, unless ``force``. Call ``compile()`` on the result,
    then :func:`hls4ml_codes` (or ``predict()`` on channels-last input: values, codes times ``2**-frac_bits``).
    Raises :class:`Hls4mlExportError` naming the node, before anything is written, when a node has no exact
    hls4ml equivalent; ``ImportError`` without hls4ml.
    """
    try:
        import hls4ml
    except ImportError:
        raise ImportError("to_hls4ml needs hls4ml (pip install 'qfx[sim]')") from None
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} (ap_fixed backends), not {backend!r}")
    if io_type not in IO_TYPES:
        raise ValueError(f"io_type must be 'io_parallel' or 'io_stream' (the ones QFX checks), not {io_type!r}")
    out_dir = Path(out_dir)
    replace = check_target(out_dir, MARKER, force, "QFX hls4ml project")
    graph = _graph_of(source, example_input)
    low = _Lowering(graph)
    low.run()
    name = sanitize(project_name or graph.name, {"input"})
    cfg = _config(low, out_dir, name, backend, io_type, part=part, clock_period=clock_period,
                  reuse_factor=reuse_factor)  # fmt: skip
    outputs = [low.where[t].layer for t in graph.outputs]
    hls_model = hls4ml.model.ModelGraph.from_layer_list(cfg, low.layers, inputs=low.inputs, outputs=outputs)
    _check(hls_model, low)
    hls_model.config.config["HLSConfig"]["LayerName"] = _layer_config(low, _cpp)  # C++ strings, also for WRAP_SM
    info = _layout(low, hls_model)
    hls_model.config.config["QFX"] = info
    with staged_folder(out_dir, replace) as stage:
        hls_model.config.config["OutputDir"] = str(stage)
        hls_model.write()
        (stage / MARKER).write_text(json.dumps(info, indent=1) + "\n")
    hls_model.config.config["OutputDir"] = str(out_dir)
    hls_model.write()  # again, so that the project's own config names out_dir
    return hls_model
