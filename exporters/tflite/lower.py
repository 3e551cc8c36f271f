"""IR graph -> :class:`~exporters.tflite.model.TModel` (then :mod:`.writer` serializes it).

Steps: the layout pass (:func:`~exporters.tflite.layout.plan_layout`) decides the physical
layout of every IR value once for the whole graph; every IR op's lowering (registered with
``@lowering("tflite", op, emits=..., checks=...)`` in the ``lower_*`` modules) is called as
``fn(node, ctx)`` in graph order and appends operators to the model in execution order;
graph outputs are bound in their boundary layout; the peephole fusions of :mod:`.fuse` run;
the boundary layout is recorded as ``mconv.io_layout`` metadata for :mod:`.runtime`.
"""
from __future__ import annotations

import json
from typing import Any

from converter.errors import Issue
from converter.ir import Graph, Value
from converter.registry import find_lowering, scan_lowering

from . import fuse, lower_act, lower_conv, lower_math, lower_pool, lower_shape  # noqa: F401
from .checks import static
from .context import DTYPES, LowerCtx
from .layout import plan_layout
from .model import TModel
from .runtime import LAYOUT_KEY

TARGET = "tflite"
IO_LAYOUTS = ("nhwc", "nchw")


def io_layout_of(options: Any) -> str:
    """``options.io_layout`` (``"nhwc"`` default, or ``"nchw"``)."""
    return getattr(options, "io_layout", "nhwc") or "nhwc"


def _io_issue(v: Value, kind: str) -> list[Issue]:
    problems = []
    if v.dtype not in DTYPES:
        problems.append(("tflite.dtype", f"graph {kind} has dtype {v.dtype}"))
    if not static(v):
        problems.append(("tflite.dynamic", f"graph {kind} has a dynamic shape {v.shape}"))
    return [Issue(f"target:{TARGET}", f"<{kind}>", code, text, [v.name],
                  "give --input-shape / cast the input") for code, text in problems]


def graph_issues(graph: Graph) -> list[Issue]:
    """Graph inputs/outputs TFLite cannot declare, and constant graph outputs."""
    issues: list[Issue] = []
    for v in graph.inputs:
        issues += _io_issue(v, "input")
    for v in graph.outputs:
        issues += _io_issue(v, "output")
        if v.is_const:
            issues.append(Issue(f"target:{TARGET}", "<output>", "tflite.const",
                                "graph output is a constant", [v.name]))
    return issues


def scan(graph: Graph, options: Any = None) -> list[Issue]:
    """Every node without a TFLite lowering or failing one of its checks, plus
    :func:`graph_issues`; nothing is lowered or written."""
    issues = graph_issues(graph) + scan_lowering(graph, TARGET)
    if io_layout_of(options) not in IO_LAYOUTS:
        issues.append(Issue(f"target:{TARGET}", "<options>", "tflite.option",
                            f"io_layout must be one of {IO_LAYOUTS}", [io_layout_of(options)]))
    return issues


def _copy_boundary(ctx: LowerCtx) -> None:
    """A graph output that is a graph input (an alias) gets its own tensor (RESHAPE copy)."""
    m = ctx.model
    for k, t in enumerate(m.outputs):
        if t in m.inputs or m.tensors[t].data is not None:
            name = m.output_names[k]
            m.tensors[t].name = m.unique(m.tensors[t].name + "/src")
            m.outputs[k] = ctx.reshape(t, m.tensors[t].shape, name)
            m.tensors[m.outputs[k]].name = name


def lower_graph(graph: Graph, options: Any = None) -> TModel:
    """Lower a graph that passed :func:`scan` to a TModel (inputs/outputs in graph order,
    named as in the IR), fusions applied.

    Raises:
        KeyError: a node has no lowering (the graph was not scanned).
        RuntimeError: a lowering failed on a node (a bug; the node is named).
    """
    plan = plan_layout(graph, io_layout_of(options))
    ctx = LowerCtx(graph, plan, options)
    for v in graph.inputs:
        ctx.add_input(v)
    for node in graph.nodes:
        if all(id(o) in plan.consts for o in node.outputs):
            continue
        entry = find_lowering(TARGET, node.op)
        if entry is None:
            raise KeyError(f"{node.name}: no tflite lowering for {node.op}")
        try:
            entry.fn(node, ctx)
        except (KeyError, ValueError, IndexError, TypeError) as e:
            raise RuntimeError(f"{node.name} ({node.op}): TFLite lowering failed: "
                               f"{type(e).__name__}: {e}") from e
    model = ctx.finish()
    _copy_boundary(ctx)
    fuse.run(model)
    _stamp(model, graph, plan)
    return model


def _stamp(model: TModel, graph: Graph, plan) -> None:
    from converter import __version__

    model.description = f"mconv {__version__}"
    layout = {"inputs": {v.name: list(plan.perms[id(v)]) for v in graph.inputs},
              "outputs": {v.name: list(p) for v, p in zip(graph.outputs, plan.outputs)}}
    model.metadata[LAYOUT_KEY] = json.dumps(layout, separators=(",", ":")).encode()
