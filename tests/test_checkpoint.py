"""Checkpoints hold no pickle: every chain model and preset round-trips bit for bit through a safetensors file with
a declarative model description, and files that would run code (old pickles, crafted descriptions) are refused."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from chain_models import MODEL_NAMES, RTL_MODEL_NAMES, chain_model, digits_test
from torch import nn

from qfx import QuantizeConfig, quantize_
from qfx.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from qfx.pipeline import PRESETS


def roundtrip(model: nn.Module, x: torch.Tensor, path: Path) -> nn.Module:
    save_checkpoint(path, Checkpoint(model, x[:1], {"note": "t"}))
    ckpt = load_checkpoint(path)
    assert ckpt.meta == {"note": "t"}
    assert torch.equal(ckpt.example_input, x[:1])
    return ckpt.model


@pytest.mark.parametrize("name", sorted(set(MODEL_NAMES) | set(RTL_MODEL_NAMES)))
def test_chain_models_roundtrip_bit_for_bit(name, tmp_path) -> None:
    model = chain_model(name)
    x = digits_test()[0][:64]
    loaded = roundtrip(model, x, tmp_path / "m.qfx")
    assert type(loaded) is not type(model) or loaded is not model
    assert torch.equal(loaded(x), model(x))

    def nodes(gm):
        return [(n.name, n.op, str(n.target), str(n.args), str(n.kwargs)) for n in gm.graph.nodes]

    assert nodes(loaded) == nodes(model)
    ref, got = model.state_dict(), loaded.state_dict()
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    for (n1, m1), (n2, m2) in zip(model.named_modules(), loaded.named_modules(), strict=True):
        assert (n1 == n2 and type(m1) is type(m2)) or isinstance(m1, torch.fx.GraphModule)
        if hasattr(m1, "output_quantizer"):
            assert m1.output_quantizer.format == m2.output_quantizer.format
        if hasattr(m1, "input_source"):  # a reference to the producer's quantizer stays a reference
            src = m2.input_source
            assert not isinstance(src, nn.Module) or any(src is m for m in loaded.modules())
    # the example checkpoint is not a pickle anywhere
    assert b"\x80\x04" not in (tmp_path / "m.qfx").read_bytes()[:16]


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("mode", ["ptq", "qat"])
def test_presets_roundtrip(preset, mode, tmp_path) -> None:
    torch.manual_seed(0)
    from qfx.data import info as data_info

    info = data_info("digits")
    x = digits_test()[0][:16]
    model = quantize_(PRESETS[preset][0](info), QuantizeConfig(mode=mode, khot=2 if mode == "qat" else None), x)
    loaded = roundtrip(model.eval(), x, tmp_path / "p.qfx")
    assert torch.equal(loaded(x), model(x))
    # QAT state survives: which parameters learn
    assert [p.requires_grad for p in loaded.parameters()] == [p.requires_grad for p in model.parameters()]


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_old_pickle_checkpoint_gets_a_clear_message(tmp_path) -> None:
    path = tmp_path / "old.qfx"
    torch.save({"kind": "qfx-checkpoint", "version": 1, "model": nn.Linear(2, 2)}, path)
    with pytest.raises(CheckpointError, match="old pickle format"):
        load_checkpoint(path)
    raw = tmp_path / "raw.qfx"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError, match="old pickle format"):
        load_checkpoint(raw)


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """``src`` with its header's model description edited by ``edit(spec)``."""
    data = src.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    spec = json.loads(header["__metadata__"]["model"])
    edit(spec)
    header["__metadata__"]["model"] = json.dumps(spec)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    dst.write_bytes(struct.pack("<Q", len(new)) + new + data[8 + n :])
    return dst


def _nodes(spec: dict) -> list[dict]:
    return spec["model"]["graph"]


@pytest.mark.parametrize(
    "attack",
    [
        # a module class outside the allow-list
        lambda s: s["model"]["children"]["qfx_input"].update({"class": "subprocess.Popen"}),
        # a function outside the allow-list as a graph target
        lambda s: _nodes(s)[1].update({"op": "call_function", "target": {"function": "os.system"}}),
        lambda s: _nodes(s)[1].update({"op": "call_function", "target": {"function": "torch.load"}}),
        # getattr walks to __globals__
        lambda s: _nodes(s)[1].update(
            {"op": "call_function", "target": {"function": "builtins.getattr"}, "args": [{"node": "x"}, "__class__"]}
        ),
        lambda s: _nodes(s)[1].update({"op": "call_method", "target": "__reduce_ex__"}),
        lambda s: _nodes(s)[1].update({"op": "call_method", "target": "apply_"}),
        lambda s: _nodes(s)[1].update(
            {"op": "call_function", "target": {"function": "builtins.getattr"}, "args": [{"node": "x"}, "storage"]}
        ),
        # get_attr walks to a module's globals; operator.call would call whatever a node produced
        lambda s: _nodes(s)[1].update({"op": "get_attr", "target": "qfx_input.__class__.__init__.__globals__"}),
        lambda s: _nodes(s)[1].update({"op": "call_module", "target": "nowhere"}),
        lambda s: _nodes(s)[1].update({"op": "call_function", "target": {"function": "operator.call"}}),
        lambda s: _nodes(s)[1].update({"op": "call_function", "target": {"function": "operator.attrgetter"}}),
        # a plain object of a foreign class
        lambda s: s["model"]["attributes"].update({"evil": {"object": "os._wrap_close", "state": {}}}),
        lambda s: s["model"].update({"class": "builtins.eval"}),
    ],
)
def test_crafted_descriptions_are_refused(attack, tmp_path) -> None:
    good = tmp_path / "good.qfx"
    save_checkpoint(good, Checkpoint(chain_model("mlp"), digits_test()[0][:1]))
    bad = _rewrite(good, tmp_path / "bad.qfx", attack)
    with pytest.raises(CheckpointError, match=r"does not allow|not a module class|cannot be restored|not part of"):
        load_checkpoint(bad)


def test_models_a_checkpoint_cannot_hold_are_refused_at_save(tmp_path) -> None:
    class Mine(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(CheckpointError, match="Mine"):
        save_checkpoint(tmp_path / "m.qfx", Checkpoint(Mine(), torch.zeros(1, 2)))
    model = chain_model("mlp")
    import copy

    hooked = copy.deepcopy(model)
    hooked.register_forward_hook(lambda *a: None)
    with pytest.raises(CheckpointError, match="forward_hooks"):
        save_checkpoint(tmp_path / "h.qfx", Checkpoint(hooked, torch.zeros(1, 1, 8, 8)))
    diverged = copy.deepcopy(model)
    with torch.no_grad():
        diverged.qfx_input.frac_bits.fill_(float("nan"))  # a NaN binary point after a diverged QAT
    with pytest.raises(CheckpointError, match=r"qfx_input\.frac_bits holds NaN"):
        save_checkpoint(tmp_path / "n.qfx", Checkpoint(diverged, torch.zeros(1, 1, 8, 8)))
    assert list(tmp_path.iterdir()) == []
