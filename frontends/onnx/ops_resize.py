"""Converters for ONNX resampling, padding and reductions: Resize, Upsample, Pad,
ReduceMean / ReduceSum / ReduceMax and (decomposed) ReduceMin / ReduceL1 / ReduceL2 /
ReduceSumSquare.

Version facts (onnx/onnx docs/Changelog.md; behaviour measured with onnxruntime 1.31):
Upsample-7 (``scales`` attribute) / -9 (input) and Resize-10 (``X, scales``) compute
``asymmetric`` coordinates with ``floor`` nearest rounding, i.e. Resize-11+ with
``coordinate_transformation_mode="asymmetric", nearest_mode="floor"`` (verified equal on a
non-integer 1.7 x 2.5 scale); Resize-11 takes ``X, roi, scales, sizes``; Resize-18 adds
``axes``, ``antialias`` and ``keep_aspect_ratio_policy``. Pad-1 ``paddings`` / Pad-2 ``pads``
+ ``value`` attributes, Pad-11 inputs, Pad-18 ``axes``. The reductions' ``axes`` is an
attribute before 18 (ReduceSum before 13), an input after; ``noop_with_empty_axes`` from
ReduceSum-13 / the others at 18.
"""
from __future__ import annotations

import numpy as np

from converter.registry import Check, converter

from .context import Ctx, OnnxNode, norm_axis
from .ops_shape import const_operand, operand

FW = "onnx"


def _resize_inputs(n: OnnxNode) -> tuple:
    """(scales, sizes) arrays of a Resize / Upsample node; None when absent or empty."""
    if n.op == "Upsample":
        scales, sizes = operand(n, "scales", 1), None
    elif n.version < 11:
        scales, sizes = n.const(1), None
    else:
        scales, sizes = n.const(2), n.const(3)
    scales = None if scales is None or scales.size == 0 else scales.astype(np.float32)
    sizes = None if sizes is None or sizes.size == 0 else sizes.astype(np.int64)
    return scales, sizes


def _resize_static(n: OnnxNode) -> bool:
    first = 1 if (n.op == "Upsample" or n.version < 11) else 2
    if any(n.input(i) is not None and not n.input(i).is_const for i in range(first, 4)):
        return False
    return n.op != "Upsample" or operand(n, "scales", 1) is not None


_RESIZE_CHECKS = (
    Check("scales / sizes are constants", _resize_static, "onnx.dynamic_resize"),
    Check("mode is not tf_crop_and_resize", lambda n: n.get("coordinate_transformation_mode")
          != "tf_crop_and_resize", "onnx.resize_mode"),
    Check("antialias = 0, exclude_outside = 0", lambda n: not n.get("antialias", 0) and
          not n.get("exclude_outside", 0), "onnx.resize_antialias"),
    Check("keep_aspect_ratio_policy is stretch", lambda n: n.get(
        "keep_aspect_ratio_policy", "stretch") == "stretch", "onnx.resize_aspect"),
)


def _full_rank(n: OnnxNode, vals, fill) -> list:
    """Per-``axes`` (Resize-18) values spread over every dim, ``fill[d]`` elsewhere."""
    r = len(n.x.shape)
    if n["axes"] is None or vals is None:
        return None if vals is None else list(vals)
    out = list(fill)
    for a, v in zip(n["axes"], vals):
        out[norm_axis(a, r)] = v
    return out


@converter(FW, ("Resize", "Upsample"), emits=("Resize",), checks=_RESIZE_CHECKS)
def resize(cx: Ctx, n: OnnxNode):
    """Resize in the IR (opset 18+) form: constant scales or sizes over every dim; the
    legacy forms get their fixed asymmetric / floor coordinate mapping."""
    r = len(n.x.shape)
    scales, sizes = _resize_inputs(n)
    scales = _full_rank(n, scales, [1.0] * r)
    sizes = _full_rank(n, sizes, n.x.shape)
    mode = {"bilinear": "linear", "trilinear": "linear"}.get(n.get("mode", "nearest"),
                                                               n.get("mode", "nearest"))
    attrs = dict(mode=mode, cubic_coeff_a=n["cubic_coeff_a"],
                 coordinate_transformation_mode=n["coordinate_transformation_mode"],
                 nearest_mode=n["nearest_mode"] if mode == "nearest" else None)
    if n.op == "Upsample" or n.version < 11:
        attrs.update(coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor" if mode == "nearest" else None)
    if sizes is not None:
        return cx.emit("Resize", n.x, None, None, cx.i64(sizes), **attrs)
    return cx.emit("Resize", n.x, None, cx.const(np.asarray(scales, np.float32), suffix="scales"),
                   **attrs)


def _pad_operands(n: OnnxNode) -> tuple:
    """(pads over every dim, constant value or None)."""
    r = len(n.x.shape)
    if n.version < 11:
        pads = n["pads"] if n["pads"] is not None else n["paddings"]
        return [int(p) for p in pads], n.get("value", 0.0)
    pads = [int(p) for p in n.const(1).reshape(-1)]
    value = n.const(2)
    value = None if value is None or value.size == 0 else value.reshape(-1)[0]
    axes = n.const(3)
    if axes is not None:
        full = [0] * (2 * r)
        k = len(axes)
        for j, a in enumerate(int(a) for a in axes):
            full[norm_axis(a, r)], full[norm_axis(a, r) + r] = pads[j], pads[j + k]
        pads = full
    return pads, value


@converter(FW, "Pad", emits=("Pad",),
           checks=tuple(const_operand(a, i, "onnx.dynamic_pad") for a, i in
                        (("pads", 1), ("constant_value", 2), ("axes", 3))))
def pad(cx: Ctx, n: OnnxNode):
    """Pad with constant pads over every dim ([begins..., ends...]); no node for zero pads."""
    pads, value = _pad_operands(n)
    if not any(pads):
        return n.x
    mode = n.get("mode", "constant")
    val = None
    if mode == "constant" and value is not None and float(value) != 0.0:
        val = cx.const(np.asarray(value, dtype=n.x.dtype), suffix="value")
    return cx.emit("Pad", n.x, cx.i64(pads), val, mode=mode)


_REDUCE = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2",
           "ReduceSumSquare")


@converter(FW, _REDUCE, emits=("ReduceMean", "ReduceSum", "ReduceMax", "Neg", "Abs", "Mul",
                               "Sqrt"),
           checks=(const_operand("axes", 1, "onnx.dynamic_axes"),))
def reduce_(cx: Ctx, n: OnnxNode):
    """Reductions with explicit constant axes. ReduceMin = -ReduceMax(-x), ReduceL1 =
    ReduceSum(|x|), ReduceL2 = sqrt(ReduceSum(x*x)), ReduceSumSquare = ReduceSum(x*x)."""
    r = len(n.x.shape)
    axes = operand(n, "axes", 1)
    if axes is None or axes.size == 0:
        if n.get("noop_with_empty_axes", 0):
            return n.x
        axes = np.arange(r)
    ax = cx.i64(sorted(norm_axis(int(a), r) for a in axes.reshape(-1)))
    keep = n.get("keepdims", 1)
    x = n.x
    if n.op in ("ReduceMean", "ReduceSum", "ReduceMax"):
        return cx.emit(n.op, x, ax, keepdims=keep)
    if n.op == "ReduceMin":
        return cx.emit("Neg", cx.emit("ReduceMax", cx.emit("Neg", x), ax, keepdims=keep))
    inner = cx.emit("Abs", x) if n.op == "ReduceL1" else cx.emit("Mul", x, x)
    y = cx.emit("ReduceSum", inner, ax, keepdims=keep)
    return cx.emit("Sqrt", y) if n.op == "ReduceL2" else y
