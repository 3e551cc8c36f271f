"""TFLite lowerings of shape and data-movement ops.

Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Identity and Dropout write nothing here:
the layout pass turns their outputs into movements (:mod:`.layout`), written as RESHAPE /
GATHER / (rarely) TRANSPOSE only where a consumer reads them. Shape is folded to a constant
(static shapes). Axis attributes of the rest are remapped to physical axes:

* Concat -> ``CONCATENATION`` (ConcatenationOptions.axis; no fused activation: the builtin
  kernel rejects one and XNNPACK ignores it, verified);
* Split -> ``SPLIT(axis int32 scalar, x)`` for equal parts or
  ``SPLIT_V(x, size_splits int32, axis)`` (input orders differ, tflite.md rule 6);
* Slice -> ``STRIDED_SLICE(x, begin, end, strides)`` int32 over every physical axis; a
  reverse slice running past index 0 sets that axis' ``end_mask`` bit;
* Gather -> ``GATHER`` (GatherOptions.axis; constant indices normalized to >= 0, int32).
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node
from converter.ops import attr, slice_params, split_sizes
from converter.registry import Check, lowering

from .checks import checks, const_inputs, max_rank, unused_output
from .context import LowerCtx
from .layout import MOVEMENT, phys_axis


def _movement(node: Node, ctx: LowerCtx) -> None:
    """Nothing to write: the layout plan made the output a movement of the input."""


lowering("tflite", tuple(sorted(MOVEMENT - {"Dropout"})), emits=("RESHAPE", "GATHER",
                                                                 "TRANSPOSE"),
         checks=checks(), note="a layout movement: RESHAPE / GATHER only where read")(_movement)
lowering("tflite", "Dropout", emits=("RESHAPE",), checks=checks(
    unused_output(1, "the Dropout mask output is not read")))(_movement)


@lowering("tflite", "Shape", emits=(), checks=checks())
def lower_shape(node: Node, ctx: LowerCtx) -> None:
    """Shape of a static tensor: folded to a constant by the layout plan."""


@lowering("tflite", "Concat", emits=("CONCATENATION",), checks=checks(max_rank(6)))
def lower_concat(node: Node, ctx: LowerCtx) -> None:
    """Concat(axis) -> CONCATENATION over the physical axis (constants laid out alike)."""
    dt = node.outputs[0].dtype
    ins = [ctx.input(node, i, broadcast=False, dtype=dt) for i in range(len(node.inputs))]
    axis = phys_axis(ctx.want(node, 0) or ctx._lead_perm(node), int(attr(node, "axis")))
    ctx.op("CONCATENATION", ins, [ctx.out(node.outputs[0])], "ConcatenationOptions",
           Axis=axis)


@lowering("tflite", "Split", emits=("SPLIT", "SPLIT_V"), checks=checks(
    const_inputs(1, text="split sizes are a constant")))
def lower_split(node: Node, ctx: LowerCtx) -> None:
    """Split -> SPLIT (equal parts) or SPLIT_V (sizes), on the physical axis."""
    sizes = split_sizes(node)
    axis = phys_axis(ctx.want(node, 0), int(attr(node, "axis")))
    outs = [ctx.out(v) for v in node.outputs]
    ax = ctx.const(np.asarray(axis, np.int32), f"{node.name}/axis")
    x = ctx.input(node, 0)
    if len(set(sizes)) == 1:
        ctx.op("SPLIT", [ax, x], outs, "SplitOptions", NumSplits=len(sizes))
    else:
        ctx.op("SPLIT_V", [x, ctx.i32(sizes, node.name, "sizes"), ax], outs, "SplitVOptions",
               NumSplits=len(sizes))


@lowering("tflite", "Slice", emits=("STRIDED_SLICE",), checks=checks(
    const_inputs(1, 2, 3, 4, text="starts, ends, axes, steps are constants"), max_rank(5)))
def lower_slice(node: Node, ctx: LowerCtx) -> None:
    """Slice -> STRIDED_SLICE with full-rank physical begin / end / strides."""
    x = node.inputs[0]
    perm = ctx.want(node, 0)
    begin = [0] * len(x.shape)
    end = [int(d) for d in x.shape]
    step = [1] * len(x.shape)
    end_mask = 0
    for a, s, e, st in slice_params(node, x.shape):
        begin[a], end[a], step[a] = s, e, st
    phys = [perm.index(a) for a in range(len(perm))]
    for a in range(len(perm)):
        if end[a] < 0:
            end_mask |= 1 << phys[a]
            end[a] = 0
    ordered = [[vals[p] for p in perm] for vals in (begin, end, step)]
    ins = [ctx.input(node, 0)] + [ctx.i32(v, node.name, r)
                                  for v, r in zip(ordered, ("begin", "end", "strides"))]
    ctx.op("STRIDED_SLICE", ins, [ctx.out(node.outputs[0])], "StridedSliceOptions",
           EndMask=end_mask)


@lowering("tflite", "Gather", emits=("GATHER",), checks=checks(Check(
    "indices are a constant or int32/int64", lambda n: n.inputs[1].is_const or
    n.inputs[1].dtype in ("int32", "int64"), "tflite.dtype")))
def lower_gather(node: Node, ctx: LowerCtx) -> None:
    """Gather(axis) -> GATHER on the physical axis; constant indices made >= 0, int32."""
    perm = ctx.want(node, 0)
    axis = int(attr(node, "axis")) % len(node.inputs[0].shape)
    idx = ctx.plan.const_of(node.inputs[1])
    if idx is not None:
        dim = node.inputs[0].shape[axis]
        idx = np.where(np.asarray(idx) < 0, np.asarray(idx) + dim, idx).astype(np.int32)
        it = ctx.const(idx, f"{node.name}/indices")
    else:
        it = ctx.input(node, 1)
    ctx.op("GATHER", [ctx.input(node, 0), it], [ctx.out(node.outputs[0])], "GatherOptions",
           Axis=phys_axis(perm, axis))
