"""A declarative, pickle-free description of a QFX model: what a checkpoint stores instead of a pickle.

:func:`describe` turns a model into a JSON-able ``spec`` and a dict of tensors (for safetensors); :func:`rebuild`
turns them back into the same model. Nothing in a spec is executed: every class and function it names is looked
up in an allow-list built from QFX's own code and PyTorch's tensor operations, and modules are rebuilt without
running their constructors: their attributes are restored one by one, as ``load_state_dict`` does for tensors.

A module is described by its class, its plain attributes, its parameters and buffers (the tensors go beside the
spec) and its children; a ``torch.fx.GraphModule`` also by the nodes of its graph (op, target, arguments).

**How a new layer opts in:** nothing to do, as long as

* its class is an ``nn.Module`` defined in a module of the ``qfx.nn`` package (or in one of :data:`SCANNED`), or a
  standard ``torch.nn`` layer, and
* it keeps its state in parameters, buffers, submodules and plain attributes whose values are numbers, strings,
  ``None``, tuples, lists, dicts, tensors, numpy arrays, dtypes, ``FixedFormat`` (or any dataclass, enum or plain
  object of a class defined in those modules), functions from the allow-list below, or modules of the same model.

Functions (fx ``call_function`` targets, function-valued attributes): ``operator``'s, PyTorch's tensor operations
(``torch.overrides.get_overridable_functions``: ``torch.cat``, ``F.relu``, ``Tensor.view``, ...), ``getattr`` and
``len``, and the names in ``__all__`` of the scanned QFX modules. ``getattr`` may read only tensor attributes such as
``shape``; ``call_method`` may name only public tensor operations; ``get_attr`` and ``call_module`` targets must be
parameters, buffers or submodules of the model.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import inspect
import math
import operator
import pkgutil
from typing import Any

import numpy as np
import torch
from torch import fx, nn

__all__ = ["SCANNED", "SpecError", "describe", "rebuild"]

#: QFX modules (besides every module of the qfx.nn package) whose classes and public functions a spec may name.
SCANNED = ("qfx.format", "qfx.kernel", "qfx.functional", "qfx.khot", "qfx.quantize")
SPEC_VERSION = 1
_BUILTINS = {"builtins.getattr": getattr, "builtins.len": len}
#: operator functions a graph may call: arithmetic, comparison, logic and indexing (no call, attrgetter,
#: methodcaller or setitem: those would reach around the checks on names).
_OPERATORS = frozenset(
    """
abs add and_ concat contains eq floordiv ge getitem gt iadd iand iconcat ifloordiv ilshift imatmul imod imul index
inv invert ior ipow irshift isub itruediv ixor le lshift lt matmul mod mul ne neg not_ or_ pos pow rshift sub truediv
truth xor
""".split()
)
#: Tensor operations a graph may not use: they take callables, touch storage or devices, or load data.
_EXCLUDED = frozenset(
    """
apply_ map_ map2_ register_hook register_post_accumulate_grad_hook backward module_load set_ share_memory_ storage
untyped_storage cuda pin_memory tolist numpy
""".split()
)
#: Tensor attributes a graph may read with getattr (torch.fx records ``x.shape`` and friends this way).
_ATTRIBUTES = frozenset(
    {"shape", "dtype", "device", "ndim", "T", "mT", "H", "mH", "is_cuda", "layout", "requires_grad"}
)


class SpecError(ValueError):
    """A model that a spec cannot describe, or a spec that names something outside the allow-lists."""


# ------------------------------------------------------------------------------------------------- allow-lists


def _qfx_modules() -> list[Any]:
    import qfx.nn

    names = [m.name for m in pkgutil.walk_packages(qfx.nn.__path__, "qfx.nn.")]
    return [importlib.import_module(n) for n in ("qfx.nn", *names, *SCANNED)]


@functools.cache
def _classes() -> dict[str, type]:
    """Allowed classes by name: torch.nn's layers, and every class defined in the scanned QFX modules."""
    allowed: dict[str, type] = {"torch.fx.GraphModule": fx.GraphModule}
    for name, obj in vars(nn).items():
        if inspect.isclass(obj) and issubclass(obj, nn.Module):
            allowed[f"torch.nn.{name}"] = obj
    for module in _qfx_modules():
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                allowed[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return allowed


@functools.cache
def _class_names() -> dict[type, str]:
    return {cls: name for name, cls in reversed(list(_classes().items()))}


@functools.cache
def _functions() -> dict[str, Any]:
    """Allowed functions by name (see the module docstring)."""
    import torch.nn.functional as F

    tensor_ops = {f for fs in torch.overrides.get_overridable_functions().values() for f in fs}
    allowed: dict[str, Any] = dict(_BUILTINS)
    for name in _OPERATORS:
        allowed[f"operator.{name}"] = getattr(operator, name)
    for prefix, namespace in (("torch", torch), ("torch.nn.functional", F), ("torch.Tensor", torch.Tensor)):
        for name in dir(namespace):
            if name.startswith("_") or name in _EXCLUDED:
                continue
            obj = getattr(namespace, name, None)
            if callable(obj) and not inspect.isclass(obj) and obj in tensor_ops:
                allowed[f"{prefix}.{name}"] = obj
    for module in _qfx_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if callable(obj) and not inspect.isclass(obj):
                allowed[f"{module.__name__}.{name}"] = obj
    return allowed


@functools.cache
def _function_names() -> dict[int, str]:
    return {id(fn): name for name, fn in reversed(list(_functions().items()))}


def _base_keys() -> frozenset[str]:
    return frozenset(vars(nn.Module()))


@functools.cache
def _graph_module_keys() -> frozenset[str]:
    return frozenset(vars(fx.GraphModule(nn.Module(), fx.Graph())))


# ------------------------------------------------------------------------------------------------- values


class _Encoder:
    """Encodes attribute and argument values as JSON; tensors go to ``tensors``, modules by their path."""

    def __init__(self, paths: dict[int, str], tensors: dict[str, torch.Tensor]) -> None:
        self.paths, self.tensors = paths, tensors

    def __call__(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value if not isinstance(value, enum.Enum) else self._enum(value, where)
        if isinstance(value, float):
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, fx.Node):
            return {"node": value.name}
        if isinstance(value, torch.Size):
            return {"size": list(value)}
        if isinstance(value, tuple):
            return {"tuple": [self(v, where) for v in value]}
        if isinstance(value, list):
            return [self(v, where) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise SpecError(f"{where}: a dict whose keys are not all strings cannot be stored")
            return {"dict": {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if isinstance(value, slice):
            return {"slice": [self(v, where) for v in (value.start, value.stop, value.step)]}
        if value is Ellipsis:
            return {"ellipsis": True}
        if isinstance(value, torch.dtype):
            return {"dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"device": str(value)}
        if isinstance(value, nn.Module):
            if id(value) not in self.paths:
                raise SpecError(f"{where}: refers to a module that is not part of the model")
            return {"module": self.paths[id(value)]}
        if isinstance(value, torch.Tensor):
            key = f"attr:{where}"
            self.tensors[key] = value.detach().cpu().contiguous().clone()
            return {"tensor": key}
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise SpecError(f"{where}: a numpy array of {value.dtype} cannot be stored in a checkpoint")
            key = f"attr:{where}"
            self.tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
            return {"ndarray": key}
        if isinstance(value, enum.Enum):
            return self._enum(value, where)
        if callable(value) and not inspect.isclass(value):
            name = _function_names().get(id(value))
            if name is None:
                raise SpecError(f"{where}: function {value!r} is not one a checkpoint may name")
            return {"function": name}
        name = _class_names().get(type(value))
        if name is None or inspect.isclass(value):
            raise SpecError(f"{where}: a {type(value).__qualname__} cannot be stored in a checkpoint")
        if dataclasses.is_dataclass(value):
            fields = {f.name: self(getattr(value, f.name), f"{where}.{f.name}") for f in dataclasses.fields(value)}
            return {"dataclass": name, "fields": fields}
        if not hasattr(value, "__dict__"):
            raise SpecError(f"{where}: a {type(value).__qualname__} has no attributes a checkpoint can store")
        return {"object": name, "state": {k: self(v, f"{where}.{k}") for k, v in vars(value).items()}}

    def _enum(self, value: enum.Enum, where: str) -> dict:
        name = _class_names().get(type(value))
        if name is None:
            raise SpecError(f"{where}: enum {type(value).__qualname__} is not one a checkpoint may name")
        return {"enum": name, "member": value.name}


def _lookup(table: dict[str, Any], name: Any, what: str) -> Any:
    if not isinstance(name, str) or name not in table:
        raise SpecError(f"the checkpoint names {what} {name!r}, which QFX does not allow")
    return table[name]


class _Decoder:
    """Inverse of :class:`_Encoder`; ``nodes`` resolves graph nodes, ``modules`` module paths."""

    def __init__(self, tensors: dict[str, torch.Tensor], modules: dict[str, nn.Module] | None = None) -> None:
        self.tensors, self.modules = tensors, modules
        self.nodes: dict[str, fx.Node] = {}

    def __call__(self, data: Any) -> Any:
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self(v) for v in data]
        if not isinstance(data, dict) or len(data) not in (1, 2):
            raise SpecError(f"malformed value in the model description: {str(data)[:80]}")
        tag, body = next(iter(data.items()))
        if tag == "tuple":
            return tuple(self(v) for v in body)
        if tag == "dict":
            return {str(k): self(v) for k, v in body.items()}
        if tag == "float":
            if body not in ("nan", "inf", "-inf"):
                raise SpecError(f"bad float {body!r} in the model description")
            return float(body)
        if tag == "node":
            return _lookup(self.nodes, body, "graph node")
        if tag == "size":
            return torch.Size(int(v) for v in body)
        if tag == "slice":
            return slice(*(self(v) for v in body))
        if tag == "ellipsis":
            return Ellipsis
        if tag == "dtype":
            dtype = getattr(torch, str(body), None)
            if not isinstance(dtype, torch.dtype):
                raise SpecError(f"bad dtype {body!r} in the model description")
            return dtype
        if tag == "device":
            return torch.device(str(body))
        if tag == "module":
            if self.modules is None:
                raise SpecError("a module reference where none may be")
            return _lookup(self.modules, body, "module")
        if tag == "tensor":
            return _lookup(self.tensors, body, "tensor")
        if tag == "ndarray":
            return _lookup(self.tensors, body, "tensor").numpy()
        if tag == "function":
            return _lookup(_functions(), body, "function")
        if tag == "enum":
            cls = _lookup(_classes(), body, "enum")
            if not (inspect.isclass(cls) and issubclass(cls, enum.Enum)):
                raise SpecError(f"{body!r} is not an enum")
            return cls[data["member"]]
        if tag == "dataclass":
            cls = _lookup(_classes(), body, "class")
            if not dataclasses.is_dataclass(cls) or issubclass(cls, nn.Module):
                raise SpecError(f"{body!r} is not a dataclass")
            fields = {k: self(v) for k, v in data["fields"].items()}
            init = {f.name for f in dataclasses.fields(cls) if f.init}
            obj = cls(**{k: v for k, v in fields.items() if k in init})
            for k, v in fields.items():
                if k not in init:
                    object.__setattr__(obj, k, v)
            return obj
        if tag == "object":
            cls = _lookup(_classes(), body, "class")
            if issubclass(cls, (nn.Module, enum.Enum)):
                raise SpecError(f"{body!r} cannot be restored as a plain object")
            obj = object.__new__(cls)
            obj.__dict__.update({str(k): self(v) for k, v in data["state"].items()})
            return obj
        raise SpecError(f"unknown value kind {tag!r} in the model description")


# ------------------------------------------------------------------------------------------------- modules


def _check_name(name: Any, what: str) -> str:
    """A method (a public tensor operation) or attribute (of :data:`_ATTRIBUTES`) a graph node may name."""
    ok = isinstance(name, str) and name.isidentifier() and not name.startswith("_")
    if ok and what == "attribute":
        ok = name in _ATTRIBUTES
    elif ok:
        ok = f"torch.Tensor.{name}" in _functions() or name in ("size", "dim", "view", "type_as", "contiguous")
    if not ok:
        raise SpecError(f"the checkpoint's graph uses {what} {name!r}, which QFX does not allow")
    return name


def _describe_graph(gm: fx.GraphModule, enc: _Encoder) -> list[dict]:
    nodes = []
    for node in gm.graph.nodes:
        target: Any = node.target
        if node.op == "call_function":
            target = enc(node.target, f"graph node {node.name}")
            if target == {"function": "builtins.getattr"}:
                _check_name(node.args[1] if len(node.args) > 1 else None, "attribute")
        elif node.op == "call_method":
            _check_name(target, "method")
        args = enc(node.args, f"graph node {node.name}")
        kwargs = enc(node.kwargs, f"graph node {node.name}")
        nodes.append({"name": node.name, "op": node.op, "target": target, "args": args, "kwargs": kwargs})
    return nodes


def _rebuild_graph(nodes: list[dict], dec: _Decoder, root: nn.Module) -> fx.Graph:
    """The graph of ``nodes``; module and attribute targets must be submodules, parameters or buffers of ``root``."""
    owned = {n for n, _ in root.named_modules(remove_duplicate=False)}
    owned |= {n for n, _ in root.named_parameters(remove_duplicate=False)}
    owned |= {n for n, _ in root.named_buffers(remove_duplicate=False)}
    graph = fx.Graph()
    for spec in nodes:
        op, target = spec["op"], spec["target"]
        if op not in ("placeholder", "get_attr", "call_function", "call_module", "call_method", "output"):
            raise SpecError(f"unknown graph operation {op!r}")
        if op == "call_function":
            target = dec(target)
        elif op == "call_method":
            _check_name(target, "method")
        elif not isinstance(target, str):
            raise SpecError(f"bad target {target!r} of graph node {spec.get('name')!r}")
        args, kwargs = dec(spec["args"]), dec(spec["kwargs"])
        if target is getattr:
            _check_name(args[1] if len(args) > 1 else None, "attribute")
        if op in ("get_attr", "call_module") and target not in owned:
            raise SpecError(f"graph node {spec.get('name')!r} refers to {target!r}, which is not part of the model")
        node = graph.create_node(op, target, tuple(args), dict(kwargs), name=str(spec["name"]))
        dec.nodes[node.name] = node
    graph.lint()
    return graph


def _state(m: nn.Module) -> dict:
    """The attributes to store: ``__getstate__``'s, where a class defines one (to leave its caches out), else
    the instance's."""
    own = any("__getstate__" in vars(cls) for cls in type(m).__mro__ if cls not in (nn.Module, object))
    return m.__getstate__() if own else vars(m)


def describe(model: nn.Module) -> tuple[dict, dict[str, torch.Tensor]]:
    """The spec (JSON-able) and tensors of ``model``; :class:`SpecError` names what cannot be described."""
    paths = {id(m): name for name, m in model.named_modules()}  # a module shared by two parents: its first path
    tensors: dict[str, torch.Tensor] = {}
    enc = _Encoder(paths, tensors)
    described: set[int] = set()

    def module_spec(m: nn.Module, path: str) -> dict:
        if id(m) in described:  # the same module under a second parent (a layer reading its producer's quantizer)
            return {"ref": paths[id(m)]}
        described.add(id(m))
        where = path or "the model"
        name = _class_names().get(type(m))
        if isinstance(m, fx.GraphModule):
            name = "torch.fx.GraphModule"
        if name is None or not issubclass(_classes()[name], nn.Module):
            raise SpecError(
                f"{where}: {type(m).__module__}.{type(m).__qualname__} is not a module class a QFX checkpoint can "
                "hold (classes of the qfx.nn package and torch.nn layers; see qfx.modelspec)"
            )
        hooks = [k for k in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks") if getattr(m, k, None)]
        if hooks:
            raise SpecError(f"{where}: a module with {hooks[0].strip('_')} cannot be stored in a checkpoint")
        base = _graph_module_keys() if isinstance(m, fx.GraphModule) else _base_keys()
        prefix = f"{path}." if path else ""
        params = {}
        for k, p in m._parameters.items():
            if p is not None:
                if p.is_floating_point() and not bool(torch.isfinite(p).all()):
                    raise SpecError(f"parameter {prefix + k} holds NaN or infinity (did training diverge? a lower "
                                    "learning rate may help)")  # fmt: skip
                tensors[prefix + k] = p.detach().cpu().contiguous().clone()
            params[k] = None if p is None else {"requires_grad": p.requires_grad}
        buffers = {}
        for k, b in m._buffers.items():
            if b is not None:
                tensors[prefix + k] = b.detach().cpu().contiguous().clone()
            buffers[k] = None if b is None else {"persistent": k not in m._non_persistent_buffers_set}
        spec = {
            "class": name,
            "training": m.training,
            "attributes": {k: enc(v, f"{prefix}{k}") for k, v in _state(m).items() if k not in base},
            "parameters": params,
            "buffers": buffers,
            "children": {k: None if c is None else module_spec(c, prefix + k) for k, c in m._modules.items()},
        }
        if isinstance(m, fx.GraphModule):
            spec["graph"] = _describe_graph(m, enc)
        return spec

    return {"version": SPEC_VERSION, "model": module_spec(model, "")}, tensors


def rebuild(spec: dict, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """The model that :func:`describe` described; :class:`SpecError` when the spec leaves the allow-lists."""
    if not isinstance(spec, dict) or spec.get("version") != SPEC_VERSION:
        raise SpecError(f"model description version {spec.get('version') if isinstance(spec, dict) else '?'}; "
                        f"this QFX reads {SPEC_VERSION}")  # fmt: skip
    attributes: list[tuple[nn.Module, dict]] = []
    training: list[tuple[nn.Module, bool]] = []

    def tensor(key: str) -> torch.Tensor:
        return _lookup(tensors, key, "tensor")

    built: dict[str, nn.Module] = {}

    def build(s: dict, path: str) -> nn.Module:
        if "ref" in s:  # a module already built under its first parent
            return _lookup(built, s["ref"], "module reference")
        cls = _lookup(_classes(), s.get("class"), "module class")
        if not issubclass(cls, nn.Module):
            raise SpecError(f"{s.get('class')!r} is not a module class")
        holder = nn.Module() if cls is fx.GraphModule else cls.__new__(cls)
        nn.Module.__init__(holder)
        prefix = f"{path}." if path else ""
        for k, p in s["parameters"].items():
            value = None if p is None else nn.Parameter(tensor(prefix + k), requires_grad=bool(p["requires_grad"]))
            holder.register_parameter(str(k), value)
        for k, b in s["buffers"].items():
            holder.register_buffer(str(k), None if b is None else tensor(prefix + k), bool(b and b["persistent"]))
        for k, c in s["children"].items():
            holder.add_module(str(k), None if c is None else build(c, prefix + k))
        module = holder
        if cls is fx.GraphModule:
            graph = _rebuild_graph(s["graph"], _Decoder(tensors), holder)
            module = fx.GraphModule(holder, graph)
            for slot in ("_modules", "_parameters", "_buffers"):  # the whole tree as it was, unused parts too
                getattr(module, slot).clear()
                getattr(module, slot).update(getattr(holder, slot))
            module._non_persistent_buffers_set = set(holder._non_persistent_buffers_set)
        attributes.append((module, s["attributes"]))
        training.append((module, bool(s["training"])))
        built[path] = module
        return module

    model = build(spec["model"], "")
    dec = _Decoder(tensors, dict(model.named_modules(remove_duplicate=False)))
    for module, attrs in attributes:
        for k, v in attrs.items():
            module.__dict__[str(k)] = dec(v)
    for module, flag in training:
        module.training = flag
    return model
