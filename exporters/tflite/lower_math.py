"""TFLite lowerings of binary arithmetic, comparison, selection, Reciprocal and Cast.

Builtins (schema.fbs; kernels ``add.cc``, ``sub.cc``, ``mul.cc``, ``div.cc``, ``pow.cc``,
``maximum_minimum.cc``, ``comparisons.cc``, ``select.cc``, ``cast.cc``): ADD / SUB / MUL /
DIV carry an options table with ``fused_activation_function`` (filled in by :mod:`.fuse`);
all broadcast numpy-style. Operands must share one element type, so a constant operand is
cast to the node's type (``Pow(x, 2)`` with an int exponent). ``Pow`` by the constant 2 is a
MUL and by 0.5 a SQRT (exact, and what XNNPACK delegates); Where -> SELECT_V2 (broadcasting);
Equal -> EQUAL; Reciprocal -> DIV(1, x); Cast -> CAST.
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node
from converter.registry import Check, lowering

from .checks import checks, float_only
from .context import LowerCtx

BINARY = {"Add": ("ADD", "AddOptions"), "Sub": ("SUB", "SubOptions"),
          "Mul": ("MUL", "MulOptions"), "Div": ("DIV", "DivOptions"), "Pow": ("POW", None),
          "Max": ("MAXIMUM", None), "Min": ("MINIMUM", None)}


def _exponent(node: Node, ctx: LowerCtx):
    e = ctx.plan.const_of(node.inputs[1])
    return None if e is None or np.asarray(e).size != 1 else float(np.asarray(e).reshape(-1)[0])


def _binary(code: str, options):
    def fn(node: Node, ctx: LowerCtx) -> None:
        y = ctx.out(node.outputs[0])
        dt = node.outputs[0].dtype
        if code == "POW" and _exponent(node, ctx) in (2.0, 0.5):
            x = ctx.input(node, 0)
            if _exponent(node, ctx) == 2.0:
                ctx.op("MUL", [x, x], [y], "MulOptions")
            else:
                ctx.op("SQRT", [x], [y])
            return
        ins = [ctx.input(node, 0, dtype=dt), ctx.input(node, 1, dtype=dt)]
        ctx.op(code, ins, [y], options)
    fn.__doc__ = f"IR binary op -> ``{code}`` (numpy broadcasting)."
    return fn


for _op, (_code, _opts) in BINARY.items():
    _emits = (_code, "MUL", "SQRT") if _op == "Pow" else (_code,)
    _extra = (float_only("float operands (TFLite DIV rounds integers differently)"),) \
        if _op in ("Div", "Pow") else ()
    lowering("tflite", _op, emits=_emits, checks=checks(*_extra))(_binary(_code, _opts))


@lowering("tflite", "Equal", emits=("EQUAL",), checks=checks())
def lower_equal(node: Node, ctx: LowerCtx) -> None:
    """Equal -> EQUAL (bool output)."""
    dt = node.inputs[0].dtype
    ctx.op("EQUAL", [ctx.input(node, 0, dtype=dt), ctx.input(node, 1, dtype=dt)],
           [ctx.out(node.outputs[0])])


@lowering("tflite", "Where", emits=("SELECT_V2",), checks=checks())
def lower_where(node: Node, ctx: LowerCtx) -> None:
    """Where(cond, a, b) -> SELECT_V2 (broadcasts all three)."""
    dt = node.outputs[0].dtype
    ins = [ctx.input(node, 0), ctx.input(node, 1, dtype=dt), ctx.input(node, 2, dtype=dt)]
    ctx.op("SELECT_V2", ins, [ctx.out(node.outputs[0])])


@lowering("tflite", "Reciprocal", emits=("DIV",), checks=checks(float_only()))
def lower_reciprocal(node: Node, ctx: LowerCtx) -> None:
    """Reciprocal(x) -> DIV(1, x)."""
    one = ctx.scalar(1.0, f"{node.name}/one", node.inputs[0].dtype)
    ctx.op("DIV", [one, ctx.input(node, 0)], [ctx.out(node.outputs[0])], "DivOptions")


@lowering("tflite", "Cast", emits=("CAST",), checks=checks(Check(
    "source and target types are not float64", lambda n: "float64" not in (
        n.inputs[0].dtype, n.outputs[0].dtype), "tflite.dtype")))
def lower_cast(node: Node, ctx: LowerCtx) -> None:
    """Cast -> CAST (types from the tensors)."""
    ctx.op("CAST", [ctx.input(node, 0)], [ctx.out(node.outputs[0])])
