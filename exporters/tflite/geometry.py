"""Window geometry: expressing ONNX/torch explicit padding with TFLite's ``SAME`` / ``VALID``.

TFLite's rule (``tensorflow/lite/kernels/padding.h`` ``ComputePaddingHeightWidth``; tflite.md
§3): ``VALID`` has no padding, ``out = ceil((in - k_eff + 1) / s)``; ``SAME`` has
``out = ceil(in / s)`` and ``total = max((out - 1) * s + k_eff - in, 0)`` with
``total // 2`` cells before and the rest after. Padded cells are ignored by the pools (max
over, and average divided by, the cells inside the input) and are zeros for convolutions.
The IR (ONNX) puts ``pads_begin`` cells before, and its output size decides how many windows
there are; ``ceil_mode`` windows may run past the end. A window layout is expressible with
``SAME`` / ``VALID`` exactly when both give the IR's output size and the same begin padding;
otherwise the exporter writes an explicit PAD (then ``VALID``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from .model import SAME, VALID


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a window op: input size, kernel, stride, dilation, IR pads and
    the IR output size."""

    size: int
    k: int
    s: int
    d: int
    pb: int
    pe: int
    out: int

    @property
    def k_eff(self) -> int:
        """The dilated kernel extent ``d * (k - 1) + 1``."""
        return self.d * (self.k - 1) + 1

    def same_begin(self) -> int:
        """Cells TFLite ``SAME`` pads before (the extra one goes after)."""
        return max((math.ceil(self.size / self.s) - 1) * self.s + self.k_eff - self.size, 0) // 2

    def fits(self, mode: int) -> bool:
        """True when TFLite ``mode`` gives this axis' output size and begin padding."""
        if mode == VALID:
            return self.pb == 0 and self.size >= self.k_eff and \
                self.out == (self.size - self.k_eff) // self.s + 1
        return self.out == math.ceil(self.size / self.s) and self.pb == self.same_begin()

    def tail(self) -> int:
        """Cells to pad after the input so that ``VALID`` on the padded input has ``out``
        windows: the IR end padding, grown for ceil-mode windows running past it."""
        need = (self.out - 1) * self.s + self.k_eff - (self.size + self.pb)
        return max(need, 0)


def axes_of(in_sizes: Sequence[int], out_sizes: Sequence[int], k, s, d, pads) -> list[Axis]:
    """The :class:`Axis` list of an op with ``n`` spatial axes (``pads`` = ONNX begins then
    ends)."""
    n = len(in_sizes)
    return [Axis(int(in_sizes[i]), int(k[i]), int(s[i]), int(d[i]), int(pads[i]),
                 int(pads[i + n]), int(out_sizes[i])) for i in range(n)]


def tf_padding(axes: Sequence[Axis]) -> Optional[int]:
    """``SAME`` or ``VALID`` when every axis fits it (SAME preferred), else None."""
    for mode in (SAME, VALID):
        if all(a.fits(mode) for a in axes):
            return mode
    return None


def explicit(axes: Sequence[Axis]) -> list[tuple[int, int]]:
    """Per-axis ``(before, after)`` cells of the explicit PAD that makes ``VALID`` right."""
    return [(a.pb, a.tail()) for a in axes]


def window_counts(a: Axis, include_pad: bool) -> list[int]:
    """Per output position, how many cells ONNX / torch AveragePool divides by on this
    axis: the window clipped to the padded input (``count_include_pad``) or to the input."""
    lo, hi = (-a.pb, a.size + a.pe) if include_pad else (0, a.size)
    out = []
    for i in range(a.out):
        start = i * a.s - a.pb
        cells = [start + j * a.d for j in range(a.k)]
        out.append(sum(lo <= c < hi for c in cells))
    return out


def transpose_conv_begin(out_size: int, k: int, s: int, mode: int) -> tuple[int, int]:
    """``(crop before, windows)`` TFLite TRANSPOSE_CONV derives from its output size
    (``transpose_conv.cc``: ``ComputePaddingHeightWidth`` with the output as the forward
    conv's input); ``windows`` must equal the input size."""
    win = (out_size + s - 1) // s if mode == SAME else (out_size + s - k) // s
    total = max((win - 1) * s + k - out_size, 0)
    return total // 2, win
