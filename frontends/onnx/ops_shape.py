"""Converters for ONNX shape, indexing and constant ops: Reshape, Flatten, Transpose, Concat,
Split, Slice, Squeeze, Unsqueeze, Gather, Identity, Dropout, Expand, Tile, Shape, Size,
Constant, ConstantOfShape.

Version facts (onnx/onnx docs/Changelog.md): Reshape-1 has a ``shape`` attribute, 5+ an input,
14 ``allowzero``; Concat-1..3 default ``axis`` = 1; Split-1/2/11 take ``split`` as attribute
(equal parts when absent), 13+ as input, 18 adds ``num_outputs`` (last part smaller when
uneven); Slice-1 attributes ``starts`` / ``ends`` / ``axes``, 10+ inputs with ``steps``;
Squeeze / Unsqueeze ``axes`` attribute before 13, input from 13; Dropout-1..6 ``is_test``,
7..11 ``ratio`` attribute, 12+ ``ratio`` / ``training_mode`` inputs, a mask output (all true
at inference from 12); Shape-15 ``start`` / ``end``. Operands must be constants after
load-time folding: shapes are static in the IR.
"""
from __future__ import annotations

import numpy as np

from converter.ops import bcast_shape, reshape_shape
from converter.registry import Check, converter

from .context import Ctx, OnnxNode, Unsupported, norm_axis, static

FW = "onnx"


def operand(n: OnnxNode, attr: str, i: int):
    """An operand given as attribute ``attr`` (old opsets) or as constant input ``i``;
    None when absent. Raises ValueError (check failure) for a non-constant input."""
    if attr in n.attrs:
        return np.asarray(n[attr])
    v = n.input(i)
    if v is None:
        return None
    if not v.is_const:
        raise ValueError(f"{attr} is not constant")
    return v.const


def const_operand(attr: str, i: int, code: str) -> Check:
    """Check: operand ``attr`` / input ``i`` is absent, an attribute or a constant."""
    def fn(n: OnnxNode) -> bool:
        operand(n, attr, i)
        return True
    return Check(f"{attr} is a constant (static shapes; dynamic {attr} is not supported)",
                 fn, code)


STATIC_X = Check("the input shape is static", lambda n: static(n.x), "onnx.dynamic_shape")


@converter(FW, "Reshape", emits=("Reshape",),
           checks=(const_operand("shape", 1, "onnx.dynamic_shape"), STATIC_X))
def reshape(cx: Ctx, n: OnnxNode):
    """Reshape to the fully resolved target (0 = copy unless allowzero, -1 = inferred)."""
    target = reshape_shape(n.x.shape, operand(n, "shape", 1), n.get("allowzero", 0))
    return cx.reshape(n.x, target)


@converter(FW, "Flatten", emits=("Flatten",))
def flatten(cx: Ctx, n: OnnxNode):
    return cx.emit("Flatten", n.x, axis=norm_axis(n.get("axis", 1), len(n.x.shape)))


@converter(FW, "Transpose", emits=("Transpose",))
def transpose(cx: Ctx, n: OnnxNode):
    """Transpose; the default perm reverses the dims."""
    r = len(n.x.shape)
    perm = [norm_axis(p, r) for p in (n["perm"] or reversed(range(r)))]
    if perm == list(range(r)):
        return n.x
    return cx.emit("Transpose", n.x, perm=perm)


@converter(FW, "Concat", emits=("Concat",))
def concat(cx: Ctx, n: OnnxNode):
    """Concat; statically empty inputs are dropped (exporters emit them for empty lists)."""
    xs = [v for v in n.inputs if v is not None]
    r = len(xs[0].shape)
    ax = norm_axis(n.get("axis", 1), r)
    kept = [v for v in xs if not (static(v) and 0 in v.shape)] or xs[:1]
    if len(kept) == 1:
        return kept[0]
    return cx.emit("Concat", *kept, axis=ax)


def split_sizes(n: OnnxNode) -> list:
    """Sizes of the Split outputs: explicit, else equal parts (ceil division from 18)."""
    ax = norm_axis(n.get("axis", 0), len(n.x.shape))
    sizes = operand(n, "split", 1)
    if sizes is not None and sizes.size:
        return [int(s) for s in sizes]
    count, dim = len(n.outputs), n.x.shape[ax]
    chunk = -(-dim // count) if n.version >= 18 else dim // count
    return [min(chunk, dim - k * chunk) for k in range(count)]


@converter(FW, "Split", emits=("Split",),
           checks=(const_operand("split", 1, "onnx.dynamic_shape"), STATIC_X))
def split(cx: Ctx, n: OnnxNode):
    """Split with an explicit constant sizes operand (the IR form)."""
    ax = norm_axis(n.get("axis", 0), len(n.x.shape))
    sizes = split_sizes(n)
    if len(sizes) == 1:
        return [n.x]
    return cx.emit("Split", n.x, cx.i64(sizes), axis=ax, n_out=len(sizes))


_SLICE = tuple(const_operand(a, i, "onnx.dynamic_slice") for a, i in
               (("starts", 1), ("ends", 2), ("axes", 3), ("steps", 4)))


@converter(FW, "Slice", emits=("Slice",), checks=_SLICE)
def slice_(cx: Ctx, n: OnnxNode):
    """Slice with constant starts / ends / axes / steps inputs (attributes before 10)."""
    ops = [operand(n, a, i) for a, i in (("starts", 1), ("ends", 2), ("axes", 3), ("steps", 4))]
    while ops[-1] is None:
        ops.pop()
    if len(ops) == 4 and ops[2] is None:
        ops[2] = np.arange(len(ops[0]))
    return cx.emit("Slice", n.x, *[cx.i64(o) for o in ops])


def _axes(n: OnnxNode, rank: int):
    a = operand(n, "axes", 1)
    return None if a is None else sorted(norm_axis(int(x), rank) for x in a.reshape(-1))


@converter(FW, "Squeeze", emits=("Squeeze",),
           checks=(const_operand("axes", 1, "onnx.dynamic_shape"),
                   Check("without axes the input shape is static", lambda n: static(n.x) or
                         operand(n, "axes", 1) is not None, "onnx.dynamic_shape")))
def squeeze(cx: Ctx, n: OnnxNode):
    """Squeeze with explicit axes (absent: every static dim of size 1)."""
    r = len(n.x.shape)
    axes = _axes(n, r)
    if axes is None:
        axes = [i for i, d in enumerate(n.x.shape) if d == 1]
    if not axes:
        return n.x
    return cx.emit("Squeeze", n.x, cx.i64(axes))


@converter(FW, "Unsqueeze", emits=("Unsqueeze",),
           checks=(const_operand("axes", 1, "onnx.dynamic_shape"),))
def unsqueeze(cx: Ctx, n: OnnxNode):
    """Unsqueeze with the axes as a constant input (an attribute before 13)."""
    r = len(n.x.shape) + len(operand(n, "axes", 1).reshape(-1))
    return cx.emit("Unsqueeze", n.x, cx.i64(_axes(n, r)))


@converter(FW, "Gather", emits=("Gather",))
def gather(cx: Ctx, n: OnnxNode):
    """Gather; constant negative indices are made positive when the axis size is known."""
    ax = norm_axis(n.get("axis", 0), len(n.x.shape))
    idx = n.input(1)
    dim = n.x.shape[ax]
    if idx.is_const and isinstance(dim, int) and (idx.const < 0).any():
        idx = cx.const(np.where(idx.const < 0, idx.const + dim, idx.const), suffix="idx")
    return cx.emit("Gather", n.x, idx, axis=ax)


@converter(FW, "Identity", emits=())
def identity(cx: Ctx, n: OnnxNode):
    """Identity is an alias of its input (graph outputs get an IR Identity at the end)."""
    return n.x


def _dropout_inference(n: OnnxNode) -> bool:
    t = n.input(2)
    return t is None or (t.is_const and not bool(np.asarray(t.const).reshape(-1)[0]))


@converter(FW, "Dropout", emits=("Dropout",),
           checks=(Check("training_mode is absent or a constant false", _dropout_inference,
                         "onnx.dropout_training"),))
def dropout(cx: Ctx, n: OnnxNode):
    """Dropout (the identity at inference; the optimizer strips it). A used mask output is
    the constant onnxruntime 1.31 returns at inference (measured): zeros of the input dtype
    before opset 10, all false at 10 / 11, all true from 12 (where the spec says so)."""
    y = cx.emit("Dropout", n.x)
    if not n.output_used(1):
        return [y, None]
    if not static(n.x):
        raise Unsupported("onnx.dynamic_shape", "a used Dropout mask needs a static shape")
    mask = np.zeros(n.x.shape, n.x.dtype) if n.version < 10 else \
        np.full(n.x.shape, n.version >= 12, dtype=bool)
    return [y, cx.const(mask, suffix="mask")]


@converter(FW, "Expand", emits=("Add",),
           checks=(const_operand("shape", 1, "onnx.dynamic_shape"), STATIC_X,
                   Check("numeric input (not bool)", lambda n: n.x.dtype != "bool",
                         "onnx.expand_dtype")))
def expand(cx: Ctx, n: OnnxNode):
    """Expand(x, shape) = x + zeros(broadcast(x.shape, shape)) (bidirectional broadcasting,
    docs/Operators.md Expand); no node when nothing is expanded."""
    out = bcast_shape(tuple(n.x.shape), tuple(int(d) for d in n.const(1)))
    if tuple(out) == tuple(n.x.shape):
        return n.x
    return cx.emit("Add", n.x, cx.const(np.zeros(out, dtype=n.x.dtype), suffix="zeros"))


@converter(FW, "Tile", emits=("Concat",),
           checks=(const_operand("repeats", 1, "onnx.dynamic_shape"),))
def tile(cx: Ctx, n: OnnxNode):
    """Tile as one Concat of copies per repeated axis."""
    y = n.x
    for ax, rep in enumerate(int(r) for r in n.const(1)):
        if rep > 1:
            y = cx.emit("Concat", *([y] * rep), axis=ax)
    return y


@converter(FW, ("Shape", "Size"), emits=(), checks=(STATIC_X,))
def shape(cx: Ctx, n: OnnxNode):
    """Shape (with Shape-15 ``start`` / ``end``) and Size of a static shape: constants."""
    dims = list(n.x.shape)
    if n.op == "Size":
        return cx.const(np.asarray(int(np.prod(dims)), dtype=np.int64))
    r = len(dims)
    start = norm_axis(max(-r, min(r, n.get("start", 0))), r)
    end = n.get("end", r)
    end = norm_axis(max(-r, min(r, end)), r) if end < r else r
    return cx.i64(dims[start:end])


@converter(FW, ("Constant", "ConstantOfShape"), emits=(),
           checks=(Check("the value is a dense tensor or number(s)", lambda n: n.op !=
                         "Constant" or "sparse_value" not in n.attrs, "onnx.sparse"),))
def constant(cx: Ctx, n: OnnxNode):
    """Constant / ConstantOfShape are folded when loading (:mod:`.fold`); this converter
    only meets one that cannot be evaluated (a ConstantOfShape of a non-constant shape)."""
    raise Unsupported("onnx.dynamic_shape", f"{n.op} cannot be evaluated at load time "
                      "(non-constant shape operand)")
