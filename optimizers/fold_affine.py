"""Fold a per-channel constant Mul / Add / Sub / Div that follows a Conv / ConvTranspose / Gemm
(or a BatchNormalization).

Keras 3 frozen graphs arrive with BatchNorm already split into such arithmetic, and a Caffe
Scale layer after a BatchNorm that has no conv before it (DenseNet: Concat -> BN -> Scale) is
such arithmetic after a BN, which absorbs it (scale' = s * scale, B' = s * B + t).
With y the producer's output (channel axis 1, C channels) and c a constant read per channel
as v (length C), every form is the affine map s * y + t:

    y * c = c * y : s = v,  t = 0          y - c : s = 1,  t = -v
    y + c = c + y : s = 1,  t = v          c - y : s = -1, t = v
    y / c         : s = 1 / v, t = 0 (declined when v has a zero; c / y is not affine)

c qualifies when broadcasting it against y (rank r) only varies along the channel axis:
rank(c) <= r and, left-padded with 1s to rank r, every dim is 1 except dim 1, which is 1 or C.
So a scalar, [C,1,1] or [1,C,1,1] after a conv and [C] or [1,C] after a Gemm qualify; a [C]
after a conv (it broadcasts along W) does not. The fold itself (weight layouts, ConvTranspose
groups, Gemm transB, private copies of a shared weight): :mod:`._linear`.

Rules: ``fold_affine_mul``, ``fold_affine_add``, ``fold_affine_sub``, ``fold_affine_div``.

Guards (checked here, since the linear node may be either operand): y has no other consumer
and is not a graph output; c is a constant (a runtime operand is never folded); dtypes match.

Not done, on purpose: a constant Mul / Add *before* a conv. A scale could only move per input
channel, and an Add before a padded conv is wrong at the borders (the padding zeros are not
shifted); even with zero pads Keras does not produce this form, so it is left alone.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from converter.rewrite import Decline, P, Rule
from ._common import is_output, live_readers
from ._linear import AFFINE_OPS, check_foldable, fold_scale_shift, out_channels


def channel_vector(c: np.ndarray, shape: Optional[tuple], channels: int) -> Optional[np.ndarray]:
    """c as a length-``channels`` float64 vector, or None when it varies on another axis."""
    if shape is None or len(shape) < 2 or c.ndim > len(shape) or c.size == 0:
        return None
    padded = (1,) * (len(shape) - c.ndim) + tuple(c.shape)
    if any(d != 1 for i, d in enumerate(padded) if i != 1) or padded[1] not in (1, channels):
        return None
    return np.broadcast_to(c.astype(np.float64).reshape(-1), (channels,))


def _scale_shift(op: str, v: np.ndarray, const_first: bool):
    ones, zeros = np.ones_like(v), np.zeros_like(v)
    if op == "Mul":
        return v, zeros
    if op == "Add":
        return ones, v
    if op == "Sub":
        return (-ones, v) if const_first else (ones, -v)
    return 1.0 / v, zeros  # Div, y / c


def _rule(op: str) -> Rule:
    def fn(graph, m):
        node = m.root
        for k in (0, 1):
            y, c = node.input(k), node.input(1 - k)
            lin = y.producer
            if lin is None or lin.op not in AFFINE_OPS or not c.is_const:
                continue
            if op == "Div" and k == 1:
                return None  # c / y is not affine in y
            if live_readers(graph, y) != 1 or is_output(graph, y):
                return Decline(f"{y.name} has another consumer or is a graph output")
            if c.dtype != y.dtype:
                return Decline(f"constant dtype {c.dtype} != {y.dtype}")
            bad = check_foldable(lin)
            if bad:
                return bad
            v = channel_vector(c.const, y.shape, out_channels(lin))
            if v is None:
                return Decline(f"constant shape {c.const.shape} is not per-channel for {y.shape}")
            if op == "Div" and not np.all(v):
                return Decline("division by a constant that has a zero")
            s, t = _scale_shift(op, v, const_first=(k == 1))
            return fold_scale_shift(graph, lin, s, t, node)
        return None
    return Rule(f"fold_affine_{op.lower()}", P(op), fn)


RULES = tuple(_rule(op) for op in ("Mul", "Add", "Sub", "Div"))
