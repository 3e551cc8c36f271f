"""Walk an ONNX graph in topological order and translate it into IR.

Per node, in order: a node reading the output of an unsupported node is only checked for a
converter; a node of another domain than ai.onnx is an issue; a node whose inputs are all
constants is folded (:mod:`.fold`); otherwise the converter registered as
``("onnx", op_type)`` runs after its checks. Every problem is collected and raised at the end
as one :class:`~converter.errors.UnsupportedOpsError` (stage ``frontend:onnx``).

Names: every ONNX tensor name is reserved (sanitized, made unique) before anything is built,
so IR values keep the ONNX tensor names and intermediate values never take one of them.
Initializers are constants, also when IR<4 files list them in ``graph.input`` (docs/IR.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from converter.errors import Issue, UnreadableModelError, UnsupportedOpsError, UsageError
from converter.ir import Graph, GraphError, Value, stable_order
from converter.names import sanitize
from converter.ops import ONNX_DTYPE_CODE
from converter.registry import find_converter

from .context import Ctx, OnnxNode, Unsupported
from .fold import NONDETERMINISTIC, FoldTooLarge, fold_converted, fold_node, foldable

FW = "onnx"
STAGE = "frontend:onnx"
POISON = object()  # value produced downstream of an unsupported node


@dataclass
class WalkState:
    """Everything the walk shares between nodes."""

    g: Graph
    path: Any
    opsets: dict
    reserved: dict = field(default_factory=dict)   # onnx name -> IR value name
    env: dict = field(default_factory=dict)        # onnx name -> Value | POISON
    used: dict = field(default_factory=dict)       # onnx name -> reader count
    named: set = field(default_factory=set)        # ids of values bound to an onnx name
    issues: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    def issue(self, op: str, code: str, reason: str, label: str, hint: str = "") -> None:
        self.issues.append(Issue(STAGE, op, code, reason, [label], hint))


def walk(model, overrides: dict, name: str, path: Any = "",
         external: dict | None = None) -> tuple[Graph, dict]:
    """Translate ``model`` (a checked ModelProto) into an IR graph; ``external`` maps
    initializer names to arrays already read from external data (reader.read_model).

    Returns:
        (graph, source op counts).
    Raises:
        UsageError: an input without a static shape and no override, or an override naming
            no input; UnsupportedOpsError: every unsupported node / input, all at once;
        UnreadableModelError: a cycle, a bad tensor, or nodes whose shapes do not combine.
    """
    st = WalkState(Graph(name), path, opset_versions(model))
    gp = model.graph
    nodes = toposort(gp.node, path)
    prescan(st, gp, nodes)
    _reserve(st, gp, nodes)
    _constants(st, gp, external or {})
    try:
        _inputs(st, gp, overrides)
    except UsageError:
        if st.issues:  # unsupported ops matter more than a missing --input-shape
            raise UnsupportedOpsError(st.issues) from None
        raise
    for o in gp.output:
        st.used[o.name] = st.used.get(o.name, 0) + 1
    for pn in nodes:
        for i in pn.input:
            st.used[i] = st.used.get(i, 0) + 1
    cx = Ctx(st.g)
    for pn in nodes:
        _node(cx, st, pn)
    if st.issues:
        err = UnsupportedOpsError(st.issues)
        err.source_ops = dict(st.counts)  # every source op, for `mconv ops`
        raise err
    _outputs(st, gp)
    return st.g, dict(sorted(st.counts.items()))


def prescan(st: WalkState, gp, nodes) -> None:
    """Record an issue for every node of another domain or without a converter that
    folding cannot remove either (its inputs may not all become constants), before input
    shapes are asked for; Shape / Size count as constant (shapes are static). The walk
    then still runs to add converter-check failures (duplicates merge)."""
    from onnx import AttributeProto

    maybe_const = {t.name for t in gp.initializer} | {""}
    for pn in nodes:
        domain = "" if pn.domain in ("", "ai.onnx") else pn.domain
        label = _label(pn)
        subgraph = any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
                       for a in pn.attribute)
        if domain:
            _domain_issue(st, domain, pn.op_type, label)
        elif pn.op_type in ("Shape", "Size", "Constant") or (
                len(pn.input) and all(i in maybe_const for i in pn.input) and
                pn.op_type not in NONDETERMINISTIC and not subgraph):
            maybe_const.update(pn.output)
        elif find_converter(FW, pn.op_type) is None:
            _no_converter(st, pn.op_type, label)


def opset_versions(model) -> dict:
    """Domain -> opset version (``"ai.onnx"`` folded into ``""``; IR<3 files default to 1)."""
    out = {"": 1}
    for o in model.opset_import:
        out["" if o.domain in ("", "ai.onnx") else o.domain] = int(o.version)
    return out


def toposort(nodes, path: Any) -> list:
    """Nodes in a stable topological order (ORT accepts unsorted files, docs/IR.md does not).

    Raises:
        UnreadableModelError: the graph has a cycle.
    """
    producer = {o: k for k, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[i] for i in n.input if i in producer} for n in nodes]
    if all(d < k for k, ds in enumerate(deps) for d in ds):
        return list(nodes)
    order = stable_order(dict(enumerate(deps)))
    if len(order) != len(nodes):
        raise UnreadableModelError(f"{path}: the graph has a cycle", "re-export the model")
    return [nodes[k] for k in order]


def _reserve(st: WalkState, gp, nodes) -> None:
    names = [i.name for i in gp.input] + [t.name for t in gp.initializer]
    names += [o for n in nodes for o in n.output if o]
    for n in names:
        if n not in st.reserved:
            st.reserved[n] = st.g.unique_name(sanitize(n))


def _bind(st: WalkState, onnx_name: str, v: Value) -> None:
    """Bind ``v`` to ``onnx_name``; a value not yet bound takes the reserved ONNX name."""
    if id(v) not in st.named and not any(v is i for i in st.g.inputs):
        v.name = st.reserved[onnx_name]
        st.named.add(id(v))
    st.env[onnx_name] = v


def _constants(st: WalkState, gp, external: dict) -> None:
    from onnx import numpy_helper

    for t in gp.initializer:
        try:
            arr = external[t.name] if t.name in external else \
                np.require(numpy_helper.to_array(t), requirements="C")
        except Exception as e:
            raise UnreadableModelError(f"{st.path}: initializer {t.name!r} is corrupt "
                                       f"({str(e).splitlines()[0][:120]})",
                                       "re-export the model") from None
        _bind(st, t.name, Value(st.reserved[t.name], const=arr))
    for t in gp.sparse_initializer:
        st.issue("<sparse_initializer>", "onnx.sparse", "sparse initializers are not "
                 "supported", sanitize(t.values.name), "densify the tensor")
        st.env[t.values.name] = POISON


def _inputs(st: WalkState, gp, overrides: dict) -> None:
    inits = set(st.env)
    real = [i for i in gp.input if i.name not in inits]
    _check_override_names(real, overrides)
    for i in real:
        dtype, dims = _input_type(i)
        if dtype is None:
            st.issue("<input>", "onnx.input_type", f"graph input type {dims} is not a tensor "
                     "of a supported dtype", sanitize(i.name))
            st.env[i.name] = POISON
            continue
        shape = _shape_for(i.name, dims, overrides, len(real))
        v = Value(st.reserved[i.name], dtype, shape)
        st.g.inputs.append(v)
        st.named.add(id(v))
        st.env[i.name] = v


def _input_type(vi) -> tuple[Optional[str], Any]:
    """(IR dtype, declared dims: ints / None per dim, None when the rank is unknown); dtype
    None (with a description) when the input is no tensor of an IR dtype."""
    from onnx import helper

    if not vi.type.HasField("tensor_type"):
        return None, vi.type.WhichOneof("value")
    tt = vi.type.tensor_type
    try:
        dtype = str(np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)))
    except Exception:
        dtype = f"elem_type {tt.elem_type}"
    if dtype not in ONNX_DTYPE_CODE:
        return None, dtype
    if not tt.HasField("shape"):
        return dtype, None
    return dtype, [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else
                   (d.dim_param or None) for d in tt.shape.dim]


def _check_override_names(real, overrides: dict) -> None:
    known = {i.name for i in real} | {sanitize(i.name) for i in real}
    bad = [k for k in overrides if k not in known and not (k == "" and len(real) == 1)]
    if bad:
        raise UsageError(f"--input-shape names no input of the model: {', '.join(map(repr, bad))}",
                         f"the model inputs are {', '.join(sanitize(i.name) for i in real)}")


def _shape_for(name: str, declared, overrides: dict, n_inputs: int) -> tuple:
    """The static shape of input ``name``: override (raw or sanitized name, or the only
    shape for the only input), else the declared dims when all are ints.

    Raises:
        UsageError: symbolic / unknown dims and no override, or an override of another rank.
    """
    san = sanitize(name)
    shape = overrides.get(name, overrides.get(san))
    if shape is None and n_inputs == 1 and len(overrides) == 1:
        shape = next(iter(overrides.values()))
    if shape is None:
        if declared is not None and all(isinstance(d, int) for d in declared):
            return tuple(declared)
        dims = "x".join(str(d) if isinstance(d, int) else "1" for d in declared or [1, 3, 224, 224])
        shown = "unknown rank" if declared is None else \
            "x".join(str(d) if d is not None else "?" for d in declared)
        raise UsageError(f"input {san!r} has no static shape in the file ({shown})",
                         f"pass --input-shape {san}={dims} (NCHW, batch first)")
    if declared is not None and len(shape) != len(declared):
        raise UsageError(f"--input-shape {san}: {len(shape)} dims, the model declares "
                         f"{len(declared)}", "give one size per declared dim")
    return tuple(int(d) for d in shape)


def _label(pn) -> str:
    return sanitize(pn.name or (pn.output[0] if len(pn.output) else "") or pn.op_type)


def _node(cx: Ctx, st: WalkState, pn) -> None:
    domain = "" if pn.domain in ("", "ai.onnx") else pn.domain
    op = pn.op_type if not domain else f"{domain}.{pn.op_type}"
    st.counts[op] = st.counts.get(op, 0) + 1
    label = _label(pn)
    ins = [st.env[i] if i else None for i in pn.input]
    entry = find_converter(FW, pn.op_type) if not domain else None
    if domain or any(v is POISON for v in ins):
        if domain:
            _domain_issue(st, domain, pn.op_type, label)
        elif entry is None:
            _no_converter(st, op, label)
        return _poison(st, pn)
    try:
        folded = _try_fold(cx, st, pn, ins, entry)
    except FoldTooLarge as e:
        raise UnreadableModelError(f"{st.path}: node {label!r} ({op}) computes a constant at "
                                   f"load time: {e}", "check the model's shapes") from None
    if folded:
        return None
    if entry is None:
        _no_converter(st, op, label)
        return _poison(st, pn)
    _run(cx, st, pn, entry, label, ins, op)


def _domain_issue(st: WalkState, domain: str, op_type: str, label: str) -> None:
    st.issue(f"{domain}.{op_type}", "onnx.domain", f"op of domain {domain!r} (only ai.onnx "
             "ops are converted)", label, "replace the custom op or export with standard ops")


def _no_converter(st: WalkState, op: str, label: str) -> None:
    st.issue(op, "no-converter", f"no ONNX converter for {op} (not in the IR op set)", label,
             "rewrite the model with supported ops or open an issue")


def _poison(st: WalkState, pn) -> None:
    for o in pn.output:
        if o:
            st.env[o] = POISON


def _try_fold(cx: Ctx, st: WalkState, pn, ins: list, entry) -> bool:
    """Fold a node whose inputs are all constants: through its converter and the IR's numpy
    evaluators (:func:`.fold.fold_converted`), else the reference implementation."""
    arrays = [None if v is None else (v.const if v.is_const else False) for v in ins]
    if not foldable(pn, arrays):
        return False
    outs = None
    if entry is not None and pn.op_type not in ("Constant", "ConstantOfShape"):
        n = _onnx_node(st, pn, ins)
        if not entry.failed_checks(n):
            cx.node = n
            outs = fold_converted(cx, entry, n)
    if outs is None:
        outs = fold_node(pn, arrays, st.opsets[""])
    if outs is None:
        return False
    for name, arr in zip(pn.output, outs):
        if name and arr is not None:
            _bind(st, name, Value(st.reserved[name], const=arr))
    return True


def _onnx_node(st: WalkState, pn, ins: list) -> OnnxNode:
    from onnx import helper

    attrs = {a.name: _attr(helper.get_attribute_value(a)) for a in pn.attribute}
    return OnnxNode(pn.op_type, _label(pn), "", st.opsets[""], ins, attrs, list(pn.output),
                    [bool(o) and st.used.get(o, 0) > 0 for o in pn.output])


def _run(cx: Ctx, st: WalkState, pn, entry, label: str, ins: list, op: str) -> None:
    n = _onnx_node(st, pn, ins)
    failed = entry.failed_checks(n)
    if failed:
        for c in failed:
            st.issue(op, c.code, c.text, label)
        return _poison(st, pn)
    cx.node = n
    try:
        res = entry.fn(cx, n)
    except Unsupported as e:
        st.issue(op, e.code, e.reason, label)
        return _poison(st, pn)
    except GraphError as e:
        raise UnreadableModelError(f"{st.path}: node {label!r} ({op}): {e}",
                                   "the model is inconsistent; re-export it") from None
    res = res if isinstance(res, (list, tuple)) else [res]
    for k, o in enumerate(pn.output):
        v = res[k] if k < len(res) else None
        if o and v is not None:
            _bind(st, o, v)
        elif o:
            st.env[o] = POISON
            if n.output_used(k):  # a converter check should have rejected this node
                st.issue(op, "onnx.output", f"output {k} ({o}) is not produced by the "
                         "converter", label)


def _attr(v: Any) -> Any:
    """A decoded attribute: bytes -> str, TensorProto -> ndarray, lists element-wise."""
    from onnx import TensorProto, numpy_helper

    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list):
        return [_attr(x) for x in v]
    return v


def _outputs(st: WalkState, gp) -> None:
    """Graph outputs in ONNX order with their ONNX names; an output that is a graph input,
    a constant, a repeated value or an alias of another tensor gets an Identity."""
    final: list[Value] = []
    g = st.g
    for o in gp.output:
        v = st.env[o.name]
        want = st.reserved[o.name]
        boundary = v.is_const or any(v is i for i in g.inputs)
        if boundary or v.name != want or any(v is f for f in final):
            if v.is_const and v.name == want:
                v.name = g.unique_name(want + "_const")
            node = g.add("Identity", [v], name=sanitize(o.name),
                         meta={"source_op": "graph.output", "source_name": want})
            v = node.outputs[0]
            v.name = want if not any(i.name == want for i in g.inputs) else \
                g.unique_name(want + "_out")
        final.append(v)
    g.outputs = final
