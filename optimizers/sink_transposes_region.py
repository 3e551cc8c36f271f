"""The region a Transpose sinks through (helper of :mod:`.sink_transposes`, whose docstring
gives the math): grown downward through the readers that take the perm and upward through
their other operands, with an undo log so that a reader that cannot join leaves no trace.
"""
from __future__ import annotations

from ._common import is_output
from .sink_transposes_axes import is_identity, spec
from .transposes import _perm

MAX_DEPTH = 16  # how far up an operand of a region node is traced back to entries
MAX_NODES = 4096  # region size cap (a region this large is not an NHWC island)


class Region:
    """Values (id -> perm ``q``, value), entries (id of value -> Transpose), nodes (id ->
    (node, spec, q)) and an undo log so a failed join leaves no trace."""

    def __init__(self, graph):
        self.graph, self.q, self.vals, self.entries, self.nodes = graph, {}, {}, {}, {}
        self.log, self.queue = [], []

    def put(self, table, key, item) -> None:
        """``table[key] = item``, logged for :meth:`undo`."""
        table[key] = item
        self.log.append((table, key))

    def undo(self, mark: int) -> None:
        """Drop every entry logged after position ``mark`` of the log."""
        while len(self.log) > mark:
            table, key = self.log.pop()
            del table[key]

    def add_value(self, v, q) -> None:
        """Make ``v`` a region value of perm ``q`` and queue its readers for growth."""
        self.put(self.q, id(v), tuple(q))
        self.put(self.vals, id(v), v)
        self.queue.append(v)


def live(graph, n) -> bool:
    """False for a node whose outputs were all rewired away this round (not yet cleaned)."""
    return any(o.uses or is_output(graph, o) for o in n.outputs)


def _claim(R: Region, v, q, depth: int) -> bool:
    """Can runtime operand ``v`` be had in perm ``q`` (module docstring)?"""
    have = R.q.get(id(v))
    if have is not None:
        return have == q
    if v.shape is not None and all(d == 1 for d in v.shape):
        return True
    p = v.producer
    if p is None or depth <= 0 or v.rank != len(q) or not live(R.graph, p):
        return False
    if p.op == "Transpose":
        if p.input(0).is_const or _perm(p) != q:
            return False
        R.put(R.entries, id(v), p)
        R.add_value(v, q)
        return True
    mark = len(R.log)
    if _join(R, p, q, depth - 1) and R.q.get(id(v)) == q:
        return True
    R.undo(mark)
    return False


def _join(R: Region, n, q, depth: int) -> bool:
    """Add ``n`` (data inputs in perm ``q``) and what its operands need; False if it cannot."""
    if id(n) in R.nodes:
        return R.nodes[id(n)][2] == q
    sp = None if len(R.nodes) >= MAX_NODES or not live(R.graph, n) else spec(n, q)
    if sp is None:
        return False
    mark = len(R.log)
    R.put(R.nodes, id(n), (n, sp, q))
    for i, w in enumerate(n.inputs):
        ok = (w is None or (i not in sp.data and id(w) not in R.q)
              or (i in sp.data and (w.const.ndim <= len(q) if w.is_const
                                    else _claim(R, w, q, depth))))
        if not ok:
            R.undo(mark)
            return False
    for o, qo in zip(n.outputs, sp.q_out):
        if not is_identity(qo):
            R.add_value(o, qo)
    return True


def grow(graph, root) -> Region:
    """The region below Transpose ``root``."""
    R = Region(graph)
    R.put(R.entries, id(root.outputs[0]), root)
    R.add_value(root.outputs[0], _perm(root))
    done: set = set()
    while R.queue:
        v = R.queue.pop()
        if id(v) in done or id(v) not in R.q:
            continue
        done.add(id(v))
        for n in v.consumers():
            if id(n) not in R.nodes and n.op != "Transpose":
                _join(R, n, R.q[id(v)], MAX_DEPTH)
    return R
