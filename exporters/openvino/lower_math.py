"""OpenVINO lowerings of binary arithmetic, comparison, selection, Reciprocal and Cast.

Specs (openvinotoolkit/openvino docs/articles_en/documentation/openvino-ir-format/
operation-sets/operation-specs/...): ``arithmetic/add-1.rst``, ``subtract-1``, ``multiply-1``,
``divide-1`` (``m_pythondiv``: true = floor division for integers; ONNX Div truncates, so it is
written false), ``power-1``, ``maximum-1``, ``minimum-1`` (all ``auto_broadcast="numpy"``, the
ONNX multidirectional broadcast), ``comparison/equal-1.rst``, ``condition/select-1.rst``,
``type/convert-1.rst``, ``activation/swish-4.rst``.

Elementwise ops need equal element types (no implicit promotion, openvino-ir.md §1 "Element
types"), so a constant operand of another dtype is cast to the tensor operand's dtype
(``Pow(x, 2)`` with an int exponent).

Fusion: ``Mul(x, Sigmoid(x))`` (SiLU as frontends spell it) -> one ``Swish`` when the Sigmoid
has no other reader; the unused Sigmoid is not reachable from a Result and is dropped.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from converter.ir import Graph, Node, Value
from converter.ops import ONNX_DTYPE_CODE, attr
from converter.registry import Check, lowering

from .checks import checks
from .context import OV_TYPES, LowerCtx

BINARY = {"Add": ("add", "Add"), "Sub": ("subtract", "Subtract"),
          "Mul": ("multiply", "Multiply"), "Div": ("divide", "Divide"),
          "Pow": ("power", "Power"), "Max": ("maximum", "Maximum"),
          "Min": ("minimum", "Minimum"), "Equal": ("equal", "Equal")}


def operands(node: Node, ctx: LowerCtx) -> tuple:
    """Both inputs of a binary node with a constant cast to the other operand's dtype."""
    a, b = node.inputs[0], node.inputs[1]
    ref = b if a.is_const and not b.is_const else a
    return ctx.input(node, 0, ref), ctx.input(node, 1, ref)


def silu_source(node: Node, graph: Graph) -> Optional[Value]:
    """``x`` when ``node`` is ``Mul(x, Sigmoid(x))`` (either order) and the Sigmoid output has
    no other reader and is not a graph output; else None."""
    for i in (0, 1):
        s, x = node.inputs[i], node.inputs[1 - i]
        p = s.producer
        if (p is not None and p.op == "Sigmoid" and p.inputs[0] is x and len(s.uses) == 1
                and not any(o is s for o in graph.outputs)):
            return x
    return None


def _binary(factory: str):
    def fn(node: Node, ctx: LowerCtx) -> None:
        src = silu_source(node, ctx.graph) if node.op == "Mul" else None
        if src is not None:
            ctx.bind_node(node, ctx.ops.swish(ctx.value(src), name=ctx.name(node.name)))
            return
        y = getattr(ctx.ops, factory)(*operands(node, ctx), name=ctx.name(node.name))
        if node.op == "Div":
            y.set_attribute("m_pythondiv", False)
        ctx.bind_node(node, y)
    fn.__doc__ = (f"IR binary op -> ``{factory}`` with numpy broadcasting"
                  + ("; Mul(x, Sigmoid(x)) -> Swish" if factory == "multiply" else "") + ".")
    return fn


for _op, (_factory, _xml) in BINARY.items():
    _emits = (_xml, "Swish") if _op == "Mul" else (_xml,)
    lowering("openvino", _op, emits=_emits, checks=checks())(_binary(_factory))


@lowering("openvino", "Where", emits=("Select",), checks=checks())
def lower_where(node: Node, ctx: LowerCtx) -> None:
    """Where(cond, a, b) -> Select-1 (numpy broadcast of all three)."""
    a, b = node.inputs[1], node.inputs[2]
    ref = b if a.is_const and not b.is_const else a
    y = ctx.ops.select(ctx.input(node, 0), ctx.input(node, 1, ref), ctx.input(node, 2, ref),
                       name=ctx.name(node.name))
    ctx.bind_node(node, y)


@lowering("openvino", "Reciprocal", emits=("Divide",), checks=checks())
def lower_reciprocal(node: Node, ctx: LowerCtx) -> None:
    """Reciprocal(x) -> Divide(1, x) (OpenVINO has no reciprocal op)."""
    one = ctx.const(np.asarray(1, dtype=node.inputs[0].dtype), f"{node.name}/one")
    ctx.bind_node(node, ctx.ops.divide(one, ctx.input(node, 0), name=ctx.name(node.name)))


_CAST_OK = Check("the target type is one OpenVINO names",
                 lambda n: {v: k for k, v in ONNX_DTYPE_CODE.items()}[attr(n, "to")] in OV_TYPES,
                 "openvino.dtype")


@lowering("openvino", "Cast", emits=("Convert",), checks=checks(_CAST_OK))
def lower_cast(node: Node, ctx: LowerCtx) -> None:
    """Cast(to) -> Convert-1 (``destination_type``)."""
    dst = getattr(ctx.ov.Type, OV_TYPES[node.outputs[0].dtype])
    ctx.bind_node(node, ctx.ops.convert(ctx.input(node, 0), dst, name=ctx.name(node.name)))
