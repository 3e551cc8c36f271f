"""Walk a frozen TensorFlow GraphDef and translate it into IR.

Only the nodes the requested outputs depend on (through data inputs; control inputs are
ignored) are walked, in a stable topological order. Per node: ``Const`` becomes an IR
constant; a node reading the output of an unsupported node is only checked for a converter;
a node reading a random tensor (:mod:`.ops_random`, the dropout subgraph) is resolved by
interval arithmetic or refused; a deterministic node whose inputs are all constants is
folded by TensorFlow itself (:mod:`.fold`: Shape arithmetic, StridedSlice on shapes, Pack of
constants, ...); anything else runs the converter registered as ``("tensorflow", op)`` after
its checks. Every problem is collected and raised at the end as one
:class:`~converter.errors.UnsupportedOpsError` (stage ``frontend:tensorflow``).

Layout: a rank-4 graph input becomes an NCHW IR input followed by ``Transpose([0,2,3,1])``
so converters see TF's NHWC; a rank-4 graph output gets ``Transpose([0,3,1,2])``.
Unknown input dims: the batch dim becomes 1, any other needs ``--input-shape`` (given in the
source layout, NHWC).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from converter.errors import Issue, UnreadableModelError, UnsupportedOpsError, UsageError
from converter.ir import Graph, GraphError, Value, stable_order
from converter.names import sanitize
from converter.registry import find_converter

from . import ops_random
from .context import NCHW_TO_NHWC, NHWC_TO_NCHW, Ctx, TfNode, Unsupported
from .fold import (TF_FOLDABLE, FoldError, decode_attrs, fold_node, output_count,
                   tensor_array)

FW = "tensorflow"
STAGE = "frontend:tensorflow"
POISON = object()
PASS_THROUGH = ("Identity", "StopGradient", "Snapshot", "PreventGradient",
                "PlaceholderWithDefault", "CheckNumerics", "EnsureShape")


@dataclass
class Spec:
    """What a loader hands the walk.

    Attributes:
        graph_def: the frozen ``GraphDef``.
        inputs: ``(placeholder node name, IR input name)`` per graph input, in order.
        outputs: ``(tensor name "node:idx", IR output name)`` per graph output, in order.
        bound: placeholder node name -> array fed as a constant (keep_prob = 1.0).
        name: graph name.
    """

    graph_def: Any
    inputs: list
    outputs: list
    bound: dict = field(default_factory=dict)
    name: str = "graph"


@dataclass
class WalkState:
    """Everything the walk shares between nodes."""

    g: Graph
    path: Any
    nodes: dict                                  # node name -> NodeDef
    reserved: dict = field(default_factory=dict)  # node name -> IR value name
    env: dict = field(default_factory=dict)       # (node, idx) -> Value | POISON | Uniform
    used: dict = field(default_factory=dict)      # node name -> set of read output indices
    named: set = field(default_factory=set)       # ids of values bound to a node name
    issues: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    input_shapes: dict = field(default_factory=dict)  # IR input name -> TF-layout shape

    def issue(self, op: str, code: str, reason: str, label: str, hint: str = "") -> None:
        """Record one unsupported node."""
        self.issues.append(Issue(STAGE, op, code, reason, [label], hint))


def split_ref(ref: str) -> Optional[tuple]:
    """``"node:1"`` -> ``("node", 1)``, ``"node"`` -> ``("node", 0)``, control ``"^x"`` -> None."""
    if ref.startswith("^"):
        return None
    name, _, idx = ref.rpartition(":")
    if name and idx.isdigit():
        return name, int(idx)
    return ref, 0


def walk(spec: Spec, overrides: dict, path: Any) -> tuple[Graph, dict, dict]:
    """Translate ``spec.graph_def`` into an IR graph.

    Returns:
        (graph, source op counts, IR input name -> TF-layout input shape).
    Raises:
        UsageError: an unknown non-batch input dim without ``--input-shape``, or names that
            are not in the graph; UnsupportedOpsError: every unsupported node, all at once;
        UnreadableModelError: a cycle, a missing node, or shapes that do not combine.
    """
    nodes = {nd.name: nd for nd in spec.graph_def.node}
    st = WalkState(Graph(sanitize(spec.name) or "graph"), path, nodes)
    order = _reachable(st, spec)
    out_names = [st.g.unique_name(sanitize(n)) for _, n in spec.outputs]
    _reserve(st, spec, order)
    _inputs(st, spec, overrides)
    cx = Ctx(st.g)
    for name in order:
        if name not in st.reserved or (name, 0) in st.env:
            continue  # graph inputs and bound placeholders
        _node(cx, st, nodes[name])
    if st.issues:
        err = UnsupportedOpsError(st.issues)
        err.source_ops = dict(st.counts)
        raise err
    _outputs(st, spec, out_names)
    return st.g, dict(sorted(st.counts.items())), st.input_shapes


def _reachable(st: WalkState, spec: Spec) -> list:
    """Names of the nodes the outputs depend on, topologically sorted (stable)."""
    index = {n: k for k, n in enumerate(st.nodes)}
    stop = {p for p, _ in spec.inputs} | set(spec.bound)
    need, stack = set(), [split_ref(t)[0] for t, _ in spec.outputs]
    while stack:
        n = stack.pop()
        if n in need:
            continue
        if n not in st.nodes:
            raise UnreadableModelError(f"{st.path}: the graph reads node {n!r}, which it "
                                       "does not contain", "re-export the frozen graph")
        need.add(n)
        if n not in stop:
            stack += [r[0] for r in map(split_ref, st.nodes[n].input) if r]
    deps = {n: {r[0] for r in map(split_ref, st.nodes[n].input) if r} & need
            if n not in stop else set() for n in need}
    names = sorted(need, key=index.__getitem__)  # GraphDef order breaks ties
    pos = {n: k for k, n in enumerate(names)}
    order = [names[k] for k in stable_order({pos[n]: {pos[d] for d in ds}
                                             for n, ds in deps.items()})]
    if len(order) != len(need):
        raise UnreadableModelError(f"{st.path}: the graph has a cycle (TF1 control flow "
                                   "loops are not supported)", "export a loop-free graph")
    for n in order:
        for r in map(split_ref, st.nodes[n].input):
            if r and n not in stop:
                st.used.setdefault(r[0], set()).add(r[1])
    for t, _ in spec.outputs:
        r = split_ref(t)
        st.used.setdefault(r[0], set()).add(r[1])
    return order


def _reserve(st: WalkState, spec: Spec, order: list) -> None:
    for p, ir_name in spec.inputs:
        st.reserved[p] = st.g.unique_name(sanitize(ir_name))
    for n in order:
        if n not in st.reserved:
            st.reserved[n] = st.g.unique_name(sanitize(n))


def _bind(st: WalkState, key: tuple, v: Any) -> None:
    """Bind ``v`` to TF output ``key``; an unnamed produced value takes the node's name."""
    if isinstance(v, Value) and not v.is_const and v.producer is not None and \
            id(v) not in st.named:
        node, idx = key
        base = st.reserved[node]
        v.name = base if idx == 0 else st.g.unique_name(f"{base}_{idx}")
        st.named.add(id(v))
    st.env[key] = v


def _inputs(st: WalkState, spec: Spec, overrides: dict) -> None:
    known = {p for p, _ in spec.inputs} | {st.reserved[p] for p, _ in spec.inputs}
    bad = [k for k in overrides if k not in known and not (k == "" and len(spec.inputs) == 1)]
    if bad:
        names = ", ".join(st.reserved[p] for p, _ in spec.inputs)
        raise UsageError(f"--input-shape names no input of the model: {', '.join(bad)}",
                         f"the model inputs are {names}")
    for p, arr in spec.bound.items():
        st.env[(p, 0)] = Value(st.reserved.get(p) or st.g.unique_name(sanitize(p)),
                               const=np.asarray(arr))
    for p, _ in spec.inputs:
        nd = st.nodes[p]
        attrs = decode_attrs(nd)
        dtype = attrs.get("dtype", "float32")
        shape = _input_shape(st, p, attrs.get("shape"), overrides, len(spec.inputs))
        st.input_shapes[st.reserved[p]] = shape
        if len(shape) == 4:
            v = Value(st.reserved[p], dtype, tuple(shape[i] for i in NHWC_TO_NCHW))
            st.g.inputs.append(v)
            node = st.g.add("Transpose", [v], {"perm": NCHW_TO_NHWC},
                            name=f"{st.reserved[p]}_nhwc", meta={"source_op": "Placeholder"})
            st.env[(p, 0)] = node.outputs[0]
        else:
            v = Value(st.reserved[p], dtype, tuple(shape))
            st.g.inputs.append(v)
            st.env[(p, 0)] = v


def _input_shape(st: WalkState, p: str, declared, overrides: dict, n_inputs: int) -> tuple:
    """Static TF-layout shape of input placeholder ``p``: override (TF or IR name, or the only
    one), else the declared dims with an unknown batch dim as 1.

    Raises:
        UsageError: unknown rank or an unknown non-batch dim without an override.
    """
    name = st.reserved[p]
    shape = overrides.get(p, overrides.get(name))
    if shape is None and n_inputs == 1 and len(overrides) == 1:
        shape = next(iter(overrides.values()))
    if shape is not None:
        shown = "x".join("?" if d is None else str(d) for d in declared or ())
        if declared is not None and (len(shape) != len(declared) or any(
                d is not None and d != int(s) for d, s in zip(declared, shape))):
            raise UsageError(f"--input-shape {name}: {'x'.join(map(str, shape))} does not fit "
                             f"the shape the model declares ({shown})",
                             "change only the unknown (?) dims, in the source layout (NHWC)")
        return tuple(int(d) for d in shape)
    if declared is None or any(d is None for d in declared[1:]):
        shown = "unknown rank" if declared is None else \
            "x".join("?" if d is None else str(d) for d in declared)
        guess = "x".join("1" if d is None else str(d) for d in declared or (1, 224, 224, 3))
        raise UsageError(f"input {name!r} has no static shape in the model ({shown})",
                         f"pass --input-shape {name}={guess} (source layout: NHWC for images)")
    return tuple(1 if d is None else int(d) for d in declared)


def _node(cx: Ctx, st: WalkState, nd) -> None:
    op = nd.op
    st.counts[op] = st.counts.get(op, 0) + 1
    label = st.reserved[nd.name]
    refs = [r for r in map(split_ref, nd.input) if r]
    ins = [st.env.get(r, POISON) for r in refs]
    entry = find_converter(FW, op)
    if any(v is POISON for v in ins):
        if entry is None and op not in PASS_THROUGH + ("Const", "IdentityN"):
            _no_converter(st, op, label)
        return _poison(st, nd)
    try:
        if op == "Const":
            return _bind(st, (nd.name, 0), Value(label, const=tensor_array(nd)))
        if op in PASS_THROUGH or op == "IdentityN":
            for k, v in enumerate(ins if op == "IdentityN" else ins[:1]):
                _bind(st, (nd.name, k), v)
            return None
        if ops_random.involved(op, ins):
            outs = ops_random.apply(op, decode_attrs(nd), ins)
            return _bind_all(st, nd, [_as_value(st, o, label) for o in outs])
        if _foldable(op, ins):
            outs = fold_node(nd, [v.const for v in ins])
            return _bind_all(st, nd, [Value(st.g.unique_name(label), const=a) for a in outs])
    except Unsupported as e:
        st.issue(op, e.code, e.reason, label)
        return _poison(st, nd)
    except FoldError as e:
        raise UnreadableModelError(f"{st.path}: node {label!r} ({op}) cannot be computed at "
                                   f"load time: {e}", "check the graph") from None
    if entry is None:
        _no_converter(st, op, label)
        return _poison(st, nd)
    _run(cx, st, nd, entry, label, ins)


def _foldable(op: str, ins: list) -> bool:
    return op in TF_FOLDABLE and bool(ins) and all(isinstance(v, Value) and v.is_const
                                                  for v in ins)


def _as_value(st: WalkState, o: Any, label: str) -> Any:
    if isinstance(o, np.ndarray):
        return Value(st.g.unique_name(label), const=o)
    return o


def _bind_all(st: WalkState, nd, outs: list) -> None:
    for k, v in enumerate(outs):
        if v is not None:
            _bind(st, (nd.name, k), v)


def _no_converter(st: WalkState, op: str, label: str) -> None:
    if op == "Placeholder":
        return st.issue(op, "tensorflow.unfed", "a placeholder that is not a graph input",
                        label, "list it in --input-names")
    if op in ("VariableV2", "Variable", "VarHandleOp", "ReadVariableOp"):
        return st.issue(op, "tensorflow.not_frozen", f"{op}: the graph is not frozen",
                        label, "freeze it (convert_variables_to_constants) or pass the "
                        "SavedModel folder")
    st.issue(op, "no-converter", f"no TensorFlow converter for {op} (not in the IR op set)",
             label, "rewrite the model with supported ops or open an issue")


def _poison(st: WalkState, nd) -> None:
    for k in st.used.get(nd.name, {0}):
        st.env[(nd.name, k)] = POISON


def _run(cx: Ctx, st: WalkState, nd, entry, label: str, ins: list) -> None:
    attrs = decode_attrs(nd)
    used = st.used.get(nd.name, set())
    n_out = output_count(nd, attrs)
    n = TfNode(nd.op, label, ins, attrs, n_out, [k in used for k in range(n_out)])
    failed = entry.failed_checks(n)
    if failed:
        for c in failed:
            st.issue(nd.op, c.code, c.text, label)
        return _poison(st, nd)
    cx.node = n
    try:
        res = entry.fn(cx, n)
    except Unsupported as e:
        st.issue(nd.op, e.code, e.reason, label)
        return _poison(st, nd)
    except GraphError as e:
        raise UnreadableModelError(f"{st.path}: node {label!r} ({nd.op}): {e}",
                                   "the graph is inconsistent; re-export it") from None
    res = list(res) if isinstance(res, (list, tuple)) else [res]
    for k in sorted(used):
        v = res[k] if k < len(res) else None
        if v is None:
            st.issue(nd.op, "tensorflow.output", f"output {k} is not produced by the "
                     "converter", label)
            st.env[(nd.name, k)] = POISON
        else:
            _bind(st, (nd.name, k), v)


def _outputs(st: WalkState, spec: Spec, out_names: list) -> None:
    """Graph outputs in order, named as the loader asked; rank-4 outputs back to NCHW."""
    g, final = st.g, []
    for (ref, _), want in zip(spec.outputs, out_names):
        v = st.env[split_ref(ref)]
        if isinstance(v, ops_random.Uniform):
            raise UnsupportedOpsError([Issue(STAGE, "RandomUniform", "tensorflow.random",
                                             "a graph output is random", [want])])
        if v.rank == 4:
            v = g.add("Transpose", [v], {"perm": NHWC_TO_NCHW}, name=want,
                      meta={"source_op": "graph.output"}).outputs[0]
        elif v.is_const or any(v is i for i in g.inputs) or any(v is f for f in final):
            v = g.add("Identity", [v], name=want, meta={"source_op": "graph.output"}).outputs[0]
        v.name = want
        final.append(v)
    g.outputs = final
