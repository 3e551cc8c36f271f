"""Converters for shape and indexing ATen ops: cat, stack, view/reshape, flatten, permute,
transpose, slice, select, split/chunk/unbind, squeeze/unsqueeze, size, channel_shuffle.

Shapes are static: ``view`` targets and ``size`` results are resolved to ints here, so the IR
never carries shape arithmetic. torch semantics: ``torch/_refs/__init__.py``.
"""
from __future__ import annotations

from converter.ir import Value
from converter.ops import reshape_shape
from converter.registry import Check, converter

from .context import Ctx, SourceNode

FW = "pytorch"
INT64_MAX = 2 ** 63 - 1


def _x(n: SourceNode):
    return n["self"] if n["self"] is not None else n["input"]


@converter(FW, "aten.cat", emits=("Concat",))
def cat(cx: Ctx, n: SourceNode):
    xs = [t for t in n["tensors"] if not (t.shape and 0 in t.shape and len(t.shape) == 1)]
    if len(xs) == 1:
        return xs[0]
    return cx.emit("Concat", *xs, axis=cx.axis(int(n["dim"]), len(xs[0].shape)))


@converter(FW, "aten.stack", emits=("Unsqueeze", "Concat"))
def stack(cx: Ctx, n: SourceNode):
    r = len(n["tensors"][0].shape) + 1
    ax = cx.axis(int(n["dim"]), r)
    xs = [cx.emit("Unsqueeze", t, cx.i64([ax])) for t in n["tensors"]]
    return cx.emit("Concat", *xs, axis=ax)


def _static_list(v) -> bool:
    return all(isinstance(d, int) for d in v) if isinstance(v, (list, tuple)) else False


@converter(FW, ("aten.view", "aten.reshape", "aten._unsafe_view"), emits=("Reshape",),
           checks=(Check("target shape is static", lambda n: _static_list(n["size"] if
                         n["size"] is not None else n["shape"]), "pytorch.dynamic_shape"),))
def view(cx: Ctx, n: SourceNode):
    x = _x(n)
    target = n["size"] if n["size"] is not None else n["shape"]
    shape = reshape_shape(x.shape, target)
    if tuple(shape) == tuple(x.shape):
        return x
    return cx.emit("Reshape", x, cx.i64(shape))


@converter(FW, "aten.flatten", emits=("Flatten", "Reshape"))
def flatten(cx: Ctx, n: SourceNode):
    x = _x(n)
    r = len(x.shape)
    s, e = cx.axis(int(n["start_dim"]), r), cx.axis(int(n["end_dim"]), r)
    if s >= e:
        return x
    if e == r - 1 and s == 1:
        return cx.emit("Flatten", x, axis=1)
    mid = 1
    for d in x.shape[s:e + 1]:
        mid *= d
    return cx.emit("Reshape", x, cx.i64(list(x.shape[:s]) + [mid] + list(x.shape[e + 1:])))


@converter(FW, "aten.permute", emits=("Transpose",))
def permute(cx: Ctx, n: SourceNode):
    x = _x(n)
    perm = [cx.axis(int(d), len(x.shape)) for d in n["dims"]]
    return x if perm == sorted(perm) else cx.emit("Transpose", x, perm=perm)


@converter(FW, ("aten.transpose", "aten.t"), emits=("Transpose",))
def transpose(cx: Ctx, n: SourceNode):
    x = _x(n)
    r = len(x.shape)
    if n.op == "aten.t":
        if r < 2:
            return x
        d0, d1 = 0, 1
    else:
        d0, d1 = cx.axis(int(n["dim0"]), r), cx.axis(int(n["dim1"]), r)
    if d0 == d1:
        return x
    perm = list(range(r))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return cx.emit("Transpose", x, perm=perm)


@converter(FW, "aten.slice", emits=("Slice",),
           checks=(Check("step is positive", lambda n: int(n["step"] or 1) > 0,
                         "pytorch.slice_step"),))
def slice_(cx: Ctx, n: SourceNode):
    x = _x(n)
    ax = cx.axis(int(n["dim"]), len(x.shape))
    size = x.shape[ax]
    start = 0 if n["start"] is None else int(n["start"])
    end = size if n["end"] is None else min(int(n["end"]), size)
    s, e, st = slice(start, end, int(n["step"] or 1)).indices(size)
    if s == 0 and e == size and st == 1:
        return x
    return cx.emit("Slice", x, cx.i64([s]), cx.i64([e]), cx.i64([ax]), cx.i64([st]))


@converter(FW, "aten.select", emits=("Gather",))
def select(cx: Ctx, n: SourceNode):
    x = _x(n)
    ax = cx.axis(int(n["dim"]), len(x.shape))
    idx = int(n["index"]) % x.shape[ax]
    return cx.emit("Gather", x, cx.const(idx, "int64"), axis=ax)


@converter(FW, "aten.narrow", emits=("Slice",))
def narrow(cx: Ctx, n: SourceNode):
    x = _x(n)
    ax = cx.axis(int(n["dim"]), len(x.shape))
    s = int(n["start"]) % x.shape[ax]
    return cx.emit("Slice", x, cx.i64([s]), cx.i64([s + int(n["length"])]), cx.i64([ax]))


def _split(cx: Ctx, x: Value, sizes: list, dim: int):
    ax = cx.axis(dim, len(x.shape))
    sizes = [s for s in sizes]
    if len(sizes) == 1:
        return [x]
    return cx.emit("Split", x, cx.i64(sizes), n_out=len(sizes), axis=ax)


@converter(FW, ("aten.split", "aten.split_with_sizes"), emits=("Split",))
def split(cx: Ctx, n: SourceNode):
    x = _x(n)
    ax = cx.axis(int(n["dim"]), len(x.shape))
    ss = n["split_size"] if n["split_size"] is not None else n["split_sizes"]
    if isinstance(ss, int):
        total = x.shape[ax]
        ss = [min(ss, total - i) for i in range(0, total, ss)]
    return _split(cx, x, list(ss), ax)


@converter(FW, "aten.chunk", emits=("Split",))
def chunk(cx: Ctx, n: SourceNode):
    x = _x(n)
    ax = cx.axis(int(n["dim"]), len(x.shape))
    total, k = x.shape[ax], int(n["chunks"])
    step = -(-total // k)
    return _split(cx, x, [min(step, total - i) for i in range(0, total, step)], ax)


@converter(FW, "aten.unbind", emits=("Split", "Squeeze"))
def unbind(cx: Ctx, n: SourceNode):
    x = _x(n)
    ax = cx.axis(int(n["dim"]), len(x.shape))
    parts = _split(cx, x, [1] * x.shape[ax], ax)
    return [cx.emit("Squeeze", p, cx.i64([ax])) for p in parts]


@converter(FW, "aten.squeeze", emits=("Squeeze",))
def squeeze(cx: Ctx, n: SourceNode):
    x = _x(n)
    dims = n["dim"]
    dims = [dims] if isinstance(dims, int) else dims
    r = len(x.shape)
    axes = [i for i, d in enumerate(x.shape) if d == 1] if dims is None else [
        cx.axis(int(d), r) for d in dims if x.shape[cx.axis(int(d), r)] == 1]
    return cx.emit("Squeeze", x, cx.i64(axes)) if axes else x


@converter(FW, "aten.unsqueeze", emits=("Unsqueeze",))
def unsqueeze(cx: Ctx, n: SourceNode):
    x = _x(n)
    return cx.emit("Unsqueeze", x, cx.i64([cx.axis(int(n["dim"]), len(x.shape) + 1)]))


@converter(FW, ("aten.size", "aten.sym_size"), emits=())
def size(cx: Ctx, n: SourceNode):
    x = _x(n)
    if n["dim"] is None:
        return list(x.shape)
    return x.shape[cx.axis(int(n["dim"]), len(x.shape))]


@converter(FW, ("aten.channel_shuffle", "aten.native_channel_shuffle"),
           emits=("Reshape", "Transpose"))
def channel_shuffle(cx: Ctx, n: SourceNode):
    x = _x(n)
    b, c = x.shape[:2]
    g = int(n["groups"])
    y = cx.emit("Reshape", x, cx.i64([b, g, c // g] + list(x.shape[2:])))
    y = cx.emit("Transpose", y, perm=[0, 2, 1] + list(range(3, len(x.shape) + 1)))
    return cx.emit("Reshape", y, cx.i64(list(x.shape)))
