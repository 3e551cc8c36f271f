"""Caffe Convolution, Deconvolution, InnerProduct, Pooling, BatchNorm, Scale, Bias and LRN.

Weight layouts (BVLC/caffe ``src/caffe/layers/base_conv_layer.cpp``, ``inner_product_layer.cpp``,
``batch_norm_layer.cpp``, ``scale_layer.cpp``): Convolution ``[O, C/group, kh, kw]`` (= ONNX
Conv), Deconvolution ``[C, O/group, kh, kw]`` (= ONNX ConvTranspose), InnerProduct ``[O, K]``
(``[K, O]`` with ``transpose``), bias ``[O]``; BatchNorm keeps mean, variance and a moving-
average factor s, the statistics being mean / s and variance / s (s == 0 gives 0). Scale after
BatchNorm becomes a per-channel Mul / Add that the optimizer folds into the BatchNormalization
(and both into a preceding conv).
"""
from __future__ import annotations

import math

import numpy as np

from converter.registry import Check, converter

from .context import Ctx, Unsupported, pair
from .reader import CaffeLayer


def _rank(n: int) -> Check:
    return Check(f"the input is {n}-D (NCHW)", lambda lay: len(lay.x.shape) == n, "caffe.rank")


def _conv_attrs(lay: CaffeLayer) -> dict:
    p = lay.param("convolution_param")
    kh, kw = pair(p, "kernel", 0)
    if kh <= 0 or kw <= 0:
        raise ValueError(f"kernel size {kh}x{kw}")
    dil = [int(d) for d in p.dilation] or [1]
    dil = dil * 2 if len(dil) == 1 else dil[:2]
    ph, pw = pair(p, "pad", 0)
    return {"kernel_shape": (kh, kw), "strides": pair(p, "stride", 1),
            "pads": (ph, pw, ph, pw), "dilations": tuple(dil), "group": int(p.group)}


CONV_CHECKS = (_rank(4), Check("convolution_param.axis is 1 (channels)",
                               lambda lay: lay.param("convolution_param").axis == 1,
                               "caffe.conv_axis"))


def _conv_blobs(cx: Ctx, lay: CaffeLayer, wshape: tuple, nout: int) -> list:
    p = lay.param("convolution_param")
    shapes = [wshape] + ([(nout,)] if p.bias_term else [])
    arrs = cx.blobs(*shapes)
    return [cx.const(arrs[0], "weight")] + ([cx.const(arrs[1], "bias")] if p.bias_term else [])


def _grouped(lay: CaffeLayer) -> tuple:
    """``(attrs, num_output, input channels)`` of a (de)convolution layer.

    Raises:
        ValueError: ``group`` does not divide both channel counts.
    """
    a = _conv_attrs(lay)
    nout, cin = int(lay.param("convolution_param").num_output), int(lay.x.shape[1])
    if a["group"] <= 0 or cin % a["group"] or nout % a["group"]:
        raise ValueError(f"group {a['group']} does not divide {cin} inputs / {nout} outputs")
    return a, nout, cin


@converter("caffe", "Convolution", emits=("Conv",), checks=CONV_CHECKS)
def convolution(cx: Ctx, lay: CaffeLayer):
    """Convolution -> Conv (group, dilation, pad / kernel / stride in the repeated, single
    and ``_h``/``_w`` forms). Weights ``[O, C/group, kh, kw]``, bias ``[O]``."""
    a, nout, cin = _grouped(lay)
    ins = _conv_blobs(cx, lay, (nout, cin // a["group"]) + a["kernel_shape"], nout)
    return cx.emit("Conv", lay.x, *ins, **a)


@converter("caffe", "Deconvolution", emits=("ConvTranspose",), checks=CONV_CHECKS)
def deconvolution(cx: Ctx, lay: CaffeLayer):
    """Deconvolution -> ConvTranspose; weights ``[C, O/group, kh, kw]``; output size
    ``(H - 1) * s - 2 * pad + d * (k - 1) + 1`` (src/caffe/layers/deconv_layer.cpp)."""
    a, nout, cin = _grouped(lay)
    ins = _conv_blobs(cx, lay, (cin, nout // a["group"]) + a["kernel_shape"], nout)
    return cx.emit("ConvTranspose", lay.x, *ins, **a)


@converter("caffe", "InnerProduct", emits=("Flatten", "Gemm"), checks=(
        Check("inner_product_param.axis is 1", lambda lay: lay.param(
            "inner_product_param").axis in (1, 1 - len(lay.x.shape)), "caffe.ip_axis"),))
def inner_product(cx: Ctx, lay: CaffeLayer):
    """InnerProduct(axis 1) -> Flatten + Gemm; ``[O, K]`` weights (transB=1) or ``[K, O]``
    with ``transpose: true`` (transB=0); optional bias ``[O]``."""
    p = lay.param("inner_product_param")
    x = lay.x if len(lay.x.shape) == 2 else cx.emit("Flatten", lay.x, axis=1, suffix="flat")
    k, nout = int(x.shape[1]), int(p.num_output)
    wshape = (k, nout) if p.transpose else (nout, k)
    arrs = cx.blobs(wshape, *([(nout,)] if p.bias_term else []))
    ins = [cx.const(arrs[0], "weight")] + ([cx.const(arrs[1], "bias")] if p.bias_term else [])
    return cx.emit("Gemm", x, *ins, transB=0 if p.transpose else 1)


def caffe_pool_size(size: int, k: int, s: int, p: int) -> int:
    """Caffe's pooled size: ``ceil((size + 2p - k) / s) + 1``, minus one when the last window
    would start in the bottom / right padding (src/caffe/layers/pooling_layer.cpp)."""
    out = int(math.ceil((size + 2 * p - k) / s)) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_attrs(lay: CaffeLayer) -> dict:
    p = lay.param("pooling_param")
    (kh, kw), (sh, sw) = pair(p, "kernel", 0, True), pair(p, "stride", 1, True)
    ph, pw = pair(p, "pad", 0, True)
    h, w = int(lay.x.shape[2]), int(lay.x.shape[3])
    if kh <= 0 or kw <= 0 or sh <= 0 or sw <= 0 or ph >= kh or pw >= kw:
        raise ValueError(f"kernel {kh}x{kw}, stride {sh}x{sw}, pad {ph}x{pw}")
    want = (caffe_pool_size(h, kh, sh, ph), caffe_pool_size(w, kw, sw, pw))
    floor = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    ceil_mode = int(want != floor)
    ir = [math.ceil((n + 2 * q - k) / s) + 1 for n, k, s, q in ((h, kh, sh, ph), (w, kw, sw, pw))]
    ir = [o - 1 if ceil_mode and (o - 1) * s >= n + q else o
          for o, n, s, q in zip(ir, (h, w), (sh, sw), (ph, pw))]
    if ceil_mode and tuple(ir) != want:
        raise Unsupported("caffe.pool_window", f"a pooling window starts beyond the input "
                          f"(output {want[0]}x{want[1]}): no target pools like that")
    return {"kernel_shape": (kh, kw), "strides": (sh, sw), "pads": (ph, pw, ph, pw),
            "ceil_mode": ceil_mode}


@converter("caffe", "Pooling", emits=("MaxPool", "AveragePool", "GlobalMaxPool",
                                      "GlobalAveragePool"), checks=(
        _rank(4), Check("pool is MAX or AVE (not STOCHASTIC)",
                        lambda lay: lay.param("pooling_param").pool in (0, 1), "caffe.pool")))
def pooling(cx: Ctx, lay: CaffeLayer):
    """Pooling MAX / AVE -> MaxPool / AveragePool with Caffe's ceil rounding (``ceil_mode``
    when it differs from floor; AVE divides by the window clipped to the padded input:
    ``count_include_pad``); ``global_pooling`` -> GlobalMaxPool / GlobalAveragePool."""
    p = lay.param("pooling_param")
    is_max = p.pool == 0
    if p.global_pooling:
        return cx.emit("GlobalMaxPool" if is_max else "GlobalAveragePool", lay.x)
    a = _pool_attrs(lay)
    if is_max:
        return cx.emit("MaxPool", lay.x, **a)
    return cx.emit("AveragePool", lay.x, count_include_pad=1, **a)


@converter("caffe", "BatchNorm", emits=("BatchNormalization",), checks=(
        Check("the input has a channel axis (rank >= 2)", lambda lay: len(lay.x.shape) >= 2,
              "caffe.rank"),))
def batch_norm(cx: Ctx, lay: CaffeLayer):
    """BatchNorm (inference: use the stored statistics) -> BatchNormalization with scale 1 and
    bias 0; blobs mean ``[C]``, variance ``[C]``, factor ``[1]``; eps from batch_norm_param."""
    c = int(lay.x.shape[1])
    mean, var, factor = cx.blobs((c,), (c,), (1,))
    s = float(factor.reshape(-1)[0])
    inv = 0.0 if s == 0 else 1.0 / s
    eps = float(lay.param("batch_norm_param").eps)
    return cx.emit("BatchNormalization", lay.x, cx.const(np.ones(c), "gamma"),
                   cx.const(np.zeros(c), "beta"), cx.const(mean * inv, "mean"),
                   cx.const(var * inv, "var"), epsilon=eps)


def _span(lay: CaffeLayer, axis: int, num_axes: int) -> tuple[tuple, tuple]:
    """(``x.shape[a:a+n]``, trailing 1s) of a Scale / Bias operand starting at ``axis`` and
    covering ``num_axes`` axes (-1: all remaining)."""
    rank = len(lay.x.shape)
    a = axis + rank if axis < 0 else axis
    n = rank - a if num_axes < 0 else num_axes
    if not 0 <= a <= rank or n < 0 or a + n > rank:
        raise ValueError(f"axis {axis} / num_axes {num_axes} on a rank-{rank} input")
    return tuple(int(d) for d in lay.x.shape[a:a + n]), (1,) * (rank - a - n)


def _operand(cx: Ctx, lay: CaffeLayer, p, suffix: str) -> tuple:
    """(operand Value, its span shape, trailing 1s, blobs it used): the second bottom, or the
    learned blob 0, broadcastable against the first bottom."""
    if len(lay.inputs) > 1:
        b = lay.inputs[1]
        shape, tail = _span(lay, p.axis, len(b.shape))
        if tuple(b.shape) != shape:
            raise ValueError(f"second bottom {list(b.shape)} does not match {list(shape)}")
        return cx.reshape(b, shape + tail, suffix), shape, tail, 0
    shape, tail = _span(lay, p.axis, p.num_axes)
    return cx.const(cx.blobs(shape)[0].reshape(shape + tail), suffix), shape, tail, 1


@converter("caffe", "Scale", emits=("Mul", "Add", "Reshape"))
def scale(cx: Ctx, lay: CaffeLayer):
    """Scale -> Mul by the per-``axis`` scale (learned blob 0 ``x.shape[axis:axis+num_axes]``,
    or the second bottom), then Add of the bias (the next blob) when ``bias_term``."""
    p = lay.param("scale_param")
    s, shape, tail, used = _operand(cx, lay, p, "scale")
    if not p.bias_term:
        return cx.emit("Mul", lay.x, s)
    y = cx.emit("Mul", lay.x, s, suffix="mul")
    arr = cx.blobs(*([None] * used), shape)[used]
    return cx.emit("Add", y, cx.const(arr.reshape(shape + tail), "bias"))


@converter("caffe", "Bias", emits=("Add", "Reshape"))
def bias(cx: Ctx, lay: CaffeLayer):
    """Bias -> Add of the per-``axis`` bias (learned blob 0, or the second bottom)."""
    return cx.emit("Add", lay.x, _operand(cx, lay, lay.param("bias_param"), "bias")[0])


@converter("caffe", "LRN", emits=("Mul", "Reshape", "AveragePool", "Add", "Pow", "Div"),
           checks=(_rank(4), Check("local_size is odd", lambda lay: lay.param(
               "lrn_param").local_size % 2 == 1, "caffe.lrn_size")))
def lrn(cx: Ctx, lay: CaffeLayer):
    """LRN -> ``x / (k + alpha * mean(x^2 over the window)) ^ beta`` from primitives that every
    target has (src/caffe/layers/lrn_layer.cpp): ACROSS_CHANNELS averages ``local_size``
    channels (an AveragePool over a ``[N, 1, C, H*W]`` view, zero padded, divisor
    ``local_size``); WITHIN_CHANNEL a ``local_size`` square with k = 1."""
    p = lay.param("lrn_param")
    n, c, h, w = (int(d) for d in lay.x.shape)
    size, half = int(p.local_size), int(p.local_size) // 2
    sq = cx.emit("Mul", lay.x, lay.x, suffix="sq")
    if p.norm_region == 0:
        view = cx.reshape(sq, (n, 1, c, h * w), "view")
        avg = cx.emit("AveragePool", view, kernel_shape=(size, 1), pads=(half, 0, half, 0),
                      count_include_pad=1, suffix="avg")
        avg, k = cx.reshape(avg, (n, c, h, w), "unview"), float(p.k)
    else:
        avg = cx.emit("AveragePool", sq, kernel_shape=(size, size),
                      pads=(half, half, half, half), count_include_pad=1, suffix="avg")
        k = 1.0
    scaled = cx.emit("Mul", avg, cx.const(np.float32(p.alpha), "alpha"), suffix="alpha")
    base = cx.emit("Add", scaled, cx.const(np.float32(k), "k"), suffix="k")
    den = cx.emit("Pow", base, cx.const(np.float32(p.beta), "beta"), suffix="pow")
    return cx.emit("Div", lay.x, den)
