"""TFLite lowerings of activations, unary math and (log-)softmax.

Builtins (schema.fbs ``BuiltinOperator``; kernels ``activations.cc``, ``elementwise.cc``,
``gelu.cc``): RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1, LOGISTIC, TANH, HARD_SWISH (== torch
hardswish), LEAKY_RELU (LeakyReluOptions.alpha), PRELU (alpha broadcast against NHWC), ELU
(alpha 1 only), GELU (GeluOptions.approximate; code 150), EXP, LOG, SQRT, NEG, ABS, FLOOR,
CEIL, SOFTMAX (``beta`` must be written: the schema default 0.0 gives a uniform output,
tflite.md rule 2) and LOG_SOFTMAX, both over the last axis only.

Composed in arithmetic where TFLite has no builtin:

* HardSigmoid ``clip(a*x + b, 0, 1)`` = ``RELU6(6a*x + 6b) / 6``: [MUL], ADD (+ RELU6, fused
  into the ADD by :mod:`.fuse`), MUL;
* Softplus = ``log(1 + exp(min(x, 20))) + relu(x - 20)`` (torch's threshold 20, no overflow);
* Mish = ``x * tanh(log(1 + exp(min(x, 20))))``;
* Elu with alpha != 1 and Selu = ``g * ((1 - a) * relu(x) + a * ELU(x))``;
* Softmax / LogSoftmax over a non-last physical axis: REDUCE_MAX, SUB, EXP, SUM, DIV (LOG,
  SUB) over that axis, instead of transposing.
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node
from converter.ops import attr
from converter.registry import Check, lowering

from .checks import checks
from .context import LowerCtx
from .layout import phys_axis

UNARY = {"Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "HardSwish": "HARD_SWISH",
         "Exp": "EXP", "Log": "LOG", "Sqrt": "SQRT", "Neg": "NEG", "Abs": "ABS",
         "Floor": "FLOOR", "Ceil": "CEIL"}
SOFTPLUS_THRESHOLD = 20.0


def _unary(code: str):
    def fn(node: Node, ctx: LowerCtx) -> None:
        ctx.op(code, [ctx.input(node, 0)], [ctx.out(node.outputs[0])])
    fn.__doc__ = f"IR unary op -> ``{code}``."
    return fn


for _op, _code in UNARY.items():
    lowering("tflite", _op, emits=(_code,), checks=checks())(_unary(_code))


@lowering("tflite", "LeakyRelu", emits=("LEAKY_RELU",), checks=checks())
def lower_leaky_relu(node: Node, ctx: LowerCtx) -> None:
    """LeakyRelu(alpha) -> LEAKY_RELU(alpha)."""
    ctx.op("LEAKY_RELU", [ctx.input(node, 0)], [ctx.out(node.outputs[0])], "LeakyReluOptions",
           Alpha=float(attr(node, "alpha")))


@lowering("tflite", "PRelu", emits=("PRELU",), checks=checks(Check(
    "slope is a constant", lambda n: n.inputs[1].is_const, "tflite.const")))
def lower_prelu(node: Node, ctx: LowerCtx) -> None:
    """PRelu(X, slope) -> PRELU with the slope laid out like X (``[C,1,1]`` -> ``[C]``)."""
    ctx.op("PRELU", [ctx.input(node, 0), ctx.input(node, 1, dtype="float32")],
           [ctx.out(node.outputs[0])])


def _elu_mix(node: Node, ctx: LowerCtx, alpha: float, gamma: float) -> None:
    """``gamma * ((1 - alpha) * relu(x) + alpha * ELU(x))``."""
    x, y, n = ctx.input(node, 0), ctx.out(node.outputs[0]), node.name
    elu = ctx.emit("ELU", [x], x, f"{n}/elu")
    relu = ctx.emit("RELU", [x], x, f"{n}/relu")
    a = ctx.emit("MUL", [elu, ctx.scalar(gamma * alpha, f"{n}/ga")], x, f"{n}/a", "MulOptions")
    b = ctx.emit("MUL", [relu, ctx.scalar(gamma * (1 - alpha), f"{n}/gb")], x, f"{n}/b",
                 "MulOptions")
    ctx.op("ADD", [a, b], [y], "AddOptions")


@lowering("tflite", "Elu", emits=("ELU", "RELU", "MUL", "ADD"), checks=checks())
def lower_elu(node: Node, ctx: LowerCtx) -> None:
    """Elu(alpha) -> ELU (alpha 1), else the ELU/RELU mix."""
    alpha = float(attr(node, "alpha"))
    if alpha == 1.0:
        ctx.op("ELU", [ctx.input(node, 0)], [ctx.out(node.outputs[0])])
    else:
        _elu_mix(node, ctx, alpha, 1.0)


@lowering("tflite", "Selu", emits=("ELU", "RELU", "MUL", "ADD"), checks=checks())
def lower_selu(node: Node, ctx: LowerCtx) -> None:
    """Selu(alpha, gamma) -> the ELU/RELU mix scaled by gamma."""
    _elu_mix(node, ctx, float(attr(node, "alpha")), float(attr(node, "gamma")))


@lowering("tflite", "Gelu", emits=("GELU",), checks=checks(Check(
    "approximate is 'none' or 'tanh'", lambda n: attr(n, "approximate") in ("none", "tanh"),
    "tflite.attr")))
def lower_gelu(node: Node, ctx: LowerCtx) -> None:
    """Gelu -> GELU (approximate = tanh form)."""
    ctx.op("GELU", [ctx.input(node, 0)], [ctx.out(node.outputs[0])], "GeluOptions",
           Approximate=attr(node, "approximate") == "tanh")


@lowering("tflite", "HardSigmoid", emits=("MUL", "ADD", "RELU6"), checks=checks())
def lower_hard_sigmoid(node: Node, ctx: LowerCtx) -> None:
    """HardSigmoid(a, b) -> [MUL 6a], ADD 6b, RELU6, MUL 1/6 (the RELU6 fuses into the ADD)."""
    a, b = float(attr(node, "alpha")), float(attr(node, "beta"))
    x, n = ctx.input(node, 0), node.name
    if abs(6 * a - 1.0) > 1e-7:
        x = ctx.emit("MUL", [x, ctx.scalar(6 * a, f"{n}/6a")], x, f"{n}/scaled", "MulOptions")
    s = ctx.emit("ADD", [x, ctx.scalar(6 * b, f"{n}/6b")], x, f"{n}/shifted", "AddOptions")
    r = ctx.emit("RELU6", [s], s, f"{n}/relu6")
    ctx.op("MUL", [r, ctx.scalar(1 / 6, f"{n}/sixth")], [ctx.out(node.outputs[0])],
           "MulOptions")


def _log1p_exp(ctx: LowerCtx, x: int, n: str) -> int:
    """``log(1 + exp(min(x, 20)))``."""
    m = ctx.emit("MINIMUM", [x, ctx.scalar(SOFTPLUS_THRESHOLD, f"{n}/threshold")], x, f"{n}/min")
    e = ctx.emit("EXP", [m], x, f"{n}/exp")
    p = ctx.emit("ADD", [e, ctx.scalar(1.0, f"{n}/one")], x, f"{n}/1p", "AddOptions")
    return ctx.emit("LOG", [p], x, f"{n}/log")


@lowering("tflite", "Softplus", emits=("MINIMUM", "EXP", "ADD", "LOG", "SUB", "RELU"),
          checks=checks())
def lower_softplus(node: Node, ctx: LowerCtx) -> None:
    """Softplus -> ``log(1 + exp(min(x, 20))) + relu(x - 20)``."""
    x, n = ctx.input(node, 0), node.name
    sp = _log1p_exp(ctx, x, n)
    d = ctx.emit("SUB", [x, ctx.scalar(SOFTPLUS_THRESHOLD, f"{n}/t")], x, f"{n}/over",
                 "SubOptions")
    r = ctx.emit("RELU", [d], x, f"{n}/over_relu")
    ctx.op("ADD", [sp, r], [ctx.out(node.outputs[0])], "AddOptions")


@lowering("tflite", "Mish", emits=("MINIMUM", "EXP", "ADD", "LOG", "TANH", "MUL"),
          checks=checks())
def lower_mish(node: Node, ctx: LowerCtx) -> None:
    """Mish -> ``x * tanh(log(1 + exp(min(x, 20))))``."""
    x, n = ctx.input(node, 0), node.name
    t = ctx.emit("TANH", [_log1p_exp(ctx, x, n)], x, f"{n}/tanh")
    ctx.op("MUL", [x, t], [ctx.out(node.outputs[0])], "MulOptions")


def _bound(node: Node, i: int, ctx: LowerCtx):
    v = ctx.plan.const_of(node.input(i))
    return None if v is None else float(np.asarray(v).reshape(-1)[0])


CLIP_CODES = {(0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1", (0.0, 1.0): "RELU_0_TO_1",
              (0.0, None): "RELU"}


@lowering("tflite", "Clip", emits=("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "MAXIMUM",
                                   "MINIMUM", "RESHAPE"), checks=checks(Check(
    "min and max are absent or one-element constants",
    lambda n: all(n.input(i) is None or (n.inputs[i].is_const and n.inputs[i].const.size == 1)
                  for i in (1, 2)), "tflite.const")))
def lower_clip(node: Node, ctx: LowerCtx) -> None:
    """Clip -> RELU / RELU6 / RELU_N1_TO_1 / RELU_0_TO_1 for those bounds, else MAXIMUM and/or
    MINIMUM with the scalar bounds (infinite bounds skipped)."""
    lo, hi = _bound(node, 1, ctx), _bound(node, 2, ctx)
    lo = None if lo is not None and np.isneginf(lo) else lo
    hi = None if hi is not None and np.isposinf(hi) else hi
    x, y, n = ctx.input(node, 0), ctx.out(node.outputs[0]), node.name
    code = CLIP_CODES.get((lo, hi))
    if code is not None:
        ctx.op(code, [x], [y])
        return
    steps = [(c, v) for c, v in (("MAXIMUM", lo), ("MINIMUM", hi)) if v is not None]
    if not steps:
        ctx.op("RESHAPE", [x, ctx.i32(ctx.model.tensors[y].shape, n, "shape")], [y])
    for k, (c, v) in enumerate(steps):
        dst = y if k == len(steps) - 1 else None
        x = ctx.emit(c, [x, ctx.scalar(v, f"{n}/{c.lower()}", node.inputs[0].dtype)], x,
                     f"{n}/{c.lower()}", out=dst)


def _softmax_arith(node: Node, ctx: LowerCtx, axis: int, log: bool) -> None:
    """(Log)softmax over physical ``axis`` from reductions (no TRANSPOSE)."""
    x, y, n = ctx.input(node, 0), ctx.out(node.outputs[0]), node.name
    shape = list(ctx.model.tensors[x].shape)
    shape[axis] = 1
    ax = ctx.i32([axis], n, "axis")
    mx = ctx.temp(n, "max", shape)
    ctx.op("REDUCE_MAX", [x, ax], [mx], "ReducerOptions", KeepDims=True)
    d = ctx.emit("SUB", [x, mx], x, f"{n}/shifted", "SubOptions")
    e = ctx.emit("EXP", [d], x, f"{n}/exp")
    s = ctx.temp(n, "sum", shape)
    ctx.op("SUM", [e, ax], [s], "ReducerOptions", KeepDims=True)
    if log:
        ls = ctx.emit("LOG", [s], s, f"{n}/logsum")
        ctx.op("SUB", [d, ls], [y], "SubOptions")
    else:
        ctx.op("DIV", [e, s], [y], "DivOptions")


def _softmax(log: bool):
    code = "LOG_SOFTMAX" if log else "SOFTMAX"

    def fn(node: Node, ctx: LowerCtx) -> None:
        perm = ctx.want(node, 0)
        axis = phys_axis(perm, int(attr(node, "axis")))
        if axis != len(perm) - 1:
            _softmax_arith(node, ctx, axis, log)
        elif log:
            ctx.op(code, [ctx.input(node, 0)], [ctx.out(node.outputs[0])])
        else:
            ctx.op(code, [ctx.input(node, 0)], [ctx.out(node.outputs[0])], "SoftmaxOptions",
                   Beta=1.0)
    fn.__doc__ = (f"{'LogSoftmax' if log else 'Softmax'}(axis) -> {code} when the axis is "
                  "the last physical one, else the arithmetic form over that axis.")
    return fn


lowering("tflite", "Softmax", emits=("SOFTMAX", "REDUCE_MAX", "SUB", "EXP", "SUM", "DIV"),
         checks=checks())(_softmax(False))
lowering("tflite", "LogSoftmax", emits=("LOG_SOFTMAX", "REDUCE_MAX", "SUB", "EXP", "SUM",
                                        "LOG"), checks=checks())(_softmax(True))
