"""Support checks shared by the OpenVINO lowerings (each a :class:`converter.registry.Check`).

OpenVINO tensors may be dynamic and of any rank, so the common condition is only that every
tensor a node touches has a known rank and an element type OpenVINO names
(:data:`~exporters.openvino.context.OV_TYPES`).
"""
from __future__ import annotations

from typing import Iterable

from converter.ir import Node, Value
from converter.registry import Check

from .context import OV_TYPES


def tensors(node: Node) -> list[Value]:
    """Inputs and used outputs (plus the first output) of ``node``."""
    ins = [v for v in node.inputs if v is not None]
    outs = [v for i, v in enumerate(node.outputs) if i == 0 or v.uses]
    return ins + outs


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


def const_inputs(*indices: int, text: str = "") -> Check:
    """Inputs ``indices`` (when present) are constants."""
    def fn(node: Node) -> bool:
        return all(node.input(i) is None or node.input(i).is_const for i in indices)
    return Check(text or f"inputs {', '.join(map(str, indices))} are constants", fn,
                 "openvino.const")


def rank_in(ranks: Iterable[int], text: str) -> Check:
    """The first input's rank is one of ``ranks``."""
    allowed = frozenset(ranks)
    return Check(text, lambda n: len(n.inputs[0].shape) in allowed, "openvino.rank")


def static_out(text: str = "output shape is static") -> Check:
    """Every dim of the first output is a known int."""
    return Check(text, lambda n: all(isinstance(d, int) for d in n.outputs[0].shape),
                 "openvino.dynamic")


def axis_of(node: Node, key: str = "axis", default: int = 0) -> int:
    """A normalized (non-negative) axis attribute against the first input's rank."""
    rank = len(node.inputs[0].shape)
    a = int(node.attrs.get(key, default))
    return a + rank if a < 0 else a
