"""Layers that move values or pool them: 1-D pools, global average pool over any spatial dims, concatenation,
nearest upsampling, zero padding.

Moving layers (max pool, upsample, pad) change no value, so their output format is their input's; a concatenation
and the average pools cast into their own output format (the window sum itself is exact, in float64).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from qfx.format import FixedFormat
from qfx.nn.elementwise import (
    DEFAULT_ACTIVATION,
    DEFAULT_RECIPROCAL,
    DEFAULT_SUM,
    QGlobalAvgPool2d,
    _out,
    _shift_or_reciprocal,
)
from qfx.nn.quantizer import FixedQuantizer

__all__ = ["QAvgPool1d", "QCat", "QGlobalAvgPool", "QMaxPool1d", "QPad", "QUpsample"]


class QMaxPool1d(nn.MaxPool1d):
    """``nn.MaxPool1d``: the maximum of fixed-point values is one of them, so the format is the input's."""


class QAvgPool1d(nn.Module):
    """Average pooling over a sequence (N, C, L): exact window sum, then a shift or a multiplication by the
    rounded reciprocal of the window (as :class:`~qfx.nn.QAvgPool2d`), cast into the output format."""

    def __init__(
        self,
        kernel_size: int,
        stride: int | None = None,
        padding: int = 0,
        *,
        output: FixedFormat | str = DEFAULT_ACTIVATION,
        reciprocal: FixedFormat | str = DEFAULT_RECIPROCAL,
        learn: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = int(nn.modules.utils._single(kernel_size)[0])
        self.stride = int(nn.modules.utils._single(stride if stride is not None else kernel_size)[0])
        self.padding = int(nn.modules.utils._single(padding)[0])
        self.reciprocal = FixedFormat.parse(reciprocal) if isinstance(reciprocal, str) else reciprocal
        self.factor = _shift_or_reciprocal(self.kernel_size, self.reciprocal)
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sums = F.avg_pool2d(
            x.to(torch.float64).unsqueeze(2), (1, self.kernel_size), (1, self.stride), (0, self.padding),
            divisor_override=1,
        ).squeeze(2)  # fmt: skip
        return _out(self.output_quantizer, sums * self.factor, x)


class QGlobalAvgPool(QGlobalAvgPool2d):
    """Mean (or, with ``mean=False``, the sum) over every spatial dim of (N, C, ...) (1-D or 2-D maps), keeping them
    as 1s with ``keepdim``."""

    def __init__(
        self,
        *,
        keepdim: bool = False,
        output: FixedFormat | str = DEFAULT_ACTIVATION,
        reciprocal: FixedFormat | str = DEFAULT_RECIPROCAL,
        learn: bool = True,
        mean: bool = True,
    ) -> None:
        super().__init__(output=output, reciprocal=reciprocal, learn=learn)
        self.keepdim = keepdim
        self.mean = mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.dim()))
        area = int(torch.tensor(x.shape[2:]).prod().item()) if dims else 1
        factor = _shift_or_reciprocal(area, self.reciprocal) if getattr(self, "mean", True) else 1.0
        return _out(self.output_quantizer, x.to(torch.float64).sum(dim=dims, keepdim=self.keepdim) * factor, x)


class QCat(nn.Module):
    """``torch.cat(tensors, dim)`` cast into one output format (calibrated to the union of the inputs' ranges);
    the values join exactly (float64) before the cast."""

    def __init__(self, dim: int = 1, output: FixedFormat | str = DEFAULT_SUM, *, learn: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.output_quantizer = FixedQuantizer(output, learn_binary_point=learn)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return _out(self.output_quantizer, torch.cat([t.to(torch.float64) for t in tensors], dim=self.dim), tensors[0])


class QUpsample(nn.Module):
    """Nearest-neighbour upsampling by integer factors (one per spatial dim): moves values, format unchanged."""

    def __init__(self, scale: tuple[int, ...]) -> None:
        super().__init__()
        if not scale or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in scale):
            raise ValueError(f"upsampling factors must be positive integers, not {scale}")
        self.scale = tuple(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != len(self.scale) + 2:
            raise ValueError(f"QUpsample by {self.scale} needs a {len(self.scale) + 2}-D input, not {tuple(x.shape)}")
        for axis, s in enumerate(self.scale, start=2):
            x = torch.repeat_interleave(x, s, dim=axis)
        return x

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class QPad(nn.Module):
    """Zero padding of the spatial dims, ``pads`` in ``F.pad``'s order (last dim first: left, right[, top,
    bottom]): moves values, format unchanged."""

    def __init__(self, pads: tuple[int, ...]) -> None:
        super().__init__()
        if len(pads) not in (2, 4) or any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in pads):
            raise ValueError(f"pads must be 2 or 4 non-negative integers (left, right[, top, bottom]), not {pads}")
        self.pads = tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)

    def extra_repr(self) -> str:
        return f"pads={self.pads}"
