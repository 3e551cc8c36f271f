"""Compose or cancel back-to-back layout ops (Transpose, Reshape, Flatten, Squeeze, Unsqueeze).

- compose_transposes: Transpose(Transpose(x, p), q) = Transpose(x, r), r[i] = p[q[i]] (output
  axis i reads the inner's axis q[i], which is x's axis p[q[i]]). An identity r removes the
  pair (output -> x); otherwise the outer node is edited in place to read x with perm r. An
  omitted perm reverses the axes and needs the rank.
- compose_reshapes (inner Reshape) and compose_flatten_reshape (inner Flatten):
  Reshape(R(x), s) = Reshape(x, s'). A reshape depends only on the element count and the
  row-major order, which R keeps; the only reference to R's output shape m is a target dim
  s[i] == 0 (copy dim i, allowzero=0). It stays 0 when x's dim i is the same known dim as m[i]
  (an int or the same symbol), becomes m[i] when that is an int, else the rule declines.
- cancel_squeeze_unsqueeze: Unsqueeze(Squeeze(x, a), b) = x when a normalized against rank(x)
  and b normalized against the output rank (also rank(x)) are the same set: Squeeze removes
  exactly the size-1 dims that Unsqueeze puts back at the same places.
- cancel_unsqueeze_squeeze: Squeeze(Unsqueeze(x, b), a) = x when a and b, both normalized
  against rank(x) + |b|, are the same set.
  An omitted Squeeze axes operand means every size-1 dim: it needs all dims known as ints.

The inner node may have other readers (``shared=True``): a rewrite only makes the outer node
read x (or disappear), so the node count never grows, and the inner node stays just for its
other readers. Results that would rename a graph output decline (see :mod:`._common`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from converter.ops import attr
from converter.rewrite import Decline, P, Rule, V
from ._common import mark_fused, new_const, norm_axes, replace_with


def _perm(node) -> Optional[tuple]:
    p, shape = attr(node, "perm"), node.input(0).shape
    if p is not None:
        return tuple(p)
    return tuple(reversed(range(len(shape)))) if shape is not None else None


def _compose_transposes(graph, m):
    outer, x = m.root, m["x"]
    p, q = _perm(m["inner"]), _perm(outer)
    if p is None or q is None:
        return Decline("omitted perm on a value of unknown rank")
    r = tuple(p[i] for i in q)
    if r == tuple(range(len(r))):
        return replace_with(graph, outer.outputs[0], x)
    graph.set_input(outer, 0, x)
    outer.attrs["perm"] = r
    mark_fused(outer, "Transpose")
    return outer.outputs[0]


def _compose_reshapes(graph, m):
    outer, inner, x = m.root, m["inner"], m["x"]
    s, mid = outer.const_input(1), inner.outputs[0].shape
    if s is None:
        return None
    target = [int(t) for t in s.reshape(-1)]
    if not attr(outer, "allowzero"):
        for i, t in enumerate(target):
            if t != 0:
                continue
            md = mid[i] if mid is not None and i < len(mid) else None
            xd = x.shape[i] if x.shape is not None and i < len(x.shape) else None
            if md is not None and xd == md:
                continue
            if not isinstance(md, int):
                return Decline(f"target dim {i} copies an unknown dim of {inner.name}")
            target[i] = md
    graph.set_input(outer, 0, x)
    if target != [int(t) for t in s.reshape(-1)]:
        graph.set_input(outer, 1, new_const(graph, np.array(target, np.int64),
                                            f"{outer.name}.shape"))
    mark_fused(outer, inner.op)
    return outer.outputs[0]


def _squeeze_axes(node, rank: int) -> Optional[set]:
    """Normalized axes of a Squeeze on an input of ``rank``; None when unknowable."""
    v = node.input(1)
    if v is not None:
        return norm_axes(v.const, rank) if v.is_const else None
    shape = node.input(0).shape
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return {i for i, d in enumerate(shape) if d == 1}


def _cancel_pair(graph, m):
    outer, inner, x = m.root, m["inner"], m["x"]
    if x.shape is None:
        return Decline("rank of the input unknown")
    sq, unsq = (inner, outer) if inner.op == "Squeeze" else (outer, inner)
    uaxes = unsq.input(1)
    if uaxes is None or not uaxes.is_const:
        return None
    rank = len(x.shape) if sq is inner else len(x.shape) + uaxes.const.size
    a = _squeeze_axes(sq, rank)
    if a is None:
        return Decline("Squeeze axes not known")
    if uaxes.const.size != len(a) or a != norm_axes(uaxes.const, rank):
        return None
    return replace_with(graph, outer.outputs[0], x)


RULES = (
    Rule("compose_transposes",
         P("Transpose", P("Transpose", V("x"), name="inner", shared=True)), _compose_transposes),
    Rule("compose_reshapes",
         P("Reshape", P("Reshape", V("x"), name="inner", shared=True)), _compose_reshapes),
    Rule("compose_flatten_reshape",
         P("Reshape", P("Flatten", V("x"), name="inner", shared=True)), _compose_reshapes),
    Rule("cancel_squeeze_unsqueeze",
         P("Unsqueeze", P("Squeeze", V("x"), name="inner", shared=True)), _cancel_pair),
    Rule("cancel_unsqueeze_squeeze",
         P("Squeeze", P("Unsqueeze", V("x"), name="inner", shared=True)), _cancel_pair),
)
