"""Converters for TensorFlow activations: Relu, Relu6, Elu, Selu, LeakyRelu, Sigmoid, Tanh,
Softplus, Softsign, Erf, Erfc, Softmax, LogSoftmax.

Facts (tensorflow/tensorflow ``tensorflow/core/ops/nn_ops.cc``, ``math_ops.cc``): Relu6 is
``min(max(x, 0), 6)``; Elu uses alpha 1; Selu uses the fixed constants
alpha = 1.6732632423543772, scale = 1.0507009873554805 (the IR = ONNX defaults); LeakyRelu's
``alpha`` defaults to 0.2; Softmax / LogSoftmax act on the last axis. Swish (``x *
sigmoid(x)``), hard-swish (``x * relu6(x + 3) / 6``) and GELU (``0.5 x (1 + erf(x /
sqrt 2))``) arrive as these ops plus arithmetic; the exporters and
:mod:`optimizers.fuse_activations` recognize them.
"""
from __future__ import annotations

import numpy as np

from converter.registry import converter

from .context import Ctx, TfNode

FW = "tensorflow"

_DIRECT = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Softplus": "Softplus",
           "Erf": "Erf", "Selu": "Selu", "Elu": "Elu"}


@converter(FW, tuple(_DIRECT), emits=tuple(sorted(set(_DIRECT.values()))))
def unary(cx: Ctx, n: TfNode):
    """Same op in the IR (Elu alpha 1 and Selu's constants are the IR defaults)."""
    return cx.emit(_DIRECT[n.op], n.x)


@converter(FW, "Relu6", emits=("Clip",))
def relu6(cx: Ctx, n: TfNode):
    """Relu6 -> Clip(x, 0, 6)."""
    return cx.emit("Clip", n.x, cx.scalar(0.0, n.x), cx.scalar(6.0, n.x))


@converter(FW, "LeakyRelu", emits=("LeakyRelu",))
def leaky_relu(cx: Ctx, n: TfNode):
    """LeakyRelu(alpha, default 0.2)."""
    return cx.emit("LeakyRelu", n.x, alpha=float(n.get("alpha", 0.2)))


@converter(FW, "Erfc", emits=("Erf", "Sub"))
def erfc(cx: Ctx, n: TfNode):
    """Erfc(x) = 1 - erf(x) (Keras 3 gelu is ``0.5 x erfc(-x / sqrt 2)``; the GELU fusion
    reads this form)."""
    return cx.emit("Sub", cx.const(np.ones((), n.x.dtype)), cx.emit("Erf", n.x))


@converter(FW, "Softsign", emits=("Abs", "Add", "Div"))
def softsign(cx: Ctx, n: TfNode):
    """Softsign(x) = x / (1 + |x|)."""
    den = cx.emit("Add", cx.emit("Abs", n.x), cx.const(np.ones((), n.x.dtype)))
    return cx.emit("Div", n.x, den)


@converter(FW, ("Softmax", "LogSoftmax"), emits=("Softmax", "LogSoftmax"))
def softmax(cx: Ctx, n: TfNode):
    """Softmax / LogSoftmax over the last axis."""
    return cx.emit(n.op, n.x, axis=max(0, n.x.rank - 1))
