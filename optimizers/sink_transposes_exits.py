"""Where a sunk Transpose leaves its region (helpers of :mod:`.sink_transposes`), and the
``transpose_to_reshape`` rule.

A reader of a region value ``v`` (perm ``q``: old ``v`` = ``Transpose(new, q)``) outside the
region is one of:

* ``transpose``: a Transpose ``s`` of ``v`` composes to ``Transpose(new, r)``,
  ``r[i] = q[s[i]]``; the identity ``r`` removes it;
* ``free``: a Reshape / Flatten that reads the same row-major element order from ``new``:
  the non-1 old axes ``i`` (in order) have increasing ``q[i]``, and the result shape is the
  same (e.g. NHWC ``[N, 1, 1, C]`` -> ``[N, C]`` after global pooling);
* ``fold``: a Reshape / Flatten to ``[N, K]`` (batch first, ``q[0] == 0``, static dims but
  N) feeding, as its only reader, input A of a MatMul / Gemm (transA = 0) with a constant
  weight: the flatten reads ``new`` and the weight rows (Gemm transB: columns) are permuted,
  ``W'[k] = W[idx[k]]`` with ``idx = arange(K).reshape(old dims 1..).transpose(inverse(q)
  restricted to them).reshape(-1)`` (new flat position k holds old flat element idx[k]);
* ``need``: anything else (and a graph output) reads ``Transpose(new, q)``, one new node per
  value.

transpose_to_reshape: ``Transpose(x, s)`` that moves only size-1 dims (the non-1 axes of x
appear in s in increasing order) is a Reshape: same elements in the same order. Unknown
dims must stay in place (target 0, copy) except at most one (target -1). Only after a
Reshape / Flatten / Squeeze / Unsqueeze (Keras SE blocks: mean -> Reshape(1, 1, C) ->
Transpose), which the reshape rules then merge; other Transposes are left to sinking.

reduce_keepdims: ``Reshape(Reduce(x, axes, keepdims=0), s)`` whose result has the shape of
``Reduce(x, axes, keepdims=1)`` is that Reduce (a reshape only inserts the size-1 dims back
where keepdims keeps them; same elements, same order); the reduce is edited in place (it has
no other reader, the pattern's guard).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from converter.ops import attr, infer_node, reshape_shape
from converter.rewrite import Decline, P, Rule, V
from ._common import is_output, live_readers, new_const, replace_with
from .sink_transposes_axes import inverse

RESHAPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


def new_shape(shape, q) -> Optional[tuple]:
    """Shape of the new value of an old value of ``shape`` and perm ``q``."""
    return None if shape is None else tuple(shape[i] for i in inverse(q))


def order_free(shape, q) -> bool:
    """True when the old and the new value hold their elements in the same order."""
    if shape is None:
        return False
    axes = [q[i] for i, d in enumerate(shape) if d != 1]
    return axes == sorted(axes)


def _non1(dims) -> int:
    return sum(1 for d in dims if d != 1)


def _same_result(node, shape, q) -> bool:
    new = new_shape(shape, q)
    if node.op == "Flatten":
        ax = int(attr(node, "axis")) % len(shape)
        return _non1(shape[:ax]) == _non1(new[:ax])
    t = node.const_input(1)
    if t is None:
        return False
    try:
        return reshape_shape(new, t.reshape(-1), attr(node, "allowzero")) == \
            node.outputs[0].shape
    except Exception:
        return False


def _fold_target(graph, node, shape, q):
    """The (MatMul/Gemm node, weight index) a flatten ``node`` can fold into, or None."""
    out = node.outputs[0]
    if q[0] != 0 or not all(isinstance(d, int) for d in shape[1:]) or out.shape is None:
        return None
    if len(out.shape) != 2 or out.shape[1] != int(np.prod(shape[1:])) or is_output(graph, out):
        return None
    if live_readers(graph, out) != 1 or len(out.uses) != 1:
        return None
    m, i = out.uses[0]
    if i != 0 or m.op not in ("MatMul", "Gemm") or (m.op == "Gemm" and attr(m, "transA")):
        return None
    w = m.input(1)
    return (m, w) if w is not None and w.is_const and w.const.ndim == 2 else None


def classify(graph, node, i: int, shape, q) -> str:
    """Kind of exit of reader ``node`` (input ``i``) of a region value (module docstring)."""
    if node.op == "Transpose":
        return "transpose"
    if node.op in ("Reshape", "Flatten") and i == 0:
        if order_free(shape, q) and _same_result(node, shape, q):
            return "free"
        if _fold_target(graph, node, shape, q) is not None:
            return "fold"
    return "need"


def composed(node, q) -> tuple:
    """Perm of Transpose ``node`` reading the new value instead of the old one."""
    s = attr(node, "perm") or tuple(reversed(range(len(q))))
    return tuple(q[j] for j in s)


def fold_weight(graph, node, shape, q) -> None:
    """Permute the weight rows of the MatMul / Gemm after flatten ``node`` (``fold``)."""
    m, w = _fold_target(graph, node, shape, q)
    sub = inverse([a - 1 for a in q[1:]])
    idx = np.arange(int(np.prod(shape[1:]))).reshape(shape[1:]).transpose(sub).reshape(-1)
    cols = m.op == "Gemm" and attr(m, "transB")
    arr = w.const[:, idx] if cols else w.const[idx, :]
    graph.set_input(m, 1, new_const(graph, arr, f"{m.name}.weight_nchw"))


def _to_reshape(graph, m):
    node, x = m.root, m["x"]
    out = node.outputs[0].shape
    s = attr(node, "perm") or tuple(reversed(range(len(x.shape or ()))))
    if x.producer is None or x.producer.op not in RESHAPES or not order_free(out, s):
        return None
    target = [d if isinstance(d, int) else (0 if s[i] == i else -1) for i, d in enumerate(out)]
    if target.count(-1) > 1:
        return Decline("more than one unknown dim moves")
    shape = new_const(graph, np.array(target, np.int64), f"{node.name}.shape")
    return graph.op("Reshape", x, shape, name=node.name + "_reshape")


def _keepdims(graph, m):
    node, red = m.root, m["red"]
    if attr(red, "keepdims"):
        return None
    red.attrs["keepdims"] = 1
    infer_node(red)
    want, got = node.outputs[0].shape, red.outputs[0].shape
    if want is None or got is None or tuple(want) != tuple(got) or None in want:
        red.attrs["keepdims"] = 0
        infer_node(red)
        return None
    return replace_with(graph, node.outputs[0], red.outputs[0])


RULES = (Rule("transpose_to_reshape", P("Transpose", V("x")), _to_reshape),
         Rule("reduce_keepdims", P("Reshape", P(("ReduceMean", "ReduceMax", "ReduceSum"), V("x"),
                                                 name="red")), _keepdims))
