"""Converters for TensorFlow elementwise math and reductions: Add, AddV2, Sub, Mul, RealDiv,
Div (floats), Maximum, Minimum, Pow, SquaredDifference, Rsqrt, Sqrt, Square, Exp, Log, Neg,
Abs, Floor, Ceil, Reciprocal, Cast, SelectV2 / Select, Mean, Sum, Max, Min.

All act in TensorFlow's own layout (NHWC stays NHWC): numpy broadcasting is the same in TF
and ONNX. Facts: tensorflow/tensorflow ``tensorflow/core/ops/math_ops.cc`` (reductions take
``reduction_indices`` as input 1 and ``keep_dims``; Rsqrt = 1 / sqrt(x)).
"""
from __future__ import annotations

import numpy as np

from converter.ops import ONNX_DTYPE_CODE, bcast_shape
from converter.registry import Check, converter

from .context import Ctx, TfNode, Unsupported

FW = "tensorflow"

_BINARY = {"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div",
           "Maximum": "Max", "Minimum": "Min", "Pow": "Pow"}
FLOAT = Check("floating-point operands", lambda n: n.x.dtype.startswith("float"),
              "tensorflow.dtype")


def _operands(cx: Ctx, n: TfNode):
    """Both operands; a constant takes the other operand's dtype."""
    a, b = n.x, n.input(1)
    if a.is_const and not b.is_const and a.dtype != b.dtype:
        a = cx.const(a.const.astype(b.dtype))
    if b.is_const and not a.is_const and a.dtype != b.dtype:
        b = cx.const(b.const.astype(a.dtype))
    return a, b


@converter(FW, tuple(_BINARY) + ("Div",), emits=tuple(sorted(set(_BINARY.values()))))
def binary(cx: Ctx, n: TfNode):
    """Broadcasting binary op (Div of floats == RealDiv)."""
    if n.op == "Div" and not n.x.dtype.startswith("float"):
        raise Unsupported("tensorflow.dtype", "integer Div (floor division) at runtime")
    a, b = _operands(cx, n)
    return cx.emit(_BINARY.get(n.op, "Div"), a, b)


@converter(FW, "SquaredDifference", emits=("Sub", "Mul"))
def squared_difference(cx: Ctx, n: TfNode):
    """(x - y) * (x - y)."""
    d = cx.emit("Sub", *_operands(cx, n))
    return cx.emit("Mul", d, d)


_UNARY = {"Sqrt": "Sqrt", "Exp": "Exp", "Log": "Log", "Neg": "Neg", "Abs": "Abs",
          "Floor": "Floor", "Ceil": "Ceil", "Reciprocal": "Reciprocal", "Inv": "Reciprocal"}


@converter(FW, tuple(_UNARY), emits=tuple(sorted(set(_UNARY.values()))))
def unary(cx: Ctx, n: TfNode):
    """Same-named IR unary op (Inv is Reciprocal)."""
    return cx.emit(_UNARY[n.op], n.x)


@converter(FW, "Rsqrt", emits=("Sqrt", "Reciprocal"), checks=(FLOAT,))
def rsqrt(cx: Ctx, n: TfNode):
    """Rsqrt(x) = Reciprocal(Sqrt(x))."""
    return cx.emit("Reciprocal", cx.emit("Sqrt", n.x))


@converter(FW, "Square", emits=("Mul",))
def square(cx: Ctx, n: TfNode):
    """Square(x) = x * x."""
    return cx.emit("Mul", n.x, n.x)


@converter(FW, "Cast", emits=("Cast",),
           checks=(Check("target dtype is an IR dtype", lambda n: n["DstT"] in ONNX_DTYPE_CODE,
                         "tensorflow.dtype"),))
def cast(cx: Ctx, n: TfNode):
    """Cast to ``DstT`` (an IR dtype)."""
    return cx.emit("Cast", n.x, to=ONNX_DTYPE_CODE[n["DstT"]])


@converter(FW, ("SelectV2", "Select"), emits=("Where",))
def select(cx: Ctx, n: TfNode):
    """SelectV2(cond, a, b) -> Where; a constant all-true / all-false condition (a resolved
    dropout mask) selects one operand directly when that keeps the output shape."""
    c, a, b = n.inputs[:3]
    if c.is_const and c.const.size and (c.const.all() or not c.const.any()):
        pick = a if c.const.all() else b
        if pick.shape == bcast_shape(bcast_shape(c.shape, a.shape), b.shape):
            return pick
    if n.op == "Select" and c.rank == 1 and a.rank > 1:
        c = cx.emit("Reshape", c, cx.i64([-1] + [1] * (a.rank - 1)))
    return cx.emit("Where", c, a, b)


_REDUCE = {"Mean": "ReduceMean", "Sum": "ReduceSum", "Max": "ReduceMax"}


@converter(FW, tuple(_REDUCE), emits=tuple(_REDUCE.values()),
           checks=(Check("constant reduction axes", lambda n: n.const(1) is not None,
                         "tensorflow.axes"),))
def reduce(cx: Ctx, n: TfNode):
    """Mean / Sum / Max over constant axes (an empty axis list reduces nothing)."""
    axes = [int(a) % max(1, n.x.rank) for a in np.asarray(n.const(1)).reshape(-1)]
    if not axes:
        return n.x
    return cx.emit(_REDUCE[n.op], n.x, cx.i64(sorted(set(axes))),
                   keepdims=int(bool(n.get("keep_dims", False))))
