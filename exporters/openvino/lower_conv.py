"""OpenVINO lowerings of convolution, transposed convolution, BatchNormalization, Gemm and MatMul.

Specs (openvinotoolkit/openvino docs/articles_en/documentation/openvino-ir-format/
operation-sets/operation-specs/...): ``convolution/convolution-1.rst`` (W ``[O, I, k...]``,
== ONNX), ``convolution/group-convolution-1.rst`` (W ``[G, O/G, I/G, k...]``),
``convolution/convolution-backprop-data-1.rst`` (W ``[I, O, k...]`` == ONNX ConvTranspose for
group 1; ``output_padding``), ``convolution/group-convolution-backprop-data-1.rst``
(W ``[G, I/G, O/G, k...]``), ``normalization/batch-norm-inference-5.rst`` (inputs data, gamma,
beta, mean, variance == ONNX order), ``matrix/matmul-1.rst`` (numpy matmul incl. 1-D operands;
``transpose_a/b``). None of them has a bias input: the bias is an ``Add`` of a ``[1, C, 1...]``
tensor (numpy broadcasting is right-aligned, shared/docs/formats/openvino-ir.md rule 7).
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node, Value
from converter.ops import attr
from converter.registry import lowering

from .checks import checks, rank_in
from .context import LowerCtx


def _geometry(node: Node) -> tuple:
    """``(strides, pads_begin, pads_end, dilations)`` lists of a Conv/ConvTranspose node."""
    nsp = len(node.inputs[0].shape) - 2
    s = list(attr(node, "strides") or (1,) * nsp)
    d = list(attr(node, "dilations") or (1,) * nsp)
    p = list(attr(node, "pads") or (0,) * (2 * nsp))
    return s, p[:nsp], p[nsp:], d


def grouped_weight(ctx: LowerCtx, node: Node, group: int):
    """Weight input 1 of ``node`` ``[d0, d1, k...]`` as ``[G, d0/G, d1, k...]``: Conv
    ``[O, I/G, k...]`` -> ``[G, O/G, I/G, k...]``, ConvTranspose ``[I, O/G, k...]`` ->
    ``[G, I/G, O/G, k...]``. A constant is reshaped in numpy, a tensor by a ``Reshape``."""
    w = node.inputs[1]
    shape = [int(d) for d in w.shape]
    target = [group, shape[0] // group] + shape[1:]
    if w.is_const:
        return ctx.const(w.const.reshape(target), f"{w.name}/grouped")
    shp = ctx.i64(target, node.name, "weight_shape")
    return ctx.ops.reshape(ctx.value(w), shp, False,
                           name=ctx.name(node.name, "weight_reshape")).output(0)


def channel_bias(ctx: LowerCtx, node: Node, y, bias: Value, rank: int):
    """``y + bias`` with a 1-D ``[C]`` bias laid out as ``[1, C, 1, ...]`` for a rank-``rank``
    output; returns the Add output (named after the IR node)."""
    shape = [1, -1] + [1] * (rank - 2)
    if bias.is_const:
        b = ctx.const(bias.const.reshape([1, bias.const.size] + [1] * (rank - 2)),
                      f"{bias.name}/channel")
    else:
        b = ctx.ops.reshape(ctx.value(bias), ctx.i64(shape, node.name, "bias_shape"), False,
                            name=ctx.name(node.name, "bias_reshape")).output(0)
    return ctx.ops.add(y, b, name=ctx.name(node.name, "bias")).output(0)


CONV_CHECKS = checks(rank_in((3, 4, 5), "1-D, 2-D or 3-D convolution (input rank 3..5)"))


@lowering("openvino", "Conv", emits=("Convolution", "GroupConvolution", "Add", "Reshape"),
          checks=CONV_CHECKS)
def lower_conv(node: Node, ctx: LowerCtx) -> None:
    """Conv -> Convolution (group 1) or GroupConvolution (W reshaped to
    ``[G, O/G, I/G, k...]``, depthwise included), then ``Add`` of the bias ``[1, O, 1...]``."""
    o = ctx.ops
    x = ctx.input(node, 0)
    s, pb, pe, d = _geometry(node)
    group = int(attr(node, "group"))
    if group == 1:
        y = o.convolution(x, ctx.input(node, 1), s, pb, pe, d, "explicit",
                          name=ctx.name(node.name))
    else:
        w = grouped_weight(ctx, node, group)
        y = o.group_convolution(x, w, s, pb, pe, d, "explicit", name=ctx.name(node.name))
    y = y.output(0)
    if node.input(2) is not None:
        y = channel_bias(ctx, node, y, node.inputs[2], len(node.outputs[0].shape))
    ctx.bind_node(node, y)


@lowering("openvino", "ConvTranspose", emits=("ConvolutionBackpropData",
                                              "GroupConvolutionBackpropData", "Add", "Reshape"),
          checks=CONV_CHECKS)
def lower_conv_transpose(node: Node, ctx: LowerCtx) -> None:
    """ConvTranspose -> ConvolutionBackpropData (W ``[I, O, k...]`` as is) or
    GroupConvolutionBackpropData (W ``[I, O/G, k...]`` -> ``[G, I/G, O/G, k...]``), with
    ``output_padding``; the output size formula is ONNX's
    ``s*(in-1) + d*(k-1) + 1 + output_padding - pads_begin - pads_end``."""
    o = ctx.ops
    x = ctx.input(node, 0)
    s, pb, pe, d = _geometry(node)
    nsp = len(s)
    op_ = list(attr(node, "output_padding") or (0,) * nsp)
    group = int(attr(node, "group"))
    if group == 1:
        y = o.convolution_backprop_data(x, ctx.input(node, 1), s, None, pb, pe, d, "explicit",
                                        op_, name=ctx.name(node.name))
    else:
        w = grouped_weight(ctx, node, group)
        y = o.group_convolution_backprop_data(x, w, s, None, pb, pe, d, "explicit", op_,
                                              name=ctx.name(node.name))
    y = y.output(0)
    if node.input(2) is not None:
        y = channel_bias(ctx, node, y, node.inputs[2], len(node.outputs[0].shape))
    ctx.bind_node(node, y)


@lowering("openvino", "BatchNormalization", emits=("BatchNormInference",),
          checks=checks(rank_in((2, 3, 4, 5), "input rank 2..5 (channel axis 1)")))
def lower_batchnorm(node: Node, ctx: LowerCtx) -> None:
    """BatchNormalization(X, scale, B, mean, var) -> BatchNormInference-5, same input order."""
    ins = [ctx.input(node, i, node.inputs[0] if i else None) for i in range(5)]
    y = ctx.ops.batch_norm_inference(*ins, float(attr(node, "epsilon")),
                                     name=ctx.name(node.name))
    ctx.bind_node(node, y)


def _scaled(ctx: LowerCtx, node: Node, i: int, factor: float, role: str):
    """Input ``i`` times ``factor``: folded into a constant, else a ``Multiply``."""
    v = node.inputs[i]
    if factor == 1.0:
        return ctx.input(node, i, node.inputs[0])
    if v.is_const:
        return ctx.const(v.const * np.asarray(factor, v.const.dtype), f"{v.name}/{role}")
    k = ctx.const(np.asarray(factor, dtype=v.dtype), f"{node.name}/{role}")
    return ctx.ops.multiply(ctx.value(v), k, name=ctx.name(node.name, role)).output(0)


@lowering("openvino", "Gemm", emits=("MatMul", "Add", "Multiply"), checks=checks())
def lower_gemm(node: Node, ctx: LowerCtx) -> None:
    """Gemm ``alpha * A' @ B' + beta * C`` -> MatMul(transpose_a, transpose_b) (+ Add of C).
    ``alpha`` is folded into a constant B (else Multiply), ``beta`` into a constant C; C
    broadcasts to ``[M, N]`` by numpy rules (ONNX unidirectional broadcast is a subset)."""
    a = ctx.input(node, 0)
    b = _scaled(ctx, node, 1, float(attr(node, "alpha")), "alpha")
    y = ctx.ops.matmul(a, b, bool(attr(node, "transA")), bool(attr(node, "transB")),
                       name=ctx.name(node.name)).output(0)
    if node.input(2) is not None:
        c = _scaled(ctx, node, 2, float(attr(node, "beta")), "beta")
        y = ctx.ops.add(y, c, name=ctx.name(node.name, "bias")).output(0)
    ctx.bind_node(node, y)


@lowering("openvino", "MatMul", emits=("MatMul",), checks=checks())
def lower_matmul(node: Node, ctx: LowerCtx) -> None:
    """MatMul -> MatMul-1 (numpy semantics, no transposes)."""
    y = ctx.ops.matmul(ctx.input(node, 0), ctx.input(node, 1, node.inputs[0]), False, False,
                       name=ctx.name(node.name))
    ctx.bind_node(node, y)
