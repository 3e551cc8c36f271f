"""Which ops a sunk Transpose passes through, and how their axes and constants follow it
(helpers of :mod:`.sink_transposes`; no rule of their own). Semantics: onnx/onnx
docs/Operators.md.

A region value with perm ``q`` (rank r) is rewritten so that old = ``Transpose(new, q)``: old
axis ``i`` is new axis ``q[i]``, ``new = old.transpose(inverse(q))``. Then:

* elementwise ops (unary, binary, Clip, Where, PRelu, Cast, ...) commute with the Transpose;
  a constant operand (rank <= r) is left-padded with 1s to rank r and transposed by
  ``inverse(q)``; a size-1 constant or an all-1 runtime operand is layout-free and kept;
* Softmax / LogSoftmax / Concat / Split ``axis`` a -> ``q[a]``; Slice ``axes`` -> ``q[axes]``
  (omitted: ``0..len(starts)-1``); Pad ``pads'[q[i]] = pads[i]``, ``pads'[r+q[i]] =
  pads[r+i]``;
* ReduceMean / ReduceSum / ReduceMax ``axes`` A -> ``q[A]``, output perm q with keepdims;
  without keepdims (and Squeeze) the kept old axes K give the output perm ``q'[k] =`` rank of
  ``q[K[k]]`` among ``{q[i] : i in K}`` (identity for the NHWC mean [1, 2] -> [2, 3]).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from converter.ops import attr
from ._common import new_const

ELEMENTWISE = frozenset({
    "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Floor", "Ceil",
    "Softplus", "Mish", "Erf", "HardSwish", "Identity", "LeakyRelu", "Elu", "Selu",
    "HardSigmoid", "Gelu", "Clip", "PRelu", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min",
    "Equal", "Where", "Cast", "Dropout"})


@dataclass(frozen=True)
class Spec:
    """How a node takes inputs of perm ``q``: ``data`` input indices carry the layout (their
    constants are permuted), ``q_out`` is the perm of each output (the identity: layout-free),
    ``edit(graph, node, q)`` remaps axis attributes / operands (None: nothing to remap)."""

    data: tuple
    q_out: tuple
    edit: Optional[Callable] = None


def inverse(q) -> tuple:
    """The perm undoing ``q``."""
    return tuple(int(i) for i in np.argsort(q))


def is_identity(q) -> bool:
    """True for ``(0, 1, ..., r-1)``."""
    return tuple(q) == tuple(range(len(q)))


def permute_const(c: np.ndarray, q) -> Optional[np.ndarray]:
    """A constant operand of a rank-``len(q)`` region value, laid out for the new layout
    (None: keep it as it is, being size 1)."""
    if c.size == 1 or c.ndim > len(q):
        return None
    return np.ascontiguousarray(c.reshape((1,) * (len(q) - c.ndim) + c.shape).transpose(
        inverse(q)))


def reduced_perm(q, axes: set) -> tuple:
    """Output perm after removing old ``axes`` (Squeeze, Reduce without keepdims)."""
    kept = [i for i in range(len(q)) if i not in axes]
    new_kept = sorted(q[i] for i in kept)
    return tuple(new_kept.index(q[i]) for i in kept)


def _set_axis(node, q):
    node.attrs["axis"] = int(q[int(attr(node, "axis")) % len(q)])


def _set_operand(graph, node, i: int, values, name: str) -> None:
    while len(node.inputs) <= i:
        node.inputs.append(None)
    graph.set_input(node, i, new_const(graph, np.array(values, np.int64), f"{node.name}.{name}"))


def _axes_operand(node, i: int, r: int) -> Optional[list]:
    v = node.input(i)
    if v is None:
        return None
    return [int(a) % r for a in v.const.reshape(-1)] if v.is_const else False  # positional


def _axis_op(node, q):
    n = len(node.outputs) if node.op == "Split" else 1
    data = tuple(range(len(node.inputs))) if node.op == "Concat" else (0,)
    return Spec(data, (q,) * n, lambda g, nd, q: _set_axis(nd, q))


def _pad(node, q):
    pads, r = node.input(1), len(q)
    if pads is None or not pads.is_const or node.input(3) is not None:
        return None  # an ``axes`` operand: not in the IR's Pad shape inference either
    p = [int(v) for v in pads.const.reshape(-1)]
    new = [0] * (2 * r)
    for i in range(r):
        new[q[i]], new[r + q[i]] = p[i], p[r + i]
    return Spec((0,), (q,), lambda g, nd, q: _set_operand(g, nd, 1, new, "pads"))


def _slice(node, q):
    axes = _axes_operand(node, 3, len(q))
    if axes is False or node.input(1) is None or not node.input(1).is_const:
        return None
    if axes is None:
        axes = list(range(node.input(1).const.size))
    return Spec((0,), (q,), lambda g, nd, q: _set_operand(g, nd, 3, [q[a] for a in axes], "axes"))


def _reduce(node, q):
    r, shape, axes = len(q), node.input(0).shape, _axes_operand(node, 1, len(q))
    keep = node.op != "Squeeze" and bool(attr(node, "keepdims"))
    if axes is None and node.op == "Squeeze":
        if all(isinstance(d, int) for d in shape):
            axes = [i for i, d in enumerate(shape) if d == 1]
    elif axes is None:
        axes = None if attr(node, "noop_with_empty_axes") else list(range(r))
    if axes is None or axes is False:
        return None
    q_out = q if keep else reduced_perm(q, set(axes))
    return Spec((0,), (q_out,), lambda g, nd, q: _set_operand(g, nd, 1, sorted(
        q[a] for a in axes), "axes"))


_AXIS_OPS = {"Softmax": _axis_op, "LogSoftmax": _axis_op, "Concat": _axis_op,
             "Split": _axis_op, "Pad": _pad, "Slice": _slice, "ReduceMean": _reduce,
             "ReduceSum": _reduce, "ReduceMax": _reduce, "Squeeze": _reduce}


def spec(node, q) -> Optional[Spec]:
    """The :class:`Spec` of ``node`` fed perm ``q`` on its data inputs, or None."""
    out = node.outputs[0].shape if node.outputs else None
    if node.op in ELEMENTWISE:
        if out is None or len(out) != len(q):
            return None
        return Spec(tuple(range(len(node.inputs))), (q,) * len(node.outputs))
    x = node.input(0)
    if node.op not in _AXIS_OPS or x is None or x.shape is None or len(x.shape) != len(q):
        return None
    return _AXIS_OPS[node.op](node, q)
