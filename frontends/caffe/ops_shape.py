"""Caffe layers that combine or move data: Eltwise, Concat, Slice, Flatten, Reshape, Permute,
Crop, Interp, ShuffleChannel (Split and Dropout are aliases handled by the walk).

Semantics (BVLC/caffe ``src/caffe/layers/<type>_layer.cpp``): Eltwise SUM with per-bottom
``coeff``, PROD, MAX; Slice cuts at ``slice_point`` (equal parts without); Flatten joins
``axis..end_axis``; Reshape copies a dim for 0 and infers one -1 inside ``axis`` /
``num_axes``; Crop takes the second bottom's dims from ``axis`` on, at ``offset`` (one for
all axes, or one per axis). Permute is SSD's (weiliu89/caffe ssd ``permute_layer.cpp``: the
``order`` axes first, the unnamed ones after, in order). Interp (bilinear, corners aligned)
and ShuffleChannel are in Tencent/ncnn tools/caffe/caffe.proto and OpenCV's importer.
"""
from __future__ import annotations

import math

import numpy as np

from converter.registry import Check, converter

from .context import Ctx
from .reader import CaffeLayer


def _axis(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise ValueError(f"axis {axis} on a rank-{rank} input")
    return a


@converter("caffe", "Eltwise", emits=("Add", "Mul", "Max"), checks=(
        Check("coeff is empty or one per bottom (SUM only)", lambda lay: len(
            lay.param("eltwise_param").coeff) in (0, len(lay.bottoms)) and (
            lay.param("eltwise_param").operation == 1 or not len(
                lay.param("eltwise_param").coeff)), "caffe.eltwise_coeff"),))
def eltwise(cx: Ctx, lay: CaffeLayer):
    """Eltwise -> a chain of Add (SUM, each bottom times its coeff first), Mul (PROD) or
    Max (MAX)."""
    p = lay.param("eltwise_param")
    op = {0: "Mul", 1: "Add", 2: "Max"}[int(p.operation)]
    coeffs = [float(c) for c in p.coeff] or [1.0] * len(lay.inputs)
    terms = []
    for i, (v, c) in enumerate(zip(lay.inputs, coeffs)):
        terms.append(v if c == 1.0 else cx.emit("Mul", v, cx.const(np.float32(c), f"coeff{i}"),
                                                suffix=f"coeff{i}"))
    y = terms[0]
    for i, t in enumerate(terms[1:], 1):
        y = cx.emit(op, y, t, suffix="" if i == len(terms) - 1 else f"part{i}")
    return y if len(terms) > 1 else cx.emit("Identity", y)


@converter("caffe", "Concat", emits=("Concat",))
def concat(cx: Ctx, lay: CaffeLayer):
    """Concat(axis; legacy ``concat_dim``) -> Concat."""
    p = lay.param("concat_param")
    axis = int(p.axis) if p.HasField("axis") or not p.HasField("concat_dim") else int(
        p.concat_dim)
    return cx.emit("Concat", *lay.inputs, axis=_axis(axis, len(lay.x.shape)))


@converter("caffe", "Slice", emits=("Split",))
def slice_(cx: Ctx, lay: CaffeLayer):
    """Slice(axis; legacy ``slice_dim``; ``slice_point``) -> Split with the part sizes."""
    p = lay.param("slice_param")
    axis = int(p.axis) if p.HasField("axis") or not p.HasField("slice_dim") else int(
        p.slice_dim)
    axis = _axis(axis, len(lay.x.shape))
    dim, n = int(lay.x.shape[axis]), len(lay.tops)
    points = [int(q) for q in p.slice_point]
    if points:
        cuts = [0] + points + [dim]
        if len(points) != n - 1 or any(b <= a for a, b in zip(cuts, cuts[1:])):
            raise ValueError(f"slice_point {points} does not cut {dim} into {n} parts")
        sizes = [b - a for a, b in zip(cuts, cuts[1:])]
    else:
        if n == 0 or dim % n:
            raise ValueError(f"{dim} does not split into {n} equal parts")
        sizes = [dim // n] * n
    outs = cx.emit("Split", lay.x, cx.i64(sizes), axis=axis, n_out=n)
    return outs if n > 1 else [outs]


@converter("caffe", "Flatten", emits=("Reshape",))
def flatten(cx: Ctx, lay: CaffeLayer):
    """Flatten(axis, end_axis) -> Reshape joining dims ``axis..end_axis``."""
    p = lay.param("flatten_param")
    shape = [int(d) for d in lay.x.shape]
    a, e = _axis(int(p.axis), len(shape)), _axis(int(p.end_axis), len(shape))
    if e < a:
        raise ValueError(f"end_axis {p.end_axis} before axis {p.axis}")
    new = shape[:a] + [math.prod(shape[a:e + 1])] + shape[e + 1:]
    return cx.emit("Reshape", lay.x, cx.i64(new))


def caffe_reshape(shape: list, dims: list, axis: int, num_axes: int) -> list:
    """The output shape of Caffe's Reshape (src/caffe/layers/reshape_layer.cpp)."""
    rank = len(shape)
    start = axis + rank + 1 if axis < 0 else axis
    end = rank if num_axes == -1 else start + num_axes
    if not 0 <= start <= end <= rank:
        raise ValueError(f"axis {axis} / num_axes {num_axes} on a rank-{rank} input")
    mid = [shape[start + i] if d == 0 else d for i, d in enumerate(dims)]
    out = shape[:start] + mid + shape[end:]
    if mid.count(-1) > 1 or any(d < -1 for d in mid):
        raise ValueError(f"bad reshape dims {dims}")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(shape) // known if known else 0
    if math.prod(out) != math.prod(shape):
        raise ValueError(f"cannot reshape {shape} to {out}")
    return out


@converter("caffe", "Reshape", emits=("Reshape",))
def reshape(cx: Ctx, lay: CaffeLayer):
    """Reshape(shape, axis, num_axes) -> Reshape to the statically resolved shape."""
    p = lay.param("reshape_param")
    out = caffe_reshape([int(d) for d in lay.x.shape], [int(d) for d in p.shape.dim],
                        int(p.axis), int(p.num_axes))
    return cx.emit("Reshape", lay.x, cx.i64(out))


@converter("caffe", "Permute", emits=("Transpose",))
def permute(cx: Ctx, lay: CaffeLayer):
    """Permute(order) -> Transpose(perm = order, then the axes it leaves out)."""
    rank = len(lay.x.shape)
    order = [int(o) for o in lay.param("permute_param").order]
    if len(set(order)) != len(order) or any(not 0 <= o < rank for o in order):
        raise ValueError(f"order {order} is not a permutation of {rank} axes")
    perm = order + [a for a in range(rank) if a not in order]
    return cx.emit("Transpose", lay.x, perm=tuple(perm))


@converter("caffe", "Crop", emits=("Slice",), checks=(
        Check("two bottoms (data, reference)", lambda lay: len(lay.bottoms) == 2,
              "caffe.crop"),))
def crop(cx: Ctx, lay: CaffeLayer):
    """Crop(axis, offset) -> Slice of the first bottom to the reference's dims from ``axis``
    on."""
    p = lay.param("crop_param")
    x, ref = lay.inputs
    rank = len(x.shape)
    a = _axis(int(p.axis), rank)
    offs = [int(o) for o in p.offset] or [0]
    offs = offs * (rank - a) if len(offs) == 1 else offs
    if len(offs) != rank - a:
        raise ValueError(f"{len(offs)} offsets for {rank - a} cropped axes")
    ends = [o + int(ref.shape[a + i]) for i, o in enumerate(offs)]
    if any(e > int(x.shape[a + i]) for i, e in enumerate(ends)):
        raise ValueError(f"crop {offs}..{ends} exceeds the input {list(x.shape)}")
    return cx.emit("Slice", x, cx.i64(offs), cx.i64(ends), cx.i64(list(range(a, rank))))


def interp_size(h: int, w: int, p) -> tuple[int, int]:
    """Interp's output size: ``height``/``width``, else shrink ``(n - 1) / s + 1`` then zoom
    ``n + (n - 1) * (z - 1)`` (Tencent/ncnn tools/caffe/caffe2ncnn.cpp, OpenCV interp)."""
    if p.height > 0 and p.width > 0:
        return int(p.height), int(p.width)
    if p.shrink_factor < 1 or p.zoom_factor < 1:
        raise ValueError("zoom_factor / shrink_factor must be >= 1")
    h, w = (h - 1) // p.shrink_factor + 1, (w - 1) // p.shrink_factor + 1
    return h + (h - 1) * (p.zoom_factor - 1), w + (w - 1) * (p.zoom_factor - 1)


@converter("caffe", "Interp", emits=("Resize",), checks=(
        Check("pad_beg and pad_end are 0", lambda lay: lay.param("interp_param").pad_beg == 0
              and lay.param("interp_param").pad_end == 0, "caffe.interp_pad"),
        Check("the input is 4-D", lambda lay: len(lay.x.shape) == 4, "caffe.rank")))
def interp(cx: Ctx, lay: CaffeLayer):
    """Interp -> Resize(linear, align_corners) to the computed size."""
    n, c, h, w = (int(d) for d in lay.x.shape)
    oh, ow = interp_size(h, w, lay.param("interp_param"))
    return cx.emit("Resize", lay.x, None, None, cx.i64([n, c, oh, ow]), mode="linear",
                   coordinate_transformation_mode="align_corners")


@converter("caffe", "ShuffleChannel", emits=("Reshape", "Transpose"), checks=(
        Check("the input is 4-D", lambda lay: len(lay.x.shape) == 4, "caffe.rank"),))
def shuffle_channel(cx: Ctx, lay: CaffeLayer):
    """ShuffleChannel(group g) -> Reshape ``[N, g, C/g, H, W]``, Transpose(0, 2, 1, 3, 4),
    Reshape back."""
    n, c, h, w = (int(d) for d in lay.x.shape)
    g = int(lay.param("shuffle_channel_param").group)
    if g <= 0 or c % g:
        raise ValueError(f"group {g} does not divide {c} channels")
    v = cx.reshape(lay.x, (n, g, c // g, h, w), "split")
    t = cx.emit("Transpose", v, perm=(0, 2, 1, 3, 4), suffix="swap")
    return cx.reshape(t, (n, c, h, w))
