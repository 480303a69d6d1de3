"""Types and read-back of the hls4ml export (:mod:`qfx.export.hls4ml`): precisions as hls4ml spells them, the
check that hls4ml kept every type QFX set, and the integer codes of a compiled model's outputs. hls4ml is imported
only inside functions."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from qfx.format import FixedFormat, Overflow, Quant

__all__ = ["Hls4mlExportError", "hls4ml_codes", "hls4ml_precision"]


class Hls4mlExportError(ValueError):
    """The graph cannot become an exact hls4ml model; the message names the node and why."""


class _ExtraOverflow(enum.Enum):
    """Overflow modes ap_fixed has and hls4ml's ``SaturationMode`` lacks; printed as hls4ml prints its own."""

    WRAP_SM = "WRAP_SM"

    def __str__(self) -> str:
        return self.name


def hls4ml_precision(fmt: FixedFormat) -> Any:
    """hls4ml's precision for ``fmt``: a string such as ``ap_fixed<8,3,AP_RND_CONV,AP_SAT,0>`` (which hls4ml
    parses), or for AP_WRAP_SM (which its parser lacks) a ``FixedPrecisionType`` that prints ``AP_WRAP_SM``."""
    if fmt.overflow is not Overflow.WRAP_SM:
        return _cpp(fmt)
    from hls4ml.model.types import FixedPrecisionType, RoundingMode

    mode = RoundingMode[fmt.quant.name]
    return FixedPrecisionType(fmt.width, fmt.int_bits, fmt.signed, mode, _ExtraOverflow.WRAP_SM, fmt.sat_bits)


def _cpp(fmt: FixedFormat) -> str:
    """``fmt`` with all five template arguments, as hls4ml writes types."""
    kind = "ap_fixed" if fmt.signed else "ap_ufixed"
    return f"{kind}<{fmt.width},{fmt.int_bits},{fmt.quant.cpp},{fmt.overflow.cpp},{fmt.sat_bits}>"


def _format_of(precision: Any) -> FixedFormat | None:
    """A read-back hls4ml precision as a FixedFormat (None when it is not fixed point)."""
    integer = getattr(precision, "integer", None)
    if integer is None or not hasattr(precision, "rounding_mode"):
        return None
    try:
        return FixedFormat(
            int(precision.width), int(integer), bool(precision.signed), Quant.from_name(str(precision.rounding_mode)),
            Overflow.from_name(str(precision.saturation_mode)), int(precision.saturation_bits or 0),
        )  # fmt: skip
    except ValueError:
        return None


def _values(codes: np.ndarray, fmt: FixedFormat) -> np.ndarray:
    """Float64 values of integer codes (exact: hls4ml prints them with ``frac_bits`` decimals)."""
    codes = np.asarray(codes)
    if codes.size and max(abs(int(codes.max())), abs(int(codes.min()))) >= 1 << 53:
        raise Hls4mlExportError(f"constant codes of {fmt} do not fit a double, which hls4ml stores weights as")
    return np.ldexp(codes.astype(np.float64), -fmt.frac_bits)


#: Layers hls4ml's io_stream optimizers insert: they move values (repack a stream for a reshape, pad before a
#: convolution, copy a stream read twice) and never compute, so each must keep its input's type.
_STREAM_MOVERS = ("Repack", "ZeroPadding1D", "ZeroPadding2D", "Clone")


def _check_mover(layer: Any) -> None:
    """A layer hls4ml added: one of :data:`_STREAM_MOVERS`, every output in exactly its input's type."""
    if layer.class_name not in _STREAM_MOVERS:
        raise Hls4mlExportError(f'hls4ml added layer "{layer.name}" ({layer.class_name}), which QFX did not set')
    want = _format_of(layer.get_input_variable().type.precision)
    for output in layer.outputs:
        got = _format_of(layer.get_output_variable(output).type.precision)
        if got != want:
            raise Hls4mlExportError(
                f'layer "{layer.name}" ({layer.class_name}, added by hls4ml) turns {want} into {got}: it must only '
                "move values"
            )


def _check(hls_model: Any, low: Any) -> None:
    """Every layer QFX made is there with exactly the types QFX set (hls4ml optimizers must not have changed
    them); Reshapes may be gone (they move no value in io_parallel, io_stream repacks them); the layers io_stream
    adds only move values (:data:`_STREAM_MOVERS`, each in its input's type)."""
    layers = {layer.name: layer for layer in hls_model.get_layers()}
    kinds = {d["name"]: d["class_name"] for d in low.layers}
    for name in sorted(set(layers) - set(kinds)):
        _check_mover(layers[name])
    for name, want in low.types.items():
        layer = layers.get(name)
        if layer is None and kinds[name] != "Reshape":
            raise Hls4mlExportError(f'hls4ml removed layer "{name}" ({kinds[name]}), which QFX needs')
        if layer is None:
            continue
        got = {key.removesuffix("_t"): _format_of(t.precision) for key, t in layer.types.items()}
        got.pop("index", None)  # indexes compressed weights; compression is off
        got["result"] = _format_of(layer.get_output_variable().type.precision)
        if kinds[name] in ("Reshape", "Transpose"):
            got = {"result": got["result"]}
        for var in sorted(set(got) | set(want)):
            if got.get(var) != want.get(var):
                raise Hls4mlExportError(
                    f'layer "{name}": hls4ml\'s {var} type is {got.get(var)}, not the {want.get(var)} QFX set'
                )


def hls4ml_codes(hls_model: Any, x: Any) -> np.ndarray | dict[str, np.ndarray]:
    """Integer codes of the outputs of a compiled :func:`to_hls4ml` model for the NCHW float batch ``x``.

    Transposes images to channels-last for hls4ml, calls ``predict`` on float64 (exact: ap_fixed converts a
    double once), multiplies the values by ``2**frac_bits`` of each output's format and transposes images back.
    A dict by output tensor name when the graph has several outputs, as :func:`qfx.ir.interpret.run`.
    """
    info = hls_model.config.config.get("QFX")
    if info is None:
        raise ValueError("not a model from qfx.export.to_hls4ml (its config has no QFX layout)")
    xs = list(x.values()) if isinstance(x, dict) else [x]
    feeds = []
    for spec, xi in zip(info["inputs"], xs, strict=True):
        xi = np.asarray(xi, dtype=np.float64).reshape(-1, *spec["shape"])
        if spec["channels_last"]:
            xi = xi.transpose(0, 2, 3, 1)
        feeds.append(np.ascontiguousarray(xi.reshape(xi.shape[0], -1)))
    batch = feeds[0].shape[0]
    got = hls_model.predict(feeds[0] if len(feeds) == 1 else feeds)
    got = [got] if len(info["outputs"]) == 1 else list(got)
    out = {}
    for spec, y in zip(info["outputs"], got, strict=True):
        if spec["width"] > 53:
            raise ValueError(f"output {spec['tensor']}: {spec['format']} is wider than a double holds exactly")
        scaled = np.asarray(y, dtype=np.float64).reshape(batch, -1) * 2.0 ** spec["frac_bits"]
        codes = np.rint(scaled).astype(np.int64)
        if not np.array_equal(codes, scaled):
            raise ValueError(f"output {spec['tensor']}: predict() returned values that are not {spec['format']} codes")
        ir = spec["shape"]
        codes = (codes.reshape(batch, ir[1], ir[2], ir[0]).transpose(0, 3, 1, 2) if spec["channels_last"] and
                 len(ir) == 3 else codes.reshape(batch, *ir))  # fmt: skip
        out[spec["tensor"]] = codes
    return out if len(out) > 1 else next(iter(out.values()))
