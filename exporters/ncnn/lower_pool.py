"""ncnn lowerings of pooling, reductions, Resize and Pad.

* Pooling (Tencent/ncnn src/layer/pooling.cpp ``load_param``/``make_padding``): ``0=type``
  (0 max, 1 avg) ``1/11=kernel_w/h 2/12=stride_w/h 3=pad_left 14=pad_right 13=pad_top
  15=pad_bottom 4=global 5=pad_mode 6=avgpool_count_include_pad``. ``5=1`` ("valid") pads
  exactly as given; the default ``0`` ("full") adds a tail pad (ceil rounding) without ONNX's
  rule that the last window starts inside the input, so ceil mode is written as ``5=1`` with the
  tail pad computed here. Global pooling yields a 1-D ``(C,)`` blob. Pooling1D
  (src/layer/pooling1d.cpp): ``0 1 2 3 14 4 5 6``.
* Reduction (src/layer/reduction.cpp): ``0=op (0 sum, 3 mean, 4 max) 1=reduce_all 3=axes
  4=keepdims 5=fixbug0`` (5=1 required, shared/docs/formats/ncnn.md §3.1).
* Interp (src/layer/interp.cpp): ``0=type (1 nearest, 2 bilinear, 3 bicubic) 1/2=h/w scale
  3/4=out h/w 6=align_corner``; nearest reads ``floor(x * in/out)`` (or ``x / scale``),
  bilinear/bicubic use ``(x + 0.5) * in/out - 0.5`` (``x * (in-1)/(out-1)`` with align_corner).
* Padding (src/layer/padding.cpp): ``0=top 1=bottom 2=left 3=right 4=type (0 constant,
  1 replicate, 2 reflect) 5=value 7=front 8=behind``; front/behind pad ``c`` of a 3-D blob and
  ``d`` of a 4-D blob.
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node
from converter.registry import Check, lowering

from .checks import checks, const_inputs, rank_in
from .context import LowerCtx, ncnn_shape


def _pool_geometry(node: Node) -> tuple:
    x, y = node.inputs[0].shape, node.outputs[0].shape
    nsp = len(x) - 2
    k = tuple(node.attrs["kernel_shape"])
    s = tuple(node.attrs.get("strides") or (1,) * nsp)
    p = list(node.attrs.get("pads") or (0,) * (2 * nsp))
    tail = [max(0, (y[2 + i] - 1) * s[i] + k[i] - (x[2 + i] + p[i] + p[i + nsp]))
            for i in range(nsp)]
    return k, s, p, tail


def _pool_params(k, s, p, tail) -> dict:
    if len(k) == 1:
        return {1: k[0], 2: s[0], 3: p[0], 14: p[1] + tail[0], 5: 1}
    return {1: k[1], 11: k[0], 2: s[1], 12: s[0], 3: p[1], 14: p[3] + tail[1],
            13: p[0], 15: p[2] + tail[0], 5: 1}


POOL_CHECKS = checks(
    rank_in((3, 4), "1-D or 2-D pooling (input rank 3 or 4)"),
    Check("dilations are 1", lambda n: all(d == 1 for d in n.attrs.get("dilations") or (1,)),
          "ncnn.attr"))


@lowering("ncnn", ("MaxPool", "AveragePool"), emits=("Pooling", "Pooling1D", "Padding"),
          checks=POOL_CHECKS)
def lower_pool(node: Node, ctx: LowerCtx) -> None:
    """MaxPool/AveragePool (floor or ceil mode, pads, count_include_pad) -> Pooling/Pooling1D
    with ``5=1`` and explicit pads (see module docstring). Average pooling that counts pads
    *and* has a ceil-mode tail is written with ``6=0`` and the pads taken from a zero ``Padding``
    layer, so that ncnn counts the pads but not the tail (the ONNX/PyTorch divisor; with
    ``6=1`` ncnn divides by the full kernel size, src/layer/pooling.cpp)."""
    k, s, p, tail = _pool_geometry(node)
    avg = node.op == "AveragePool"
    include = avg and bool(node.attrs.get("count_include_pad", 0))
    x = ctx.inp(node.inputs[0])
    if include and any(tail):
        if any(p):
            x = _zero_pad(node, ctx, x, p)
            p = [0] * len(p)
        include = False
    params = {0: int(avg), **_pool_params(k, s, p, tail)}
    if avg:
        params[6] = int(include)
    kind = "Pooling1D" if len(k) == 1 else "Pooling"
    ctx.emit(kind, node.name, [x], [ctx.out(node.outputs[0])], params)


def _zero_pad(node: Node, ctx: LowerCtx, x: int, p: list) -> int:
    shape = list(ctx.shape[x])
    nsp = len(p) // 2
    for i in range(nsp):
        shape[1 + i] += p[i] + p[i + nsp]
    params = {2: p[0], 3: p[1]} if nsp == 1 else {0: p[0], 1: p[2], 2: p[1], 3: p[3]}
    out = ctx.new_blob(node.outputs[0].name + "_pad", shape)
    ctx.emit("Padding", node.name + "_pad", [x], [out], params)
    return out


@lowering("ncnn", ("GlobalAveragePool", "GlobalMaxPool"), emits=("Pooling", "Pooling1D"),
          checks=checks(rank_in((3, 4), "input rank 3 or 4")))
def lower_global_pool(node: Node, ctx: LowerCtx) -> None:
    """GlobalAveragePool/GlobalMaxPool -> ``Pooling 0=type 4=1`` (Pooling1D for rank 3); the
    output is the compact blob ``(C,)`` of the IR ``[1,C,1,1]``."""
    x = node.inputs[0]
    kind = "Pooling1D" if len(x.shape) == 3 else "Pooling"
    params = {0: int(node.op == "GlobalAveragePool"), 4: 1}
    ctx.emit(kind, node.name, [ctx.inp(x)], [ctx.out(node.outputs[0], (x.shape[1],))], params)


REDUCE_OPS = {"ReduceSum": 0, "ReduceMean": 3, "ReduceMax": 4}


def _reduce_axes(node: Node) -> list:
    x = node.inputs[0].shape
    axes = node.const_input(1)
    if axes is None or len(axes) == 0:
        return [] if node.attrs.get("noop_with_empty_axes", 0) else list(range(len(x)))
    return sorted({int(a) + len(x) if int(a) < 0 else int(a) for a in axes})


@lowering("ncnn", tuple(REDUCE_OPS), emits=("Reduction", "Pooling", "Reshape"), checks=checks(
    const_inputs(1, text="axes are constant")))
def lower_reduce(node: Node, ctx: LowerCtx) -> None:
    """ReduceSum/Mean/Max -> ``Reduction`` over the non-batch axes (a reduced batch axis of size
    1 is a no-op; without keepdims a final Reshape drops it); mean/max over H,W of a rank-4
    tensor -> global ``Pooling`` (one layer, output ``(C,)``)."""
    x, y = node.inputs[0], node.outputs[0]
    axes, keep = _reduce_axes(node), int(node.attrs.get("keepdims", 1))
    if node.op != "ReduceSum" and len(x.shape) == 4 and axes == [2, 3]:
        params = {0: int(node.op == "ReduceMean"), 4: 1}
        ctx.emit("Pooling", node.name, [ctx.inp(x)], [ctx.out(y, (x.shape[1],))], params)
        return
    nax = [a - 1 for a in axes if a != 0]
    if not nax:
        ctx.alias(y, ctx.reshape(ctx.inp(x), ncnn_shape(y.shape), y.name))
        return
    keep_n = keep or 0 in axes
    shape = tuple(1 if i + 1 in axes else d for i, d in enumerate(x.shape[1:])
                  if keep_n or i + 1 not in axes)
    out = ctx.new_blob(y.name, shape)
    ctx.emit("Reduction", node.name, [ctx.inp(x)], [out],
             {0: REDUCE_OPS[node.op], 1: 0, 3: nax, 4: int(keep_n), 5: 1})
    ctx.alias(y, ctx.reshape(out, ncnn_shape(y.shape), y.name))


def _resize_spec(node: Node) -> tuple:
    """``(type, align_corner, out_sizes, scales or None)`` of a Resize node.

    Raises:
        ValueError: a mode, coordinate transform or scale ncnn's Interp does not reproduce.
    """
    x, y = node.inputs[0].shape, node.outputs[0].shape
    mode = node.attrs.get("mode", "nearest")
    ctm = node.attrs.get("coordinate_transformation_mode", "half_pixel")
    scales = node.const_input(2)
    scales = None if scales is None or len(scales) == 0 else [float(s) for s in scales]
    if (scales is not None and any(s != 1.0 for s in scales[:2])) or tuple(y[:2]) != tuple(x[:2]):
        raise ValueError("batch and channel are not resized")
    if mode == "nearest":
        if ctm != "asymmetric" or node.attrs.get("nearest_mode", "round_prefer_floor") != "floor":
            raise ValueError("nearest needs asymmetric + floor (PyTorch 'nearest')")
        return 1, 0, tuple(y[2:]), scales
    kind = {"linear": 2, "cubic": 3}[mode]
    if kind == 3 and float(node.attrs.get("cubic_coeff_a", -0.75)) != -0.75:
        raise ValueError("ncnn bicubic uses A = -0.75")
    if ctm == "align_corners":
        if any(d < 2 for d in y[2:]):
            raise ValueError("align_corners needs output sizes >= 2")
        return kind, 1, tuple(y[2:]), None
    if ctm not in ("half_pixel", "pytorch_half_pixel") or (
            ctm == "pytorch_half_pixel" and any(d < 2 for d in y[2:])):
        raise ValueError(f"coordinate_transformation_mode {ctm}")
    if scales is not None and any(o != i * s for o, i, s in zip(y[2:], x[2:], scales[2:])):
        raise ValueError("scales must give integral output sizes (ncnn uses in/out)")
    return kind, 0, tuple(y[2:]), None


@lowering("ncnn", "Resize", emits=("Interp",), checks=checks(
    rank_in((3, 4), "1-D or 2-D resize (input rank 3 or 4)"),
    const_inputs(1, 2, 3, text="roi, scales and sizes are constants"),
    Check("nearest (asymmetric, floor) or linear/cubic (half_pixel, pytorch_half_pixel, "
          "align_corners); batch and channels not resized", lambda n: _resize_spec(n),
          "ncnn.attr")))
def lower_resize(node: Node, ctx: LowerCtx) -> None:
    """Resize -> ``Interp``: nearest with scales writes ``1/2=scale`` (ncnn then reads
    ``x / scale`` like ONNX), otherwise ``3/4=out_h/out_w`` (for a 2-D blob ``3`` is its row
    count, Interp only resizes ``w``)."""
    kind, align, sizes, scales = _resize_spec(node)
    x, y = node.inputs[0], node.outputs[0]
    params = {0: kind}
    if scales is not None and kind == 1:
        params.update({1: scales[2] if len(sizes) == 2 else 1.0, 2: scales[-1]})
    else:
        params.update({3: sizes[0] if len(sizes) == 2 else x.shape[1], 4: sizes[-1]})
    if align:
        params[6] = 1
    ctx.emit("Interp", node.name, [ctx.inp(x)], [ctx.out(y)], params)


PAD_MODES = {"constant": 0, "edge": 1, "reflect": 2}
#: IR rank -> ncnn Padding (begin, end) keys per IR axis 1..rank-1
PAD_KEYS = {2: [(2, 3)], 3: [(0, 1), (2, 3)], 4: [(7, 8), (0, 1), (2, 3)],
            5: [None, (7, 8), (0, 1), (2, 3)]}


def _pad_params(node: Node) -> dict:
    """Padding params of a Pad node.

    Raises:
        ValueError: negative pads, padded batch axis, a mode ncnn lacks, or an axis ncnn
            cannot pad (the channel axis of a rank-5 tensor).
    """
    x = node.inputs[0].shape
    r = len(x)
    pads = [int(v) for v in node.const_input(1)]
    axes = node.const_input(3)
    axes = list(range(r)) if axes is None else [int(a) + r if a < 0 else int(a) for a in axes]
    params = {4: PAD_MODES[node.attrs.get("mode", "constant")]}
    value = node.const_input(2)
    if value is not None and np.asarray(value).size:
        params[5] = float(np.asarray(value).reshape(-1)[0])
    for i, a in enumerate(axes):
        b, e = pads[i], pads[i + len(axes)]
        if b < 0 or e < 0 or (a == 0 and (b or e)):
            raise ValueError("negative or batch pads")
        if b or e:
            keys = PAD_KEYS[r][a - 1]
            if keys is None:
                raise ValueError("rank-5 channel axis cannot be padded")
            params.update({keys[0]: b, keys[1]: e})
    return params


@lowering("ncnn", "Pad", emits=("Padding",), checks=checks(
    const_inputs(1, 2, 3, text="pads, value and axes are constants"),
    Check("constant/edge/reflect mode, non-negative pads, batch (and rank-5 channel) axis "
          "not padded", lambda n: _pad_params(n), "ncnn.attr")))
def lower_pad(node: Node, ctx: LowerCtx) -> None:
    """Pad -> ``Padding`` (keys per IR axis in ``PAD_KEYS``)."""
    ctx.emit("Padding", node.name, [ctx.inp(node.inputs[0])], [ctx.out(node.outputs[0])],
             _pad_params(node))
