"""Converters for TensorFlow image resizes: ResizeBilinear, ResizeNearestNeighbor.

Coordinate mapping (tensorflow/tensorflow ``tensorflow/core/util/image_resizer_state.h``):
``align_corners`` maps corner to corner (ONNX ``align_corners``); ``half_pixel_centers``
samples at ``(out + 0.5) * in / out - 0.5`` (ONNX ``half_pixel``); neither is ``out * in /
out`` (ONNX ``asymmetric``). Nearest rounds with ``floor`` (asymmetric), ``round`` half away
from zero (align_corners: ONNX ``round_prefer_ceil`` for the non-negative coordinates), and
``floor((out + 0.5) * scale)`` with half_pixel_centers, which is ONNX ``half_pixel`` then
``round_prefer_ceil`` (``floor(y - 0.5 + 0.5)``). NHWC input, wrapped in Transposes.
"""
from __future__ import annotations

from converter.registry import Check, converter

from .context import Ctx, TfNode

FW = "tensorflow"


def _mode(n: TfNode) -> str:
    if n.get("align_corners"):
        return "align_corners"
    return "half_pixel" if n.get("half_pixel_centers") else "asymmetric"


@converter(FW, ("ResizeBilinear", "ResizeNearestNeighbor"), emits=("Resize", "Transpose"),
           checks=(Check("constant size, rank-4 input", lambda n: n.const(1) is not None and
                         n.x.rank == 4, "tensorflow.resize"),))
def resize(cx: Ctx, n: TfNode):
    """Resize to the constant ``size`` [h, w] (ONNX Resize ``sizes`` [N, C, h, w])."""
    h, w = (int(s) for s in n.const(1))
    ct = _mode(n)
    attrs = {"mode": "linear", "coordinate_transformation_mode": ct}
    if n.op == "ResizeNearestNeighbor":
        attrs = {"mode": "nearest", "coordinate_transformation_mode": ct,
                 "nearest_mode": "floor" if ct == "asymmetric" else "round_prefer_ceil"}
    sizes = cx.i64([n.x.shape[0], n.x.shape[3], h, w])
    return cx.to_nhwc(cx.emit("Resize", cx.to_nchw(n.x), None, None, sizes, **attrs))
