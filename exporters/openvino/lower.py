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
from exporters.onnx.layout import nhwc_boundary  # the rule shared by both exporters

from . import lower_act, lower_conv, lower_math, lower_pool, lower_shape  # noqa: F401
from . import lower_detection  # noqa: F401  (SSD DetectionOutput)
from .context import NHWC, OV_TYPES, LowerCtx
from .checks import float64_issues

TARGET = "openvino"


def _io_issue(v: Value, kind: str) -> list[Issue]:
    if v.dtype in OV_TYPES and v.shape is not None:
        return []
    return [Issue(f"target:{TARGET}", f"<{kind}>", "openvino.dtype" if v.dtype not in OV_TYPES
                  else "openvino.rank", f"graph {kind} has an unsupported dtype {v.dtype} or an "
                  "unknown rank", [v.name], "give --input-shape / cast the input")]


def graph_issues(graph: Graph) -> list[Issue]:
    """Graph inputs and outputs OpenVINO cannot declare (dtype outside
    :data:`~exporters.openvino.context.OV_TYPES`, unknown rank), and every float64 tensor
    (:func:`~exporters.openvino.checks.float64_issues`: computed in f32, so refused)."""
    issues: list[Issue] = []
    for v in graph.inputs:
        issues += _io_issue(v, "input")
    for v in graph.outputs:
        issues += _io_issue(v, "output")
    return issues + float64_issues(graph)


def scan(graph: Graph) -> list[Issue]:
    """Every node without an OpenVINO lowering or failing one of its checks, plus
    :func:`graph_issues`; nothing is lowered or written."""
    return graph_issues(graph) + scan_lowering(graph, TARGET)


def lower_graph(graph: Graph, options: Any = None):
    """Lower a graph that passed :func:`scan` to an ``openvino.Model`` named ``graph.name``
    (parameters in graph input order, one Result per graph output in order). For an NHWC
    source with ``options.io_layout`` "nhwc", rank-4 parameters and results are NHWC behind
    one Transpose each, recorded as rt_info ``mconv/io_layout`` (:func:`boundary_json`).

    Raises:
        KeyError: a node has no lowering (the graph was not scanned).
        ImportError: openvino is not installed.
        RuntimeError: OpenVINO rejected a node (shape/type inference failed; a lowering bug).
    """
    ctx = LowerCtx(graph, options)
    nhwc = nhwc_boundary(graph, options)
    for v in graph.inputs:
        ctx.add_parameter(v, nhwc and v.shape is not None and len(v.shape) == 4)
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
    model = ctx.finish(graph.name, nhwc)
    from converter import __version__

    model.set_rt_info(__version__, ["mconv", "version"])
    if nhwc:
        model.set_rt_info(boundary_json(graph), ["mconv", "io_layout"])
    return model


def boundary_json(graph: Graph) -> str:
    """``{"inputs": {name: perm}, "outputs": {name: perm}, "output_perms": [perm or None per
    output]}`` of the NHWC rank-4 boundary (``physical = ir.transpose(perm)``), stored as
    model rt_info ``mconv/io_layout``."""
    import json

    def perms(vals):
        return {v.name: list(NHWC) for v in vals if v.shape is not None and len(v.shape) == 4}
    by_index = [list(NHWC) if v.shape is not None and len(v.shape) == 4 else None
                for v in graph.outputs]  # positional too: an output may share a name
    return json.dumps({"inputs": perms(graph.inputs), "outputs": perms(graph.outputs),
                       "output_perms": by_index}, sort_keys=True)
