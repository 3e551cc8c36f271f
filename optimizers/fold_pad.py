"""Fold a zero constant-mode Pad into the Conv (or MaxPool) that reads it.

A Conv with ``pads`` (ONNX order: begins of the k spatial axes, then their ends) convolves
its input zero-padded by those amounts. A constant-mode Pad of value 0 that pads only the
spatial axes 2..k+1 by (b_i, e_i) >= 0 therefore folds exactly:

    conv_p(pad_{b,e}(x)) = conv_{p'}(x),  p'_i = p_i + b_i,  p'_{k+i} = p_{k+i} + e_i,

as zero-padding twice along an axis is one zero padding by the sum (the Conv's own pad cells
are zeros too); kernel, strides, dilations and group are unchanged, so is every output cell.

``fold_pad_conv``: Keras ``ZeroPadding2D`` before a VALID strided Conv (MobileNetV2,
ResNet50, EfficientNet, MobileNetV3), PyTorch ``F.pad`` before a conv. ``fold_pad_maxpool``
(Keras ResNet50 ``pool1_pad``): MaxPool pads with -inf, not 0, so it folds only when x >= 0
(made by Relu, Sigmoid, HardSigmoid or Clip with a constant min >= 0) and every window holds
at least one x cell (checked per axis on static sizes): then max(cells, zeros) = max(cells)
as that max is >= 0. ceil_mode must be 0 (its last-window rule depends on where x ends).
The node is edited in place (``meta["fused_from"]`` gets ``"Pad"``) and reads the Pad's input.

Pad (ONNX Pad-18, onnx/onnx docs/Operators.md): data, pads (2r int64: begins then ends of
the padded axes), optional constant_value (omitted = 0), optional axes. Guards (engine): the
Pad's output has this node as its only reader and is not a graph output. Declines: mode not
``constant``; pads / value / axes not constants; value not 0; a negative pad or one on the
batch / channel axis; pads not matching the input rank; an ``auto_pad`` other than NOTSET.
ConvTranspose is not folded (its ``pads`` crop the output).
"""
from __future__ import annotations

from typing import Union

import numpy as np

from converter.ir import Graph, Value
from converter.ops import attr
from converter.rewrite import Decline, Match, P, Rule, V
from ._common import mark_fused


def _constant_operands(pad) -> Union[tuple, Decline]:
    """(pads array, axes list or None) of a zero constant-mode Pad, or a Decline."""
    if attr(pad, "mode") not in ("constant", b"constant"):
        return Decline(f"{pad.name}: Pad mode {attr(pad, 'mode')!r} is not constant")
    for i, what in ((1, "pads"), (2, "constant_value"), (3, "axes")):
        v = pad.input(i)
        if v is not None and not v.is_const:
            return Decline(f"{pad.name}: Pad {what} is not a constant")
    value = pad.const_input(2)
    if value is not None and value.size and np.any(value != 0):
        return Decline(f"{pad.name}: Pad value {value.reshape(-1)[0]} is not 0")
    axes = pad.const_input(3)
    return (np.asarray(pad.const_input(1), np.int64).reshape(-1),
            None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)])


def _per_axis(pads: np.ndarray, axes, rank: int) -> Union[list, Decline]:
    """(begin, end) for every axis of a rank-``rank`` tensor, or a Decline."""
    n = len(axes) if axes is not None else rank
    if pads.size != 2 * n or (axes is None and n != rank):
        return Decline(f"Pad has {pads.size} pads for a rank-{rank} input")
    out = [(0, 0)] * rank
    idx = list(range(rank)) if axes is None else [a + rank if a < 0 else a for a in axes]
    if len(set(idx)) != n or any(not 0 <= a < rank for a in idx):
        return Decline(f"Pad axes {axes} are invalid for rank {rank}")
    for i, a in enumerate(idx):
        out[a] = (int(pads[i]), int(pads[i + n]))
    return out


def _spatial(m: Match, rank) -> Union[list, Decline]:
    """Per spatial axis (begin, end) of the matched Pad, or a Decline (see module docstring)."""
    node, pad = m.root, m["pad"]
    auto = attr(node, "auto_pad") if "auto_pad" in node.attrs else "NOTSET"
    if auto not in ("NOTSET", b"NOTSET", ""):
        return Decline(f"{node.name}: {node.op} auto_pad {auto!r} is not NOTSET")
    ops = _constant_operands(pad)
    if isinstance(ops, Decline):
        return ops
    if rank is None:
        return Decline(f"{node.name}: {node.op} input rank is unknown")
    per = _per_axis(ops[0], ops[1], rank)
    if isinstance(per, Decline):
        return Decline(f"{pad.name}: {per.reason}")
    if any(b < 0 or e < 0 for b, e in per):
        return Decline(f"{pad.name}: negative pads {per} (a crop)")
    if any(per[0]) or any(per[1]):
        return Decline(f"{pad.name}: pads the batch or channel axis {per[:2]}")
    return per[2:]


def _apply(graph: Graph, node, x: Value, per: list) -> Value:
    """Add ``per`` to ``node``'s pads and make it read ``x`` (the Pad's input)."""
    k = len(per)
    old = attr(node, "pads") or (0,) * (2 * k)
    node.attrs["pads"] = tuple(int(old[i]) + per[i][0] for i in range(k)) + tuple(
        int(old[k + i]) + per[i][1] for i in range(k))
    graph.set_input(node, 0, x)
    mark_fused(node, "Pad")
    return node.outputs[0]


def _fold_conv(graph: Graph, m: Match) -> Union[Value, Decline]:
    w = m.root.input(1)
    per = _spatial(m, None if w is None or w.shape is None else len(w.shape))
    return per if isinstance(per, Decline) else _apply(graph, m.root, m["x"], per)


def _nonneg(v: Value) -> bool:
    p = v.producer
    if p is None or p.op not in ("Relu", "Sigmoid", "HardSigmoid", "Clip"):
        return False
    lo = p.const_input(1) if p.op == "Clip" else np.zeros(1)
    return lo is not None and lo.size == 1 and float(lo.reshape(-1)[0]) >= 0


def _windows_hit_input(pool, x_shape, per) -> bool:
    """Every window of ``pool`` over x padded by ``per`` (and its own pads) holds an x cell,
    and each summed pad is < the kernel size (ONNX Runtime rejects larger MaxPool pads)."""
    k, s, n = attr(pool, "kernel_shape"), attr(pool, "strides"), pool.outputs[0].shape
    d, old = attr(pool, "dilations") or (1,) * len(per), attr(pool, "pads")
    s, old, r = s or (1,) * len(per), old or (0,) * (2 * len(per)), len(per)
    for i, (b, e) in enumerate(per):
        lo, size = int(old[i]) + b, x_shape[2 + i]
        if max(lo, int(old[r + i]) + e) >= k[i] or not all(any(
                lo <= o * s[i] + j * d[i] < lo + size for j in range(k[i]))
                for o in range(n[2 + i])):
            return False
    return True


def _fold_maxpool(graph: Graph, m: Match) -> Union[Value, Decline]:
    pool, x = m.root, m["x"]
    shp, out = x.shape, pool.outputs[0].shape
    per = _spatial(m, None if shp is None else len(shp))
    if isinstance(per, Decline):
        return per
    if attr(pool, "ceil_mode") or len(pool.outputs) > 1:
        return Decline(f"{pool.name}: ceil_mode 1 or an Indices output")
    if not _nonneg(x):
        return Decline(f"{pool.name}: Pad input {x.name} is not known to be >= 0")
    if not all(isinstance(v, int) for v in tuple(shp) + tuple(out or (None,))):
        return Decline(f"{pool.name}: MaxPool input or output shape is not static")
    if not _windows_hit_input(pool, shp, per):
        return Decline(f"{pool.name}: a window would hold only padding, or pads >= kernel")
    return _apply(graph, pool, x, per)


RULES = (
    Rule("fold_pad_conv", P("Conv", P("Pad", V("x"), name="pad")), _fold_conv),
    Rule("fold_pad_maxpool", P("MaxPool", P("Pad", V("x"), name="pad")), _fold_maxpool),
)
