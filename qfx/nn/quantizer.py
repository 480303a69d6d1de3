"""A quantizer module whose binary point (and optionally width) is learned with the model."""

from __future__ import annotations

import torch
from torch import nn

from qfx.format import FixedFormat
from qfx.functional import MAX_CAST_WIDTH, _pick_dtype, cast, fixed_quantize
from qfx.kernel import Mode

__all__ = ["FixedQuantizer"]


class FixedQuantizer(nn.Module):
    """Casts its input to a fixed-point format, exactly as ``ap_fixed`` assignment does.

    With ``learn_binary_point`` the fraction bits are a trainable parameter (rounded in the forward pass), so at a
    fixed width the quantizer trades precision against range; with ``learn_width`` the width is trainable too.
    ``channels``/``channel_axis`` give one format per channel (e.g. per output channel of a weight).
    The gradient estimator is described in docs/concepts.md.
    """

    def __init__(
        self,
        fmt: FixedFormat | str,
        *,
        learn_binary_point: bool = True,
        learn_width: bool = False,
        channels: int | None = None,
        channel_axis: int = 0,
        frac_bits_range: tuple[int, int] | None = None,
        max_width: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(fmt, str):
            fmt = FixedFormat.parse(fmt)
        if fmt.width > MAX_CAST_WIDTH:
            raise ValueError(f"FixedQuantizer supports width <= {MAX_CAST_WIDTH}, not {fmt.width} ({fmt})")
        if channels is not None and channels < 1:
            raise ValueError(f"channels must be >= 1, not {channels}")
        self.mode = Mode(fmt.signed, fmt.quant, fmt.overflow, fmt.sat_bits)
        self.channel_axis = channel_axis
        self.learn_binary_point = learn_binary_point
        self.learn_width = learn_width
        self.max_width = max_width if max_width is not None else (2 * fmt.width if learn_width else fmt.width)
        self.max_width = min(self.max_width, MAX_CAST_WIDTH)
        if self.max_width < fmt.width:
            raise ValueError(f"max_width ({self.max_width}) must be >= the initial width {fmt.width}")
        if frac_bits_range is None:
            frac_bits_range = (fmt.frac_bits - 16, fmt.frac_bits + 16)
        lo, hi = frac_bits_range
        if not lo <= fmt.frac_bits <= hi:
            raise ValueError(f"frac_bits_range {frac_bits_range} must contain the initial frac_bits {fmt.frac_bits}")
        self.frac_bits_range = (int(lo), int(hi))
        shape = () if channels is None else (channels,)
        frac = torch.full(shape, float(fmt.frac_bits))
        width = torch.full(shape, float(fmt.width))
        self.frac_bits = nn.Parameter(frac, requires_grad=learn_binary_point)
        self.width = nn.Parameter(width, requires_grad=learn_width)

    def _broadcast(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if p.dim() == 0:
            return p
        axis = self.channel_axis % x.dim()
        if x.shape[axis] != p.shape[0]:
            raise ValueError(f"input has {x.shape[axis]} channels on axis {axis}, the quantizer {p.shape[0]}")
        shape = [1] * x.dim()
        shape[axis] = p.shape[0]
        return p.reshape(shape)

    def __getstate__(self) -> dict:
        """The state without the format caches (checkpoints and copies rebuild them on first use)."""
        state = self.__dict__.copy()
        state.pop("_format_cache", None)
        state.pop("_static_cache", None)
        return state

    def _version(self) -> tuple:
        """Changes whenever frac_bits or width may have changed (in place or replaced): a host-side key. An edit
        through ``.data`` bumps no version counter, so on the CPU (where reading needs no device synchronization)
        the values are part of the key too."""
        f, w = self.frac_bits, self.width
        key = (f._version, w._version, f.data_ptr(), w.data_ptr(), self.max_width, self.frac_bits_range)
        if not f.is_cuda:
            key += (f.detach().numpy().tobytes(), w.detach().numpy().tobytes())
        return key

    def fixed_format(self) -> FixedFormat:
        """:attr:`format`, read from the parameters only when they changed since the last call (no host
        synchronization per forward for a quantizer whose format does not train)."""
        key = self._version()
        cached = self.__dict__.get("_format_cache")
        if cached is None or cached[0] != key:
            cached = (key, self.format)
            self.__dict__["_format_cache"] = cached
        return cached[1]

    def static_format(self) -> FixedFormat:
        """The width and mode of a quantizer whose width does not train (binary point: the one of the last read),
        read from the parameters only when the width changed."""
        w = self.width
        key = (w._version, w.data_ptr(), self.max_width, None if w.is_cuda else w.detach().numpy().tobytes())
        cached = self.__dict__.get("_static_cache")
        if cached is None or cached[0] != key:
            cached = (key, self.fixed_format())
            self.__dict__["_static_cache"] = cached
        return cached[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.learn_binary_point or self.learn_width) and self.frac_bits.dim() == 0:
            return cast(x, self.fixed_format())
        return fixed_quantize(
            x,
            self._broadcast(self.frac_bits, x),
            self._broadcast(self.width, x),
            signed=self.mode.signed,
            quant=self.mode.quant,
            overflow=self.mode.overflow,
            sat_bits=self.mode.sat_bits,
            frac_bits_range=self.frac_bits_range,
            max_width=self.max_width,
        )

    def result_dtype(self, dtype: torch.dtype) -> torch.dtype:
        """The narrowest dtype, ``dtype`` or wider, that holds every value of every format this quantizer can take."""
        lo, hi = self.frac_bits_range
        return _pick_dtype(dtype, self.max_width, lo, hi, self)

    def _rounded(self) -> tuple[list[int], list[int]]:
        lo, hi = self.frac_bits_range
        frac = torch.round(self.frac_bits.detach().clamp(lo, hi)).reshape(-1).tolist()
        width = torch.round(self.width.detach().clamp(max(1, self.mode.sat_bits), self.max_width)).reshape(-1)
        return [int(f) for f in frac], [int(w) for w in width.tolist()]

    def formats(self) -> list[FixedFormat]:
        """The current format of every channel (one entry for a per-tensor quantizer)."""
        m = self.mode
        frac, width = self._rounded()
        pairs = zip(frac, width, strict=True)
        return [FixedFormat(w, w - f, m.signed, m.quant, m.overflow, m.sat_bits) for f, w in pairs]

    @property
    def format(self) -> FixedFormat:
        """The current format; for a per-channel quantizer, the narrowest one that holds every channel's values."""
        formats = self.formats()
        if len(formats) == 1:
            return formats[0]
        frac = max(f.frac_bits for f in formats)
        int_bits = max(f.int_bits for f in formats)
        m = self.mode
        return FixedFormat(frac + int_bits, int_bits, m.signed, m.quant, m.overflow, m.sat_bits)

    def extra_repr(self) -> str:
        learned = [n for n, on in (("binary point", self.learn_binary_point), ("width", self.learn_width)) if on]
        what = ", ".join(learned) if learned else "fixed"
        return f"{self.format}, learned: {what}"
