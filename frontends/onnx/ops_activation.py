"""Converters for ONNX activations: unary math ops, LeakyRelu / Elu / Selu / HardSigmoid /
Gelu, Clip, PRelu, Softmax / LogSoftmax, Softsign.

Version facts (onnx/onnx docs/Changelog.md): opset-1 unary ops carried a ``consumed_inputs``
attribute (ignored); Clip-1/6 takes ``min`` / ``max`` attributes, Clip-11 inputs; PRelu-6 and
earlier apply a ``[C]`` slope per channel (axis 1), PRelu-7+ broadcasts it numpy-style
(a ``[C]`` slope then meets the *last* axis); Softmax / LogSoftmax before opset 13 coerce the
input to 2-D ``[prod(shape[:axis]), prod(shape[axis:])]`` with ``axis`` defaulting to 1, from
13 they act on the single axis (default -1); Gelu is an op from opset 20.
"""
from __future__ import annotations

import numpy as np

from converter.registry import Check, converter

from .context import Ctx, OnnxNode, norm_axis, static

FW = "onnx"

_DIRECT = ("Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal",
           "Floor", "Ceil", "Softplus", "Mish", "Erf", "HardSwish")


@converter(FW, _DIRECT, emits=_DIRECT)
def unary(cx: Ctx, n: OnnxNode):
    """Same op in the IR; legacy ``consumed_inputs`` is dropped."""
    return cx.emit(n.op, n.x)


_PARAMS = {"LeakyRelu": ("alpha",), "Elu": ("alpha",), "Selu": ("alpha", "gamma"),
           "HardSigmoid": ("alpha", "beta"), "Gelu": ("approximate",)}


@converter(FW, tuple(_PARAMS), emits=tuple(_PARAMS))
def parametric(cx: Ctx, n: OnnxNode):
    """Same op, its parameters copied (absent ones keep the IR = ONNX defaults)."""
    return cx.emit(n.op, n.x, **{k: n[k] for k in _PARAMS[n.op]})


def _bound(cx: Ctx, n: OnnxNode, key: str, i: int):
    if key in n.attrs:  # Clip-1/6 attribute form
        return cx.scalar(float(n[key]), n.x)
    v = n.input(i)
    if v is not None and v.is_const and v.const.size == 1:
        return cx.const(v.const.reshape(()).astype(n.x.dtype), suffix=key)
    return v


@converter(FW, "Clip", emits=("Clip",),
           checks=(Check("min / max are constants", lambda n: all(
               n.input(i) is None or n.input(i).is_const for i in (1, 2)), "onnx.clip_dynamic"),))
def clip(cx: Ctx, n: OnnxNode):
    """Clip: attribute bounds (opset < 11) become constant inputs; omitted ones stay omitted."""
    return cx.emit("Clip", n.x, _bound(cx, n, "min", 1), _bound(cx, n, "max", 2))


@converter(FW, "PRelu", emits=("PRelu",))
def prelu(cx: Ctx, n: OnnxNode):
    """PRelu; an opset<7 per-channel ``[C]`` slope is reshaped to ``[C, 1, ...]`` so numpy
    broadcasting puts it on axis 1."""
    slope = n.input(1)
    r = len(n.x.shape)
    if n.version < 7 and slope.rank == 1 and slope.shape[0] != 1 and r > 2:
        slope = cx.reshape(slope, (slope.shape[0],) + (1,) * (r - 2))
    return cx.emit("PRelu", n.x, slope)


def _coerced_ok(n: OnnxNode) -> bool:
    return n.version >= 13 or static(n.x)


@converter(FW, ("Softmax", "LogSoftmax"), emits=("Softmax", "LogSoftmax", "Flatten", "Reshape"),
           checks=(Check("opset < 13 with a non-last axis needs a static input shape",
                         _coerced_ok, "onnx.softmax_dynamic"),))
def softmax(cx: Ctx, n: OnnxNode):
    """Softmax / LogSoftmax. Opset >= 13: one axis, copied. Opset < 13 (2-D coercion at
    ``axis``, default 1): the same op when ``axis`` is the last one, else Flatten(axis) ->
    op(axis=-1) -> Reshape back, which is exactly the coerced semantics."""
    r = len(n.x.shape)
    if n.version >= 13:
        return cx.emit(n.op, n.x, axis=norm_axis(n.get("axis", -1), r))
    ax = norm_axis(n.get("axis", 1), r)
    if ax == r - 1:
        return cx.emit(n.op, n.x, axis=ax)
    flat = cx.emit("Flatten", n.x, axis=ax)
    y = cx.emit(n.op, flat, axis=1)
    return cx.emit("Reshape", y, cx.i64(n.x.shape))


@converter(FW, "Softsign", emits=("Abs", "Add", "Div"))
def softsign(cx: Ctx, n: OnnxNode):
    """Softsign(x) = x / (1 + |x|) (docs/Operators.md)."""
    den = cx.emit("Add", cx.emit("Abs", n.x), cx.const(np.ones((), n.x.dtype)))
    return cx.emit("Div", n.x, den)
