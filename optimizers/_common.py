"""Helpers shared by the rule files (not a rule family itself).

* :func:`live_readers`: consumer count that ignores nodes already rewired away this round.
* :func:`output_guard`: ``Graph.replace_uses`` keeps a graph output's name by renaming the
  replacement value, which it cannot do when the replacement is a constant, a graph input
  or already another graph output. Rules that would replace a graph output by such a value
  decline instead, so graph outputs always keep their names.
* :func:`new_const`: a fresh constant for rewritten operands (never mutates an array that
  another node may still read).
* :func:`mark_fused`: record provenance in ``node.meta["fused_from"]`` (a new list each time,
  so lists shared between nodes' meta are never mutated).
* :func:`norm_axes`: normalize an axes operand against a rank.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from converter.ir import Graph, Node, Value
from converter.rewrite import Decline


def is_output(graph: Graph, v: Value) -> bool:
    return any(o is v for o in graph.outputs)


def live_readers(graph: Graph, v: Value) -> int:
    """Readers of ``v`` that are still live: within an engine round, a node whose outputs were
    all rewired away still reads its inputs until the round's cleanup, so it is not counted."""
    return sum(1 for n in v.consumers()
               if any(o.uses or is_output(graph, o) for o in n.outputs))


def output_guard(graph: Graph, old: Value, new: Value) -> Optional[Decline]:
    """A Decline when replacing ``old`` by ``new`` would rename graph output ``old``."""
    if not is_output(graph, old):
        return None
    if new.is_const:
        return Decline(f"{old.name} is a graph output and would become a constant")
    if any(v is new for v in graph.inputs):
        return Decline(f"{old.name} is a graph output and would become graph input {new.name}")
    if is_output(graph, new):
        return Decline(f"{old.name} and {new.name} would become the same graph output")
    return None


def replace_with(graph: Graph, old: Value, new: Value):
    """``new`` (the rule result replacing ``old``) or a Decline from :func:`output_guard`."""
    return output_guard(graph, old, new) or new


def new_const(graph: Graph, array: np.ndarray, base: str) -> Value:
    """A new constant Value named after ``base`` (made unique)."""
    return graph.const(np.asarray(array), name=base)  # graph.const makes it C-contiguous


def mark_fused(node: Node, *ops: str) -> None:
    node.meta["fused_from"] = list(node.meta.get("fused_from", [])) + list(ops)


def norm_axes(axes, rank: int) -> set:
    return {int(a) + rank if int(a) < 0 else int(a) for a in np.asarray(axes).reshape(-1)}
