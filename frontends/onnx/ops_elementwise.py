"""Converters for ONNX element-wise ops: Add / Sub / Mul / Div / Pow, Max / Min / Sum / Mean
(variadic), Equal, Where, Cast.

Version facts (onnx/onnx docs/Changelog.md, docs/Broadcasting.md): before opset 7 the binary
ops broadcast only when ``broadcast=1``, and then ``B`` lines up with ``A`` starting at
``axis`` (default: suffix matching), e.g. ``A[2,3,4,5] + B[3]`` with ``axis=1``; from 7 both
sides broadcast numpy-style. Max / Min / Sum / Mean take 1..N inputs (the IR's Max / Min are
binary). Cast-1 names the target type with a string (``"FLOAT"``), Cast-6+ with an int.
"""
from __future__ import annotations

from functools import reduce

from converter.ops import ONNX_DTYPE_CODE
from converter.registry import Check, converter

from .context import Ctx, OnnxNode, norm_axis

FW = "onnx"


def legacy_operand(cx: Ctx, n: OnnxNode, b):
    """Operand ``b`` of an opset<7 ``broadcast=1`` node, reshaped so numpy broadcasting
    places its dims at ``axis`` of ``A`` (trailing 1s appended)."""
    a = n.x
    if n.version >= 7 or not n.get("broadcast", 0) or a.shape is None or b.shape is None:
        return b
    ra, rb = len(a.shape), len(b.shape)
    axis = norm_axis(n.get("axis", ra - rb), ra)
    trail = ra - axis - rb
    return cx.reshape(b, tuple(b.shape) + (1,) * trail) if trail > 0 else b


def _pow_exponent(cx: Ctx, n: OnnxNode, b):
    """Pow-12+ allows an exponent of another dtype; a constant one is cast to the base's."""
    if n.op == "Pow" and b.is_const and b.dtype != n.x.dtype:
        return cx.const(b.const.astype(n.x.dtype), suffix="exp")
    return b


@converter(FW, ("Add", "Sub", "Mul", "Div", "Pow", "Equal"),
           emits=("Add", "Sub", "Mul", "Div", "Pow", "Equal", "Reshape"))
def binary(cx: Ctx, n: OnnxNode):
    """The same binary op; legacy (opset < 7) axis broadcasting made numpy-style."""
    b = _pow_exponent(cx, n, legacy_operand(cx, n, n.input(1)))
    return cx.emit(n.op, n.x, b)


_CHAIN = {"Max": "Max", "Min": "Min", "Sum": "Add", "Mean": "Add"}


@converter(FW, ("Max", "Min", "Sum", "Mean"), emits=("Max", "Min", "Add", "Mul"))
def variadic(cx: Ctx, n: OnnxNode):
    """Max / Min / Sum / Mean of N inputs as a left fold of binary IR ops (Mean: the sum
    times 1/N). Opset<8 versions have no broadcasting; 8+ broadcast numpy-style (same ops)."""
    xs = [v for v in n.inputs if v is not None]
    if len(xs) == 1:
        return xs[0]
    out = reduce(lambda a, b: cx.emit(_CHAIN[n.op], a, b), xs)
    if n.op == "Mean":
        out = cx.emit("Mul", out, cx.scalar(1.0 / len(xs), out))
    return out


@converter(FW, "Where", emits=("Where",))
def where(cx: Ctx, n: OnnxNode):
    return cx.emit("Where", n.x, n.input(1), n.input(2))


def cast_code(n: OnnxNode) -> int:
    """The target TensorProto type code of a Cast (string names in Cast-1)."""
    from onnx import TensorProto

    to = n["to"]
    return TensorProto.DataType.Value(to.upper()) if isinstance(to, str) else int(to)


def _cast_ok(n: OnnxNode) -> bool:
    return cast_code(n) in ONNX_DTYPE_CODE.values()


@converter(FW, "Cast", emits=("Cast",),
           checks=(Check("target dtype is float16/32/64, (u)int8/16/32/64 or bool",
                         _cast_ok, "onnx.cast_dtype"),))
def cast(cx: Ctx, n: OnnxNode):
    """Cast to a dtype the IR has; a cast to the input's own dtype is dropped."""
    code = cast_code(n)
    if ONNX_DTYPE_CODE.get(n.x.dtype) == code:
        return n.x
    return cx.emit("Cast", n.x, to=code)


@converter(FW, "CastLike", emits=("Cast",),
           checks=(Check("target dtype is one the IR has", lambda n: n.input(1).dtype in
                         ONNX_DTYPE_CODE, "onnx.cast_dtype"),))
def cast_like(cx: Ctx, n: OnnxNode):
    """CastLike(x, like) = Cast(x, to=dtype(like)) (opset 15)."""
    if n.x.dtype == n.input(1).dtype:
        return n.x
    return cx.emit("Cast", n.x, to=ONNX_DTYPE_CODE[n.input(1).dtype])

