"""IR graph -> ``openvino.Model``.

Every IR op's lowering is registered with ``@lowering("openvino", op, emits=..., checks=...)``
in one of the ``lower_*`` modules imported here (activations, conv/gemm, math, pooling/resize/
pad/reduce, shape ops). A lowering is called as ``fn(node, ctx)`` with a
:class:`~exporters.openvino.context.LowerCtx`; it creates OpenVINO nodes with the runtime's own
opset factories and binds the IR node's outputs to their outputs. The only target-only fusion
is ``Mul(x, Sigmoid(x))`` -> ``Swish`` (:mod:`.lower_math`).

The emitted names (``emits``) are the layer ``type`` names as the IR XML spells them
(``ReLU``, ``PReLU``, ``SoftMax`` are the XML spellings of ``Relu``, ``PRelu``, ``Softmax``),
the same names :func:`exporters.openvino.describe` counts.
"""
from __future__ import annotations

from typing import Any

from converter.errors import Issue
from converter.ir import Graph, Value
from converter.registry import find_lowering, scan_lowering

from . import lower_act, lower_conv, lower_math, lower_pool, lower_shape  # noqa: F401
from .context import OV_TYPES, LowerCtx

TARGET = "openvino"


def _io_issue(v: Value, kind: str) -> list[Issue]:
    if v.dtype in OV_TYPES and v.shape is not None:
        return []
    return [Issue(f"target:{TARGET}", f"<{kind}>", "openvino.dtype" if v.dtype not in OV_TYPES
                  else "openvino.rank", f"graph {kind} has an unsupported dtype {v.dtype} or an "
                  "unknown rank", [v.name], "give --input-shape / cast the input")]


def graph_issues(graph: Graph) -> list[Issue]:
    """Graph inputs and outputs OpenVINO cannot declare (dtype outside
    :data:`~exporters.openvino.context.OV_TYPES`, unknown rank)."""
    issues: list[Issue] = []
    for v in graph.inputs:
        issues += _io_issue(v, "input")
    for v in graph.outputs:
        issues += _io_issue(v, "output")
    return issues


def scan(graph: Graph) -> list[Issue]:
    """Every node without an OpenVINO lowering or failing one of its checks, plus
    :func:`graph_issues`; nothing is lowered or written."""
    return graph_issues(graph) + scan_lowering(graph, TARGET)


def lower_graph(graph: Graph, options: Any = None):
    """Lower a graph that passed :func:`scan` to an ``openvino.Model`` named ``graph.name``
    (parameters in graph input order, one Result per graph output in order).

    Raises:
        KeyError: a node has no lowering (the graph was not scanned).
        ImportError: openvino is not installed.
        RuntimeError: OpenVINO rejected a node (shape/type inference failed; a lowering bug).
    """
    ctx = LowerCtx(graph, options)
    for v in graph.inputs:
        ctx.add_parameter(v)
    for node in graph.nodes:
        entry = find_lowering(TARGET, node.op)
        if entry is None:
            raise KeyError(f"{node.name}: no openvino lowering for {node.op}")
        try:
            entry.fn(node, ctx)
        except RuntimeError as e:
            raise RuntimeError(f"{node.name} ({node.op}): OpenVINO rejected the lowering: "
                               f"{str(e).strip().splitlines()[-1] if str(e).strip() else e}"
                               ) from e
    model = ctx.finish(graph.name)
    from converter import __version__

    model.set_rt_info(__version__, ["mconv", "version"])
    return model
