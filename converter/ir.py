"""The graph IR: ``Value``, ``Node`` and ``Graph``.

The op vocabulary is ONNX's (op names, attribute names, NCHW semantics), restricted to the
subset declared in :mod:`converter.ops`, in the form of ONNX opset 18+ (operands such as
Reshape's shape, Slice's starts or Pad's pads are constant *inputs*, not attributes).
Source of the op semantics: onnx/onnx ``docs/Operators.md``.

Weights and other constants are ``Value`` objects with ``const`` set to a numpy array and no
producer; they never live in attributes. Node lists are kept in topological order.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .names import NameSet

Dim = Any  # int, a symbolic str, or None
Shape = Optional[tuple]


class Value:
    """A tensor edge of the graph.

    Attributes:
        name: unique name inside the graph (source names are kept where possible).
        dtype: numpy dtype name (``"float32"``, ``"int64"``, ...).
        shape: tuple of dims (int, symbolic str or None), or None when the rank is unknown.
        const: numpy array for weights and folded constants, else None.
        producer: the node writing this value (None for graph inputs and constants).
        uses: ordered ``(node, input_index)`` pairs reading this value.
    """

    __slots__ = ("name", "dtype", "shape", "const", "producer", "uses")

    def __init__(self, name: str, dtype: str = "float32", shape: Shape = None,
                 const: Optional[np.ndarray] = None):
        self.name = name
        self.const = const
        if const is not None:
            dtype, shape = str(const.dtype), tuple(int(d) for d in const.shape)
        self.dtype = dtype
        self.shape = tuple(shape) if shape is not None else None
        self.producer: Optional[Node] = None
        self.uses: list[tuple[Node, int]] = []

    @property
    def is_const(self) -> bool:
        return self.const is not None

    @property
    def rank(self) -> Optional[int]:
        return None if self.shape is None else len(self.shape)

    def consumers(self) -> list["Node"]:
        """Distinct consumer nodes in use order."""
        seen: list[Node] = []
        for n, _ in self.uses:
            if not any(n is s for s in seen):
                seen.append(n)
        return seen

    def __repr__(self) -> str:
        kind = "const " if self.is_const else ""
        return f"<Value {kind}{self.name} {self.dtype}{list(self.shape or [])}>"


class Node:
    """One operation.

    Attributes:
        op: IR op name (an ONNX op name declared in :mod:`converter.ops`).
        inputs: Values, or None for an omitted optional input.
        outputs: Values produced by this node.
        attrs: ONNX attributes (bool / int / float / str / tuples of those).
        name: unique node name.
        meta: provenance: ``source_op``, ``source_loc``, ``fused_from`` (list of op names).
    """

    __slots__ = ("op", "inputs", "outputs", "attrs", "name", "meta")

    def __init__(self, op: str, name: str, attrs: Optional[dict] = None,
                 meta: Optional[dict] = None):
        self.op = op
        self.name = name
        self.attrs: dict = dict(attrs or {})
        self.meta: dict = dict(meta or {})
        self.inputs: list[Optional[Value]] = []
        self.outputs: list[Value] = []

    def input(self, i: int) -> Optional[Value]:
        """The i-th input or None when omitted / absent."""
        return self.inputs[i] if i < len(self.inputs) else None

    def const_input(self, i: int) -> Optional[np.ndarray]:
        """The array of a constant i-th input, None when absent or not constant."""
        v = self.input(i)
        return v.const if v is not None else None

    def __repr__(self) -> str:
        return f"<Node {self.op} {self.name}>"


def stable_order(deps: dict) -> list:
    """Kahn's topological order of ``deps`` (key -> keys it reads; keys are comparable
    positions, e.g. source-file indices), ties broken by the smallest key, so an already
    sorted graph keeps its order. Keys on a cycle are left out: a result shorter than
    ``deps`` means the graph has a cycle."""
    import heapq

    users: dict = {}
    for k, ds in deps.items():
        for d in ds:
            users.setdefault(d, []).append(k)
    indeg = {k: len(ds) for k, ds in deps.items()}
    ready = [k for k, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for u in users.get(k, []):
            indeg[u] -= 1
            if indeg[u] == 0:
                heapq.heappush(ready, u)
    return order


class GraphError(Exception):
    """Raised by :meth:`Graph.validate` when the graph breaks an IR invariant."""


def _canon_attr(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_canon_attr(x) for x in v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


class Graph:
    """A dataflow graph of :class:`Node` objects over :class:`Value` edges.

    ``nodes`` is kept in topological order; builder helpers append, and rewrites call
    :meth:`toposort` (stable) after inserting nodes.

    ``source_layout`` is the layout the source framework feeds rank-4 images in: ``"nchw"``
    (PyTorch, ONNX, Caffe) or ``"nhwc"`` (TensorFlow). The IR itself is always NCHW; a
    frontend of an NHWC framework transposes at its boundaries, and exporters whose runtime
    can take either layout use this to give NHWC models NHWC inputs (``--io-layout``).
    """

    def __init__(self, name: str = "graph"):
        self.name = name
        self.source_layout = "nchw"
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.nodes: list[Node] = []
        self._names = {"value": NameSet(), "node": NameSet()}

    # ----------------------------------------------------------------- naming
    def unique_name(self, base: str, kind: str = "value") -> str:
        """Return ``base`` if unused among this graph's ``kind`` names ("value" or "node"),
        else ``base_N`` with the next free N."""
        return self._names[kind].unique(base or "v")

    # ---------------------------------------------------------------- builders
    def add_input(self, name: str, dtype: str, shape: Sequence[Dim]) -> Value:
        """Declare a graph input with the given dtype and shape."""
        v = Value(self.unique_name(name), dtype, tuple(shape))
        self.inputs.append(v)
        return v

    def const(self, array: Any, name: str = "const") -> Value:
        """A constant value holding ``np.asarray(array)`` (kept as-is, not copied)."""
        arr = np.asarray(array)
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        return Value(self.unique_name(name), const=arr)

    def add(self, op: str, inputs: Sequence[Optional[Value]], attrs: Optional[dict] = None,
            name: Optional[str] = None, n_out: int = 1, out_names: Optional[Sequence[str]] = None,
            meta: Optional[dict] = None, infer: bool = True) -> Node:
        """Append a node; create its outputs and infer their dtype and shape.

        Raises:
            KeyError: ``op`` is not in the IR op set (:mod:`converter.ops`).
        """
        from .ops import infer_node  # local: ops imports ir

        node = Node(op, self.unique_name(name or op, "node"), {k: _canon_attr(v) for k, v in
                                                        (attrs or {}).items()}, meta)
        for i, v in enumerate(inputs):
            node.inputs.append(v)
            if v is not None:
                v.uses.append((node, i))
        names = list(out_names or [])
        for i in range(n_out):
            base = names[i] if i < len(names) else (node.name if n_out == 1 else f"{node.name}_{i}")
            out = Value(self.unique_name(base))
            out.producer = node
            node.outputs.append(out)
        self.nodes.append(node)
        if infer:
            infer_node(node)
        return node

    def op(self, op: str, *inputs: Optional[Value], name: Optional[str] = None,
           meta: Optional[dict] = None, **attrs: Any) -> Value:
        """Shorthand for a single-output :meth:`add`; returns the output value."""
        return self.add(op, list(inputs), attrs, name=name, meta=meta).outputs[0]

    # ---------------------------------------------------------------- editing
    def rename(self, v: Value, name: str) -> None:
        """Give ``v`` the name ``name`` (made unique if already taken by another value)."""
        if v.name != name:
            v.name = self.unique_name(name)

    def set_input(self, node: Node, i: int, v: Optional[Value]) -> None:
        """Replace input ``i`` of ``node`` by ``v`` (None omits it), keeping use lists right."""
        old = node.inputs[i]
        if old is not None:
            old.uses = [(n, k) for n, k in old.uses if not (n is node and k == i)]
        node.inputs[i] = v
        if v is not None:
            v.uses.append((node, i))

    def replace_uses(self, old: Value, new: Value) -> None:
        """Make every reader of ``old`` read ``new``; graph outputs follow, keeping their name."""
        for n, i in list(old.uses):
            self.set_input(n, i, new)
        if any(o is old for o in self.outputs):
            self.outputs = [new if o is old else o for o in self.outputs]
            is_boundary = new.is_const or any(v is new for v in self.inputs)
            if not is_boundary and sum(o is new for o in self.outputs) == 1:
                old_name = old.name
                old.name, new.name = self.unique_name(old_name + "_replaced"), old_name

    def remove(self, node: Node) -> None:
        """Delete ``node``; its outputs must be unused and not graph outputs.

        Raises:
            GraphError: an output of the node is still read.
        """
        for o in node.outputs:
            if o.uses or any(o is g for g in self.outputs):
                raise GraphError(f"cannot remove {node.name}: output {o.name} still used")
        for i in range(len(node.inputs)):
            self.set_input(node, i, None)
        self.nodes = [n for n in self.nodes if n is not node]

    def cleanup(self) -> int:
        """Remove nodes whose outputs reach no graph output; return how many were removed."""
        live: set[int] = set()
        stack = [o.producer for o in self.outputs if o.producer is not None]
        while stack:
            n = stack.pop()
            if id(n) in live:
                continue
            live.add(id(n))
            stack.extend(v.producer for v in n.inputs if v is not None and v.producer)
        dead = [n for n in self.nodes if id(n) not in live]
        for n in reversed(dead):
            for i in range(len(n.inputs)):
                self.set_input(n, i, None)
        self.nodes = [n for n in self.nodes if id(n) in live]
        return len(dead)

    def toposort(self) -> None:
        """Reorder ``nodes`` topologically, stable with respect to the current order.

        Raises:
            GraphError: the graph has a cycle.
        """
        index = {id(n): k for k, n in enumerate(self.nodes)}
        deps = {k: {index[id(v.producer)] for v in n.inputs if v is not None
                    and v.producer is not None and id(v.producer) in index}
                for k, n in enumerate(self.nodes)}
        order = stable_order(deps)
        if len(order) != len(self.nodes):
            raise GraphError("graph has a cycle")
        self.nodes = [self.nodes[k] for k in order]

    def infer_shapes(self) -> None:
        """Re-run dtype and shape inference on every node, in order."""
        from .ops import infer_node

        for n in self.nodes:
            infer_node(n)

    # ----------------------------------------------------------------- queries
    def values(self) -> list[Value]:
        """Every distinct value: inputs, constants and node outputs, in a deterministic order."""
        seen: dict[int, Value] = {}
        for v in self.inputs:
            seen.setdefault(id(v), v)
        for n in self.nodes:
            for v in n.inputs:
                if v is not None:
                    seen.setdefault(id(v), v)
            for v in n.outputs:
                seen.setdefault(id(v), v)
        for v in self.outputs:
            seen.setdefault(id(v), v)
        return list(seen.values())

    def op_counts(self) -> dict[str, int]:
        """Number of nodes per op, sorted by op name."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return dict(sorted(counts.items()))

    def validate(self) -> None:
        """Check use lists, topological order, unique names and every node against its schema.

        Raises:
            GraphError: with the node name and the broken invariant.
        """
        from .ops import check_node

        produced: set[int] = {id(v) for v in self.inputs}
        names: dict[str, Value] = {}
        for v in self.values():
            if v.name in names and names[v.name] is not v:
                raise GraphError(f"duplicate value name {v.name!r}")
            names[v.name] = v
        node_names: set[str] = set()
        for n in self.nodes:
            if n.name in node_names:
                raise GraphError(f"duplicate node name {n.name!r}")
            node_names.add(n.name)
            for i, v in enumerate(n.inputs):
                if v is None:
                    continue
                if not v.is_const and id(v) not in produced:
                    raise GraphError(f"{n.name}: input {v.name} used before it is produced")
                if not any(u is n and k == i for u, k in v.uses):
                    raise GraphError(f"{n.name}: use list of {v.name} misses input {i}")
            for o in n.outputs:
                if o.producer is not n:
                    raise GraphError(f"{n.name}: output {o.name} has another producer")
                for u, k in o.uses:
                    if u.input(k) is not o:
                        raise GraphError(f"{o.name}: stale use by {u.name}[{k}]")
                produced.add(id(o))
            check_node(n)
        for o in self.outputs:
            if not o.is_const and id(o) not in produced:
                raise GraphError(f"graph output {o.name} is not produced")

    def dump(self) -> str:
        """Deterministic text: inputs, one node per line (op, name, ins -> outs, attrs), outputs."""
        def vs(v: Optional[Value]) -> str:
            if v is None:
                return "-"
            shape = "x".join("?" if d is None else str(d) for d in (v.shape or ()))
            return f"{'$' if v.is_const else '%'}{v.name}:{v.dtype}[{shape}]"

        lines = [f"graph {self.name}"]
        lines += [f"  input {vs(v)}" for v in self.inputs]
        for n in self.nodes:
            attrs = " ".join(f"{k}={n.attrs[k]!r}" for k in sorted(n.attrs))
            ins = ", ".join(vs(v) for v in n.inputs)
            outs = ", ".join(vs(v) for v in n.outputs)
            lines.append(f"  {n.op} {n.name}({ins}) -> {outs}" + (f" {{{attrs}}}" if attrs else ""))
        lines += [f"  output {vs(v)}" for v in self.outputs]
        return "\n".join(lines) + "\n"

