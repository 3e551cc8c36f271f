"""TFLite lowerings of Conv, ConvTranspose, Gemm, MatMul and BatchNormalization.

Operators (schema.fbs; kernels ``tensorflow/lite/kernels/conv.cc``, ``depthwise_conv.cc``,
``transpose_conv.cc``, ``fully_connected.cc``, ``batch_matmul.cc``; tflite.md §3-5):

* ``CONV_2D(x NHWC, filter [O, kh, kw, I/G], bias [O])``: torch/ONNX ``[O, I/G, kh, kw]``
  transposed ``(0, 2, 3, 1)``; grouped convolution (1 < G < C_in) is inferred by the kernel
  from ``C_in / filter_in`` (verified in LiteRT 2.3.0, builtin and XNNPACK). The bias input is
  required (zeros when the IR has none).
* ``DEPTHWISE_CONV_2D(x, filter [1, kh, kw, C*M], bias)`` when ``group == C_in``:
  ``[C*M, 1, kh, kw]`` transposed ``(1, 2, 3, 0)``, ``depth_multiplier = M``.
* ``TRANSPOSE_CONV(output_shape int32 [4], filter [O, kh, kw, I], x, bias)``: ConvTranspose
  ``[I, O, kh, kw]`` transposed ``(1, 2, 3, 0)``; the begin crop is derived from the output
  shape (:func:`~exporters.tflite.geometry.transpose_conv_begin`); when it cannot equal the
  IR pads, a VALID full-size result is cropped by SLICE.
* ``FULLY_CONNECTED(x [M, K], weights [N, K], bias [N] or -1)``: Gemm ``alpha * A @ B'``
  with alpha folded into the weights, ``beta * C`` into the bias; a flatten of an NHWC
  tensor feeding it is a RESHAPE whose column order is folded into the weights
  (:meth:`~exporters.tflite.context.LowerCtx.columns`), so no TRANSPOSE is needed.
  MatMul with a constant 2-D right operand -> FULLY_CONNECTED ``keep_num_dims``; otherwise
  ``BATCH_MATMUL``.

1-D convolutions (rank-3 ``[N, W, C]`` physical) run as 2-D ones on ``[N, 1, W, C]``.
Explicit or asymmetric padding that ``SAME`` / ``VALID`` cannot express becomes a PAD.
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node
from converter.ops import attr
from converter.registry import Check, lowering

from . import geometry as geo
from .checks import checks, const_inputs, rank_in
from .context import LowerCtx
from .model import SAME, VALID


def conv_axes(node: Node, spatial_in, spatial_out) -> list:
    """:class:`~exporters.tflite.geometry.Axis` per spatial axis of a Conv / pool node."""
    nsp = len(spatial_in)
    k = attr(node, "kernel_shape") or tuple(node.inputs[1].shape[2:])
    s = attr(node, "strides") or (1,) * nsp
    d = attr(node, "dilations") or (1,) * nsp
    p = attr(node, "pads") or (0,) * (2 * nsp)
    return geo.axes_of(spatial_in, spatial_out, k, s, d, p)


def to_2d(ctx: LowerCtx, t: int, name: str) -> int:
    """A rank-3 ``[N, W, C]`` tensor as ``[N, 1, W, C]`` (RESHAPE); rank 4 unchanged."""
    shape = ctx.model.tensors[t].shape
    if len(shape) == 4:
        return t
    return ctx.reshape(t, (shape[0], 1) + tuple(shape[1:]), f"{name}/as_2d")


def axes_2d(axes: list) -> list:
    """A 1-D axis list as 2-D (a unit H axis first)."""
    return axes if len(axes) == 2 else [geo.Axis(1, 1, 1, 1, 0, 0, 1)] + list(axes)


def pad_input(ctx: LowerCtx, x: int, axes: list, name: str, value: float = 0.0) -> int:
    """PAD (zeros) / PADV2 (``value``) of an NHWC tensor by the explicit per-axis pads."""
    pads = [[0, 0]] + [list(p) for p in geo.explicit(axes)] + [[0, 0]]
    shape = ctx.model.tensors[x].shape
    out = [shape[0]] + [shape[1 + i] + sum(pads[1 + i]) for i in range(2)] + [shape[3]]
    t = ctx.temp(name, "pad", out)
    ins = [x, ctx.i32(pads, name, "paddings")]
    if value != 0.0:
        ins.append(ctx.const(np.asarray(value, np.float32), f"{name}/pad_value"))
    ctx.op("PADV2" if value != 0.0 else "PAD", ins, [t])
    return t


def window(ctx: LowerCtx, x: int, axes: list, name: str, value: float = 0.0) -> tuple:
    """``(input tensor, padding, axes)`` of a 2-D window op: SAME/VALID when they fit the
    IR geometry, else the input explicitly padded and VALID (the axes of the padded input)."""
    mode = geo.tf_padding(axes)
    if mode is not None:
        return x, mode, axes
    x = pad_input(ctx, x, axes, name, value)
    padded = [geo.Axis(a.size + a.pb + a.tail(), a.k, a.s, a.d, 0, 0, a.out) for a in axes]
    return x, VALID, padded


def output_2d(ctx: LowerCtx, node: Node) -> tuple[int, int]:
    """``(final tensor, 2-D result tensor)``: for a 1-D op the 2-D result is reshaped back."""
    y = ctx.out(node.outputs[0])
    shape = ctx.model.tensors[y].shape
    if len(shape) == 4:
        return y, y
    return y, ctx.temp(node.name, "2d", (shape[0], 1) + tuple(shape[1:]))


def finish_2d(ctx: LowerCtx, node: Node, y: int, y2: int) -> None:
    """RESHAPE a 1-D op's 2-D result ``y2`` back into its output ``y`` (no-op for 2-D)."""
    if y != y2:
        ctx.op("RESHAPE", [y2, ctx.i32(ctx.model.tensors[y].shape, node.name, "shape")], [y])


def _bias(node: Node, n_out: int) -> np.ndarray:
    b = node.const_input(2)
    return np.zeros(n_out, np.float32) if b is None else np.asarray(b, np.float32).reshape(-1)


CONV_CHECKS = checks(rank_in((3, 4), "1-D or 2-D convolution (input rank 3 or 4)"),
                     const_inputs(1, 2, text="weights and bias are constants"))


@lowering("tflite", "Conv", emits=("CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "RESHAPE",
                                   "DEQUANTIZE"),
          checks=CONV_CHECKS)
def lower_conv(node: Node, ctx: LowerCtx) -> None:
    """Conv -> CONV_2D (group 1 or grouped) / DEPTHWISE_CONV_2D (group == C_in), with an
    explicit PAD when the IR pads are not SAME/VALID; rank 3 through ``[N, 1, W, C]``."""
    w = np.asarray(node.inputs[1].const, np.float32)
    group, c_in, c_out = int(attr(node, "group")), node.inputs[0].shape[1], w.shape[0]
    x = to_2d(ctx, ctx.input(node, 0), node.name)
    axes = axes_2d(conv_axes(node, node.inputs[0].shape[2:], node.outputs[0].shape[2:]))
    if w.ndim == 3:
        w = w[:, :, None, :]
    x, mode, axes = window(ctx, x, axes, node.name)
    y, y2 = output_2d(ctx, node)
    geom = dict(Padding=mode, StrideH=axes[0].s, StrideW=axes[1].s,
                DilationHFactor=axes[0].d, DilationWFactor=axes[1].d)
    bias = ctx.const(_bias(node, c_out), f"{node.name}/bias")
    if group == c_in and group > 1:
        filt = ctx.weight(w.transpose(1, 2, 3, 0), f"{node.inputs[1].name}", "hybrid", 3)
        ctx.op("DEPTHWISE_CONV_2D", [x, filt, bias], [y2], "DepthwiseConv2DOptions",
               DepthMultiplier=c_out // c_in, **geom)
    else:
        kind = "hybrid" if group == 1 else "weight"
        filt = ctx.weight(w.transpose(0, 2, 3, 1), f"{node.inputs[1].name}", kind, 0)
        ctx.op("CONV_2D", [x, filt, bias], [y2], "Conv2DOptions", **geom)
    finish_2d(ctx, node, y, y2)


def _tconv_plan(node: Node) -> tuple:
    """``(padding, tflite output H/W, crop begins)`` of a 2-D ConvTranspose."""
    x, y = node.inputs[0].shape, node.outputs[0].shape
    k = attr(node, "kernel_shape") or tuple(node.inputs[1].shape[2:])
    s = attr(node, "strides") or (1, 1)
    p = attr(node, "pads") or (0, 0, 0, 0)
    op_ = attr(node, "output_padding") or (0, 0)
    for mode in (SAME, VALID):
        got = [geo.transpose_conv_begin(y[2 + i], k[i], s[i], mode) for i in range(2)]
        if all(got[i] == (p[i], x[2 + i]) for i in range(2)):
            return mode, [y[2], y[3]], None
    full = [(x[2 + i] - 1) * s[i] + k[i] + op_[i] for i in range(2)]
    return VALID, full, [p[0], p[1]]


TCONV_CHECKS = checks(
    rank_in((4,), "2-D transposed convolution (input rank 4)"),
    const_inputs(1, 2, text="weights and bias are constants"),
    Check("group is 1 (TRANSPOSE_CONV has no groups)", lambda n: attr(n, "group") == 1,
          "tflite.attr"),
    Check("dilations are 1 (TRANSPOSE_CONV has no dilation)",
          lambda n: all(d == 1 for d in (attr(n, "dilations") or (1, 1))), "tflite.attr"))


@lowering("tflite", "ConvTranspose", emits=("TRANSPOSE_CONV", "SLICE", "DEQUANTIZE"),
          checks=TCONV_CHECKS)
def lower_conv_transpose(node: Node, ctx: LowerCtx) -> None:
    """ConvTranspose -> TRANSPOSE_CONV(output_shape, filter OHWI, x, bias); SAME/VALID when
    TFLite's derived crop equals the IR pads, else VALID at full size + SLICE."""
    w = np.asarray(node.inputs[1].const, np.float32)
    mode, hw, crop = _tconv_plan(node)
    n, c_out = node.outputs[0].shape[0], node.outputs[0].shape[1]
    y = ctx.out(node.outputs[0])
    full = y if crop is None else ctx.temp(node.name, "full", (n, hw[0], hw[1], c_out))
    filt = ctx.weight(w.transpose(1, 2, 3, 0), node.inputs[1].name, "weight", 0)
    ins = [ctx.i32([n, hw[0], hw[1], c_out], node.name, "output_shape"), filt,
           ctx.input(node, 0), ctx.const(_bias(node, c_out), f"{node.name}/bias")]
    s = attr(node, "strides") or (1, 1)
    ctx.op("TRANSPOSE_CONV", ins, [full], "TransposeConvOptions", Padding=mode,
           StrideH=s[0], StrideW=s[1])
    if crop is not None:
        size = ctx.model.tensors[y].shape
        ctx.op("SLICE", [full, ctx.i32([0, crop[0], crop[1], 0], node.name, "begin"),
                         ctx.i32(size, node.name, "size")], [y])


def _gemm_weights(node: Node) -> np.ndarray:
    """Gemm's B as FULLY_CONNECTED weights ``[N, K]`` times alpha."""
    b = np.asarray(node.inputs[1].const, np.float32)
    w = b if attr(node, "transB") else b.T
    return np.ascontiguousarray(w * np.float32(attr(node, "alpha")))


def _gemm_bias(node: Node, n: int):
    """``beta * C`` as a ``[N]`` bias, or None when C is absent or not a per-column row."""
    c = node.const_input(2)
    if c is None:
        return None
    c = np.asarray(c, np.float32) * np.float32(attr(node, "beta"))
    return np.broadcast_to(c, (1, n)).reshape(n).copy() if c.size in (1, n) else None


@lowering("tflite", "Gemm", emits=("FULLY_CONNECTED", "BATCH_MATMUL", "ADD", "MUL", "RESHAPE",
                                   "DEQUANTIZE"), checks=checks(
    Check("C is absent, constant or a tensor broadcasting to [M, N]",
          lambda n: n.input(2) is None or n.input(2).is_const or
          len(n.input(2).shape) <= 2, "tflite.attr")))
def lower_gemm(node: Node, ctx: LowerCtx) -> None:
    """Gemm -> FULLY_CONNECTED (constant B; a column-permuted flatten folded into the
    weights) or BATCH_MATMUL (tensor B, with adj_y = transB), + ADD for a C that is no
    per-column bias."""
    n_out = node.outputs[0].shape[1]
    if node.inputs[1].is_const:
        a, cols = ctx.columns(node.inputs[0]) if not attr(node, "transA") else (
            ctx.input(node, 0), None)
        w = _gemm_weights(node)
        if cols is not None:
            w2 = np.empty_like(w)
            w2[:, cols] = w
            w = w2
        bias = _gemm_bias(node, n_out)
        ins = [a, ctx.weight(w, node.inputs[1].name, "hybrid", 0),
               ctx.const(bias, f"{node.name}/bias") if bias is not None else -1]
        code, opts, fields = "FULLY_CONNECTED", "FullyConnectedOptions", {}
    else:
        ins = [ctx.input(node, 0), ctx.input(node, 1)]
        code, opts = "BATCH_MATMUL", "BatchMatMulOptions"
        fields, bias = {"AdjY": bool(attr(node, "transB"))}, None
    _gemm_out(node, ctx, ins, code, opts, fields, bias)


def _gemm_out(node, ctx, ins, code, opts, fields, bias) -> None:
    """Emit the Gemm op and, for a C that is no bias (or alpha on a tensor B), the rest."""
    y = ctx.out(node.outputs[0])
    c = node.input(2)
    alpha = float(attr(node, "alpha"))
    extra = c is not None and bias is None
    scale = code == "BATCH_MATMUL" and alpha != 1.0
    mm = ctx.temp(node.name, "mm", ctx.model.tensors[y].shape) if extra or scale else y
    ctx.op(code, ins, [mm], opts, **fields)
    if scale:
        out = ctx.temp(node.name, "alpha", ctx.model.tensors[y].shape) if extra else y
        ctx.op("MUL", [mm, ctx.const(np.float32([alpha]), f"{node.name}/alpha")], [out],
               "MulOptions")
        mm = out
    if extra:
        beta = np.float32(attr(node, "beta"))
        cv = (ctx.const(np.asarray(c.const, np.float32) * beta, f"{node.name}/c") if c.is_const
              else ctx.input(node, 2))
        ctx.op("ADD", [mm, cv], [y], "AddOptions")


@lowering("tflite", "MatMul", emits=("FULLY_CONNECTED", "BATCH_MATMUL", "DEQUANTIZE"),
          checks=checks(
    Check("both operands have rank >= 2", lambda n: all(len(v.shape) >= 2 for v in n.inputs),
          "tflite.rank")))
def lower_matmul(node: Node, ctx: LowerCtx) -> None:
    """MatMul with a constant 2-D right operand -> FULLY_CONNECTED (weights = B transposed,
    ``keep_num_dims``); otherwise BATCH_MATMUL (numpy batch broadcasting)."""
    y = ctx.out(node.outputs[0])
    b = node.inputs[1]
    if b.is_const and len(b.shape) == 2:
        w = np.ascontiguousarray(np.asarray(b.const, np.float32).T)
        ctx.op("FULLY_CONNECTED", [ctx.input(node, 0), ctx.weight(w, b.name, "hybrid", 0), -1],
               [y], "FullyConnectedOptions", KeepNumDims=len(node.inputs[0].shape) > 2)
        return
    bt = ctx.weight(np.asarray(b.const, np.float32), b.name, "weight", len(b.shape) - 1) \
        if b.is_const else ctx.input(node, 1)
    ctx.op("BATCH_MATMUL", [ctx.input(node, 0), bt], [y], "BatchMatMulOptions")


@lowering("tflite", "BatchNormalization", emits=("MUL", "ADD"), checks=checks(
    const_inputs(1, 2, 3, 4, text="scale, bias, mean and variance are constants"),
    rank_in((2, 3, 4), "input rank 2..4 (channel axis 1)")))
def lower_batchnorm(node: Node, ctx: LowerCtx) -> None:
    """BatchNormalization (inference) -> MUL by ``gamma / sqrt(var + eps)`` and ADD of
    ``beta - mean * scale``, per channel (IR axis 1, laid out with the input)."""
    gamma, beta, mean, var = (np.asarray(node.inputs[i].const, np.float64) for i in (1, 2, 3, 4))
    scale = gamma / np.sqrt(var + float(attr(node, "epsilon")))
    shift = beta - mean * scale
    rank = len(node.inputs[0].shape)
    perm = ctx.want(node, 0)
    from .layout import align_const

    shape = (-1,) + (1,) * (rank - 2)
    sc = align_const(scale.astype(np.float32).reshape(shape), perm)
    sh = align_const(shift.astype(np.float32).reshape(shape), perm)
    y = ctx.out(node.outputs[0])
    mid = ctx.temp(node.name, "scaled", ctx.model.tensors[y].shape)
    ctx.op("MUL", [ctx.input(node, 0), ctx.const(sc, f"{node.name}/scale")], [mid], "MulOptions")
    ctx.op("ADD", [mid, ctx.const(sh, f"{node.name}/shift")], [y], "AddOptions")
