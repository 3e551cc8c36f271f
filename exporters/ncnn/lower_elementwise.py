"""ncnn lowering of binary elementwise ops (Add, Sub, Mul, Div, Max, Min, Pow) -> ``BinaryOp``.

``BinaryOp`` params (Tencent/ncnn src/layer/binaryop.cpp / binaryop.h): ``0=op_type`` (0 add,
1 sub, 2 mul, 3 div, 4 max, 5 min, 6 pow, 7 rsub, 8 rdiv, 9 rpow), ``1=with_scalar``, ``2=b``.

Broadcasting (Tencent/ncnn docs/developer-guide/binaryop-broadcasting.md and
``BinaryOp::forward``): operands of equal rank broadcast numpy-style (every dim equal or 1, in
either operand); an operand of lower rank is aligned to the *outer* axes, the opposite of numpy,
except a 1-D operand whose length is not the other's outer dim. So this lowering always brings
both operands to the output rank (explicit shapes with 1s): constants through a ``MemoryData``
of that shape, tensors through ``Reshape`` when their blob has another shape. The one implicit
form kept is ncnn's documented per-channel rule: a 1-D ``(C,)`` blob (global pooling output)
against a blob whose outer dim is ``C``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from converter.ir import Node, Value
from converter.registry import Check, lowering

from .checks import checks
from .context import LowerCtx, aligned, ncnn_shape

BINARY_OPS = {"Add": 0, "Sub": 1, "Mul": 2, "Div": 3, "Max": 4, "Min": 5, "Pow": 6}
#: op_type when the scalar / the broadcast operand is the *first* input (binaryop.h)
REVERSED = {0: 0, 1: 7, 2: 2, 3: 8, 4: 4, 5: 5, 6: 9}


def _is_scalar(v: Value) -> bool:
    return v.is_const and np.asarray(v.const).size == 1


def _one_tensor(node: Node) -> bool:
    return any(v is not None and not v.is_const for v in node.inputs)


def _compact(node: Node, ctx: LowerCtx) -> Optional[int]:
    """Channel count when the op can stay on compact 1-D blobs: the output is ``[1,C,1..]`` and
    every tensor operand is a ``(C,)`` blob, every constant a scalar or ``C`` values."""
    out = ncnn_shape(node.outputs[0].shape)
    c = out[0]
    if len(out) < 2 or any(d != 1 for d in out[1:]):
        return None
    for v in node.inputs:
        if v.is_const:
            if np.asarray(v.const).size not in (1, c):
                return None
        elif ctx.shape[ctx.blob(v)] != (c,):
            return None
    return c


def _operand(ctx: LowerCtx, v: Value, want: tuple, other: tuple) -> int:
    """Blob of operand ``v`` shaped ``want`` (a compact ``(C,)`` blob stays as is when ``other``,
    the other operand's shape, has outer dim ``C``, ncnn's per-channel rule)."""
    if v.is_const:
        return ctx.memdata(v, want)
    blob = ctx.blob(v)
    have = ctx.shape[blob]
    if (have != want and len(have) == 1 and want == (have[0],) + (1,) * (len(want) - 1)
            and len(other) == len(want) and other[0] == have[0]):
        return blob
    return ctx.reshape(blob, want)


def lower_binary(node: Node, ctx: LowerCtx) -> None:
    """Add/Sub/Mul/Div/Max/Min/Pow -> ``BinaryOp`` (see the module docstring for broadcasting);
    a scalar constant operand becomes ``1=with_scalar 2=value`` (reversed op when it is the
    first input)."""
    op = BINARY_OPS[node.op]
    a, b = node.inputs
    y = node.outputs[0]
    for scalar, tensor, code in ((b, a, op), (a, b, REVERSED[op])):
        if _is_scalar(scalar) and not tensor.is_const:
            value = float(np.asarray(scalar.const).reshape(()))
            same = tuple(tensor.shape) == tuple(y.shape)  # else a rank-raising scalar
            x = ctx.blob(tensor) if same else ctx.inp(tensor, ncnn_shape(y.shape))
            ctx.unary(node, "BinaryOp", {0: code, 1: 1, 2: value}, x=x)
            return
    c = _compact(node, ctx)
    if c is not None:
        ins = [ctx.memdata(v, (c,)) if v.is_const else ctx.blob(v) for v in (a, b)]
        ctx.emit("BinaryOp", node.name, ins, [ctx.out(y, (c,))], {0: op})
        return
    r = len(y.shape)
    want = [ncnn_shape(aligned(v.shape, r)) for v in (a, b)]
    ins = [_operand(ctx, a, want[0], want[1]), _operand(ctx, b, want[1], want[0])]
    ctx.emit("BinaryOp", node.name, ins, [ctx.out(y)], {0: op})


def _aligned_ok(node: Node) -> bool:
    """Constants of the output's rank must have batch dim 1 (no broadcasting along the batch)."""
    r = len(node.outputs[0].shape)
    return all(aligned(v.shape, r)[0] == 1 for v in node.inputs)


lowering("ncnn", tuple(BINARY_OPS), emits=("BinaryOp", "MemoryData"), checks=checks(
    Check("at least one operand is not a constant", _one_tensor, "ncnn.const"),
    Check("operands have batch dim 1 at the output rank", _aligned_ok, "ncnn.batch"),
))(lower_binary)
