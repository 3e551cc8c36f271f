"""ncnn lowerings of shape and data-movement ops.

Facts (Tencent/ncnn ``src/layer/<layer>.cpp`` and docs/developer-guide/operators.md):

* Axes count from the outermost dim of the batch-less blob (IR axis ``k`` -> ncnn ``k-1``).
* Concat ``0=axis``; Slice ``0=slices (array) 1=axis``; Crop ``9=starts 10=ends 11=axes``
  (arrays, numpy-style, src/layer/crop.cpp ``resolve_crop_roi``); Flip ``0=axes`` (array).
* Reshape ``0=w 1=h 11=d 2=c`` (innermost first); Flatten -> 1-D in c,h,w order.
* Permute ``0=order_type``: the order names list the *output* axes innermost first (``WHC`` is
  the identity of a 3-D blob); see :data:`PERMUTE_ORDERS`.
* ShuffleChannel ``0=group``: out channel ``g*j + i`` = in channel ``(C/g)*i + j``
  (src/layer/shufflechannel.cpp), i.e. PyTorch's channel_shuffle.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from converter.ir import Node
from converter.ops import slice_params, split_sizes
from converter.registry import Check, lowering

from .checks import NOT_BATCH_AXIS, axis_of, checks, const_inputs
from .context import LowerCtx, ncnn_shape, reshape_params

#: ncnn Permute order_type -> output axes innermost first (operators.md "Permute")
PERMUTE_ORDERS = {
    2: ["WH", "HW"],
    3: ["WHC", "HWC", "WCH", "CWH", "HCW", "CHW"],
    4: ["WHDC", "HWDC", "WDHC", "DWHC", "HDWC", "DHWC", "WHCD", "HWCD", "WCHD", "CWHD", "HCWD",
        "CHWD", "WDCH", "DWCH", "WCDH", "CWDH", "DCWH", "CDWH", "HDCW", "DHCW", "HCDW", "CHDW",
        "DCHW", "CDHW"],
}
_AXIS_LETTERS = {2: "HW", 3: "CHW", 4: "CDHW"}


def permute_order(perm: tuple) -> int:
    """ncnn order_type of a numpy permutation of a batch-less blob (outermost-first axes).

    Raises:
        ValueError: the rank is not 2..4.
    """
    letters = _AXIS_LETTERS[len(perm)]
    name = "".join(letters[p] for p in reversed(perm))
    return PERMUTE_ORDERS[len(perm)].index(name)


# ------------------------------------------------------------------ reshapes and aliases
def reshape_to(node: Node, ctx: LowerCtx, kind: str = "Reshape") -> None:
    """Lower a pure reshape: alias when the input blob already has the target ncnn shape, or
    is a compact prefix of it (``(C,)`` for ``(C,1,1)``; consumers materialize it via
    :meth:`LowerCtx.inp`), else a ``Reshape`` (or ``Flatten``) layer."""
    x, y = node.inputs[0], node.outputs[0]
    blob = ctx.blob(x)
    have, want = ctx.shape[blob], ncnn_shape(y.shape)
    if want[:len(have)] == have and all(d == 1 for d in want[len(have):]):
        ctx.alias(y, blob)
        return
    params = {} if kind == "Flatten" else reshape_params(want)
    ctx.emit(kind, node.name, [blob], [ctx.out(y)], params)


def _is_shuffle(node: Node, ctx: LowerCtx) -> Optional[tuple]:
    """Reshape [1,C,H,W]->[1,g,C/g,H,W], Transpose (0,2,1,3,4), Reshape back: (g, t, r)."""
    xs, ys = node.inputs[0].shape, node.outputs[0].shape
    if len(xs) != 4 or len(ys) != 5 or ys[1] * ys[2] != xs[1] or tuple(ys[3:]) != tuple(xs[2:]):
        return None
    t = ctx.sole_user(node.outputs[0])
    if t is None or t.op != "Transpose" or tuple(t.attrs.get("perm") or ()) != (0, 2, 1, 3, 4):
        return None
    r = ctx.sole_user(t.outputs[0])
    if r is None or r.op != "Reshape" or tuple(r.outputs[0].shape) != tuple(xs):
        return None
    return ys[1], t, r


@lowering("ncnn", "Reshape", emits=("Reshape", "ShuffleChannel"), checks=checks(
    const_inputs(1, text="the target shape is a constant")))
def lower_reshape(node: Node, ctx: LowerCtx) -> None:
    """Reshape -> ``Reshape`` to the inferred output shape (or nothing); the channel-shuffle
    chain Reshape/Transpose(0,2,1,3,4)/Reshape -> ``ShuffleChannel 0=group``."""
    shuffle = _is_shuffle(node, ctx)
    if shuffle is None:
        reshape_to(node, ctx)
        return
    group, t, r = shuffle
    ctx.skip(t)
    ctx.skip(r)
    ctx.emit("ShuffleChannel", node.name, [ctx.inp(node.inputs[0])], [ctx.out(r.outputs[0])],
             {0: int(group)})


@lowering("ncnn", "Flatten", emits=("Flatten", "Reshape"), checks=checks())
def lower_flatten(node: Node, ctx: LowerCtx) -> None:
    """Flatten -> ``Flatten`` when the result is ``[1, N]`` (ncnn flattens c,h,w like
    ``torch.flatten(x, 1)``), nothing on a 1-D blob, else ``Reshape``."""
    reshape_to(node, ctx, "Flatten" if node.outputs[0].shape[0] == 1
               and len(node.outputs[0].shape) == 2 else "Reshape")


@lowering("ncnn", ("Squeeze", "Unsqueeze"), emits=("Reshape",), checks=checks(
    const_inputs(1, text="axes are constant")))
def lower_squeeze(node: Node, ctx: LowerCtx) -> None:
    """Squeeze/Unsqueeze -> ``Reshape`` to the output shape (or nothing)."""
    reshape_to(node, ctx)


@lowering("ncnn", "Identity", checks=checks())
def lower_identity(node: Node, ctx: LowerCtx) -> None:
    """Identity -> no layer (the output aliases the input blob)."""
    ctx.alias(node.outputs[0], ctx.blob(node.inputs[0]))


def _dropout_ok(node: Node) -> bool:
    training = node.const_input(2)
    return (len(node.outputs) < 2 or not node.outputs[1].uses) and (
        training is None or not bool(np.asarray(training).reshape(-1)[0]))


@lowering("ncnn", "Dropout", checks=checks(
    const_inputs(1, 2, text="ratio and training_mode are constants"),
    Check("inference mode (training_mode false) and the mask output unused", _dropout_ok,
          "ncnn.attr")))
def lower_dropout(node: Node, ctx: LowerCtx) -> None:
    """Dropout (inference) -> no layer (the output aliases the input blob)."""
    ctx.alias(node.outputs[0], ctx.blob(node.inputs[0]))


# ------------------------------------------------------------------ transpose
def _transpose_plan(node: Node) -> tuple:
    """``("reshape",)`` when only size-1 axes move, else ``("permute", order_type)``.

    Raises:
        ValueError: the batch axis moves or the blob rank is not 2..4.
    """
    x = node.inputs[0].shape
    perm = tuple(node.attrs.get("perm") or reversed(range(len(x))))
    if [p for p in perm if x[p] != 1] == [i for i in range(len(x)) if x[i] != 1]:
        return ("reshape",)
    if perm[0] != 0:
        raise ValueError("the batch axis moves")
    return ("permute", permute_order(tuple(p - 1 for p in perm[1:])))


@lowering("ncnn", "Transpose", emits=("Permute", "Reshape"), checks=checks(
    Check("the batch axis stays first (or only size-1 axes move)",
          lambda n: _transpose_plan(n), "ncnn.batch_axis")))
def lower_transpose(node: Node, ctx: LowerCtx) -> None:
    """Transpose -> ``Permute 0=order_type`` on 2-D..4-D blobs, or a reshape when only size-1
    axes move."""
    plan = _transpose_plan(node)
    if plan[0] == "reshape":
        reshape_to(node, ctx)
        return
    ctx.emit("Permute", node.name, [ctx.inp(node.inputs[0])], [ctx.out(node.outputs[0])],
             {0: plan[1]})


# ------------------------------------------------------------------ concat / split
@lowering("ncnn", "Concat", emits=("Concat", "MemoryData"), checks=checks(NOT_BATCH_AXIS))
def lower_concat(node: Node, ctx: LowerCtx) -> None:
    """Concat(axis) -> ``Concat 0=axis-1``; compact ``(C_i,)`` blobs along the channel axis are
    concatenated as 1-D blobs (output compact)."""
    axis, y = axis_of(node), node.outputs[0]
    blobs = [None if v.is_const else ctx.blob(v) for v in node.inputs]
    if axis == 1 and all(b is not None and len(ctx.shape[b]) == 1 for b in blobs) \
            and all(d == 1 for d in y.shape[2:]):
        ctx.emit("Concat", node.name, blobs, [ctx.out(y, (y.shape[1],))], {0: 0})
        return
    ctx.emit("Concat", node.name, [ctx.inp(v) for v in node.inputs], [ctx.out(y)],
             {0: axis - 1})


@lowering("ncnn", "Split", emits=("Slice", "Crop"), checks=checks(
    NOT_BATCH_AXIS, const_inputs(1, text="split sizes are constant")))
def lower_split(node: Node, ctx: LowerCtx) -> None:
    """Split -> ``Slice 0=[sizes] 1=axis-1``; when some outputs are unused, one ``Crop`` per used
    output instead (so no dangling blob is left in the .param)."""
    axis, sizes = axis_of(node), split_sizes(node)
    x = ctx.inp(node.inputs[0])
    if all(o.uses or ctx.is_output(o) for o in node.outputs):
        ctx.emit("Slice", node.name, [x], [ctx.out(o) for o in node.outputs],
                 {0: [int(s) for s in sizes], 1: axis - 1})
        return
    start = 0
    for o, size in zip(node.outputs, sizes):
        if o.uses or ctx.is_output(o):
            ctx.emit("Crop", f"{node.name}_{o.name}", [x], [ctx.out(o)],
                     {9: [start], 10: [start + int(size)], 11: [axis - 1]})
        start += int(size)


# ------------------------------------------------------------------ slice
#: ncnn Padding (end) key per axis of an ncnn blob of rank 1..3 (src/layer/padding.cpp)
_PAD_END = {1: (3,), 2: (1, 3), 3: (8, 1, 3)}


def _slice_plan(node: Node) -> tuple:
    """``(flips, pads, crops, strides)`` on ncnn axes: axes to flip, ``(axis, n)`` zero padding
    at the end, ``(axis, start, end)`` crops and ``(axis, count, step)`` strided picks (step > 1,
    done by reshape + crop; the span is padded to ``count * step`` when it runs past the end).

    Raises:
        ValueError: empty or batch slicing, or a stride on a rank-5 tensor (the split axis
            would exceed ncnn's 4 dims).
    """
    x = node.inputs[0].shape
    flips, pads, crops, strides = [], [], [], []
    for a, s, e, st in slice_params(node, x):
        n, dim = len(range(s, e, st)), x[a]
        if a == 0 or n == 0:
            if a == 0 and n == 1 and dim == 1:
                continue
            raise ValueError("empty or batch slice")
        if st < 0:
            flips.append(a - 1)
            s, st = dim - 1 - s, -st
        if st > 1 and len(x) > 4:
            raise ValueError("strided slice needs one more ncnn dim")
        end = s + n * st if st > 1 else s + n
        if end > dim:
            pads.append((a - 1, end - dim))
        if (s, end) != (0, max(dim, end)):
            crops.append((a - 1, s, end))
        if st > 1:
            strides.append((a - 1, n, st))
    return flips, pads, crops, strides


@lowering("ncnn", "Slice", emits=("Crop", "Flip", "Padding", "Reshape"), checks=checks(
    const_inputs(1, 2, 3, 4, text="starts, ends, axes and steps are constants"),
    Check("non-empty slices off the batch axis; a step != 1 needs rank <= 4",
          lambda n: _slice_plan(n) is not None, "ncnn.attr")))
def lower_slice(node: Node, ctx: LowerCtx) -> None:
    """Slice -> ``Crop 9=starts 10=ends 11=axes``; negative steps flip the axis first (``Flip``);
    a step ``k > 1`` over ``n`` items is a Reshape of the span to ``(n, k)``, a Crop of the first
    column and a Reshape back (a span running past the axis end is zero-padded first)."""
    flips, pads, crops, strides = _slice_plan(node)
    y = node.outputs[0]
    blob = src = ctx.inp(node.inputs[0])
    if flips:
        blob = _layer(ctx, "Flip", node, blob, ctx.shape[blob], {0: flips}, "_flip")
    if pads:
        shape = list(ctx.shape[blob])
        for a, n in pads:
            shape[a] += n
        params = {_PAD_END[len(shape)][a]: n for a, n in pads}
        blob = _layer(ctx, "Padding", node, blob, shape, params, "_pad")
    if crops:
        blob = _crop(ctx, node, blob, crops)
    for a, n, st in strides:
        shape = list(ctx.shape[blob])
        split = ctx.reshape(blob, shape[:a] + [n, st] + shape[a + 1:])
        picked = shape[:a] + [n, 1] + shape[a + 1:]
        blob = _layer(ctx, "Crop", node, split, picked, {9: [0], 10: [1], 11: [a + 1]},
                      f"_step{a}")
        blob = ctx.reshape(blob, shape[:a] + [n] + shape[a + 1:])
    if blob != src:
        ctx.hint[blob] = y.name
    ctx.alias(y, blob)


def _crop(ctx: LowerCtx, node: Node, blob: int, crops: list) -> int:
    shape = list(ctx.shape[blob])
    for a, s, e in crops:
        shape[a] = e - s
    params = {9: [c[1] for c in crops], 10: [c[2] for c in crops], 11: [c[0] for c in crops]}
    return _layer(ctx, "Crop", node, blob, shape, params, "_crop")


def _layer(ctx: LowerCtx, kind: str, node: Node, x: int, shape, params: dict,
           suffix: str) -> int:
    out = ctx.new_blob(node.outputs[0].name + suffix, shape)
    ctx.emit(kind, node.name + suffix, [x], [out], params)
    return out
