"""Checkpoints of quantized models: the QFX module, an example batch that fixes its input shape, and a record of
how it was made (data set, model, formats, accuracy), in one file that ``qfx export`` and ``qfx verify`` read.

The file is a safetensors file: the tensors, and in its metadata a declarative description of the model
(:mod:`qfx.modelspec`) and the record, as JSON. It holds no pickle, so reading one never runs code from it: every
class and function it names is checked against QFX's allow-lists. Files of the first format (a pickle written
with ``torch.save``) are refused with a message that says how to make a new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from qfx.modelspec import SpecError, describe, rebuild

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]

KIND = "qfx-checkpoint"
VERSION = 2
EXAMPLE = "__qfx_example_input__"
_MAX_HEADER = 256 * 1024 * 1024


class CheckpointError(ValueError):
    """The file is not a QFX checkpoint (or not one this version reads); the message names the file."""


@dataclass
class Checkpoint:
    """A quantized model (evaluation mode), one example input batch, and metadata (JSON-able)."""

    model: nn.Module
    example_input: torch.Tensor
    meta: dict = field(default_factory=dict)


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (a failed write leaves no file).

    Raises :class:`CheckpointError` when the model holds something a checkpoint cannot describe (a class outside
    QFX's allow-list, a hook, an arbitrary object).
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file name")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    try:
        spec, tensors = describe(checkpoint.model)
        meta = json.dumps(dict(checkpoint.meta), allow_nan=False)
    except (SpecError, TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot write {path}: {exc}") from None
    tensors[EXAMPLE] = checkpoint.example_input[:1].detach().cpu().contiguous().clone()
    header = {"kind": KIND, "version": str(VERSION), "model": json.dumps(spec), "meta": meta}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_container(path: Path) -> None:
    """Refuse anything that is not a safetensors file before a parser sees it; old pickles get their own message."""
    with path.open("rb") as f:
        head = f.read(9)
    size = path.stat().st_size
    length = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if 2 <= length <= min(size - 8, _MAX_HEADER) and head[8:9] == b"{":
        return
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        raise CheckpointError(
            f"{path} is a checkpoint of the old pickle format, which QFX no longer reads because loading a pickle "
            "can run code from the file; write a new one with `qfx train` (or qfx.save_checkpoint)"
        )
    raise CheckpointError(f"{path} is not a readable QFX checkpoint (not a safetensors file; `qfx train` writes one)")


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; no code from the file runs."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist" if not path.exists() else f"{path} is not a file")
    _check_container(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable QFX checkpoint ({reason})") from None
    if header.get("kind") != KIND:
        raise CheckpointError(f"{path} is a safetensors file but not a QFX checkpoint (write one with `qfx train`)")
    if header.get("version") != str(VERSION):
        raise CheckpointError(f"{path} is a version {header.get('version')} checkpoint; this QFX reads {VERSION}")
    try:
        spec, meta = json.loads(header["model"]), json.loads(header.get("meta", "{}"))
        example = tensors.pop(EXAMPLE)
        model = rebuild(spec, tensors)
    except (KeyError, IndexError, TypeError, AttributeError, json.JSONDecodeError, SpecError, ValueError) as exc:
        raise CheckpointError(f"{path}: damaged or untrusted model description ({exc})") from None
    return Checkpoint(model.eval(), example, meta if isinstance(meta, dict) else {})
