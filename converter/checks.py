"""Check factories shared by the exporters' lowerings (each returns a
:class:`converter.registry.Check` whose reason code is ``"<target>.<kind>"``).

Exporters bind their target name once, e.g.
``const_inputs = functools.partial(converter.checks.const_inputs, "ncnn")``.
"""
from __future__ import annotations

from typing import Iterable

from .ir import Node, Value
from .registry import Check


def node_tensors(node: Node, consts: bool = True) -> list[Value]:
    """Inputs (constants only when ``consts``), the first output and every used output of
    ``node`` (an unused secondary output such as Dropout's mask is not computed)."""
    ins = [v for v in node.inputs if v is not None and (consts or not v.is_const)]
    outs = [v for i, v in enumerate(node.outputs) if i == 0 or v.uses]
    return ins + outs


def const_inputs(target: str, *indices: int, text: str = "") -> Check:
    """Inputs ``indices`` (when present) are constants; code ``<target>.const``."""
    def fn(node: Node) -> bool:
        return all(node.input(i) is None or node.input(i).is_const for i in indices)
    return Check(text or f"inputs {', '.join(map(str, indices))} are constants", fn,
                 f"{target}.const")


def rank_in(target: str, ranks: Iterable[int], text: str) -> Check:
    """The first input's rank is one of ``ranks``; code ``<target>.rank``."""
    allowed = frozenset(ranks)
    return Check(text, lambda n: len(n.inputs[0].shape) in allowed, f"{target}.rank")


def axis_of(node: Node, key: str = "axis", default: int = 0) -> int:
    """A normalized (non-negative) axis attribute of ``node`` against its first input's
    rank."""
    rank = len(node.inputs[0].shape)
    a = int(node.attrs.get(key, default))
    return a + rank if a < 0 else a
