"""Fold a per-output-channel affine map ``y -> s * y + t`` into the linear node producing y.

Shared by :mod:`fold_batchnorm` and :mod:`fold_affine` (not a rule family itself). The channel
axis of y is 1 (NCHW; for Gemm's (M, N) output that is N). s and t have length C.

- Conv, W (C, I/g, k...), b (C,):  y[:, o] = W[o] * x + b[o], so
  W'[o] = s[o] * W[o] and b' = s * b + t.
- ConvTranspose, W (I, C/g, k...) with group g: output channel o = gi * (C/g) + j is made by
  W[gi*(I/g) : (gi+1)*(I/g), j], so W viewed as (g, I/g, C/g, k...) is multiplied by s viewed
  as (g, 1, C/g, 1...) (that is, along W's axis 1 within each group); b' = s * b + t.
- Gemm, Y = alpha * A' B' + beta * C0 (A' = A^T if transA, B' = B^T if transB), column n:
  B'' = B' * s per column (B (K, N): B * s[None, :]; transB=1, B (N, K): B * s[:, None]),
  C0' = s * (beta * C0) + t, beta' = 1 (C0 of any shape that broadcasts to (M, N) keeps
  broadcasting; a (1,)/scalar C0 becomes (N,)).
- BatchNormalization(y0, scale, B, mean, var) = scale * n + B with n = (y0 - mean) /
  sqrt(var + eps), so s * bn + t is a BN with scale' = s * scale and B' = s * B + t
  (mean, var, eps unchanged): a Caffe BatchNorm + Scale pair becomes one BN.
An omitted bias / C0 counts as 0. Arithmetic is float64, cast back to the weight dtype.

Private copies (the documented choice for shared weights): the new weight and bias are always
new constants; the original arrays are never mutated, so another node reading the same weight
keeps reading the original. The cost is one extra copy of a shared weight per fold, which the
ncnn and OpenVINO writers store per layer anyway. The node itself is edited in place (its name
and attributes stay; ``meta["fused_from"]`` records the folded op), and its output replaces y.

Declines: the weight is not a constant or not floating point, the bias / C0 is present but not
a constant, the channel count is unknown or differs from len(s).
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

from converter.ir import Graph, Node, Value
from converter.ops import attr
from converter.rewrite import Decline
from ._common import mark_fused, new_const

LINEAR_OPS = ("Conv", "ConvTranspose", "Gemm")
AFFINE_OPS = LINEAR_OPS + ("BatchNormalization",)  # all take s * y + t into their operands


def out_channels(node: Node) -> Optional[int]:
    """Output channel count of a Conv / ConvTranspose / Gemm from its weight shape (of a
    BatchNormalization from its scale)."""
    w = node.input(1)
    if node.op == "BatchNormalization":
        return w.shape[0] if w is not None and w.shape and isinstance(w.shape[0], int) else None
    if w is None or w.shape is None or len(w.shape) < 2:
        return None
    if node.op == "Conv":
        c = w.shape[0]
    elif node.op == "ConvTranspose":
        c = w.shape[1] * attr(node, "group") if isinstance(w.shape[1], int) else None
    else:
        c = w.shape[0] if attr(node, "transB") else w.shape[1]
    return c if isinstance(c, int) else None


def check_foldable(node: Node) -> Optional[Decline]:
    """Why ``node``'s weight/bias cannot take a fold, or None when they can."""
    w, b = node.input(1), node.input(2)
    if w is None or not w.is_const:
        return Decline(f"{node.name}: weight is not a constant")
    if not np.issubdtype(w.const.dtype, np.floating):
        return Decline(f"{node.name}: weight dtype {w.const.dtype} is not floating point")
    if b is not None and not b.is_const:
        return Decline(f"{node.name}: bias is not a constant")
    if out_channels(node) is None:
        return Decline(f"{node.name}: output channel count unknown")
    return None


def fold_scale_shift(graph: Graph, node: Node, s, t, source: Node) -> Union[Value, Decline]:
    """Make ``node`` compute ``s * y + t`` (per output channel) and return its output;
    ``source`` is the node folded away (recorded with its own ``fused_from``)."""
    bad = check_foldable(node)
    if bad:
        return bad
    c = out_channels(node)
    s = np.asarray(s, np.float64).reshape(-1)
    t = np.asarray(t, np.float64).reshape(-1)
    if s.size != c or t.size != c:
        return Decline(f"{node.name}: {c} output channels, fold has {s.size}/{t.size}")
    w_v, b_v = node.input(1), node.input(2)
    w = w_v.const.astype(np.float64)
    b = b_v.const.astype(np.float64) if b_v is not None else np.zeros(c)
    if node.op in ("Conv", "BatchNormalization"):
        w2 = w * s.reshape((c,) + (1,) * (w.ndim - 1))
        b2 = s * b + t
    elif node.op == "ConvTranspose":
        g = attr(node, "group")
        view = (g, w.shape[0] // g, w.shape[1]) + w.shape[2:]
        w2 = (w.reshape(view) * s.reshape((g, 1, c // g) + (1,) * (w.ndim - 2))).reshape(w.shape)
        b2 = s * b + t
    else:
        w2 = w * (s[:, None] if attr(node, "transB") else s[None, :])
        b2 = s * (float(attr(node, "beta")) * (b_v.const.astype(np.float64) if b_v is not None
                                              else 0.0)) + t
        node.attrs["beta"] = 1.0
    dt = w_v.const.dtype
    while len(node.inputs) < 3:
        node.inputs.append(None)
    graph.set_input(node, 1, new_const(graph, w2.astype(dt), f"{node.name}.weight"))
    graph.set_input(node, 2, new_const(graph, b2.astype(dt), f"{node.name}.bias"))
    mark_fused(node, source.op, *source.meta.get("fused_from", []))
    return node.outputs[0]
