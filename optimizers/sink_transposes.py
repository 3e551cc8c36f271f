"""sink_transposes: move a Transpose down through the layout-agnostic region below it, so that
it cancels against the inverse Transposes where the region ends (NHWC TensorFlow graphs:
``Transpose[0,2,3,1] -> BiasAdd / Relu / residual Add / mean / concat ... ->
Transpose[0,3,1,2] -> Conv``).

Math: for a perm q, ``op(Transpose(a, q), ...) = Transpose(op'(a, ...), q)`` when op is
elementwise or its axes / constants are remapped (:mod:`.sink_transposes_axes`). Starting at
the root Transpose (an *entry*: its output is ``Transpose(x, q)``), the *region* grows
downward through every reader that takes perm q, and upward through the other operands of
those readers: an operand that is another Transpose of the same perm becomes an entry, one
computed by agnostic ops from entries joins (depth <= :data:`MAX_DEPTH`), a constant is
permuted, a runtime operand whose dims are all 1 is kept; anything else keeps the reader
out. Each region value ``v`` with perm ``q_v`` is then computed in the new layout
(``old v = Transpose(new v, q_v)``): entries' readers read x, region nodes are edited in
place. Readers outside the region (:mod:`.sink_transposes_exits`) compose with a Transpose
reader, read the new value when the element order is the same (flatten after global
pooling), fold the order into a following MatMul / Gemm weight, or else read one new
``Transpose(new v, q_v)``; a graph output keeps its name on that Transpose.

Cost guard: the rewrite runs only when it strictly lowers the number of Transposes (entries
removed + readers that compose to the identity > new Transposes). So nodes never grow, each
firing makes progress and the rules reach a fixed point without ping-pong; a region that
would not pay (a Transpose feeding MatMuls, ShuffleNet's channel shuffle) is left as it is.
"""
from __future__ import annotations

from converter.ops import infer_node
from converter.rewrite import Decline, P, Rule, V
from ._common import is_output, new_const, output_guard
from .sink_transposes_axes import is_identity, permute_const
from .sink_transposes_exits import classify, composed, fold_weight
from .sink_transposes_region import Region, grow, live
from .transposes import _perm


def _src(R: Region, v):
    e = R.entries.get(id(v))
    return e.input(0) if e is not None else v


def plan(R: Region):
    """``(exits, need, removed, added)``: every outside reader ``(v, node, i, kind, old
    shape)``, the values needing a new Transpose, and the Transpose counts."""
    g, exits, need, gain = R.graph, [], {}, 0
    for v in R.vals.values():
        q = R.q[id(v)]
        for n, i in list(v.uses):
            node = R.nodes.get(id(n))
            if (node is not None and i in node[1].data) or not live(g, n):
                continue
            kind = classify(g, n, i, v.shape, q)
            if kind == "transpose" and is_identity(composed(n, q)):
                bad = output_guard(g, n.outputs[0], _src(R, v))
                kind, gain = ("need", gain) if bad else ("cancel", gain + 1)
            if kind == "need":
                need[id(v)] = v
            exits.append((v, n, i, kind, v.shape))
        if is_output(g, v):
            need[id(v)] = v
    removed = gain + sum(1 for k in R.entries if k not in need)
    return exits, need, removed, sum(1 for k in need if k not in R.entries)


def _rewrite_nodes(R: Region) -> None:
    g = R.graph
    for node, sp, q in R.nodes.values():
        for i in sp.data:
            w = node.input(i)
            if w is not None and id(w) in R.entries:
                g.set_input(node, i, _src(R, w))
            elif w is not None and w.is_const and permute_const(w.const, q) is not None:
                g.set_input(node, i, new_const(g, permute_const(w.const, q), f"{node.name}.c"))
    for n in _topo(R):
        _, sp, q = R.nodes[id(n)]
        if sp.edit is not None:
            sp.edit(g, n, q)
        infer_node(n)


def _topo(R: Region) -> list:
    """The region's nodes, producers first (the engine re-sorts the graph after the round)."""
    order, seen = [], set()
    for start, _, _ in R.nodes.values():
        stack = [(start, False)]
        while stack:
            n, ready = stack.pop()
            if ready:
                order.append(n)
            elif id(n) not in seen:
                seen.add(id(n))
                stack.append((n, True))
                stack += [(v.producer, False) for v in n.inputs if v is not None
                          and v.producer is not None and id(v.producer) in R.nodes]
    return order


def _rewrite_exits(R: Region, exits, need) -> None:
    g, made = R.graph, {}
    for v, n, i, kind, shape in exits:
        q, src = R.q[id(v)], _src(R, v)
        if kind == "need" and id(v) not in R.entries:
            if id(v) not in made:
                made[id(v)] = g.op("Transpose", v, perm=q, name=f"{v.name}_t")
            g.set_input(n, i, made[id(v)])
        elif kind in ("transpose", "cancel"):
            n.attrs["perm"] = composed(n, q)
            g.set_input(n, 0, src)
            infer_node(n)
            if kind == "cancel":
                g.replace_uses(n.outputs[0], src)
        elif kind in ("free", "fold"):
            if kind == "fold":
                fold_weight(g, n, shape, q)
            g.set_input(n, 0, src)
            infer_node(n)
    for v in need.values():
        if is_output(g, v) and id(v) not in R.entries:
            t = made.get(id(v)) or g.op("Transpose", v, perm=R.q[id(v)], name=f"{v.name}_t")
            g.outputs = [t if o is v else o for o in g.outputs]
            name = v.name
            v.name, t.name = g.unique_name(name + "_sunk"), name


def _sink(graph, m):
    root = m.root
    if root.input(0).is_const or _perm(root) is None or is_identity(_perm(root)):
        return None
    R = grow(graph, root)
    if any(id(e.input(0)) in R.q for e in R.entries.values()):
        return Decline("an entry Transpose reads a value of its own region")
    exits, need, removed, added = plan(R)
    if not R.nodes and (removed == 0 or all(e[3] in ("transpose", "cancel") for e in exits)):
        return None  # nothing to sink through; plain Transpose chains are compose's job
    if added >= removed:
        return Decline(f"sinking would remove {removed} Transpose(s) and add {added}")
    _rewrite_nodes(R)
    _rewrite_exits(R, exits, need)
    return root.outputs[0]


RULES = (Rule("sink_transposes", P("Transpose", V("x")), _sink),)
