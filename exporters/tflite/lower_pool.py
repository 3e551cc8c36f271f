"""TFLite lowerings of pooling, reductions, Resize and Pad.

Operators (schema.fbs; kernels ``pooling.cc``, ``reduce.cc``, ``resize_bilinear.cc``,
``resize_nearest_neighbor.cc``, ``pad.cc``, ``mirror_pad.cc``; tflite.md §3-5):

* ``MAX_POOL_2D`` / ``AVERAGE_POOL_2D`` (Pool2DOptions: padding, strides, filter size; no
  dilation). Both pools skip cells outside the input: max ignores them and average divides
  by the cells inside the input (== ONNX ``count_include_pad=0``). ONNX geometry that
  ``SAME`` / ``VALID`` cannot express (:mod:`.geometry`) is written as PADV2 with the lowest
  float (max) or PAD with zeros (average) + VALID; for the average the divisor then is the
  full kernel, so the IR divisor (``count_include_pad``, ceil-mode windows clipped to the
  padded input) is restored by a MUL with a constant ``[1, OH, OW, 1]`` correction map.
* Global pools and ReduceMean / ReduceSum / ReduceMax -> ``MEAN`` / ``SUM`` / ``REDUCE_MAX``
  with int32 physical axes and ``keep_dims``.
* Resize -> ``RESIZE_NEAREST_NEIGHBOR`` / ``RESIZE_BILINEAR`` (size int32 ``[H, W]``;
  ``align_corners``, ``half_pixel_centers``), flags per ONNX coordinate mode (tflite.md rule
  8): linear ``half_pixel`` / ``pytorch_half_pixel`` (output > 1) -> half_pixel_centers,
  ``align_corners`` -> align_corners, ``asymmetric`` -> neither; nearest ``asymmetric`` +
  ``floor`` -> neither (torch ``nearest``), ``tf_half_pixel_for_nn`` + ``floor`` or
  ``half_pixel`` + ``round_prefer_ceil`` -> half_pixel_centers (torch ``nearest-exact``),
  ``align_corners`` + ``round_prefer_ceil`` -> align_corners. TFLite scales by in/out, so the
  output must be exactly ``in * scale``.
* Pad -> ``PAD`` (zeros) / ``PADV2`` (constant value) / ``MIRROR_PAD`` (``reflect`` ->
  REFLECT; ``edge`` with pads <= 1 -> SYMMETRIC, which copies the edge cell).
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node
from converter.ops import attr
from converter.registry import Check, lowering

from . import geometry as geo
from .checks import checks, const_inputs, rank_in
from .context import LowerCtx
from .layout import phys_axis
from .lower_conv import axes_2d, conv_axes, finish_2d, output_2d, to_2d, window

LOWEST = float(np.finfo(np.float32).min)


def _pool_axes(node: Node) -> list:
    return axes_2d(conv_axes(node, node.inputs[0].shape[2:], node.outputs[0].shape[2:]))


def _emit_pool(ctx: LowerCtx, code: str, x: int, y: int, mode: int, axes: list) -> None:
    ctx.op(code, [x], [y], "Pool2DOptions", Padding=mode, StrideH=axes[0].s,
           StrideW=axes[1].s, FilterHeight=axes[0].k, FilterWidth=axes[1].k)


POOL_CHECKS = checks(
    rank_in((3, 4), "1-D or 2-D pooling (input rank 3 or 4)"),
    Check("dilations are 1 (TFLite pools have no dilation)",
          lambda n: all(d == 1 for d in (attr(n, "dilations") or (1,))), "tflite.attr"))


@lowering("tflite", "MaxPool", emits=("MAX_POOL_2D", "PADV2", "RESHAPE"), checks=POOL_CHECKS + (
    Check("only the values output is read (no indices)", lambda n: len(n.outputs) == 1 or
          not n.outputs[1].uses, "tflite.attr"),))
def lower_maxpool(node: Node, ctx: LowerCtx) -> None:
    """MaxPool -> MAX_POOL_2D (SAME/VALID, else PADV2 with the lowest float + VALID)."""
    x = to_2d(ctx, ctx.input(node, 0), node.name)
    x, mode, axes = window(ctx, x, _pool_axes(node), node.name, LOWEST)
    y, y2 = output_2d(ctx, node)
    _emit_pool(ctx, "MAX_POOL_2D", x, y2, mode, axes)
    finish_2d(ctx, node, y, y2)


def avg_correction(node: Node, axes: list, padded: bool) -> np.ndarray:
    """``[1, OH, OW, 1]`` factors turning TFLite's average (divisor: cells inside its input,
    the whole kernel when ``padded``) into the IR's (``count_include_pad``)."""
    include = bool(attr(node, "count_include_pad"))
    ir = [np.asarray(geo.window_counts(a, include), np.float64) for a in axes]
    if padded:
        tfl = [np.full(a.out, a.k, np.float64) for a in axes]
    else:
        tfl = [np.asarray(geo.window_counts(a, False), np.float64) for a in axes]
    f = np.outer(tfl[0] / ir[0], tfl[1] / ir[1])
    return f.reshape(1, f.shape[0], f.shape[1], 1).astype(np.float32)


@lowering("tflite", "AveragePool", emits=("AVERAGE_POOL_2D", "PAD", "MUL", "RESHAPE"),
          checks=POOL_CHECKS)
def lower_avgpool(node: Node, ctx: LowerCtx) -> None:
    """AveragePool -> AVERAGE_POOL_2D (SAME/VALID, else PAD + VALID), then MUL by the
    divisor correction when TFLite's divisor differs from the IR's."""
    axes = _pool_axes(node)
    x = to_2d(ctx, ctx.input(node, 0), node.name)
    mode = geo.tf_padding(axes)
    fix = avg_correction(node, axes, mode is None)
    x, mode, vaxes = window(ctx, x, axes, node.name, 0.0)
    y, y2 = output_2d(ctx, node)
    exact = np.allclose(fix, 1.0, rtol=0, atol=0)
    pooled = y2 if exact else ctx.temp(node.name, "pooled", ctx.model.tensors[y2].shape)
    _emit_pool(ctx, "AVERAGE_POOL_2D", x, pooled, mode, vaxes)
    if not exact:
        ctx.op("MUL", [pooled, ctx.const(fix, f"{node.name}/divisor")], [y2], "MulOptions")
    finish_2d(ctx, node, y, y2)


def _reduce_op(node: Node, ctx: LowerCtx, code: str, axes, keep: bool) -> None:
    perm = ctx.want(node, 0)
    phys = sorted(phys_axis(perm, int(a)) for a in axes)
    y = ctx.out(node.outputs[0])
    ctx.op(code, [ctx.input(node, 0), ctx.i32(phys, node.name, "axes")], [y],
           "ReducerOptions", KeepDims=keep)


@lowering("tflite", "GlobalAveragePool", emits=("MEAN",), checks=checks())
def lower_global_avg(node: Node, ctx: LowerCtx) -> None:
    """GlobalAveragePool -> MEAN over the spatial axes, keep_dims."""
    _reduce_op(node, ctx, "MEAN", range(2, len(node.inputs[0].shape)), True)


@lowering("tflite", "GlobalMaxPool", emits=("REDUCE_MAX",), checks=checks())
def lower_global_max(node: Node, ctx: LowerCtx) -> None:
    """GlobalMaxPool -> REDUCE_MAX over the spatial axes, keep_dims."""
    _reduce_op(node, ctx, "REDUCE_MAX", range(2, len(node.inputs[0].shape)), True)


REDUCE = {"ReduceMean": "MEAN", "ReduceSum": "SUM", "ReduceMax": "REDUCE_MAX"}


def _reduce(code: str):
    def fn(node: Node, ctx: LowerCtx) -> None:
        rank = len(node.inputs[0].shape)
        axes = node.const_input(1)
        if axes is None or len(axes) == 0:
            if attr(node, "noop_with_empty_axes"):
                ctx.bind(node.outputs[0], ctx.input(node, 0))
                return
            axes = range(rank)
        axes = [int(a) % rank for a in np.asarray(axes).reshape(-1)]
        _reduce_op(node, ctx, code, axes, bool(attr(node, "keepdims")))
    fn.__doc__ = f"IR reduction -> ``{code}`` over the physical axes, keep_dims = keepdims."
    return fn


for _op, _code in REDUCE.items():
    lowering("tflite", _op, emits=(_code,), checks=checks(const_inputs(
        1, text="axes are a constant")))(_reduce(_code))


def resize_flags(node: Node):
    """``(align_corners, half_pixel_centers)`` for the node's modes, None when TFLite has
    no equivalent."""
    mode, ctm = attr(node, "mode"), attr(node, "coordinate_transformation_mode")
    big = all(d > 1 for d in node.outputs[0].shape[2:])
    if mode == "linear":
        table = {"half_pixel": (False, True), "align_corners": (True, False),
                 "asymmetric": (False, False)}
        if ctm == "pytorch_half_pixel" and big:
            return False, True
        return table.get(ctm)
    if mode == "nearest":
        nm = attr(node, "nearest_mode")
        table = {("asymmetric", "floor"): (False, False),
                 ("tf_half_pixel_for_nn", "floor"): (False, True),
                 ("half_pixel", "round_prefer_ceil"): (False, True),
                 ("align_corners", "round_prefer_ceil"): (True, False)}
        return table.get((ctm, nm))
    return None


def _exact_scale(node: Node) -> bool:
    x, y = node.inputs[0].shape, node.outputs[0].shape
    if tuple(x[:2]) != tuple(y[:2]):
        return False
    scales = node.const_input(2)
    if node.const_input(3) is not None or scales is None or len(scales) == 0:
        return node.const_input(3) is not None
    return all(abs(float(s) * i - o) < 1e-6 * max(o, 1) for s, i, o in zip(scales, x, y))


RESIZE_CHECKS = checks(
    rank_in((4,), "2-D resize (input rank 4)"),
    Check("mode/coordinate_transformation_mode/nearest_mode have a TFLite equivalent "
          "(torch nearest, nearest-exact, bilinear)", lambda n: resize_flags(n) is not None,
          "tflite.attr"),
    Check("constant sizes or scales, batch and channels kept, output == input x scale",
          _exact_scale, "tflite.attr"))


@lowering("tflite", "Resize", emits=("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"),
          checks=RESIZE_CHECKS)
def lower_resize(node: Node, ctx: LowerCtx) -> None:
    """Resize -> RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR with the equivalent flags."""
    ac, hp = resize_flags(node)
    h, w = node.outputs[0].shape[2:]
    y = ctx.out(node.outputs[0])
    linear = attr(node, "mode") == "linear"
    ctx.op("RESIZE_BILINEAR" if linear else "RESIZE_NEAREST_NEIGHBOR",
           [ctx.input(node, 0), ctx.i32([h, w], node.name, "size")], [y],
           "ResizeBilinearOptions" if linear else "ResizeNearestNeighborOptions",
           AlignCorners=ac, HalfPixelCenters=hp)


def ir_pads(node: Node) -> list[tuple[int, int]]:
    """Per IR axis ``(before, after)`` of a Pad node (ONNX pads, optional axes)."""
    rank = len(node.inputs[0].shape)
    pads = [int(v) for v in node.const_input(1)]
    axes = node.const_input(3)
    axes = [int(a) % rank for a in axes] if axes is not None else list(range(rank))
    out = [(0, 0)] * rank
    for i, a in enumerate(axes):
        out[a] = (pads[i], pads[i + len(axes)])
    return out


def _pad_ok(node: Node) -> bool:
    pads = ir_pads(node)
    if any(b < 0 or e < 0 for b, e in pads):
        return False
    mode = attr(node, "mode")
    return mode in ("constant", "reflect") or (mode == "edge" and
                                                all(max(p) <= 1 for p in pads))


@lowering("tflite", "Pad", emits=("PAD", "PADV2", "MIRROR_PAD"), checks=checks(
    const_inputs(1, 2, 3, text="pads, constant_value and axes are constants"),
    Check("pads are >= 0 and the mode is constant, reflect, or edge with pads <= 1",
          _pad_ok, "tflite.attr")))
def lower_pad(node: Node, ctx: LowerCtx) -> None:
    """Pad -> PAD / PADV2 (constant) or MIRROR_PAD (reflect; edge of width 1 as SYMMETRIC),
    paddings ``[rank, 2]`` in physical axis order."""
    perm = ctx.want(node, 0)
    pads = ir_pads(node)
    phys = [list(pads[p]) for p in perm]
    y = ctx.out(node.outputs[0])
    ins = [ctx.input(node, 0), ctx.i32(phys, node.name, "paddings")]
    mode = attr(node, "mode")
    if mode != "constant":
        ctx.op("MIRROR_PAD", ins, [y], "MirrorPadOptions", Mode=0 if mode == "reflect" else 1)
        return
    cv = node.const_input(2)
    value = 0.0 if cv is None else float(np.asarray(cv).reshape(-1)[0])
    if value == 0.0:
        ctx.op("PAD", ins, [y])
        return
    val = ctx.const(np.asarray(value, node.inputs[0].dtype), f"{node.name}/value")
    ctx.op("PADV2", ins + [val], [y])
