"""Checkpoints of quantized models: the traced QFX module, an example batch that fixes its input shape, and a record
of how it was made (data set, model, formats, accuracy), in one file that ``qfx export`` and ``qfx verify`` read.
"""

from __future__ import annotations

import copy
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import fx, nn

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]

KIND = "qfx-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """The file is not a QFX checkpoint (or not one this version reads); the message names the file."""


@dataclass
class Checkpoint:
    """A quantized model (evaluation mode), one example input batch, and metadata (JSON-able)."""

    model: nn.Module
    example_input: torch.Tensor
    meta: dict = field(default_factory=dict)


def _picklable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose traced graph has no type annotations: torch.fx records some (``torch.Tensor`` in a
    ``forward`` signature) as strings that its own pickling cannot name."""
    if not isinstance(model, fx.GraphModule):
        return model
    model = copy.deepcopy(model)
    for node in model.graph.nodes:
        node.type = None
    model.recompile()
    return model


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (a failed write leaves no file)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file name")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    payload = {
        "kind": KIND,
        "version": VERSION,
        "model": _picklable(checkpoint.model),
        "example_input": checkpoint.example_input[:1].detach().cpu(),
        "meta": dict(checkpoint.meta),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    The file holds a pickled module, so load only checkpoints you trust (as with any full-model ``torch.load``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, AttributeError, ImportError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable QFX checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        raise CheckpointError(f"{path} is a PyTorch file but not a QFX checkpoint (write one with `qfx train`)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} is a version {payload.get('version')} checkpoint; this QFX reads {VERSION}")
    model = payload["model"]
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"{path}: the checkpoint holds no model")
    return Checkpoint(model.eval(), payload["example_input"], payload.get("meta", {}))
