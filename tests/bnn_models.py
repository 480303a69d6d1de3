"""Brevitas' bnn_pynq networks (TFC, SFC, LFC, CNV at W1A1, W1A2, W2A2) for the import tests and benchmark.

Built with random initialisation (pretrained weights need a download) from brevitas_examples' own config files,
with random batch-norm statistics (a fresh BatchNorm is the identity, which would hide sign and scale handling:
about a third of the channels get a negative weight), exported with ``brevitas.export.export_qonnx``. The
reference is qonnx's ``execute_onnx`` on the exported file; Brevitas exports batch 1 (its flatten is a Reshape to
``[1, -1]``), so :func:`batched` sets the batch dimension of the input, the output and those Reshape constants to
``n``, which changes no per-sample computation, to run ``n`` samples in one call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

__all__ = ["NETWORKS", "PRECISIONS", "batched", "export", "input_shape", "reference", "tiny_cnv", "tiny_tfc"]

NETWORKS = ("tfc", "sfc", "lfc", "cnv")
PRECISIONS = ("1w1a", "1w2a", "2w2a")


def input_shape(network: str) -> tuple[int, ...]:
    return (3, 32, 32) if network == "cnv" else (1, 28, 28)


def _randomize_norms(model, seed: int) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            c = mod.num_features
            mod.running_mean.data = torch.randn(c, generator=g) * 4
            mod.running_var.data = torch.rand(c, generator=g) * 16 + 0.05
            mod.weight.data = torch.randn(c, generator=g)
            mod.bias.data = torch.randn(c, generator=g)


def export(name: str, path: Path, seed: int = 0, model=None, shape: tuple[int, ...] | None = None) -> Path:
    """Build ``name`` (e.g. ``"tfc_1w1a"``; or take ``model``, with its input ``shape`` without batch) with random
    weights and statistics and export it to ``path``."""
    import torch
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    if model is None:
        model, _ = model_with_cfg(name, False)
    _randomize_norms(model, seed)
    model.eval()
    shape = (1, *(shape or input_shape(name.split("_")[0])))
    export_qonnx(model, torch.rand(shape), str(path), dynamo=False)
    return Path(path)


def tiny_tfc(bits: tuple[int, int, int] = (1, 1, 1), features: tuple[int, ...] = (16, 16), size: int = 8):
    """A TFC of brevitas_examples' FC class on ``size x size`` images with small hidden layers (hardware tests)."""
    from brevitas_examples.bnn_pynq.models.FC import FC

    w, a, i = bits
    return FC(num_classes=10, weight_bit_width=w, act_bit_width=a, in_bit_width=i, in_channels=1,
              out_features=list(features), in_features=(size, size))  # fmt: skip


def tiny_cnv(bits: tuple[int, int, int] = (1, 1, 8), convs=((4, False), (4, True), (8, False)), fc=((8, 16),),
             last: int = 16):
    """A CNV of brevitas_examples' CNV class with fewer, narrower layers (hardware tests): on 10 x 10 x 3 inputs the
    default is conv 3x3 (4) -> conv (4) -> max pool -> conv (8) -> 1 x 1 x 8 -> FC 16 -> FC 10. The class reads
    its layer list from module constants, which are set for the construction only."""
    from brevitas_examples.bnn_pynq.models import CNV as module

    w, a, i = bits
    saved = module.CNV_OUT_CH_POOL, module.INTERMEDIATE_FC_FEATURES, module.LAST_FC_IN_FEATURES
    module.CNV_OUT_CH_POOL, module.INTERMEDIATE_FC_FEATURES, module.LAST_FC_IN_FEATURES = list(convs), list(fc), last
    try:
        return module.CNV(num_classes=10, weight_bit_width=w, act_bit_width=a, in_bit_width=i, in_ch=3)
    finally:
        module.CNV_OUT_CH_POOL, module.INTERMEDIATE_FC_FEATURES, module.LAST_FC_IN_FEATURES = saved


def batched(path: Path, n: int):
    """The exported model with batch ``n`` (see the module docstring), shapes inferred, as a qonnx ModelWrapper."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    m = onnx.load(str(path))
    inits = {t.name: t for t in m.graph.initializer}
    for v in [i for i in m.graph.input if i.name not in inits] + list(m.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = n
    del m.graph.value_info[:]
    for node in m.graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = onnx.numpy_helper.to_array(inits[node.input[1]]).copy()
            if shape[0] == 1:
                shape[0] = n
                inits[node.input[1]].CopyFrom(onnx.numpy_helper.from_array(shape, node.input[1]))
    return ModelWrapper(m).transform(InferShapes())


def reference(path: Path, x: np.ndarray, tensors: list[str]) -> dict[str, np.ndarray]:
    """qonnx's ``execute_onnx`` of the exported file on the batch ``x``: the named tensors (and the output)."""
    from qonnx.core.onnx_exec import execute_onnx

    model = batched(path, len(x))
    name = model.graph.input[0].name
    ctx = execute_onnx(model, {name: np.asarray(x, dtype=np.float32)}, return_full_exec_context=True)
    return {t: ctx[t] for t in [*tensors, model.graph.output[0].name]}


def compare_with_qonnx(graph, path: Path, x: np.ndarray) -> tuple[int, int]:
    """(codes compared, mismatches) of every IR tensor of ``graph`` against qonnx's execution of the model at
    ``path`` on the raw inputs ``x``, and of the host's float tail against qonnx's float32 output, bit for bit."""
    from qfx.ir import host

    names = [n.output for n in graph.nodes]
    ref = reference(path, x, names)
    trace = graph.run(host.pre(graph.host_pre, x), trace=True)
    compared = mismatches = 0
    for t in names:
        mine = np.ldexp(trace[t].astype(np.float64), -graph.fmt(t).frac_bits)
        theirs = ref[t].astype(np.float64).reshape(mine.shape)
        compared += mine.size
        mismatches += int((mine != theirs).sum())
    out = host.post(graph.host_post, trace[graph.outputs[0]], graph.fmt(graph.outputs[0]).frac_bits)
    final = list(ref.values())[-1].astype(np.float32).reshape(out.shape)
    compared += out.size
    mismatches += int((out.view(np.uint32) != final.view(np.uint32)).sum())
    return compared, mismatches
