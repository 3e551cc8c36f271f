"""Caffe activation and elementwise-math layers: ReLU, ReLU6, PReLU, ELU, Sigmoid, TanH, AbsVal,
BNLL, Power, Exp, Log, Softmax.

Formulas (BVLC/caffe ``src/caffe/layers/<type>_layer.cpp``): ReLU ``max(x, 0) +
negative_slope * min(x, 0)``; PReLU slopes ``[C]`` (``[1]`` when ``channel_shared``); Power
``(shift + scale * x) ^ power``; Exp ``base ^ (shift + scale * x)`` (base -1 = e); Log
``log_base(shift + scale * x)``; BNLL ``log(1 + exp(x))``; Softmax over ``axis``. ReLU6
(``min(max(x, 0), 6)``) is the layer of the MobileNet-v2 forks (Tencent/ncnn
tools/caffe/caffe2ncnn.cpp).
"""
from __future__ import annotations

import math

import numpy as np

from converter.registry import Check, converter

from .context import Ctx
from .reader import CaffeLayer


@converter("caffe", "ReLU", emits=("Relu", "LeakyRelu"))
def relu(cx: Ctx, lay: CaffeLayer):
    """ReLU -> Relu, or LeakyRelu(alpha = negative_slope) when the slope is not 0."""
    slope = float(lay.param("relu_param").negative_slope)
    return cx.emit("LeakyRelu", lay.x, alpha=slope) if slope else cx.emit("Relu", lay.x)


@converter("caffe", "ReLU6", emits=("Clip",))
def relu6(cx: Ctx, lay: CaffeLayer):
    """ReLU6 -> Clip(0, 6)."""
    return cx.emit("Clip", lay.x, cx.const(np.float32(0), "min"), cx.const(np.float32(6), "max"))


@converter("caffe", "PReLU", emits=("PRelu",), checks=(
        Check("the input has a channel axis (rank >= 2)", lambda lay: len(lay.x.shape) >= 2,
              "caffe.rank"),))
def prelu(cx: Ctx, lay: CaffeLayer):
    """PReLU -> PRelu with the slopes shaped ``[C, 1, ...]`` (or ``[1]`` when shared)."""
    shared = lay.param("prelu_param").channel_shared
    c = 1 if shared else int(lay.x.shape[1])
    (slope,) = cx.blobs((c,))
    if shared:
        return cx.emit("PRelu", lay.x, cx.const(slope.reshape(1), "slope"))
    return cx.emit("PRelu", lay.x, cx.channel_const(slope, len(lay.x.shape), 1, "slope"))


@converter("caffe", "ELU", emits=("Elu",))
def elu(cx: Ctx, lay: CaffeLayer):
    """ELU(alpha) -> Elu."""
    return cx.emit("Elu", lay.x, alpha=float(lay.param("elu_param").alpha))


def _simple(ir_op: str):
    def fn(cx: Ctx, lay: CaffeLayer):
        return cx.emit(ir_op, lay.x)
    fn.__doc__ = f"-> {ir_op}."
    return fn


for _caffe, _ir in {"Sigmoid": "Sigmoid", "TanH": "Tanh", "AbsVal": "Abs",
                    "BNLL": "Softplus"}.items():
    converter("caffe", _caffe, emits=(_ir,))(_simple(_ir))


def _affine(cx: Ctx, lay: CaffeLayer, scale: float, shift: float):
    """``shift + scale * x`` with the trivial steps left out."""
    y = lay.x
    if scale != 1.0:
        y = cx.emit("Mul", y, cx.const(np.float32(scale), "scale"), suffix="scale")
    if shift != 0.0:
        y = cx.emit("Add", y, cx.const(np.float32(shift), "shift"), suffix="shift")
    return y


@converter("caffe", "Power", emits=("Mul", "Add", "Pow", "Identity"))
def power(cx: Ctx, lay: CaffeLayer):
    """Power -> ``Pow(shift + scale * x, power)`` (the Pow left out for power 1)."""
    p = lay.param("power_param")
    y = _affine(cx, lay, float(p.scale), float(p.shift))
    if float(p.power) != 1.0:
        return cx.emit("Pow", y, cx.const(np.float32(p.power), "power"))
    return y if y is not lay.x else cx.emit("Identity", y)


def _ln_base(base: float) -> float:
    if base == -1.0:
        return 1.0
    if base <= 0:
        raise ValueError(f"base {base} must be positive (or -1 for e)")
    return math.log(base)


@converter("caffe", "Exp", emits=("Mul", "Add", "Exp"))
def exp(cx: Ctx, lay: CaffeLayer):
    """Exp -> ``Exp(ln(base) * (shift + scale * x))``."""
    p = lay.param("exp_param")
    k = _ln_base(float(p.base))
    return cx.emit("Exp", _affine(cx, lay, k * float(p.scale), k * float(p.shift)))


@converter("caffe", "Log", emits=("Mul", "Add", "Log"))
def log(cx: Ctx, lay: CaffeLayer):
    """Log -> ``Log(shift + scale * x) / ln(base)``."""
    p = lay.param("log_param")
    k = _ln_base(float(p.base))
    y = cx.emit("Log", _affine(cx, lay, float(p.scale), float(p.shift)),
                suffix="ln" if k != 1.0 else "")
    return cx.emit("Mul", y, cx.const(np.float32(1.0 / k), "invln")) if k != 1.0 else y


@converter("caffe", "Softmax", emits=("Softmax",))
def softmax(cx: Ctx, lay: CaffeLayer):
    """Softmax(axis, default 1) -> Softmax (one axis, ONNX opset 13+ semantics)."""
    axis = int(lay.param("softmax_param").axis)
    rank = len(lay.x.shape)
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} on a rank-{rank} input")
    return cx.emit("Softmax", lay.x, axis=axis + rank if axis < 0 else axis)
