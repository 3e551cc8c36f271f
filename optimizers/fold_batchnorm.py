"""Fold an inference BatchNormalization into the linear node before it.

BatchNormalization(y, scale, B, mean, var, epsilon) over channel axis 1 is the per-channel
affine map

    bn(y) = scale * (y - mean) / sqrt(var + eps) + B = s * y + t,
    s = scale / sqrt(var + eps),  t = B - mean * s,

which :func:`optimizers._linear.fold_scale_shift` moves into the producer's weight and bias
(layouts and math there: Conv W (C, I/g, k...), ConvTranspose W (I, C/g, k...) with groups,
Gemm with transB 0/1).

Rules: ``fold_batchnorm_conv``, ``fold_batchnorm_convtranspose``, ``fold_batchnorm_gemm``,
``fold_batchnorm_matmul``. The MatMul form needs A of rank 2 and a constant B of rank 2
(K, N): then the channel axis 1 of the (M, N) output is N, and MatMul(A, B) becomes
Gemm(A, B * s, t) in place (same node name). With rank > 2 the BN channel axis is not the
MatMul's column axis and the BN stays.

Guards:
- the linear node's output has no other consumer and is not a graph output (engine guard of
  the pattern), else the BN stays;
- the four BN operands are constants of C elements (C = output channels), else decline;
- a weight also read by another node is handled by a private copy (see :mod:`._linear`): the
  fold goes ahead, the other reader keeps the original array.

A standalone BatchNormalization (no foldable producer) is kept as it is: every exporter has a
BatchNorm layer, and rewriting it to Mul + Add would only add a node.
"""
from __future__ import annotations

import numpy as np

from converter.rewrite import C, Decline, P, Rule, V
from converter.ops import attr
from ._common import mark_fused
from ._linear import check_foldable, fold_scale_shift, out_channels


def _scale_shift(m, c: int):
    """(s, t) of the matched BN, or a Decline when its operands do not have c elements."""
    bn = m.root
    params = [np.asarray(m[k], np.float64).reshape(-1) for k in ("scale", "b", "mean", "var")]
    if any(p.size != c for p in params):
        return Decline(f"{bn.name}: BN operands do not have {c} elements")
    scale, b, mean, var = params
    s = scale / np.sqrt(var + float(attr(bn, "epsilon")))
    return s, b - mean * s


def _bn_pattern(ops):
    return P("BatchNormalization", P(ops, name="lin"), C("scale"), C("b"), C("mean"), C("var"))


def _fold_linear(graph, m):
    lin = m["lin"]
    bad = check_foldable(lin)
    if bad:
        return bad
    st = _scale_shift(m, out_channels(lin))
    if isinstance(st, Decline):
        return st
    return fold_scale_shift(graph, lin, st[0], st[1], m.root)


def _fold_matmul(graph, m):
    mm = m["lin"]
    a, b = mm.input(0), mm.input(1)
    if a.shape is None or len(a.shape) != 2 or not b.is_const or b.const.ndim != 2:
        return Decline(f"{mm.name}: MatMul needs A of rank 2 and a constant B of rank 2")
    if not np.issubdtype(b.const.dtype, np.floating):
        return Decline(f"{mm.name}: B dtype {b.const.dtype} is not floating point")
    st = _scale_shift(m, int(b.const.shape[1]))
    if isinstance(st, Decline):
        return st
    mm.op, mm.attrs = "Gemm", {}
    mark_fused(mm, "MatMul")
    return fold_scale_shift(graph, mm, st[0], st[1], m.root)


RULES = (
    Rule("fold_batchnorm_conv", _bn_pattern("Conv"), _fold_linear),
    Rule("fold_batchnorm_convtranspose", _bn_pattern("ConvTranspose"), _fold_linear),
    Rule("fold_batchnorm_gemm", _bn_pattern("Gemm"), _fold_linear),
    Rule("fold_batchnorm_matmul", _bn_pattern("MatMul"), _fold_matmul),
)
