"""What every ``qfx`` command shares: exit codes, the error type, progress output, reading a model, checking
outputs before writing them."""

from __future__ import annotations

import argparse
from pathlib import Path

from qfx.guard import load_batch

__all__ = [
    "DATA_ONLY", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_MISMATCH", "EXIT_OK", "EXIT_TOOL", "EXIT_USAGE",
    "RUN_MARKER", "CLIError", "check_new_file", "check_out_dir", "graph_of", "inputs_of", "progress", "qonnx_path",
    "say",
]  # fmt: skip

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_TOOL, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130
RUN_MARKER = "results.json"  # a QFX run folder: what `qfx report` renders
DATA_ONLY = "read as data: no code from the file runs; QONNX domains are checked against the ones QFX knows"


class CLIError(Exception):
    """An error with its exit code; the message is shown as it is."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def progress(args: argparse.Namespace):
    """The progress display (silent with --quiet)."""
    from qfx.console import Steps

    return Steps(quiet=args.quiet)


def say(text: str = "") -> None:
    """Print a result line (flushed: progress output interleaves)."""
    print(text, flush=True)


def qonnx_path(model: Path, tmp: Path) -> Path:
    """The QONNX file of ``model``: itself, or exported from a checkpoint into ``tmp``."""
    if not model.exists():
        raise FileNotFoundError(f"model {model} does not exist")
    if model.suffix.lower() == ".onnx":
        return model
    from qfx.checkpoint import load_checkpoint
    from qfx.export import export_qonnx

    ckpt = load_checkpoint(model)
    return export_qonnx(ckpt.model, ckpt.example_input, tmp / "model.onnx")


def graph_of(model: Path, tmp: Path):
    """The IR graph of a QONNX file or checkpoint (exported into ``tmp``)."""
    from qfx.ir import from_qonnx

    return from_qonnx(qonnx_path(model, tmp))


def model_input_shape(qonnx: Path, graph) -> tuple[int, ...]:
    """The shape (without batch) of the inputs a model takes: the IR's, or, when the host pre-processes them
    (``graph.host_pre``: Brevitas' scaling and flatten), the QONNX graph's raw input."""
    if not graph.host_pre:
        return tuple(graph.tensors[graph.inputs[0]].shape)
    import onnx

    g = onnx.load(str(qonnx), load_external_data=False).graph
    inits = {t.name for t in g.initializer}
    first = next(i for i in g.input if i.name not in inits)
    return tuple(int(d.dim_value) for d in first.type.tensor_type.shape.dim[1:])


def check_out_dir(path: Path, force: bool) -> None:
    """The command line never replaces an existing folder unasked (it may hold a vendor tool's results)."""
    if path.is_dir() and any(path.iterdir()) and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")


def check_new_file(path: Path, force: bool) -> None:
    """A new output file: not a folder, not an existing file unless --force, in an existing folder."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")


def inputs_of(args: argparse.Namespace, shape: tuple[int, ...]):
    """The float batch of --inputs (or the --dataset test split), cut to --limit and checked against ``shape``."""
    import numpy as np

    from qfx.data import dataset

    if args.inputs:
        x = load_batch(args.inputs)  # float64 stays float64: the batch verified is the batch given
        source = args.inputs
    else:
        x = dataset(args.dataset, args.data_root, "test").tensors[0].numpy()
        source = f"the {args.dataset} test set"
    if args.limit is not None:
        x = x[: args.limit]
    if tuple(x.shape[1:]) != tuple(shape) and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        x = x.reshape(x.shape[0], *shape)
    if tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"the model takes inputs of shape {shape}, {source} has {tuple(x.shape[1:])}")
    return x
