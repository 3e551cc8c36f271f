"""Converters for TensorFlow shape and data-movement ops: Reshape, Squeeze, ExpandDims,
Transpose, ConcatV2 / Concat, Pack, Unpack, Tile, Split, SplitV, StridedSlice, Slice, Pad,
PadV2, MirrorPad, Shape / Size / Rank / ZerosLike / OnesLike of static shapes (constants).

Everything acts in TensorFlow's own layout (axes are TF's: NHWC for images). Facts:
tensorflow/tensorflow ``tensorflow/core/ops/array_ops.cc`` and
``tensorflow/core/util/strided_slice_op.cc`` (StridedSlice masks: begin/end mask ignore the
bound, ellipsis expands to the dims the other entries leave, new_axis inserts a size-1 dim,
shrink_axis takes one element and drops the dim; dims after the last entry are kept whole).
"""
from __future__ import annotations

import numpy as np

from converter.registry import Check, converter

from .context import Ctx, TfNode, Unsupported

FW = "tensorflow"


def _static(v) -> bool:
    return v is not None and v.shape is not None and all(isinstance(d, int) for d in v.shape)


CONST1 = Check("constant operand 1 (shape / axes / sizes)", lambda n: n.const(1) is not None,
               "tensorflow.const_operand")
STATIC = Check("static input shape", lambda n: _static(n.x), "tensorflow.static_shape")


@converter(FW, "Reshape", emits=("Reshape",), checks=(CONST1,))
def reshape(cx: Ctx, n: TfNode):
    """Reshape to a constant shape (-1 infers one dim, as in the IR)."""
    return cx.emit("Reshape", n.x, cx.i64(n.const(1)))


@converter(FW, "Squeeze", emits=("Squeeze",), checks=(STATIC,))
def squeeze(cx: Ctx, n: TfNode):
    """Squeeze(squeeze_dims; empty = every size-1 dim)."""
    r = n.x.rank
    axes = [int(a) % r for a in (n.get("squeeze_dims") or [])] or \
        [i for i, d in enumerate(n.x.shape) if d == 1]
    return cx.emit("Squeeze", n.x, cx.i64(sorted(axes)))


@converter(FW, "ExpandDims", emits=("Unsqueeze",), checks=(CONST1,))
def expand_dims(cx: Ctx, n: TfNode):
    """ExpandDims(x, axis): a negative axis counts from the output rank."""
    a = int(np.asarray(n.const(1)).reshape(-1)[0])
    return cx.emit("Unsqueeze", n.x, cx.i64([a % (n.x.rank + 1)]))


@converter(FW, "Transpose", emits=("Transpose",), checks=(CONST1,))
def transpose(cx: Ctx, n: TfNode):
    """Transpose(x, perm) with a constant perm (TF axes)."""
    return cx.emit("Transpose", n.x, perm=[int(p) for p in n.const(1)])


@converter(FW, ("ConcatV2", "Concat"), emits=("Concat",),
           checks=(Check("constant axis", lambda n: (n.const(len(n.inputs) - 1) if
                                                      n.op == "ConcatV2" else n.const(0))
                         is not None, "tensorflow.axis"),))
def concat(cx: Ctx, n: TfNode):
    """ConcatV2(values..., axis) / Concat(axis, values...)."""
    vals, axis = (n.inputs[:-1], n.const(len(n.inputs) - 1)) if n.op == "ConcatV2" else \
        (n.inputs[1:], n.const(0))
    rank = vals[0].rank
    return cx.emit("Concat", *vals, axis=int(np.asarray(axis).reshape(-1)[0]) % rank)


@converter(FW, "Pack", emits=("Unsqueeze", "Concat"))
def pack(cx: Ctx, n: TfNode):
    """Pack(values, axis) = Concat of each value unsqueezed at axis."""
    ax = int(n.get("axis", 0)) % (n.x.rank + 1)
    parts = [cx.emit("Unsqueeze", v, cx.i64([ax])) for v in n.inputs]
    return cx.emit("Concat", *parts, axis=ax) if len(parts) > 1 else parts[0]


@converter(FW, "Tile", emits=("Concat",),
           checks=(CONST1, Check("at most 64 copies (it becomes a Concat of copies)",
                                 lambda n: int(np.prod(n.const(1))) <= 64, "tensorflow.tile")))
def tile(cx: Ctx, n: TfNode):
    """Tile(x, multiples) = per axis a Concat of ``multiples[axis]`` copies (the IR has no
    Tile; Keras 3 UpSampling2D / RepeatVector emit small ones)."""
    y = n.x
    for axis, m in enumerate(int(v) for v in n.const(1)):
        if m > 1:
            y = cx.emit("Concat", *([y] * m), axis=axis)
    return y


@converter(FW, "Unpack", emits=("Split", "Squeeze"), checks=(STATIC,))
def unpack(cx: Ctx, n: TfNode):
    """Unpack(value, num, axis) = Split into size-1 pieces, each squeezed."""
    ax = int(n.get("axis", 0)) % n.x.rank
    num = int(n.x.shape[ax])
    parts = cx.emit("Split", n.x, cx.i64([1] * num), axis=ax, n_out=num) if num > 1 else [n.x]
    return [cx.emit("Squeeze", p, cx.i64([ax])) for p in parts]


def _split(cx: Ctx, n: TfNode, x, sizes: list, axis: int):
    dim = x.shape[axis]
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = dim - (sum(sizes) + 1)
    if len(sizes) == 1:
        return [x]
    return cx.emit("Split", x, cx.i64(sizes), axis=axis, n_out=len(sizes))


@converter(FW, "Split", emits=("Split",),
           checks=(Check("constant axis, static input", lambda n: n.const(0) is not None and
                         _static(n.input(1)), "tensorflow.split"),))
def split(cx: Ctx, n: TfNode):
    """Split(axis, value, num_split) into equal parts."""
    x = n.input(1)
    ax = int(np.asarray(n.const(0)).reshape(-1)[0]) % x.rank
    k = int(n["num_split"])
    return _split(cx, n, x, [x.shape[ax] // k] * k, ax)


@converter(FW, "SplitV", emits=("Split",),
           checks=(Check("constant sizes and axis, static input", lambda n: n.const(1) is not
                         None and n.const(2) is not None and _static(n.x), "tensorflow.split"),))
def split_v(cx: Ctx, n: TfNode):
    """SplitV(value, size_splits, axis); one -1 size takes the rest."""
    ax = int(np.asarray(n.const(2)).reshape(-1)[0]) % n.x.rank
    return _split(cx, n, n.x, [int(s) for s in n.const(1)], ax)


def slice_plan(shape, begin, end, strides, masks: dict) -> tuple[list, list]:
    """(slices ``[(axis, start, end, step)]`` on input dims, output shape) of a StridedSlice
    on static ``shape`` (see the module docstring for the mask semantics)."""
    bit = lambda m, i: (int(masks.get(m) or 0) >> i) & 1  # noqa: E731
    n = len(begin)
    consumed = sum(1 for i in range(n) if not bit("ellipsis_mask", i) and
                   not bit("new_axis_mask", i))
    axis, slices, out = 0, [], []
    for i in range(n):
        if bit("ellipsis_mask", i):
            for _ in range(len(shape) - consumed):
                out.append(shape[axis])
                axis += 1
        elif bit("new_axis_mask", i):
            out.append(1)
        elif bit("shrink_axis_mask", i):
            b = int(begin[i]) + (shape[axis] if int(begin[i]) < 0 else 0)
            slices.append((axis, b, b + 1, 1))
            axis += 1
        else:
            b = None if bit("begin_mask", i) else int(begin[i])
            e = None if bit("end_mask", i) else int(end[i])
            s, e2, st = slice(b, e, int(strides[i])).indices(shape[axis])
            slices.append((axis, s, e2, st))
            out.append(len(range(s, e2, st)))
            axis += 1
    out += list(shape[axis:])
    return slices, out


def _slice(cx: Ctx, x, slices: list, out_shape: list):
    dims = x.shape
    todo = [(a, s, e if e >= 0 else -dims[a] - 1, st) for a, s, e, st in slices
            if not (s == 0 and e == dims[a] and st == 1)]
    y = x
    if todo:
        a, s, e, st = zip(*todo)
        y = cx.emit("Slice", x, cx.i64(s), cx.i64(e), cx.i64(a), cx.i64(st))
    if tuple(y.shape) != tuple(out_shape):
        y = cx.emit("Reshape", y, cx.i64(out_shape))
    return y


@converter(FW, "StridedSlice", emits=("Slice", "Reshape"),
           checks=(STATIC, Check("constant begin / end / strides", lambda n: all(
               n.const(i) is not None for i in (1, 2, 3)), "tensorflow.const_operand")))
def strided_slice(cx: Ctx, n: TfNode):
    """StridedSlice -> Slice on the sliced axes, then Reshape for shrink / new axes."""
    slices, out = slice_plan(n.x.shape, n.const(1), n.const(2), n.const(3), n.attrs)
    return _slice(cx, n.x, slices, out)


@converter(FW, "Slice", emits=("Slice",),
           checks=(STATIC, Check("constant begin and size", lambda n: n.const(1) is not None
                                 and n.const(2) is not None, "tensorflow.const_operand")))
def slice_(cx: Ctx, n: TfNode):
    """Slice(x, begin, size); size -1 runs to the end."""
    slices, out = [], []
    for a, (b, s) in enumerate(zip(n.const(1), n.const(2))):
        e = n.x.shape[a] if int(s) < 0 else int(b) + int(s)
        slices.append((a, int(b), e, 1))
        out.append(e - int(b))
    return _slice(cx, n.x, slices, out)


def _pads(p: np.ndarray) -> list:
    p = np.asarray(p).reshape(-1, 2)
    return [int(v) for v in p[:, 0]] + [int(v) for v in p[:, 1]]


@converter(FW, ("Pad", "PadV2"), emits=("Pad",), checks=(CONST1,))
def pad(cx: Ctx, n: TfNode):
    """Pad / PadV2(x, paddings [rank, 2], constant_values)."""
    value = n.input(2)
    if value is not None and value.is_const:
        value = cx.const(value.const.astype(n.x.dtype).reshape(()))
    return cx.emit("Pad", n.x, cx.i64(_pads(n.const(1))), value, mode="constant")


@converter(FW, "MirrorPad", emits=("Pad",),
           checks=(CONST1, Check("mode REFLECT (SYMMETRIC has no IR form)",
                                 lambda n: n["mode"] == "REFLECT", "tensorflow.mirror_pad")))
def mirror_pad(cx: Ctx, n: TfNode):
    """MirrorPad REFLECT -> Pad mode "reflect" (the edge pixel is not repeated)."""
    return cx.emit("Pad", n.x, cx.i64(_pads(n.const(1))), mode="reflect")


@converter(FW, ("Shape", "Size", "Rank", "ZerosLike", "OnesLike", "ShapeN"), emits=(),
           checks=(Check("static input shapes", lambda n: all(_static(v) for v in n.inputs),
                         "tensorflow.static_shape"),))
def static_shape(cx: Ctx, n: TfNode):
    """Constants from the (static) input shapes."""
    dt = n.get("out_type", "int32")
    shp = [tuple(v.shape) for v in n.inputs]
    if n.op in ("Shape", "ShapeN"):
        return [cx.const(np.asarray(s, dtype=dt)) for s in shp]
    if n.op == "Size":
        return cx.const(np.asarray(int(np.prod(shp[0])), dtype=dt))
    if n.op == "Rank":
        return cx.const(np.asarray(len(shp[0]), dtype=np.int32))
    fill = np.zeros if n.op == "ZerosLike" else np.ones
    if not n.x.dtype.startswith(("float", "int", "bool")):
        raise Unsupported("tensorflow.dtype", f"{n.op} of {n.x.dtype}")
    return cx.const(fill(shp[0], dtype=n.x.dtype))
