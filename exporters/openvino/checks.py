"""Support checks shared by the OpenVINO lowerings (each a :class:`converter.registry.Check`).

OpenVINO tensors may be dynamic and of any rank, so the common condition is only that every
tensor a node touches has a known rank and an element type OpenVINO names
(:data:`~exporters.openvino.context.OV_TYPES`).
"""
from __future__ import annotations

import functools

from converter import checks as _shared
from converter.checks import node_tensors
from converter.ir import Node, Value
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

