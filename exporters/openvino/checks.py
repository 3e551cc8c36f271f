"""Support checks shared by the OpenVINO lowerings (each a :class:`converter.registry.Check`).

OpenVINO tensors may be dynamic and of any rank, so the common condition is only that every
tensor a node touches has a known rank and an element type OpenVINO names
(:data:`~exporters.openvino.context.OV_TYPES`).
"""
from __future__ import annotations

import functools

from converter import checks as _shared
from converter.checks import node_tensors
from converter.errors import Issue
from converter.ir import Graph, Node, Value
from converter.registry import Check

from .context import OV_TYPES


def tensors(node: Node) -> list[Value]:
    """The tensors a lowering computes: see :func:`converter.checks.node_tensors`."""
    return node_tensors(node, consts=True)


const_inputs = functools.partial(_shared.const_inputs, "openvino")
rank_in = functools.partial(_shared.rank_in, "openvino")


def _dtype_ok(node: Node) -> bool:
    return all(v.dtype in OV_TYPES for v in tensors(node))


def _rank_known(node: Node) -> bool:
    return all(v.shape is not None for v in tensors(node))


DTYPE = Check(f"tensor element types are among {', '.join(OV_TYPES)}", _dtype_ok,
              "openvino.dtype")
RANK = Check("tensor ranks are known", _rank_known, "openvino.rank")
COMMON = (DTYPE, RANK)


def checks(*extra: Check) -> tuple:
    """The common checks followed by ``extra``."""
    return COMMON + tuple(extra)


def static_out(text: str = "output shape is static") -> Check:
    """Every dim of the first output is a known int."""
    return Check(text, lambda n: all(isinstance(d, int) for d in n.outputs[0].shape),
                 "openvino.dynamic")


#: Why float64 graphs are refused. Measured with openvino 2026.4.1 (CPU plugin): an f64
#: Parameter -> Add -> Multiply model returns f64 tensors whose values were computed in f32
#: (1e8 + 1 + 3 comes back as 1e8) with no config, INFERENCE_PRECISION_HINT f32 / dynamic /
#: undefined or EXECUTION_MODE_HINT ACCURACY; INFERENCE_PRECISION_HINT f64 is rejected.
F64_REASON = ("float64 tensor: the OpenVINO CPU plugin computes float64 in float32 "
              "(no precision hint keeps f64), so results would silently lose precision")
F64_HINT = ("cast the model to float32 and convert again (PyTorch: model.float() and float32 "
            "example inputs; ONNX: make the double tensors float)")


def float64_issues(graph: Graph) -> list[Issue]:
    """One ``openvino.float64`` issue per float64 graph input (op ``<input>``), graph output
    (``<output>``) and tensor a node reads or computes (op = the node's op; the entry names
    ``node: tensor``), constants included. See :data:`F64_REASON`."""
    out: list[Issue] = []

    def add(op: str, label: str) -> None:
        out.append(Issue("target:openvino", op, "openvino.float64", F64_REASON, [label],
                         F64_HINT))
    for kind, vals in (("input", graph.inputs), ("output", graph.outputs)):
        for v in vals:
            if v.dtype == "float64":
                add(f"<{kind}>", v.name)
    for node in graph.nodes:
        for v in tensors(node):
            if v.dtype == "float64":
                add(node.op, f"{node.name}: {v.name}")
    return out
