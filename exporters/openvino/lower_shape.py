"""OpenVINO lowerings of shape and data-movement ops, and the aliases Identity / Dropout.

Specs (openvinotoolkit/openvino docs/articles_en/documentation/openvino-ir-format/
operation-sets/operation-specs/...): ``movement/concat-1.rst``, ``shape/reshape-1.rst``
(``special_zero``: 0 copies the input dim; openvino-ir.md rule 3), ``movement/transpose-1.rst``,
``movement/slice-8.rst`` (start/stop/step/axes, ONNX Slice semantics incl. clamping and
negative steps), ``movement/split-1.rst`` (rank-0 axis, equal parts) and
``movement/variadic-split-1.rst`` (lengths), ``shape/squeeze-1.rst`` /
``shape/unsqueeze-1.rst``, ``movement/gather-8.rst`` (negative indices allowed),
``shape/shape-of-3.rst``.

Fusion: the channel shuffle ``Reshape [.., C, ..] -> [.., g, C/g, ..]``, ``Transpose`` swapping
those two axes, ``Reshape`` back to the input shape (ShuffleNet; torch ``channel_shuffle``) ->
one ``ShuffleChannels`` (``movement/shuffle-channels-1.rst``: exactly that reshape-transpose-
reshape, ``axis`` and ``group`` attributes), when the intermediate tensors have no other reader.

Reshape and Flatten targets are written as literal static shapes when the IR knows the output
shape (``special_zero="false"``); with dynamic dims the ONNX target is kept (ONNX ``0`` =
copy is exactly ``special_zero="true"``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from converter.checks import axis_of
from converter.ir import Graph, Node, Value
from converter.ops import attr
from converter.registry import Check, lowering

from .checks import checks, const_inputs
from .context import LowerCtx


def _static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def _reshape_to(node: Node, ctx: LowerCtx, target, special_zero: bool) -> None:
    shp = ctx.i64(target, node.name, "shape")
    y = ctx.ops.reshape(ctx.input(node, 0), shp, special_zero, name=ctx.name(node.name))
    ctx.bind_node(node, y)


def _private(v: Value, graph: Graph, op: str) -> Optional[Node]:
    """The producer of ``v`` when it is an ``op`` node and ``v`` has one reader and is not a
    graph output."""
    p = v.producer
    if p is None or p.op != op or len(v.uses) != 1 or any(o is v for o in graph.outputs):
        return None
    return p


def shuffle_of(node: Node, graph: Graph) -> Optional[tuple]:
    """``(x, axis, group)`` when Reshape ``node`` ends a channel shuffle of ``x``, else None."""
    t = _private(node.inputs[0], graph, "Transpose")
    r1 = _private(t.inputs[0], graph, "Reshape") if t is not None else None
    if r1 is None:
        return None
    x = r1.inputs[0]
    xs, ms, ys = x.shape, r1.outputs[0].shape, node.outputs[0].shape
    if not (_static(xs) and _static(ms) and tuple(ys) == tuple(xs) and len(ms) == len(xs) + 1):
        return None
    for a in range(len(xs)):
        swap = list(range(len(ms)))
        swap[a], swap[a + 1] = a + 1, a
        if (tuple(ms[:a]) == tuple(xs[:a]) and ms[a] * ms[a + 1] == xs[a]
                and tuple(ms[a + 2:]) == tuple(xs[a + 1:])
                and tuple(attr(t, "perm") or ()) == tuple(swap)):
            return x, a, int(ms[a])
    return None


@lowering("openvino", "Reshape", emits=("Reshape", "ShuffleChannels"),
          checks=checks(const_inputs(1, text="the target shape is a constant")))
def lower_reshape(node: Node, ctx: LowerCtx) -> None:
    """Reshape -> Reshape-1: the static output shape (special_zero false), else the ONNX target
    with special_zero = not allowzero; the end of a channel shuffle -> ShuffleChannels-1."""
    out = node.outputs[0].shape
    shuffle = shuffle_of(node, ctx.graph)
    if shuffle is not None:
        x, axis, group = shuffle
        y = ctx.ops.shuffle_channels(ctx.value(x), axis, group, name=ctx.name(node.name))
        ctx.bind_node(node, y)
    elif _static(out):
        _reshape_to(node, ctx, list(out), False)
    else:
        _reshape_to(node, ctx, [int(v) for v in node.const_input(1)],
                    not attr(node, "allowzero"))


@lowering("openvino", "Flatten", emits=("Reshape",), checks=checks(Check(
    "output shape is static, or axis is 0 or 1", lambda n: _static(n.outputs[0].shape) or
    axis_of(n, "axis", 1) in (0, 1), "openvino.dynamic")))
def lower_flatten(node: Node, ctx: LowerCtx) -> None:
    """Flatten(axis) -> Reshape-1 to the static 2-D shape, or ``[0, -1]`` / ``[1, -1]``
    (special_zero true) for axis 1 / 0 with dynamic dims."""
    out = node.outputs[0].shape
    if _static(out):
        _reshape_to(node, ctx, list(out), False)
    else:
        _reshape_to(node, ctx, [0, -1] if axis_of(node, "axis", 1) == 1 else [1, -1], True)


@lowering("openvino", "Concat", emits=("Concat",), checks=checks())
def lower_concat(node: Node, ctx: LowerCtx) -> None:
    """Concat(axis) -> Concat-1 (constant operands cast to the first tensor's dtype)."""
    ref = next((v for v in node.inputs if not v.is_const), node.inputs[0])
    ins = [ctx.input(node, i, ref) for i in range(len(node.inputs))]
    ctx.bind_node(node, ctx.ops.concat(ins, axis_of(node), name=ctx.name(node.name)))


@lowering("openvino", "Transpose", emits=("Transpose",), checks=checks())
def lower_transpose(node: Node, ctx: LowerCtx) -> None:
    """Transpose(perm) -> Transpose-1 with an i64 order (default: reversed axes)."""
    rank = len(node.inputs[0].shape)
    perm = attr(node, "perm") or tuple(reversed(range(rank)))
    y = ctx.ops.transpose(ctx.input(node, 0), ctx.i64(list(perm), node.name, "order"),
                          name=ctx.name(node.name))
    ctx.bind_node(node, y)


@lowering("openvino", "Slice", emits=("Slice",),
          checks=checks(const_inputs(1, 2, 3, 4, text="starts, ends, axes, steps are constants")))
def lower_slice(node: Node, ctx: LowerCtx) -> None:
    """Slice(data, starts, ends, [axes], [steps]) -> Slice-8 (same operands and semantics)."""
    starts = node.const_input(1)
    steps = node.const_input(4)
    steps = np.ones(len(starts), np.int64) if steps is None else steps
    args = [ctx.input(node, 0), ctx.i64(starts, node.name, "start"),
            ctx.i64(node.const_input(2), node.name, "stop"), ctx.i64(steps, node.name, "step")]
    if node.const_input(3) is not None:
        args.append(ctx.i64(node.const_input(3), node.name, "axes"))
    ctx.bind_node(node, ctx.ops.slice(*args, name=ctx.name(node.name)))


@lowering("openvino", "Split", emits=("Split", "VariadicSplit"),
          checks=checks(const_inputs(1, text="split sizes are a constant")))
def lower_split(node: Node, ctx: LowerCtx) -> None:
    """Split -> Split-1 (equal parts) or VariadicSplit-1 (given or uneven sizes); the axis is
    a rank-0 i64 constant."""
    from converter.ops import split_sizes

    sizes = split_sizes(node)
    axis = ctx.const(np.asarray(axis_of(node), np.int64), f"{node.name}/axis")
    x = ctx.input(node, 0)
    if len(set(sizes)) == 1:
        y = ctx.ops.split(x, axis, len(sizes), name=ctx.name(node.name))
    else:
        y = ctx.ops.variadic_split(x, axis, ctx.i64(sizes, node.name, "lengths"),
                                   name=ctx.name(node.name))
    for i, v in enumerate(node.outputs):
        ctx.bind(v, y.output(i))


@lowering("openvino", "Squeeze", emits=("Squeeze",), checks=checks(
    const_inputs(1, text="axes are a constant"),
    Check("axes are given or the input shape is static", lambda n: n.input(1) is not None or
          _static(n.inputs[0].shape), "openvino.dynamic")))
def lower_squeeze(node: Node, ctx: LowerCtx) -> None:
    """Squeeze -> Squeeze with explicit axes (without: every static dim of size 1)."""
    shape = node.inputs[0].shape
    axes = node.const_input(1)
    axes = [i for i, d in enumerate(shape) if d == 1] if axes is None else [
        int(a) % len(shape) for a in np.asarray(axes).reshape(-1)]
    y = ctx.ops.squeeze(ctx.input(node, 0), ctx.i64(axes, node.name, "axes"),
                        name=ctx.name(node.name))
    ctx.bind_node(node, y)


@lowering("openvino", "Unsqueeze", emits=("Unsqueeze",),
          checks=checks(const_inputs(1, text="axes are a constant")))
def lower_unsqueeze(node: Node, ctx: LowerCtx) -> None:
    """Unsqueeze -> Unsqueeze-1 (axes of the output rank, negative allowed)."""
    axes = [int(a) for a in np.asarray(node.const_input(1)).reshape(-1)]
    y = ctx.ops.unsqueeze(ctx.input(node, 0), ctx.i64(axes, node.name, "axes"),
                          name=ctx.name(node.name))
    ctx.bind_node(node, y)


@lowering("openvino", "Gather", emits=("Gather",), checks=checks())
def lower_gather(node: Node, ctx: LowerCtx) -> None:
    """Gather(axis) -> Gather-8 with a rank-0 axis and batch_dims 0."""
    axis = ctx.const(np.asarray(axis_of(node), np.int64), f"{node.name}/axis")
    y = ctx.ops.gather(ctx.input(node, 0), ctx.input(node, 1), axis, 0,
                       name=ctx.name(node.name))
    ctx.bind_node(node, y)


@lowering("openvino", "Shape", emits=("ShapeOf",), checks=checks())
def lower_shape(node: Node, ctx: LowerCtx) -> None:
    """Shape -> ShapeOf-3 (i64)."""
    ctx.bind_node(node, ctx.ops.shape_of(ctx.input(node, 0), "i64", name=ctx.name(node.name)))


@lowering("openvino", ("Identity", "Dropout"), emits=(), checks=checks(Check(
    "the Dropout mask output is not read", lambda n: len(n.outputs) == 1 or
    not n.outputs[1].uses, "openvino.attr")))
def lower_alias(node: Node, ctx: LowerCtx) -> None:
    """Identity / Dropout (inference) -> no op: the output is the input tensor, which also
    takes the output's name."""
    ctx.bind_node(node, ctx.input(node, 0))
