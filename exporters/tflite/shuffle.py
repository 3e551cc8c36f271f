"""Channel shuffles without GATHER: a post-lowering rewrite of the TFLite model.

The layout pass (:mod:`.layout`) writes ShuffleNet's channel shuffle (IR ``Reshape [N,g,C/g,H,W]
-> Transpose -> Reshape [N,C,H,W]``) as one ``GATHER`` along the physical channel axis with
constant indices ``arange(C).reshape(g, C/g).T.ravel()``. XNNPACK does not take GATHER
(measured: a one-GATHER model gets no DELEGATE node in ai_edge_litert; the op is dispatched
by tensorflow/tensorflow tensorflow/lite/delegates/xnnpack/xnnpack_delegate.cc), so it runs
in the builtin kernel. Every such GATHER is rewritten as RESHAPE / TRANSPOSE only
(:func:`_transposed`), which XNNPACK runs.

Measured (ai_edge_litert, 1 thread, CPU time per invoke, one [1,28,28,116] shuffle, g=2):
GATHER 251 us; interleaving CONCATENATION of the halves reshaped to [...,58,1] 371 us (wall); one
element-wise TRANSPOSE [784,2,58] -> [784,58,2] 79-113 us; the chain used here (2-D TRANSPOSE
to channel-major, swap of the [2,58] row blocks, 2-D TRANSPOSE back) 44-53 us. Whole
shufflenet_v2 (16 shuffles; CPU-time median of 100 invokes, best of 10 rounds, two
runs): 8.1-10.8 ms with GATHER, 5.2-5.5 ms with this chain, onnx2tf's output 5.2-6.0 ms.
A channel permutation cannot be folded into the consumers' weights instead: the ShuffleNetV2
block passes half of the shuffled tensor unchanged to the next block's concat.

Values are unchanged (pure data movement). Ops keep execution order.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .model import TModel, TOp


def shuffle_groups(indices: np.ndarray) -> Optional[int]:
    """``g`` when ``indices`` (length C) equal ``arange(C).reshape(g, C // g).T.ravel()`` for
    some ``1 < g < C``, else None."""
    idx = np.asarray(indices).reshape(-1)
    c = idx.size
    for g in range(2, c):
        if c % g == 0 and np.array_equal(idx, np.arange(c).reshape(g, c // g).T.reshape(-1)):
            return g
    return None


def _chain(model: TModel, x: int, steps: list, out: int, name: str) -> list:
    """RESHAPE / TRANSPOSE ops applying ``steps`` (``("r", shape)`` / ``("t", perm)``) to
    tensor ``x``, the last one writing tensor ``out``."""
    ops, t = [], x
    for k, (kind, arg) in enumerate(steps):
        shape = model.tensors[t].shape
        dst = arg if kind == "r" else [shape[p] for p in arg]
        o = out if k == len(steps) - 1 else model.tensor(f"{name}/s{k}", dst,
                                                          model.tensors[x].dtype)
        code, tag = ("RESHAPE", "shape") if kind == "r" else ("TRANSPOSE", "perm")
        ops.append(TOp(code, [t, model.const(np.asarray(arg, np.int32), tag)], [o]))
        t = o
    return ops


def _transposed(model: TModel, op: TOp, axis: int, g: int) -> list:
    """Ops replacing GATHER ``op``: with ``x`` viewed as ``[outer, C, inner]``, TRANSPOSE to
    channel-major ``[C, outer*inner]`` (skipped when outer is 1), swap the ``[g, C/g]`` block
    axes (whole ``outer*inner`` rows move), TRANSPOSE back. Only 2-D transposes and a block
    swap: XNNPACK runs these as tiled copies, measured ~2x faster than one element-wise
    ``[outer, g, C/g] -> [outer, C/g, g]`` TRANSPOSE (module docstring)."""
    x = op.inputs[0]
    shape = list(model.tensors[x].shape)
    c = shape[axis]
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    steps = []
    if outer > 1:
        steps += [("r", [outer, c * inner]), ("t", [1, 0])]
    steps += [("r", [g, c // g, inner * outer]), ("t", [1, 0, 2])]
    if outer > 1:
        steps += [("r", [c * inner, outer]), ("t", [1, 0])]
    steps.append(("r", list(model.tensors[op.outputs[0]].shape)))
    return _chain(model, x, steps, op.outputs[0], model.tensors[op.outputs[0]].name)


def rewrite_shuffles(model: TModel) -> int:
    """Rewrite every channel-shuffle GATHER (constant indices, see :func:`shuffle_groups`) as
    the TRANSPOSE chain of :func:`_transposed`, in place; returns the count."""
    n = 0
    for op in list(model.ops):
        if op.code != "GATHER" or model.tensors[op.inputs[1]].data is None:
            continue
        x = op.inputs[0]
        if tuple(model.tensors[x].shape) != tuple(model.tensors[op.outputs[0]].shape) or \
                model.tensors[x].quant is not None:
            continue
        axis = int(op.fields.get("Axis", 0)) % len(model.tensors[x].shape)
        g = shuffle_groups(model.tensors[op.inputs[1]].data)
        if g is None:
            continue
        pos = model.ops.index(op)
        model.ops[pos:pos + 1] = _transposed(model, op, axis, g)
        n += 1
    return n
