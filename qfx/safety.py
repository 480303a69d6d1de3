"""What QFX trusts, checked in one place: data files (QONNX models, board TOMLs) are validated before any tool
acts on them, and every string that reaches generated TCL, config files or Markdown is checked or escaped.

* QONNX: qonnx imports the Python module named by a node's ``domain`` to find its op, so a crafted file with
  ``domain="evil_ops"`` next to an ``evil_ops.py`` would run that file. :func:`check_domains` accepts only the
  domains QFX knows (standard ONNX, qonnx's own, QFX's) before qonnx sees the model.
* Board files: part names must follow the vendors' part-name syntax (:func:`check_part`); other strings may hold
  no control characters (:func:`check_text`) and are escaped for TCL (:func:`tcl_quote`) and Markdown
  (:func:`md_escape`).
"""

from __future__ import annotations

import re

import onnx

__all__ = [
    "KNOWN_DOMAINS",
    "UntrustedInput",
    "check_domains",
    "check_part",
    "check_text",
    "comment_text",
    "md_escape",
    "md_text",
    "tcl_quote",
]

#: ONNX standard domains, qonnx's custom ops (and Brevitas' alias of them), and QFX's FixedCast.
KNOWN_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "onnx.brevitas", "qonnx.custom_op.general", "qonnx.custom_op.channels_last",
     "qfx.export.ops"}
)  # fmt: skip
# Xilinx/AMD part names: xc7z020clg400-1, xczu3eg-sbva484-1-i, xcu250-figd2104-2L-e, xcvc1902-vsva2197-2MP-e-S
_PART = re.compile(r"^[a-z][a-z0-9]{2,40}(-[a-z0-9]{1,20}){0,5}$", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UntrustedInput(ValueError):
    """A data file holds something QFX will not pass on (an unknown domain, a bad part name, a control char)."""


def _graphs(graph: onnx.GraphProto):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def check_domains(model: onnx.ModelProto, error: type[Exception] = UntrustedInput) -> None:
    """Raise ``error`` naming the first node (or opset, or function) whose domain QFX does not know."""
    for opset in model.opset_import:
        if opset.domain not in KNOWN_DOMAINS:
            raise error(f"the model imports opset domain {opset.domain!r}, which QFX does not know; "
                                 f"known: {', '.join(sorted(d or '(standard)' for d in KNOWN_DOMAINS))}")  # fmt: skip
    for function in model.functions:
        raise error(f"the model defines function {function.name!r} (domain {function.domain!r}); "
                             "QFX does not run model-local functions")  # fmt: skip
    for graph in _graphs(model.graph):
        for node in graph.node:
            if node.domain not in KNOWN_DOMAINS:
                raise error(
                    f"node {node.name or node.op_type!r} has domain {node.domain!r}, which QFX does not know (qonnx "
                    "would import a Python module of that name); known: "
                    + ", ".join(sorted(d or "(standard)" for d in KNOWN_DOMAINS))
                )


def check_text(value: object, what: str, *, max_len: int = 200) -> str:
    """``value`` as a string without control characters (newlines included), at most ``max_len`` long."""
    if not isinstance(value, str):
        raise UntrustedInput(f"{what} must be a string, not {type(value).__name__}")
    bad = _CONTROL.search(value)
    if bad:
        raise UntrustedInput(f"{what} {value[:60]!r} holds a control character ({bad.group()!r})")
    if len(value) > max_len:
        raise UntrustedInput(f"{what} is {len(value)} characters long; at most {max_len}")
    return value


def check_part(value: object, what: str = "part") -> str:
    """A vendor part name (letters, digits, dashes: ``xczu3eg-sbva484-1-i``), or :class:`UntrustedInput`."""
    text = check_text(value, what, max_len=80)
    if not _PART.match(text):
        raise UntrustedInput(f"{what} {text!r} is not a part name (letters and digits in dash-separated groups, "
                             "as xc7z020clg400-1)")  # fmt: skip
    return text


def tcl_quote(value: str) -> str:
    """``value`` as one TCL word in double quotes, with every character TCL substitutes escaped."""
    check_text(value, "TCL string", max_len=10_000)
    return '"' + re.sub(r'([\\$\[\]"{};])', r"\\\1", value) + '"'


def comment_text(value: object) -> str:
    """``value`` for a ``#`` comment line of TCL or a cfg file: one line, and no trailing backslash can continue it."""
    return check_text(str(value), "text", max_len=10_000).replace("\\", "\\\\")


def md_text(value: object) -> str:
    """``value`` as inline Markdown text that keeps its emphasis: control characters become spaces, and what could
    end a table cell or open raw HTML (``|``, ``<``, ``>``) is escaped."""
    text = _CONTROL.sub(" ", str(value))
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def md_escape(value: str) -> str:
    """``value`` safe in a Markdown table cell or line: control characters refused, markup characters escaped."""
    check_text(value, "text", max_len=10_000)
    return re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", value)
