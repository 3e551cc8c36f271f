"""Support checks shared by the TFLite lowerings (each a :class:`converter.registry.Check`).

Common to every node: static shapes (the layout pass computes exact index maps and TFLite
tensors get static physical shapes; reason ``tflite.dynamic``) and element types TFLite
names (:data:`~exporters.tflite.context.DTYPES`; ``tflite.dtype``).
"""
from __future__ import annotations

import functools

from converter import checks as _shared
from converter.checks import node_tensors
from converter.ir import Node, Value
from converter.registry import Check

from .context import DTYPES


def tensors(node: Node) -> list[Value]:
    """The tensors a lowering computes: see :func:`converter.checks.node_tensors`."""
    return node_tensors(node, consts=True)


const_inputs = functools.partial(_shared.const_inputs, "tflite")
rank_in = functools.partial(_shared.rank_in, "tflite")


def static(v: Value) -> bool:
    """Every dim of ``v`` is a known int."""
    return v.shape is not None and all(isinstance(d, int) and d >= 0 for d in v.shape)


DTYPE = Check(f"tensor element types are among {', '.join(DTYPES)}",
              lambda n: all(v.dtype in DTYPES for v in tensors(n)), "tflite.dtype")
STATIC = Check("every tensor shape is static (give --input-shape)",
               lambda n: all(static(v) for v in tensors(n)), "tflite.dynamic")
COMMON = (STATIC, DTYPE)


def checks(*extra: Check) -> tuple:
    """The common checks followed by ``extra``."""
    return COMMON + tuple(extra)


def max_rank(limit: int = 6) -> Check:
    """No tensor of the node has more than ``limit`` dims (TFLite kernels stop at 4-6)."""
    return Check(f"tensor rank <= {limit}", lambda n: all(len(v.shape) <= limit
                                                          for v in tensors(n)), "tflite.rank")


def float_only(text: str = "float tensors") -> Check:
    """The first input is a float tensor."""
    return Check(text, lambda n: n.inputs[0].dtype in ("float32", "float16"), "tflite.dtype")


def unused_output(i: int, text: str) -> Check:
    """Output ``i`` (an optional one such as Dropout's mask) is not read."""
    return Check(text, lambda n: len(n.outputs) <= i or not n.outputs[i].uses, "tflite.attr")
