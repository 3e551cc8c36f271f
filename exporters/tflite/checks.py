"""Support checks shared by the TFLite lowerings (each a :class:`converter.registry.Check`).

Common to every node: static shapes (the layout pass computes exact index maps and TFLite
tensors get static physical shapes; reason ``tflite.dynamic``) and element types TFLite
names (:data:`~exporters.tflite.context.DTYPES`; ``tflite.dtype``).
"""
from __future__ import annotations

from typing import Iterable

from converter.ir import Node, Value
from converter.registry import Check

from .context import DTYPES


def tensors(node: Node) -> list[Value]:
    """Inputs and used outputs (plus the first output) of ``node``."""
    ins = [v for v in node.inputs if v is not None]
    outs = [v for i, v in enumerate(node.outputs) if i == 0 or v.uses]
    return ins + outs


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


def const_inputs(*indices: int, text: str = "") -> Check:
    """Inputs ``indices`` (when present) are constants."""
    def fn(node: Node) -> bool:
        return all(node.input(i) is None or node.input(i).is_const for i in indices)
    return Check(text or f"inputs {', '.join(map(str, indices))} are constants", fn,
                 "tflite.const")


def rank_in(ranks: Iterable[int], text: str) -> Check:
    """The first input's rank is one of ``ranks``."""
    allowed = frozenset(ranks)
    return Check(text, lambda n: len(n.inputs[0].shape) in allowed, "tflite.rank")


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
