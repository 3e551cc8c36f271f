"""The NCHW -> NHWC layout pass of the TFLite exporter: one walk over the IR graph deciding,
for every IR value, how it is laid out in memory; the lowerings only follow the plan.

Vocabulary. A *perm* ``p`` of a value says ``physical = ir.transpose(p)``: physical axis ``i``
holds IR axis ``p[i]``. Image tensors are channel-last, ``(0, 2, 3, 1)`` for rank 4 (NHWC;
``(0, 2, 1)`` for rank 3), everything else starts as the identity.

How each IR value is placed (:func:`plan_layout`):

* graph inputs: channel-last when rank 4 and ``io_layout == "nhwc"``, else the identity;
* *spatial* ops (Conv, ConvTranspose, pools, Resize) read input 0 channel-last and write
  channel-last; *matrix* ops (Gemm, MatMul) read and write the identity layout;
* *layout-agnostic* ops (elementwise, Concat, Split, Slice, Pad, Softmax, reductions, Gather,
  ...) take the layout their leading input already has and remap their axis attributes
  through it (``physical axis = perm.index(ir axis)``); constant operands are permuted once,
  at export;
* *movement* ops (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Identity, Dropout) emit
  nothing by themselves: their output is a :class:`Movement`, the source tensor plus the IR
  steps. When a consumer needs it in some perm, :func:`realize` computes the exact physical
  index map (numpy index arrays) and finds the cheapest form: nothing (same memory order),
  one RESHAPE, one GATHER along one axis (a channel permutation such as ShuffleNet's channel
  shuffle, which :mod:`.shuffle` later rewrites as XNNPACK-delegated TRANSPOSEs), or, for a
  flatten feeding Gemm, a RESHAPE plus a column permutation folded into the FULLY_CONNECTED
  weights (:func:`realize_columns`). Only when none applies is the chain
  written literally with TRANSPOSE ops, which :mod:`.fuse` then merges and cancels.

So Transposes in the source are sunk into the consumers that need them and cancel out; a
TRANSPOSE is only written where a region truly cannot be expressed in the physical layout.
The IR graph is never modified; shapes must be static (checked by the scan).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from converter.ir import Graph, Node, Value
from converter.ops import SCHEMAS, attr

SPATIAL = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
                     "GlobalMaxPool", "Resize"})
MATRIX = frozenset({"Gemm", "MatMul"})
MOVEMENT = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity",
                      "Dropout"})
REDUCE = frozenset({"ReduceMean", "ReduceSum", "ReduceMax"})


# ------------------------------------------------------------------ perm algebra
def identity(rank: int) -> tuple:
    """``(0, 1, ..., rank-1)``."""
    return tuple(range(rank))


def channel_last(rank: int) -> tuple:
    """``(0, 2, ..., rank-1, 1)`` for rank >= 3 (NHWC for 4-D), else the identity."""
    return (0,) + tuple(range(2, rank)) + (1,) if rank >= 3 else identity(rank)


def inverse(perm: Sequence[int]) -> tuple:
    """The perm undoing ``perm``."""
    return tuple(int(i) for i in np.argsort(perm))


def relative(src: Sequence[int], dst: Sequence[int]) -> tuple:
    """The physical TRANSPOSE perm turning a tensor laid out ``src`` into layout ``dst``."""
    return tuple(list(src).index(d) for d in dst)


def phys_shape(shape: Sequence[int], perm: Sequence[int]) -> tuple:
    """The physical shape of an IR shape laid out in ``perm``."""
    return tuple(int(shape[p]) for p in perm)


def phys_axis(perm: Sequence[int], axis: int) -> int:
    """Physical position of IR axis ``axis`` (negative allowed) under ``perm``."""
    return list(perm).index(axis % len(perm))


def align_const(arr: np.ndarray, perm: Sequence[int], squeeze: bool = True) -> np.ndarray:
    """A constant operand laid out for an operand of layout ``perm``: aligned to ``len(perm)``
    dims (numpy broadcasting: leading 1s), transposed, and (``squeeze``, for broadcasting
    ops) leading 1s dropped again down to the constant's own rank."""
    arr = np.asarray(arr)
    rank = len(perm)
    full = arr.reshape((1,) * (rank - arr.ndim) + arr.shape).transpose(perm)
    shape = list(full.shape)
    while squeeze and len(shape) > 1 and shape[0] == 1 and len(shape) > arr.ndim:
        shape.pop(0)
    return np.ascontiguousarray(full.reshape(shape))


def squeeze_perm(perm: Sequence[int], removed: Sequence[int]) -> tuple:
    """The perm left after removing IR axes ``removed`` (renumbered)."""
    gone = set(removed)
    keep = [p for p in perm if p not in gone]
    order = sorted(keep)
    return tuple(order.index(p) for p in keep)


# ------------------------------------------------------------------ movements
@dataclass(frozen=True)
class Movement:
    """An IR value that is pure data movement of ``source`` (a value with a real tensor):
    ``steps`` are ``("reshape", shape)`` / ``("transpose", perm)`` applied in IR order."""

    source: Value
    steps: tuple


def apply_steps(arr: np.ndarray, steps: Sequence[tuple]) -> np.ndarray:
    """Apply movement ``steps`` (IR order) to ``arr`` with numpy."""
    for kind, arg in steps:
        arr = arr.reshape(arg) if kind == "reshape" else arr.transpose(arg)
    return arr


@dataclass(frozen=True)
class Realization:
    """How a movement is written in a wanted perm: ``kind`` is ``"alias"`` (same memory),
    ``"reshape"``, ``"gather"`` (``axis``, ``indices`` on the source's physical tensor,
    then RESHAPE to ``shape`` when it differs) or ``"general"`` (literal steps)."""

    kind: str
    shape: tuple
    axis: int = -1
    indices: Optional[np.ndarray] = None


def index_map(src_shape: Sequence[int], src_perm: Sequence[int], steps: Sequence[tuple],
              dst_perm: Sequence[int]) -> tuple[np.ndarray, tuple]:
    """For each element of the destination's physical tensor, the flat index of the source
    physical element it copies; and the source's physical shape."""
    pshape = phys_shape(src_shape, src_perm)
    n = int(np.prod(pshape, dtype=np.int64))
    idx = np.arange(n, dtype=np.int64 if n >= 1 << 31 else np.int32).reshape(pshape)
    y = apply_steps(idx.transpose(inverse(src_perm)), steps)
    return y.transpose(dst_perm), pshape


def _gather_of(y: np.ndarray, pshape: tuple) -> Optional[tuple]:
    """``(axis, indices)`` when ``y`` (flat source indices) is a gather of the source along
    one axis, with every other axis copied in order; else None."""
    if y.ndim != len(pshape) or y.size == 0:
        return None
    coords = np.unravel_index(y, pshape)
    for a in range(y.ndim):
        others = [b for b in range(y.ndim) if b != a]
        if any(y.shape[b] != pshape[b] for b in others):
            continue
        grid = np.indices(y.shape, sparse=True)
        if not all(np.array_equal(coords[b], np.broadcast_to(grid[b], y.shape)) for b in others):
            continue
        first = tuple(slice(None) if b == a else 0 for b in range(y.ndim))
        ind = coords[a][first]
        shape = [1] * y.ndim
        shape[a] = -1
        if np.array_equal(coords[a], np.broadcast_to(ind.reshape(shape), y.shape)):
            return a, ind.astype(np.int32)
    return None


def realize(src_shape, src_perm, steps, dst_perm) -> Realization:
    """The cheapest way to produce a movement's physical tensor in ``dst_perm``."""
    y, pshape = index_map(src_shape, src_perm, steps, dst_perm)
    if np.array_equal(y.reshape(-1), np.arange(y.size)):
        return Realization("alias" if tuple(y.shape) == pshape else "reshape", tuple(y.shape))
    g = _gather_of(y, pshape)
    if g is not None:
        return Realization("gather", tuple(y.shape), g[0], g[1])
    return Realization("general", tuple(y.shape))


def realize_columns(src_shape, src_perm, steps) -> Optional[np.ndarray]:
    """For a movement ending in a 2-D ``[N, K]`` value: the column map ``cols`` such that
    RESHAPE of the source's physical tensor to ``[N, K]`` holds IR column ``q`` at physical
    column ``cols[q]`` (the same for every row); None when rows mix."""
    y, _ = index_map(src_shape, src_perm, steps, (0, 1))
    if y.ndim != 2:
        return None
    n, k = y.shape
    cols = y - (np.arange(n) * k)[:, None]
    if cols.min() < 0 or cols.max() >= k or not (cols == cols[:1]).all():
        return None
    return cols[0].astype(np.int64)


def stride_perm(y: np.ndarray) -> tuple:
    """A perm ordering the axes of an index map by decreasing stride (size-1 axes kept at
    their IR position relative to the others): the layout in which it may be a RESHAPE."""
    big = [a for a in range(y.ndim) if y.shape[a] > 1]
    def stride(a):
        return int(y[tuple(1 if b == a else 0 for b in range(y.ndim))]) - int(y.flat[0])
    order = sorted(big, key=lambda a: -stride(a))
    out, it = [], iter(order)
    for a in range(y.ndim):
        out.append(next(it) if y.shape[a] > 1 else a)
    return tuple(out)


# ------------------------------------------------------------------ the plan
class LayoutPlan:
    """Result of :func:`plan_layout`.

    Attributes:
        perms: id(value) -> perm of values that get a real tensor.
        moves: id(value) -> :class:`Movement` of movement outputs.
        consts: id(value) -> array for values folded at plan time (Shape, ops on constants).
        want: id(node) -> per-input wanted perm (None: the lowering handles it, e.g. weights).
        outputs: per graph output, the boundary perm it is written in.
    """

    def __init__(self, graph: Graph, io_layout: str = "nhwc"):
        self.graph, self.io_layout = graph, io_layout
        self.perms: dict[int, tuple] = {}
        self.moves: dict[int, Movement] = {}
        self.consts: dict[int, np.ndarray] = {}
        self.want: dict[int, list] = {}
        self.outputs: list[tuple] = []
        self._natural: dict[int, tuple] = {}

    def boundary(self, v: Value) -> tuple:
        """Perm of a graph input/output: channel-last for rank 4 with ``io_layout`` nhwc."""
        r = len(v.shape)
        return channel_last(r) if r == 4 and self.io_layout == "nhwc" else identity(r)

    def const_of(self, v: Optional[Value]) -> Optional[np.ndarray]:
        """The array of a constant or plan-folded value, else None."""
        if v is None:
            return None
        return v.const if v.is_const else self.consts.get(id(v))

    def source(self, v: Value) -> tuple:
        """``(real source value, steps)`` of ``v`` (steps empty for a real value)."""
        m = self.moves.get(id(v))
        return (m.source, m.steps) if m is not None else (v, ())

    def natural(self, v: Value) -> tuple:
        """The perm a layout-agnostic consumer reads ``v`` in: its own for a real value; for
        a movement the first of (channel-last, identity, stride order) that is a plain
        reshape of the source, else the first that is a gather, else channel-last."""
        if id(v) in self.perms:
            return self.perms[id(v)]
        if id(v) not in self._natural:
            self._natural[id(v)] = self._pick(v)
        return self._natural[id(v)]

    def _pick(self, v: Value) -> tuple:
        src, steps = self.source(v)
        sp = self.perms[id(src)]
        r = len(v.shape)
        y, _ = index_map(src.shape, sp, steps, identity(r))
        cands = list(dict.fromkeys([channel_last(r), identity(r), stride_perm(y)]))
        real = [(c, realize(src.shape, sp, steps, c)) for c in cands]
        for kinds in (("alias", "reshape"), ("gather",)):
            for c, z in real:
                if z.kind in kinds:
                    return c
        return cands[0]


def _lead(plan: LayoutPlan, node: Node, rank: int) -> Optional[Value]:
    """The input whose layout an agnostic node adopts: a full-rank non-constant input, real
    tensors before movements."""
    ins = [v for v in node.inputs if v is not None and plan.const_of(v) is None
           and len(v.shape) == rank]
    real = [v for v in ins if id(v) in plan.perms]
    return (real or ins or [None])[0]


def _out_perm(node: Node, p: tuple) -> tuple:
    """Perm of an agnostic node's output given its leading input's perm ``p``."""
    x = node.inputs[0]
    if node.op in REDUCE and not attr(node, "keepdims"):
        axes = node.const_input(1)
        axes = range(len(x.shape)) if axes is None or len(axes) == 0 else axes
        return squeeze_perm(p, [int(a) % len(x.shape) for a in np.asarray(axes).reshape(-1)])
    if node.op == "Gather":
        a = int(attr(node, "axis")) % len(x.shape)
        q = len(node.inputs[1].shape)
        shift = [d if d < a else d + q - 1 for d in p]
        pa = list(p).index(a)
        return tuple(shift[:pa]) + tuple(range(a, a + q)) + tuple(shift[pa + 1:])
    return p


def _fold(plan: LayoutPlan, node: Node) -> bool:
    """Evaluate a node whose inputs are all constant (or plan constants); Shape of a static
    tensor is its shape. Returns True when folded."""
    if node.op == "Shape":
        plan.consts[id(node.outputs[0])] = np.asarray(node.inputs[0].shape, np.int64)
        return True
    arrays = [plan.const_of(v) for v in node.inputs]
    ev = SCHEMAS[node.op].evaluate
    if ev is None or any(a is None and v is not None for a, v in zip(arrays, node.inputs)):
        return False
    for o, a in zip(node.outputs, ev(node, arrays)):
        plan.consts[id(o)] = np.asarray(a)
    return True


def _movement(plan: LayoutPlan, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    src, steps = plan.source(x)
    if node.op == "Transpose":
        steps = steps + (("transpose", tuple(attr(node, "perm") or
                                             reversed(range(len(x.shape))))),)
    elif node.op not in ("Identity", "Dropout"):
        steps = steps + (("reshape", tuple(int(d) for d in y.shape)),)
    arr = plan.const_of(src)
    if arr is not None:  # a movement of a constant is a constant
        plan.consts[id(y)] = apply_steps(np.asarray(arr), steps)
    else:
        plan.moves[id(y)] = Movement(src, steps)


def _agnostic(plan: LayoutPlan, node: Node) -> None:
    rank = max(len(v.shape) for v in node.inputs if v is not None)
    lead = _lead(plan, node, rank)
    p = plan.natural(lead) if lead is not None else identity(rank)
    want = [None if v is None or plan.const_of(v) is not None else p for v in node.inputs]
    if node.op == "Gather":
        want[1] = None if want[1] is None else identity(len(node.inputs[1].shape))
    plan.want[id(node)] = want
    out = _out_perm(node, p)
    for o in node.outputs:
        plan.perms[id(o)] = out


def _spatial(plan: LayoutPlan, node: Node) -> None:
    r = len(node.inputs[0].shape)
    plan.want[id(node)] = [channel_last(r)] + [None] * (len(node.inputs) - 1)
    plan.perms[id(node.outputs[0])] = channel_last(len(node.outputs[0].shape))


def _matrix(plan: LayoutPlan, node: Node) -> None:
    want = [identity(len(v.shape)) if v is not None and plan.const_of(v) is None else None
            for v in node.inputs]
    if node.op == "Gemm" and attr(node, "transA") and want[0] is not None:
        want[0] = (1, 0)
    plan.want[id(node)] = want
    plan.perms[id(node.outputs[0])] = identity(len(node.outputs[0].shape))


def plan_layout(graph: Graph, io_layout: str = "nhwc") -> LayoutPlan:
    """The layout of every IR value of ``graph`` (static shapes); see the module docstring."""
    plan = LayoutPlan(graph, io_layout)
    for v in graph.inputs:
        plan.perms[id(v)] = plan.boundary(v)
    for node in graph.nodes:
        if _fold(plan, node):
            continue
        if node.op in MOVEMENT:
            _movement(plan, node)
        elif node.op in SPATIAL:
            _spatial(plan, node)
        elif node.op in MATRIX:
            _matrix(plan, node)
        else:
            _agnostic(plan, node)
    plan.outputs = [plan.boundary(v) for v in graph.outputs]
    return plan
