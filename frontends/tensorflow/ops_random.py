"""Random tensors in inference graphs: the dropout subgraphs of TF1 frozen graphs.

With ``keep_prob`` bound to 1.0 (or a ``rate`` of 0), a dropout mask is constant even though
it is computed from ``RandomUniform``. The walk represents ``RandomUniform`` of a constant
shape as a :class:`Uniform` interval ``[lo, hi)`` and pushes it through the few ops dropout
builds from it (tensorflow/tensorflow ``tensorflow/python/ops/nn_ops.py``, ``dropout``;
classic TF1: ``floor(keep_prob + U[0,1))``; TF2 / compat: ``U[0,1) >= rate`` then Cast /
Select). As soon as an op's result is the same for every value of the interval it becomes a
constant; anything else (dropout still active, other random ops) is refused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from converter.ir import Value

from .context import Unsupported

NONDETERMINISTIC = frozenset({"RandomUniform", "RandomStandardNormal", "RandomUniformInt",
                              "TruncatedNormal", "Multinomial", "RandomShuffle",
                              "StatelessRandomUniformV2", "RandomGamma", "RandomPoisson"})


@dataclass(frozen=True)
class Uniform:
    """Every element somewhere in ``[lo, hi)``; ``shape`` and ``dtype`` of the tensor."""

    lo: float
    hi: float
    shape: tuple
    dtype: str


def involved(op: str, ins: list) -> bool:
    """True when the node is ``RandomUniform`` or reads a :class:`Uniform`."""
    return op == "RandomUniform" or any(isinstance(v, Uniform) for v in ins)


def _refuse(op: str) -> Unsupported:
    return Unsupported("tensorflow.random", f"{op} of a random tensor that does not reduce "
                       "to a constant (dropout still active?)")


def _scalar(v) -> float:
    """The single value of a constant operand, else refuse."""
    if isinstance(v, Value) and v.is_const and v.const.size == 1:
        return float(v.const.reshape(()))
    raise Unsupported("tensorflow.random", "a random tensor combined with a non-scalar or "
                      "non-constant operand (bind keep_prob to 1.0 with --input-names)")


def _affine(op: str, a, b) -> Uniform:
    u, c, first = (a, _scalar(b), True) if isinstance(a, Uniform) else (b, _scalar(a), False)
    if op in ("Add", "AddV2"):
        return Uniform(u.lo + c, u.hi + c, u.shape, u.dtype)
    if op == "Sub":
        return Uniform(u.lo - c, u.hi - c, u.shape, u.dtype) if first else \
            Uniform(c - u.hi, c - u.lo, u.shape, u.dtype)  # closedness is irrelevant below
    if op == "Mul" and c > 0:
        return Uniform(u.lo * c, u.hi * c, u.shape, u.dtype)
    raise _refuse(op)


def _compare(op: str, a, b) -> np.ndarray:
    u, c = (a, _scalar(b)) if isinstance(a, Uniform) else (b, _scalar(a))
    if not isinstance(a, Uniform):  # c OP u  ==  u FLIP(OP) c
        op = {"Greater": "Less", "Less": "Greater", "GreaterEqual": "LessEqual",
              "LessEqual": "GreaterEqual"}[op]
    if op in ("GreaterEqual", "Greater"):
        truth = True if (c <= u.lo if op == "GreaterEqual" else c < u.lo) else \
            False if c >= u.hi else None
    else:
        truth = False if (c <= u.lo if op == "Less" else c < u.lo) else \
            True if c >= u.hi else None
    if truth is None:
        raise _refuse(op)
    return np.full(u.shape, truth, dtype=bool)


def apply(op: str, attrs: dict, ins: list) -> list:
    """Outputs (a :class:`Uniform` or a numpy array) of ``op`` on inputs involving a
    :class:`Uniform`.

    Raises:
        Unsupported: the result is not a constant or an interval (dropout active).
    """
    if op == "RandomUniform":
        if not (isinstance(ins[0], Value) and ins[0].is_const):
            raise Unsupported("tensorflow.random", "RandomUniform of a runtime shape")
        return [Uniform(0.0, 1.0, tuple(int(d) for d in ins[0].const), attrs["dtype"])]
    if op in ("Add", "AddV2", "Sub", "Mul"):
        return [_affine(op, ins[0], ins[1])]
    if op == "Floor":
        u = ins[0]
        if math.floor(u.lo) == math.ceil(u.hi) - 1:
            return [np.full(u.shape, math.floor(u.lo), dtype=u.dtype)]
        raise _refuse(op)
    if op in ("GreaterEqual", "Greater", "Less", "LessEqual"):
        return [_compare(op, ins[0], ins[1])]
    if op in ("Identity", "StopGradient"):
        return [ins[0]]
    raise _refuse(op)
