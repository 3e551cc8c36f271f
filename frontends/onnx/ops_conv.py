"""Converters for ONNX convolution, pooling, normalization and matrix ops: Conv,
ConvTranspose, MaxPool, AveragePool, Global{Average,Max}Pool, BatchNormalization,
InstanceNormalization, LayerNormalization, LRN, Gemm, MatMul.

Version facts (onnx/onnx docs/Changelog.md, docs/Operators.md): ``auto_pad`` (Conv, pools)
is resolved to explicit ``pads`` here because the IR has none; MaxPool gained ``ceil_mode`` /
``dilations`` at 10, AveragePool ``count_include_pad`` at 7, ``ceil_mode`` at 10 and
``dilations`` at 19; BatchNormalization-6 carries ``is_test`` / ``spatial`` (the IR is
inference-only: is_test must be 1, spatial 1 or the statistics per channel), 7..13 is in
training mode when it has more than one output, 14+ says so with ``training_mode``; ConvTranspose's
``output_shape`` fixes the padding (total = stride*(in-1) + output_padding + (k-1)*d + 1 -
out). Gemm-6 and earlier carry a ``broadcast`` attribute (C broadcasting is always allowed
in the IR).
"""
from __future__ import annotations

import numpy as np

from converter.registry import Check, converter

from .context import Ctx, OnnxNode, Unsupported, auto_pads, norm_axis, static

FW = "onnx"


def _spatial_static(n: OnnxNode) -> bool:
    if n.get("auto_pad", "NOTSET") in ("NOTSET", "VALID", ""):
        return True
    return static(n.x)


AUTO_PAD = Check("auto_pad SAME_* needs static spatial input dims", _spatial_static,
                 "onnx.auto_pad_dynamic")


def _geometry(n: OnnxNode, kernel) -> dict:
    nsp = len(kernel)
    s = list(n.get("strides") or [1] * nsp)
    d = list(n.get("dilations") or [1] * nsp)
    return dict(kernel_shape=list(kernel), strides=s, dilations=d,
                pads=auto_pads(n, kernel, s, d))


@converter(FW, "Conv", emits=("Conv",), checks=(AUTO_PAD,))
def conv(cx: Ctx, n: OnnxNode):
    """Conv with explicit pads; kernel_shape defaults to the weight's spatial dims."""
    w = n.input(1)
    geo = _geometry(n, n.get("kernel_shape") or w.shape[2:])
    return cx.emit("Conv", n.x, w, n.input(2), group=n.get("group", 1), **geo)


def _transpose_pads(n: OnnxNode, geo: dict) -> tuple[list, list]:
    """(pads, output_padding) of a ConvTranspose whose output size is given by
    ``output_shape`` or ``auto_pad=SAME_*`` (out = in * stride). The odd pixel goes to the
    end for SAME_UPPER, to the beginning otherwise (measured with onnxruntime 1.31)."""
    k, s, d = geo["kernel_shape"], geo["strides"], geo["dilations"]
    nsp = len(k)
    opad = list(n.get("output_padding") or [0] * nsp)
    sizes = n.x.shape[2:]
    want = list(n["output_shape"])[-nsp:] if n["output_shape"] else \
        [sizes[i] * s[i] for i in range(nsp)]
    begin, end = [], []
    for i in range(nsp):
        total = s[i] * (sizes[i] - 1) + opad[i] + (k[i] - 1) * d[i] + 1 - want[i]
        if total < 0:
            if -total >= s[i]:
                raise Unsupported("onnx.conv_transpose_shape", "output_shape needs more "
                                  "output_padding than stride - 1")
            opad[i], total = opad[i] - total, 0
        small, big = total // 2, total - total // 2
        upper = n.get("auto_pad", "NOTSET") == "SAME_UPPER"
        begin.append(small if upper else big)
        end.append(big if upper else small)
    return begin + end, opad


@converter(FW, "ConvTranspose", emits=("ConvTranspose",),
           checks=(Check("output_shape / auto_pad SAME_* need static spatial input dims",
                         lambda n: static(n.x) or (not n["output_shape"] and
                                                    _spatial_static(n)),
                         "onnx.auto_pad_dynamic"),))
def conv_transpose(cx: Ctx, n: OnnxNode):
    """ConvTranspose with explicit pads / output_padding (output_shape resolved)."""
    w = n.input(1)
    k = list(n.get("kernel_shape") or w.shape[2:])
    geo = _geometry(n, k)
    opad = n.get("output_padding")
    if n["output_shape"] or n.get("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
        geo["pads"], opad = _transpose_pads(n, geo)
    if opad is not None and not any(opad):
        opad = None
    return cx.emit("ConvTranspose", n.x, w, n.input(2), group=n.get("group", 1),
                   output_padding=opad, **geo)


NO_INDICES = Check("the Indices output is not used", lambda n: not n.output_used(1),
                   "onnx.maxpool_indices")


@converter(FW, "MaxPool", emits=("MaxPool",), checks=(AUTO_PAD, NO_INDICES))
def max_pool(cx: Ctx, n: OnnxNode):
    """MaxPool (storage_order only shapes the unused Indices output)."""
    geo = _geometry(n, n["kernel_shape"])
    return [cx.emit("MaxPool", n.x, ceil_mode=n.get("ceil_mode", 0), **geo), None]


@converter(FW, "AveragePool", emits=("AveragePool",), checks=(AUTO_PAD,))
def avg_pool(cx: Ctx, n: OnnxNode):
    """AveragePool; count_include_pad defaults to 0 in every version."""
    geo = _geometry(n, n["kernel_shape"])
    return cx.emit("AveragePool", n.x, ceil_mode=n.get("ceil_mode", 0),
                   count_include_pad=n.get("count_include_pad", 0), **geo)


@converter(FW, ("GlobalAveragePool", "GlobalMaxPool"),
           emits=("GlobalAveragePool", "GlobalMaxPool"))
def global_pool(cx: Ctx, n: OnnxNode):
    return cx.emit(n.op, n.x)


def _bn_inference(n: OnnxNode) -> bool:
    """Inference form per version: -6 ``is_test=1`` (extra outputs unused), 7..13 a single
    output (more outputs select training mode; onnxruntime 1.31 then normalizes with the
    batch statistics, measured), 14+ ``training_mode=0``."""
    if n.version < 7:
        return bool(n.get("is_test", 0)) and not any(n.output_used(i) for i in range(1, 5))
    if n.version < 14:
        return sum(1 for o in n.outputs if o) == 1
    return not n.get("training_mode", 0)


def _bn_per_channel(n: OnnxNode) -> bool:
    c = n.x.shape[1]
    return all(n.input(i).shape in ((c,), None) for i in range(1, 5))


@converter(FW, "BatchNormalization", emits=("BatchNormalization",),
           checks=(Check("inference form (opset<7 is_test=1, 7..13 one output, 14+ "
                         "training_mode=0); else it normalizes with batch statistics: "
                         "re-export in eval mode", _bn_inference, "onnx.bn_training"),
                   Check("scale / B / mean / var have one value per channel (spatial = 1)",
                         _bn_per_channel, "onnx.bn_spatial")))
def batch_norm(cx: Ctx, n: OnnxNode):
    """BatchNormalization (inference); unused training outputs are dropped."""
    y = cx.emit("BatchNormalization", *n.inputs[:5], epsilon=n.get("epsilon", 1e-5))
    return [y] + [None] * (len(n.outputs) - 1)


def _channel(cx: Ctx, v, rank: int):
    """A per-channel ``[C]`` parameter shaped ``[C, 1, ...]`` to broadcast on axis 1."""
    return cx.reshape(v, (v.shape[0],) + (1,) * (rank - 2))


def normalize(cx: Ctx, x, axes: list, eps: float):
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance, keepdims)."""
    ax = cx.i64(axes)
    d = cx.emit("Sub", x, cx.emit("ReduceMean", x, ax, keepdims=1))
    var = cx.emit("ReduceMean", cx.emit("Mul", d, d), ax, keepdims=1)
    den = cx.emit("Sqrt", cx.emit("Add", var, cx.scalar(eps, x)))
    return cx.emit("Div", d, den)


@converter(FW, "InstanceNormalization", emits=("ReduceMean", "Sub", "Mul", "Add", "Sqrt",
                                               "Div", "Reshape"),
           checks=(Check("input rank >= 3", lambda n: len(n.x.shape) >= 3, "onnx.rank"),))
def instance_norm(cx: Ctx, n: OnnxNode):
    """y = scale * (x - mean) / sqrt(var + epsilon) + B per instance and channel."""
    r = len(n.x.shape)
    y = normalize(cx, n.x, list(range(2, r)), n.get("epsilon", 1e-5))
    y = cx.emit("Mul", y, _channel(cx, n.input(1), r))
    return cx.emit("Add", y, _channel(cx, n.input(2), r))


@converter(FW, "LayerNormalization", emits=("ReduceMean", "Sub", "Mul", "Add", "Sqrt", "Div"),
           checks=(Check("the Mean / InvStdDev outputs are unused", lambda n: not any(
               n.output_used(i) for i in (1, 2)), "onnx.ln_outputs"),))
def layer_norm(cx: Ctx, n: OnnxNode):
    """y = (x - mean) / sqrt(var + epsilon) * Scale + B over axes [axis, rank) (opset 17)."""
    r = len(n.x.shape)
    ax = norm_axis(n.get("axis", -1), r)
    y = normalize(cx, n.x, list(range(ax, r)), n.get("epsilon", 1e-5))
    y = cx.emit("Mul", y, n.input(1))
    if n.input(2) is not None:
        y = cx.emit("Add", y, n.input(2))
    return [y, None, None][: max(1, len(n.outputs))]


@converter(FW, "LRN", emits=("Mul", "Reshape", "AveragePool", "Add", "Pow", "Div"),
           checks=(Check("static input of rank >= 3", lambda n: static(n.x) and
                         len(n.x.shape) >= 3, "onnx.lrn_shape"),))
def lrn(cx: Ctx, n: OnnxNode):
    """LRN: y = x / (bias + alpha / size * sum_{c' in window(c)} x[c']^2) ** beta, the window
    [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to the channels. The windowed sum /
    size is an AveragePool (count_include_pad=1) over the channel axis of x*x viewed as
    [N, 1, C, prod(spatial)]."""
    x, size = n.x, int(n["size"])
    shape = x.shape
    sq = cx.reshape(cx.emit("Mul", x, x), (shape[0], 1, shape[1], int(np.prod(shape[2:]))))
    avg = cx.emit("AveragePool", sq, kernel_shape=[size, 1], strides=[1, 1],
                  pads=[(size - 1) // 2, 0, size // 2, 0], count_include_pad=1)
    scaled = cx.emit("Mul", cx.reshape(avg, shape), cx.scalar(n.get("alpha", 1e-4), x))
    base = cx.emit("Add", scaled, cx.scalar(n.get("bias", 1.0), x))
    return cx.emit("Div", x, cx.emit("Pow", base, cx.scalar(n.get("beta", 0.75), x)))


@converter(FW, "Gemm", emits=("Gemm",))
def gemm(cx: Ctx, n: OnnxNode):
    """Gemm; the opset<7 ``broadcast`` flag is dropped (the IR always broadcasts C)."""
    return cx.emit("Gemm", n.x, n.input(1), n.input(2), alpha=n.get("alpha", 1.0),
                   beta=n.get("beta", 1.0), transA=n.get("transA", 0),
                   transB=n.get("transB", 0))


@converter(FW, "MatMul", emits=("MatMul",))
def matmul(cx: Ctx, n: OnnxNode):
    return cx.emit("MatMul", n.x, n.input(1))
