"""OpenVINO lowerings of activations, unary math and (log-)softmax.

Specs (openvinotoolkit/openvino docs/articles_en/documentation/openvino-ir-format/
operation-sets/operation-specs/...): ``activation/relu-1.rst``, ``activation/clamp-1.rst``
(float ``min``/``max`` attributes), ``activation/prelu-1.rst`` (a 1-D slope whose length equals
data dim 1 is applied per channel, any other slope broadcasts by numpy rules),
``activation/elu-1.rst`` (``alpha`` attribute), ``activation/selu-1.rst`` and
``activation/hard-sigmoid-1.rst`` (``alpha``/``lambda``/``beta`` as inputs),
``activation/hsigmoid-5.rst`` (== HardSigmoid 1/6, 1/2), ``activation/hswish-4.rst``,
``activation/gelu-7.rst`` (``approximation_mode`` erf/tanh), ``activation/softplus-4.rst``,
``activation/mish-4.rst``, ``activation/softmax-8.rst`` (negative axis allowed),
``activation/log-soft-max-5.rst``, ``arithmetic/*-1.rst`` (Exp, Log, Sqrt, Negative, Abs,
Floor, Ceiling, Erf, Tanh, Sigmoid).
"""
from __future__ import annotations

import numpy as np

from converter.checks import axis_of
from converter.ir import Node
from converter.ops import attr
from converter.registry import Check, lowering

from .checks import checks, const_inputs
from .context import LowerCtx

HSIGMOID = (1.0 / 6.0, 0.5)  # HSigmoid-5 == max(0, min(1, x/6 + 1/2))

#: IR op -> opset factory name of the one-input OpenVINO op computing it, and its XML type.
UNARY = {"Relu": ("relu", "ReLU"), "Sigmoid": ("sigmoid", "Sigmoid"), "Tanh": ("tanh", "Tanh"),
         "Exp": ("exp", "Exp"), "Log": ("log", "Log"), "Sqrt": ("sqrt", "Sqrt"),
         "Neg": ("negative", "Negative"), "Abs": ("abs", "Abs"), "Floor": ("floor", "Floor"),
         "Ceil": ("ceiling", "Ceiling"), "Softplus": ("softplus", "SoftPlus"),
         "Mish": ("mish", "Mish"), "Erf": ("erf", "Erf"), "HardSwish": ("hswish", "HSwish")}


def _unary(factory: str):
    def fn(node: Node, ctx: LowerCtx) -> None:
        y = getattr(ctx.ops, factory)(ctx.input(node, 0), name=ctx.name(node.name))
        ctx.bind_node(node, y)
    fn.__doc__ = f"IR unary op -> ``{factory}`` (same semantics, one input)."
    return fn


for _op, (_factory, _xml) in UNARY.items():
    lowering("openvino", _op, emits=(_xml,), checks=checks())(_unary(_factory))


def _scalar(node: Node, value: float, role: str, ctx: LowerCtx):
    """A rank-0 constant of the first input's dtype (Selu / HardSigmoid / Swish operands)."""
    return ctx.const(np.asarray(value, dtype=node.inputs[0].dtype), f"{node.name}/{role}")


@lowering("openvino", "LeakyRelu", emits=("PReLU",), checks=checks())
def lower_leaky_relu(node: Node, ctx: LowerCtx) -> None:
    """LeakyRelu(alpha) -> PReLU with a ``[1]`` slope (broadcasts to every element)."""
    slope = ctx.const(np.asarray([attr(node, "alpha")], dtype=node.inputs[0].dtype),
                      f"{node.name}/slope")
    ctx.bind_node(node, ctx.ops.prelu(ctx.input(node, 0), slope, name=ctx.name(node.name)))


@lowering("openvino", "PRelu", emits=("PReLU",),
          checks=checks(const_inputs(1, text="slope is a constant")))
def lower_prelu(node: Node, ctx: LowerCtx) -> None:
    """PRelu(X, slope): the ONNX slope broadcasts to X by numpy rules; it is written with X's
    rank (leading 1s) so OpenVINO's 1-D per-channel rule can never apply to a ``[W]`` slope."""
    x, s = node.inputs
    arr = np.asarray(s.const, dtype=x.dtype)
    rank = len(x.shape)
    if arr.ndim < rank:
        arr = arr.reshape((1,) * (rank - arr.ndim) + arr.shape)
    slope = ctx.const(arr, f"{s.name}/aligned" if arr.shape != s.const.shape else s.name)
    ctx.bind_node(node, ctx.ops.prelu(ctx.value(x), slope, name=ctx.name(node.name)))


@lowering("openvino", "Elu", emits=("Elu",), checks=checks())
def lower_elu(node: Node, ctx: LowerCtx) -> None:
    """Elu(alpha) -> Elu-1 (``alpha`` attribute)."""
    y = ctx.ops.elu(ctx.input(node, 0), float(attr(node, "alpha")), name=ctx.name(node.name))
    ctx.bind_node(node, y)


@lowering("openvino", "Selu", emits=("Selu",), checks=checks())
def lower_selu(node: Node, ctx: LowerCtx) -> None:
    """Selu(alpha, gamma) -> Selu-1(data, alpha, lambda=gamma)."""
    a = _scalar(node, attr(node, "alpha"), "alpha", ctx)
    g = _scalar(node, attr(node, "gamma"), "lambda", ctx)
    ctx.bind_node(node, ctx.ops.selu(ctx.input(node, 0), a, g, name=ctx.name(node.name)))


@lowering("openvino", "HardSigmoid", emits=("HSigmoid", "HardSigmoid"), checks=checks())
def lower_hard_sigmoid(node: Node, ctx: LowerCtx) -> None:
    """HardSigmoid(alpha, beta) -> HSigmoid-5 for (1/6, 1/2), else HardSigmoid-1."""
    al, be = float(attr(node, "alpha")), float(attr(node, "beta"))
    x = ctx.input(node, 0)
    if np.allclose((al, be), HSIGMOID, rtol=1e-6, atol=0):
        ctx.bind_node(node, ctx.ops.hsigmoid(x, name=ctx.name(node.name)))
        return
    a, b = _scalar(node, al, "alpha", ctx), _scalar(node, be, "beta", ctx)
    ctx.bind_node(node, ctx.ops.hard_sigmoid(x, a, b, name=ctx.name(node.name)))


@lowering("openvino", "Gelu", emits=("Gelu",),
          checks=checks(Check("approximate is 'none' or 'tanh'",
                              lambda n: attr(n, "approximate") in ("none", "tanh"),
                              "openvino.attr")))
def lower_gelu(node: Node, ctx: LowerCtx) -> None:
    """Gelu(approximate none/tanh) -> Gelu-7 approximation_mode erf/tanh."""
    mode = "erf" if attr(node, "approximate") == "none" else "tanh"
    ctx.bind_node(node, ctx.ops.gelu(ctx.input(node, 0), mode, name=ctx.name(node.name)))


def _bound(node: Node, i: int):
    """Constant bound ``i`` of a Clip as a float, None when absent or not constant."""
    v = node.input(i)
    return float(np.asarray(v.const).reshape(-1)[0]) if v is not None and v.is_const else None


@lowering("openvino", "Clip", emits=("Clamp", "Maximum", "Minimum"),
          checks=checks(Check("constant min and max have one element",
                              lambda n: all(n.const_input(i) is None or n.const_input(i).size
                                            == 1 for i in (1, 2)), "openvino.attr")))
def lower_clip(node: Node, ctx: LowerCtx) -> None:
    """Clip(min, max) -> Clamp-1 when both bounds are finite constants; otherwise Maximum
    (min) and/or Minimum (max) with the scalar bound (constant or tensor), an infinite or
    absent bound being skipped."""
    lo, hi = _bound(node, 1), _bound(node, 2)
    x = ctx.input(node, 0)
    o = ctx.ops
    if lo is not None and hi is not None and np.isfinite([lo, hi]).all():
        ctx.bind_node(node, o.clamp(x, lo, hi, name=ctx.name(node.name)))
        return
    for i, fn, val in ((1, o.maximum, lo), (2, o.minimum, hi)):
        v = node.input(i)
        if v is None or (val is not None and not np.isfinite(val)):
            continue
        bound = ctx.input(node, i, node.inputs[0]) if val is None else _scalar(
            node, val, "min" if i == 1 else "max", ctx)
        x = fn(x, bound, name=ctx.name(node.name)).output(0)
    ctx.bind_node(node, x)


@lowering("openvino", "Softmax", emits=("SoftMax",), checks=checks())
def lower_softmax(node: Node, ctx: LowerCtx) -> None:
    """Softmax(axis) -> SoftMax-8 (ONNX opset 13+ semantics: one axis)."""
    y = ctx.ops.softmax(ctx.input(node, 0), axis_of(node, "axis", -1), name=ctx.name(node.name))
    ctx.bind_node(node, y)


@lowering("openvino", "LogSoftmax", emits=("LogSoftmax",), checks=checks())
def lower_log_softmax(node: Node, ctx: LowerCtx) -> None:
    """LogSoftmax(axis) -> LogSoftmax-5."""
    y = ctx.ops.log_softmax(ctx.input(node, 0), axis_of(node, "axis", -1),
                            name=ctx.name(node.name))
    ctx.bind_node(node, y)
