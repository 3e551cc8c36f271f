"""Strip training-only and no-op nodes: each rule replaces a node's output y by its input x.

Rules (name: condition under which y == x):

- strip_dropout: Dropout(x) in inference is x, whatever the ratio. Only when the mask output
  is absent or unused (and not a graph output) and ``training_mode`` (input 2) is omitted or a
  constant False.
- strip_identity: Identity(x). strip_cast: Cast(x, to) with ``to`` == dtype(x).
- strip_reshape: Reshape(x, s) with rank(s) == rank(x) and every target dim provably keeping
  x's dim: s[i] == x[i] (an int), s[i] == 0 (copy, allowzero=0), or one s[i] == -1 while all
  other dims are kept (then -1 = numel / prod(others) = x[i]).
- strip_transpose: Transpose(x, perm) with perm == (0, .., r-1) (omitted perm reverses the
  axes: identity only for rank <= 1).
- strip_slice: Slice(x, starts, ends, axes, steps) with, on every sliced axis, step 1 and the
  clamped range [0, dim). For an unknown dim this needs start 0 and end >= 2**31 - 1.
- strip_concat: Concat of one input. strip_split: Split with one output.
- strip_pad: Pad(x, pads) with all pads 0 (any mode, any constant value).
- strip_clip: Clip(x, lo, hi) with lo omitted or <= the lowest value of dtype(x) (-inf for
  floats), and hi omitted or >= the highest.
- strip_mul_one / strip_add_zero / strip_sub_zero / strip_div_one: x*1 = 1*x = x+0 = 0+x =
  x-0 = x/1 = x, when every element of the constant is the neutral value, broadcasting it
  against x keeps x's shape (bcast(shape(x), shape(c)) == shape(x), so rank(c) <= rank(x))
  and the dtype is x's. IEEE: -0.0 + 0 = +0.0 (sign of zero only; -0.0 compares equal).

Every rule declines (reason shown by --debug) when y is a graph output and x is a constant, a
graph input or another graph output, since y could then not keep its name.
Operands (shape, pads, starts, ...) must be constants; a runtime operand never matches.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from converter.ir import Node, Value
from converter.ops import _ONNX_DT, attr, bcast_shape
from converter.rewrite import P, Rule
from ._common import is_output, replace_with

_BIG_END = 2 ** 31 - 1


def _rule(name: str, op: str, keep: Callable[..., Optional[Value]]) -> Rule:
    """Rule replacing ``op``'s output 0 by ``keep(graph, node)`` when that is not None."""
    def fn(graph, m):
        x = keep(graph, m.root)
        return None if x is None else replace_with(graph, m.root.outputs[0], x)
    return Rule(name, P(op), fn)


def _dropout(g, n: Node) -> Optional[Value]:
    mask = n.outputs[1] if len(n.outputs) > 1 else None
    train = n.input(2)
    if mask is not None and (mask.uses or is_output(g, mask)):
        return None
    if train is not None and (not train.is_const or bool(np.any(train.const))):
        return None
    return n.input(0)


def _reshape(g, n: Node) -> Optional[Value]:
    x, s = n.input(0), n.const_input(1)
    if s is None or x.shape is None or s.ndim != 1 or s.size != len(x.shape):
        return None
    zero_copies = not attr(n, "allowzero")
    kept = [(t == 0 and zero_copies) or (isinstance(d, int) and t == d)
            for t, d in zip(s.tolist(), x.shape)]
    infer = [t == -1 for t in s.tolist()]
    return x if all(k or f for k, f in zip(kept, infer)) and sum(infer) <= 1 else None


def _transpose(g, n: Node) -> Optional[Value]:
    x, perm = n.input(0), attr(n, "perm")
    if perm is None:
        return x if x.shape is not None and len(x.shape) <= 1 else None
    return x if tuple(perm) == tuple(range(len(perm))) else None


def _slice(g, n: Node) -> Optional[Value]:
    x, starts, ends = n.input(0), n.const_input(1), n.const_input(2)
    axes, steps = n.input(3), n.input(4)
    if starts is None or ends is None or any(v is not None and not v.is_const
                                             for v in (axes, steps)):
        return None
    k = len(starts)
    axes = axes.const.tolist() if axes is not None else list(range(k))
    steps = steps.const.tolist() if steps is not None else [1] * k
    for a, s, e, st in zip(axes, starts.tolist(), ends.tolist(), steps):
        dim = None
        if x.shape is not None and -len(x.shape) <= a < len(x.shape):
            dim = x.shape[a]
        if st != 1:
            return None
        if isinstance(dim, int):
            if slice(s, e, 1).indices(dim)[:2] != (0, dim):
                return None
        elif s != 0 or e < _BIG_END:
            return None
    return x


def _clip(g, n: Node) -> Optional[Value]:
    x, lo, hi = n.input(0), n.input(1), n.input(2)
    if any(v is not None and (not v.is_const or v.const.size != 1) for v in (lo, hi)):
        return None
    dt = np.dtype(x.dtype)
    info = np.iinfo(dt) if np.issubdtype(dt, np.integer) else None
    lo_ok = lo is None or lo.const.reshape(-1)[0] <= (info.min if info else -np.inf)
    hi_ok = hi is None or hi.const.reshape(-1)[0] >= (info.max if info else np.inf)
    return x if lo_ok and hi_ok else None


def _neutral(value: float, const_at: tuple) -> Callable[..., Optional[Value]]:
    """x op c == x with c at one of the input positions ``const_at`` all equal to ``value``."""
    def keep(g, n: Node) -> Optional[Value]:
        for k in const_at:
            c, x = n.input(k), n.input(1 - k)
            if not c.is_const or c.const.size == 0 or not np.all(c.const == value):
                continue
            if x.dtype != n.outputs[0].dtype:
                continue
            if x.shape is None:
                if c.const.ndim == 0:
                    return x
            elif bcast_shape(x.shape, c.const.shape) == tuple(x.shape):
                return x
        return None
    return keep


RULES = (
    _rule("strip_dropout", "Dropout", _dropout),
    _rule("strip_identity", "Identity", lambda g, n: n.input(0)),
    _rule("strip_cast", "Cast",
          lambda g, n: n.input(0) if _ONNX_DT.get(attr(n, "to")) == n.input(0).dtype else None),
    _rule("strip_reshape", "Reshape", _reshape),
    _rule("strip_transpose", "Transpose", _transpose),
    _rule("strip_slice", "Slice", _slice),
    _rule("strip_concat", "Concat", lambda g, n: n.input(0) if len(n.inputs) == 1 else None),
    _rule("strip_split", "Split", lambda g, n: n.input(0) if len(n.outputs) == 1 else None),
    _rule("strip_pad", "Pad", lambda g, n: n.input(0) if n.const_input(1) is not None
          and not np.any(n.const_input(1)) else None),
    _rule("strip_clip", "Clip", _clip),
    _rule("strip_mul_one", "Mul", _neutral(1, (1, 0))),
    _rule("strip_add_zero", "Add", _neutral(0, (1, 0))),
    _rule("strip_sub_zero", "Sub", _neutral(0, (1,))),
    _rule("strip_div_one", "Div", _neutral(1, (1,))),
)
