"""Converters for TensorFlow convolution, pooling, normalization and matrix ops: Conv2D,
DepthwiseConv2dNative, Conv2DBackpropInput, BiasAdd, FusedBatchNorm(V2/V3), MatMul,
BatchMatMul(V2/V3), MaxPool, AvgPool.

Facts (tensorflow/tensorflow ``tensorflow/core/ops/nn_ops.cc``): Conv2D filters are HWIO
``[kh, kw, in/groups, out]``; DepthwiseConv2dNative filters ``[kh, kw, C, M]`` give output
channel ``c * M + m``; Conv2DBackpropInput reads ``(input_sizes, filter [kh, kw, out, in],
out_backprop)`` and its padding is the padding of the forward conv producing
``out_backprop`` from ``input_sizes``; ``strides`` / ``ksize`` / ``dilations`` are per
dimension of ``data_format``; padding ``SAME`` pads ``total // 2`` before (see
:func:`.context.same_pads`), ``EXPLICIT`` reads ``explicit_paddings``; AvgPool never counts
padding. Every NHWC op here is wrapped as Transpose -> NCHW IR op -> Transpose.
"""
from __future__ import annotations

import numpy as np

from converter.registry import Check, converter

from .context import Ctx, TfNode, Unsupported, same_pads

FW = "tensorflow"


def _hw(n: TfNode, key: str, default=1) -> list:
    """The H and W entries of a per-dimension attribute (strides, ksize, dilations)."""
    v = list(n.get(key) or [default] * 4)
    return v[2:4] if n.nchw else v[1:3]


def _spatial(n: TfNode, x) -> list:
    return list(x.shape[2:4]) if n.nchw else list(x.shape[1:3])


def _pads(n: TfNode, x, kernel, strides, dilations) -> list:
    pad = n.get("padding", "VALID")
    if pad == "SAME":
        return same_pads(_spatial(n, x), kernel, strides, dilations)
    if pad == "EXPLICIT":
        e = list(n.get("explicit_paddings") or [0] * 8)
        h, w = (4, 6) if n.nchw else (2, 4)
        return [e[h], e[w], e[h + 1], e[w + 1]]
    return [0, 0, 0, 0]


def _wrap(cx: Ctx, n: TfNode, x, build):
    """``build(x_nchw) -> y_nchw`` around Transposes unless the node is already NCHW."""
    return build(x) if n.nchw else cx.to_nhwc(build(cx.to_nchw(x)))


RANK4 = Check("rank-4 input with static H, W", lambda n: n.x.rank == 4 and all(
    isinstance(d, int) for d in n.x.shape[1:]), "tensorflow.rank4")
CONST_FILTER = Check("constant filter (a frozen graph)", lambda n: n.const(1) is not None,
                     "tensorflow.filter")


@converter(FW, "Conv2D", emits=("Conv", "Transpose"), checks=(RANK4, CONST_FILTER))
def conv2d(cx: Ctx, n: TfNode):
    """Conv2D -> Conv (groups = C_in / filter in-channels), weight HWIO -> OIHW."""
    w = n.const(1)
    c_in = n.x.shape[1] if n.nchw else n.x.shape[3]
    k, s, d = list(w.shape[:2]), _hw(n, "strides"), _hw(n, "dilations")
    pads = _pads(n, n.x, k, s, d)
    wt = cx.const(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), suffix="w")
    return _wrap(cx, n, n.x, lambda x: cx.emit(
        "Conv", x, wt, kernel_shape=k, strides=s, dilations=d, pads=pads,
        group=int(c_in // w.shape[2])))


@converter(FW, "DepthwiseConv2dNative", emits=("Conv", "Transpose"),
           checks=(RANK4, CONST_FILTER))
def depthwise(cx: Ctx, n: TfNode):
    """DepthwiseConv2dNative -> Conv with group = C, weight [C*M, 1, kh, kw]."""
    w = n.const(1)
    kh, kw, c, m = w.shape
    k, s, d = [kh, kw], _hw(n, "strides"), _hw(n, "dilations")
    pads = _pads(n, n.x, k, s, d)
    wt = cx.const(np.ascontiguousarray(w.reshape(kh, kw, c * m).transpose(2, 0, 1)
                                       .reshape(c * m, 1, kh, kw)), suffix="w")
    return _wrap(cx, n, n.x, lambda x: cx.emit(
        "Conv", x, wt, kernel_shape=k, strides=s, dilations=d, pads=pads, group=int(c)))


@converter(FW, "Conv2DBackpropInput", emits=("ConvTranspose", "Transpose"),
           checks=(Check("constant input_sizes and filter, static rank-4 input",
                         lambda n: n.const(0) is not None and n.const(1) is not None and
                         n.input(2).rank == 4, "tensorflow.deconv"),))
def conv_transpose(cx: Ctx, n: TfNode):
    """Conv2DBackpropInput -> ConvTranspose, weight [kh, kw, out, in] -> [in, out, kh, kw];
    output_padding = wanted size - ((in - 1) * s + (k - 1) * d + 1 - pads)."""
    sizes, w, x = [int(v) for v in n.const(0)], n.const(1), n.input(2)
    out_hw = sizes[2:4] if n.nchw else sizes[1:3]
    in_hw = list(x.shape[2:4]) if n.nchw else list(x.shape[1:3])
    k, s, d = list(w.shape[:2]), _hw(n, "strides"), _hw(n, "dilations")
    fwd = TfNode(n.op, n.name, [cx.g.const(np.zeros(sizes, np.float32))], n.attrs)
    pads = _pads(fwd, fwd.x, k, s, d)
    opad = [out_hw[i] - ((in_hw[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - pads[i] - pads[i + 2])
            for i in range(2)]
    if any(p < 0 or p >= max(s[i], d[i]) for i, p in enumerate(opad)):
        raise Unsupported("tensorflow.deconv", f"input_sizes {sizes} needs output padding "
                          f"{opad}, outside [0, stride)")
    wt = cx.const(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), suffix="w")
    return _wrap(cx, n, x, lambda v: cx.emit(
        "ConvTranspose", v, wt, kernel_shape=k, strides=s, dilations=d, pads=pads,
        output_padding=opad if any(opad) else None))


@converter(FW, "BiasAdd", emits=("Add",))
def bias_add(cx: Ctx, n: TfNode):
    """BiasAdd: Add of the [C] bias on the channel axis (last for NHWC)."""
    b = n.input(1)
    if n.nchw and n.x.rank > 2:
        b = cx.const(b.const.reshape((-1,) + (1,) * (n.x.rank - 2))) if b.is_const else \
            cx.emit("Reshape", b, cx.i64([-1] + [1] * (n.x.rank - 2)))
    return cx.emit("Add", n.x, b)


@converter(FW, ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"),
           emits=("BatchNormalization", "Transpose"),
           checks=(Check("is_training is false (inference statistics)", lambda n: not n.get(
               "is_training", False), "tensorflow.bn_training"),
                   Check("constant scale / offset / mean / variance",
                         lambda n: all(n.const(i) is not None for i in range(1, 5)),
                         "tensorflow.bn_const"), RANK4))
def fused_batch_norm(cx: Ctx, n: TfNode):
    """FusedBatchNorm* (inference) -> BatchNormalization; only output 0 is produced."""
    params = [cx.const(n.const(i).astype(n.x.dtype), suffix=f"p{i}") for i in range(1, 5)]
    y = _wrap(cx, n, n.x, lambda x: cx.emit("BatchNormalization", x, *params,
                                            epsilon=float(n.get("epsilon", 1e-4))))
    return [y] + [None] * (n.n_out - 1)


@converter(FW, "MatMul", emits=("Gemm", "MatMul", "Transpose"))
def matmul(cx: Ctx, n: TfNode):
    """MatMul(a, b, transpose_a, transpose_b) -> Gemm when b is a constant (a dense layer),
    else MatMul with the transposes made explicit."""
    ta, tb = int(bool(n.get("transpose_a"))), int(bool(n.get("transpose_b")))
    if n.input(1).is_const:
        return cx.emit("Gemm", n.x, n.input(1), transA=ta, transB=tb)
    return cx.emit("MatMul", _adjoint(cx, n.x, ta), _adjoint(cx, n.input(1), tb))


def _adjoint(cx: Ctx, v, flag):
    if not flag:
        return v
    r = v.rank
    perm = list(range(r - 2)) + [r - 1, r - 2]
    if v.is_const:
        return cx.const(np.ascontiguousarray(v.const.transpose(perm)))
    return cx.emit("Transpose", v, perm=perm)


@converter(FW, ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"), emits=("MatMul", "Transpose"))
def batch_matmul(cx: Ctx, n: TfNode):
    """BatchMatMul*(x, y, adj_x, adj_y) -> MatMul (adjoints as Transposes of the last two
    axes; real dtypes, so adjoint == transpose)."""
    a = _adjoint(cx, n.x, n.get("adj_x"))
    b = _adjoint(cx, n.input(1), n.get("adj_y"))
    return cx.emit("MatMul", a, b)


@converter(FW, ("MaxPool", "AvgPool"), emits=("MaxPool", "AveragePool", "Transpose"),
           checks=(RANK4,))
def pool(cx: Ctx, n: TfNode):
    """MaxPool / AvgPool -> MaxPool / AveragePool (count_include_pad=0)."""
    k, s = _hw(n, "ksize"), _hw(n, "strides")
    if (n["ksize"] or [1])[0] != 1 or (n["ksize"][1 if n.nchw else 3]) != 1:
        raise Unsupported("tensorflow.pool_axes", "pooling over the batch or channel axis")
    pads = _pads(n, n.x, k, s, [1, 1])
    op = "MaxPool" if n.op == "MaxPool" else "AveragePool"
    return _wrap(cx, n, n.x, lambda x: cx.emit(op, x, kernel_shape=k, strides=s, pads=pads))
