"""Converters for binary arithmetic ATen ops (tensor and scalar operands, numpy broadcasting).

torch semantics: ``add(self, other, alpha) = self + alpha*other``, ``rsub(self, other, alpha)
= other - alpha*self``, ``div`` with ``rounding_mode=None`` is true division. A Python scalar
takes the tensor operand's dtype (torch type promotion, ``torch/_prims_common``).
"""
from __future__ import annotations


from converter.ir import Value
from converter.registry import Check, converter

from .context import Ctx, SourceNode

FW = "pytorch"


def _scaled(cx: Ctx, other, alpha, like: Value):
    if alpha in (None, 1):
        return other
    if isinstance(other, Value):
        return cx.emit("Mul", other, cx.tensor(float(alpha), like=like))
    return other * alpha


@converter(FW, "aten.add", emits=("Add", "Mul"))
def add(cx: Ctx, n: SourceNode):
    a, b = cx.promote(n["self"], _scaled(cx, n["other"], n["alpha"], n["self"]))
    return cx.emit("Add", a, b)


@converter(FW, "aten.sub", emits=("Sub", "Mul"))
def sub(cx: Ctx, n: SourceNode):
    a, b = cx.promote(n["self"], _scaled(cx, n["other"], n["alpha"], n["self"]))
    return cx.emit("Sub", a, b)


@converter(FW, "aten.rsub", emits=("Sub", "Mul"))
def rsub(cx: Ctx, n: SourceNode):
    a, b = cx.promote(n["other"], _scaled(cx, n["self"], n["alpha"], n["self"]))
    return cx.emit("Sub", a, b)


@converter(FW, "aten.mul", emits=("Mul",))
def mul(cx: Ctx, n: SourceNode):
    return cx.emit("Mul", *cx.promote(n["self"], n["other"]))


@converter(FW, "aten.div", emits=("Div",),
           checks=(Check("rounding_mode is None (true division)",
                         lambda n: n["rounding_mode"] is None, "pytorch.div_rounding"),))
def div(cx: Ctx, n: SourceNode):
    return cx.emit("Div", *cx.promote(n["self"], n["other"]))


@converter(FW, "aten.floor_divide", emits=("Div", "Floor"))
def floor_divide(cx: Ctx, n: SourceNode):
    a, b = cx.promote(n["self"], n["other"])
    q = cx.emit("Div", a, b)
    return cx.emit("Floor", q) if a.dtype.startswith("float") else q


@converter(FW, "aten.pow", emits=("Pow", "Mul", "Sqrt"))
def pow_(cx: Ctx, n: SourceNode):
    x, e = n["self"], n["exponent"]
    if not isinstance(e, Value) and float(e) == 2.0:
        return cx.emit("Mul", x, x)
    if not isinstance(e, Value) and float(e) == 0.5:
        return cx.emit("Sqrt", x)
    return cx.emit("Pow", *cx.promote(x, e))


@converter(FW, "aten.rsqrt", emits=("Sqrt", "Reciprocal"))
def rsqrt(cx: Ctx, n: SourceNode):
    return cx.emit("Reciprocal", cx.emit("Sqrt", n["self"]))


@converter(FW, "aten.maximum", emits=("Max",))
def maximum(cx: Ctx, n: SourceNode):
    return cx.emit("Max", *cx.promote(n["self"], n["other"]))


@converter(FW, "aten.minimum", emits=("Min",))
def minimum(cx: Ctx, n: SourceNode):
    return cx.emit("Min", *cx.promote(n["self"], n["other"]))
