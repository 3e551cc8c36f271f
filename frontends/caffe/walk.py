"""Walk the deploy layers in file order and build the IR graph.

Caffe blobs are names that in-place layers (top == bottom: ReLU, BatchNorm, Scale, Dropout)
overwrite; the walk keeps the *current* IR Value of each blob name, so every layer output is
a fresh SSA value named after its layer. The net outputs are the blobs written and never read
afterwards, in the order they were last written (BVLC/caffe ``src/caffe/net.cpp``,
``available_blobs``). Every layer type without a converter, every failed converter check and
every :class:`~.context.Unsupported` is collected into one ``UnsupportedOpsError``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from converter.errors import Issue, UnreadableModelError, UnsupportedOpsError, UsageError
from converter.ir import Graph, GraphError, Value
from converter.names import NameSet, sanitize
from converter.registry import find_converter

from .context import Ctx, Unsupported
from .reader import CaffeLayer, blob_array, input_specs, layer_records, weight_table

FW = "caffe"
STAGE = "frontend:caffe"
POISON = object()
#: Layers with no inference meaning: their tops alias their first bottom.
ALIASES = frozenset({"Dropout", "Split"})
#: Elements of one input beyond which a file is taken as corrupt (int32 indexing, as
#: ``converter.pipeline.MAX_ELEMENTS``), checked before PriorBox computes arrays from it.
MAX_INPUT = 2 ** 31 - 1
#: Exceptions a converter raises on inconsistent layer parameters (hostile files).
BAD_PARAMS = (GraphError, ValueError, ZeroDivisionError, IndexError, OverflowError, TypeError,
              KeyError, AttributeError)


@dataclass
class Walk:
    """State of one walk: the graph, blob name -> current Value, issues, counts."""

    g: Graph
    path: Any
    env: dict = field(default_factory=dict)
    writer: dict = field(default_factory=dict)      # blob -> (layer name, top index)
    available: dict = field(default_factory=dict)   # blob -> None, in last-write order
    issues: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    def issue(self, op: str, code: str, reason: str, label: str, hint: str = "") -> None:
        self.issues.append(Issue(STAGE, op, code, reason, [label], hint))


@dataclass
class WalkResult:
    """The graph, source op counts, and for each graph output the Caffe blob and the layer
    (with top index) that last wrote it; input blob names in graph input order."""

    graph: Graph
    counts: dict
    output_blobs: list
    output_layers: list
    input_blobs: list


def walk(net, weights_net, path: Path, weights_path: Optional[Path], overrides: dict,
         name: str) -> WalkResult:
    """Translate a deploy NetParameter (+ the caffemodel's NetParameter) into IR.

    Raises:
        UsageError: an input without a shape and no ``--input-shape``; UnsupportedOpsError:
            every unsupported layer at once; UnreadableModelError: missing / mis-shaped
            weights, a bottom no layer produces, inconsistent layer parameters.
    """
    st = Walk(Graph(name), path)
    layers = layer_records(net)
    labels = NameSet()
    for lay in layers:
        lay.label = labels.unique(sanitize(lay.name or lay.op))
    _prescan(st, layers)
    table = weight_table(weights_net) if weights_net is not None else {}
    try:
        inputs = _inputs(st, net, layers, overrides)
    except UsageError:
        if st.issues:
            raise UnsupportedOpsError(st.issues) from None
        raise
    cx = Ctx(st.g, weights_path)
    for lay in layers:
        if lay.op == "Input":
            st.counts["Input"] = st.counts.get("Input", 0) + 1
        else:
            _layer(cx, st, lay, table)
    if st.issues:
        err = UnsupportedOpsError(st.issues)
        err.source_ops = dict(st.counts)
        raise err
    return _finish(st, inputs)


def _prescan(st: Walk, layers: list[CaffeLayer]) -> None:
    for lay in layers:
        if lay.op not in ALIASES | {"Input", "Silence"} and find_converter(FW, lay.op) is None:
            _no_converter(st, lay)


def _no_converter(st: Walk, lay: CaffeLayer) -> None:
    st.issue(lay.op, "no-converter", f"no Caffe converter for layer type {lay.op} (not a "
             "BVLC / SSD layer mconv knows, or a training-only layer)", lay.label,
             "replace the layer with standard Caffe layers or remove it from the deploy net")


def _inputs(st: Walk, net, layers: list, overrides: dict) -> list[str]:
    specs = input_specs(net, layers)
    known = {b for b, _ in specs} | {sanitize(b) for b, _ in specs}
    bad = [k for k in overrides if k and k not in known]
    if bad:
        raise UsageError(f"--input-shape names no input of the model: {', '.join(bad)}",
                         f"the inputs are {', '.join(sanitize(b) for b, _ in specs)}")
    for blob, shape in specs:
        given = overrides.get(blob, overrides.get(sanitize(blob)))
        if given is None and "" in overrides and len(specs) == 1:
            given = overrides[""]
        shape = tuple(int(d) for d in given) if given is not None else shape
        if not shape or any(d <= 0 for d in shape):
            raise UsageError(f"{st.path}: input {blob!r} has no usable shape "
                             f"({list(shape) if shape else 'none declared'})",
                             f"pass --input-shape {sanitize(blob)}=1x3x224x224 (NCHW)")
        if math.prod(shape) > MAX_INPUT:
            raise UnreadableModelError(f"{st.path}: input {blob!r} declares shape "
                                       f"{list(shape)}, over {MAX_INPUT:,} elements",
                                       "check the prototxt or pass --input-shape")
        v = st.g.add_input(sanitize(blob), "float32", shape)
        st.env[blob] = v
        st.available[blob] = None
    if not specs:
        raise UsageError(f"{st.path}: the prototxt declares no input (no Input layer, no "
                         "input / input_shape / input_dim)", "add an Input layer")
    return [b for b, _ in specs]


def _attach_blobs(st: Walk, lay: CaffeLayer, table: dict) -> None:
    protos = list(lay.p.blobs) or table.get(lay.name, [])
    where = f"{st.path}: layer {lay.name!r}"
    lay.blobs = [blob_array(b, where) for b in protos]


def _layer(cx: Ctx, st: Walk, lay: CaffeLayer, table: dict) -> None:
    st.counts[lay.op] = st.counts.get(lay.op, 0) + 1
    for b in lay.bottoms:
        if b not in st.env:
            raise UnreadableModelError(f"{st.path}: layer {lay.name!r} ({lay.op}) reads blob "
                                       f"{b!r} that no earlier layer produces",
                                       "fix the prototxt's bottom / top names")
    if lay.op == "Silence":  # consumes its bottoms, computes nothing
        for b in lay.bottoms:
            st.available.pop(b, None)
        return None
    entry = find_converter(FW, lay.op)
    if entry is None and lay.op not in ALIASES:
        return _bind(st, lay, [POISON] * len(lay.tops))
    if not lay.bottoms or not lay.tops:
        raise UnreadableModelError(f"{st.path}: layer {lay.name!r} ({lay.op}) has no "
                                   f"{'bottom' if not lay.bottoms else 'top'}",
                                   "fix the layer's bottom / top names in the prototxt")
    lay.inputs = [st.env[b] for b in lay.bottoms]
    for b in lay.bottoms:
        st.available.pop(b, None)
    if lay.op in ALIASES:
        return _bind(st, lay, [lay.inputs[0]] * len(lay.tops))
    if any(v is POISON for v in lay.inputs):
        return _bind(st, lay, [POISON] * len(lay.tops))
    failed = entry.failed_checks(lay)
    if failed:
        for c in failed:
            st.issue(lay.op, c.code, c.text, lay.label)
        return _bind(st, lay, [POISON] * len(lay.tops))
    _bind(st, lay, _convert(cx, st, lay, entry, table))


def _convert(cx: Ctx, st: Walk, lay: CaffeLayer, entry, table: dict) -> list:
    _attach_blobs(st, lay, table)
    cx.layer = lay
    try:
        res = entry.fn(cx, lay)
    except Unsupported as e:
        st.issue(lay.op, e.code, e.reason, lay.label)
        return [POISON] * len(lay.tops)
    except BAD_PARAMS as e:
        raise UnreadableModelError(f"{st.path}: layer {lay.name!r} ({lay.op}) has parameters "
                                   f"that do not fit its inputs ({type(e).__name__}: "
                                   f"{str(e)[:160]})", "fix the layer in the prototxt") from None
    res = list(res) if isinstance(res, (list, tuple)) else [res]
    if len(res) != len(lay.tops):
        raise UnreadableModelError(f"{st.path}: layer {lay.name!r} ({lay.op}) declares "
                                   f"{len(lay.tops)} top(s), it computes {len(res)}",
                                   "fix the layer's tops in the prototxt")
    return res


def _bind(st: Walk, lay: CaffeLayer, values: list) -> None:
    for k, (top, v) in enumerate(zip(lay.tops, values)):
        st.env[top] = v
        st.writer[top] = (lay.name, k)
        st.available.pop(top, None)
        st.available[top] = None


def _finish(st: Walk, input_blobs: list) -> WalkResult:
    blobs = [b for b in st.available if b not in input_blobs or b in st.writer]
    if not blobs:
        raise UnreadableModelError(f"{st.path}: the net has no output blob",
                                   "check the prototxt's tops")
    outs: list[Value] = []
    for b in blobs:
        v = st.env[b]
        if v.is_const or any(v is i for i in st.g.inputs) or any(v is o for o in outs):
            v = st.g.add("Identity", [v], name=sanitize(b) + "_out",
                         meta={"source_op": "net.output", "source_name": b}).outputs[0]
        outs.append(v)
    st.g.outputs = outs
    return WalkResult(st.g, dict(sorted(st.counts.items())), blobs,
                      [st.writer.get(b, (b, 0)) for b in blobs], input_blobs)
