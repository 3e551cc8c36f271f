"""IR graph -> ncnn layers.

Every IR op's lowering is registered with ``@lowering("ncnn", op, emits=..., checks=...)`` in
one of the ``lower_*`` modules imported here (activations, conv/gemm, elementwise, pooling/
resize/pad/reduce, shape ops). A lowering is called as ``fn(node, ctx)`` with a
:class:`~exporters.ncnn.context.LowerCtx`; it appends layer records and binds the node's outputs
to blobs. Target-only fusions (activation into Convolution*/InnerProduct, Swish, HardSwish,
ShuffleChannel) happen here.
"""
from __future__ import annotations

from typing import Any

from converter.errors import Issue
from converter.ir import Graph, Value
from converter.registry import find_lowering, scan_lowering

from . import lower_act, lower_conv, lower_elementwise, lower_pool, lower_shape  # noqa: F401
from . import lower_detection  # noqa: F401  (SSD DetectionOutput)
from .context import LowerCtx, LoweredNet

TARGET = "ncnn"


def _input_problem(v: Value) -> str:
    shape = v.shape
    if shape is None or any(not isinstance(d, int) or d <= 0 for d in shape):
        return "ncnn.dynamic"
    if len(shape) < 1 or shape[0] != 1:
        return "ncnn.batch"
    if not (2 <= len(shape) <= 5 or tuple(shape) == (1,)):
        return "ncnn.rank"
    if v.dtype not in ("float32", "float16"):
        return "ncnn.dtype"
    return ""


_INPUT_REASONS = {
    "ncnn.dynamic": "graph input shape is not static (give --input-shape)",
    "ncnn.batch": "graph input batch dim is not 1 (ncnn blobs have no batch dimension)",
    "ncnn.rank": "graph input rank is not 2..5",
    "ncnn.dtype": "graph input is not float",
}


def graph_issues(graph: Graph) -> list[Issue]:
    """Graph-level problems: graph inputs ncnn cannot feed, constant graph outputs."""
    issues = []
    for v in graph.inputs:
        code = _input_problem(v)
        if code:
            issues.append(Issue(f"target:{TARGET}", "<input>", code, _INPUT_REASONS[code],
                                [v.name]))
    for v in graph.outputs:
        if v.is_const:
            issues.append(Issue(f"target:{TARGET}", "<output>", "ncnn.const_output",
                                "graph output is a constant (fold it away or drop it)",
                                [v.name]))
    return issues


def scan(graph: Graph) -> list[Issue]:
    """Every node without an ncnn lowering or failing one of its checks, plus
    :func:`graph_issues`; nothing is lowered or written."""
    return graph_issues(graph) + scan_lowering(graph, TARGET)


def lower_graph(graph: Graph, options: Any = None) -> LoweredNet:
    """Lower a graph that passed :func:`scan` to a :class:`LoweredNet`.

    Raises:
        KeyError: a node has no lowering (the graph was not scanned).
        ValueError: a lowering met a case its checks should have rejected.
    """
    ctx = LowerCtx(graph, options)
    for v in graph.inputs:
        ctx.add_input(v)
    for node in graph.nodes:
        if ctx.skipped(node):
            continue
        entry = find_lowering(TARGET, node.op)
        if entry is None:
            raise KeyError(f"{node.name}: no ncnn lowering for {node.op}")
        entry.fn(node, ctx)
    return ctx.finish()
