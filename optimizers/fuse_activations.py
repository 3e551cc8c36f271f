"""Fuse activation patterns that TensorFlow graphs spell out in arithmetic.

- fuse_gelu: ``(x * 0.5) * (1 + erf(x / sqrt 2))`` (``tf.nn.gelu(approximate=False)``, any
  operand order, ``x * (1/sqrt 2)`` for the division, the 0.5 applied last, or Keras 3's
  ``1 - erf(-x / sqrt 2)``, i.e. erfc(-x / sqrt 2), for the second factor) ->
  ``Gelu(x)`` (ONNX Gelu, approximate="none": ``0.5 x (1 + erf(x / sqrt 2))``).
- fuse_hard_sigmoid: ``clip(x + 3, 0, 6) * (1/6)`` or ``/ 6`` (Keras ``hard_sigmoid`` =
  ``relu6(x + 3) / 6``) -> ``HardSigmoid(x; alpha=1/6, beta=1/2)``: ``clip(x/6 + b/6, 0, 1) =
  clip(x + b, 0, 6) / 6``. Only b = 3: other shifts (b = 0 when the + 3 was already folded
  into a conv bias) stay Clip + Mul, because OpenVINO 2026 CPU computed HardSigmoid-1 with
  alpha 1/6, beta 0 wrongly (max error 0.5 on x in N(0, 16); measured here).
- fuse_hard_swish: ``x * HardSigmoid(x; 1/6, 1/2)`` or ``(x * clip(x + 3, 0, 6)) * (1/6)``
  or ``/ 6`` (MobileNetV3 ``hard_swish``) -> ``HardSwish(x)`` (ONNX: ``x * max(0, min(1,
  x/6 + 1/2))``).

Swish (``x * sigmoid(x)``) is left as is: the ncnn and OpenVINO lowerings fuse it.
Guards: every intermediate value has one live reader and is not a graph output; constants
are scalars (any rank, one element) equal to the pattern's value within 1e-6 relative.
"""
from __future__ import annotations

import math
from typing import Optional

from converter.ir import Node, Value
from converter.rewrite import P, Rule
from ._common import is_output, live_readers, mark_fused, replace_with


def _inner(graph, v: Optional[Value], op: str) -> Optional[Node]:
    """The producer of ``v`` when it is an ``op`` read only here (and no graph output)."""
    n = v.producer if v is not None else None
    ok = n is not None and n.op == op and not is_output(graph, v) and live_readers(graph, v) == 1
    return n if ok else None


def _scalar(v: Optional[Value]) -> Optional[float]:
    ok = v is not None and v.is_const and v.const.size == 1 and v.const.dtype.kind == "f"
    return float(v.const.reshape(())) if ok else None


def _is(v: Optional[Value], want: float) -> bool:
    return _scalar(v) is not None and math.isclose(_scalar(v), want, rel_tol=1e-6, abs_tol=1e-12)


def _with_const(node: Optional[Node]) -> Optional[tuple]:
    """(other operand, constant scalar) of a binary node with one scalar constant operand."""
    if node is None or len(node.inputs) != 2:
        return None
    a, b = node.inputs
    if _scalar(b) is not None and not a.is_const:
        return a, _scalar(b)
    if _scalar(a) is not None and not b.is_const:
        return b, _scalar(a)
    return None


def _emit(graph, root: Node, op: str, x: Value, fused: tuple, **attrs):
    node = graph.add(op, [x], attrs, name=root.name, meta=dict(root.meta))
    mark_fused(node, *fused)
    return replace_with(graph, root.outputs[0], node.outputs[0])


def _erf_arg(graph, v: Value) -> Optional[Value]:
    """x when ``v`` is ``1 + erf(x / sqrt 2)`` or ``1 - erf(-x / sqrt 2)`` (Keras 3 spells
    ``erfc(-x / sqrt 2)`` so; the frontend makes Erfc ``1 - erf``); single-reader chain."""
    n, sign = v.producer, 1.0
    pair = _with_const(_inner(graph, v, "Add"))
    if n is not None and n.op == "Sub" and _is(n.inputs[0], 1.0) and _inner(graph, v, "Sub"):
        pair, sign = (n.inputs[1], 1.0), -1.0
    erf = _inner(graph, pair[0], "Erf") if pair and math.isclose(pair[1], 1.0) else None
    d = erf.inputs[0] if erf is not None else None
    arg = _scaled(_inner(graph, d, "Mul") or _inner(graph, d, "Div")) if d else None
    if arg is None:
        return None
    x, f = arg
    if _inner(graph, x, "Neg") is not None:
        x, f = x.producer.inputs[0], -f
    return x if math.isclose(f * sign, 1 / math.sqrt(2.0), rel_tol=1e-6) else None


def _gelu(graph, m):
    root = m.root
    for a, b in (root.inputs, root.inputs[::-1]):
        x = _erf_arg(graph, b)
        half = _with_const(_inner(graph, a, "Mul"))
        if x is not None and half is not None and half[0] is x and math.isclose(half[1], 0.5):
            return _emit(graph, root, "Gelu", x, ("Mul", "Add", "Erf", "Div"))
    pair = _with_const(root)  # ((x * (1 + erf)) * 0.5)
    if pair is not None and math.isclose(pair[1], 0.5):
        inner = _inner(graph, pair[0], "Mul")
        for a, b in ((inner.inputs, inner.inputs[::-1]) if inner is not None else ()):
            if _erf_arg(graph, b) is a:
                return _emit(graph, root, "Gelu", a, ("Mul", "Add", "Erf", "Div"))
    return None


def _scaled(node: Optional[Node]) -> Optional[tuple]:
    """(v, factor) of ``v * c``, ``c * v`` or ``v / c`` with a scalar constant c."""
    if node is not None and node.op == "Div":
        c = _scalar(node.inputs[1])
        return (node.inputs[0], 1.0 / c) if c and not node.inputs[0].is_const else None
    return _with_const(node) if node is not None and node.op == "Mul" else None


def _relu6_shift(graph, v: Value) -> Optional[tuple]:
    """(x, b) when ``v`` is ``clip(x + b, 0, 6)`` (single-reader chain; b = 0 without the Add,
    e.g. when the + 3 was folded into a conv bias)."""
    clip = _inner(graph, v, "Clip")
    if clip is None or len(clip.inputs) != 3 or not _is(clip.inputs[1], 0.0) or \
            not _is(clip.inputs[2], 6.0):
        return None
    return _with_const(_inner(graph, clip.inputs[0], "Add")) or (clip.inputs[0], 0.0)


def _hard_sigmoid(graph, m):
    pair = _scaled(m.root)
    if pair is None or not math.isclose(pair[1], 1 / 6, rel_tol=1e-6):
        return None
    shifted = _relu6_shift(graph, pair[0])
    if shifted is None:
        return None
    x, b = shifted
    if not math.isclose(b, 3.0):  # see the module docstring (OpenVINO, beta != 1/2)
        return None
    return _emit(graph, m.root, "HardSigmoid", x, ("Add", "Clip", m.root.op),
                 alpha=1.0 / 6.0, beta=b / 6.0)


def _hard_swish(graph, m):
    root = m.root
    for a, b in ((root.inputs, root.inputs[::-1]) if root.op == "Mul" else ()):
        hs = _inner(graph, b, "HardSigmoid")
        if hs is not None and hs.inputs[0] is a and math.isclose(hs.attrs.get(
                "alpha", 0.2), 1 / 6, rel_tol=1e-6) and math.isclose(hs.attrs.get("beta", .5), .5):
            return _emit(graph, root, "HardSwish", a, ("HardSigmoid", "Mul"))
    pair = _scaled(root)  # ((x * clip(x + 3, 0, 6)) * (1/6)) or / 6
    if pair is None or not math.isclose(pair[1], 1 / 6, rel_tol=1e-6):
        return None
    inner = _inner(graph, pair[0], "Mul")
    for a, b in ((inner.inputs, inner.inputs[::-1]) if inner is not None else ()):
        shifted = _relu6_shift(graph, b)
        if shifted is not None and shifted[0] is a and math.isclose(shifted[1], 3.0):
            return _emit(graph, root, "HardSwish", a, ("Add", "Clip", "Mul", root.op))
    return None


RULES = [Rule("fuse_gelu", P("Mul"), _gelu),
         Rule("fuse_hard_swish", P(("Mul", "Div")), _hard_swish),
         Rule("fuse_hard_sigmoid", P(("Mul", "Div")), _hard_sigmoid)]
