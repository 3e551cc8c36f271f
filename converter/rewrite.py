"""Pattern-based rewrite engine.

A :class:`Rule` is a pattern plus a function. Patterns are built from ``P(op, *inputs,
**attrs)`` (a node, optionally captured with ``name=``), ``V(name)`` (any value, captured) and
``C(name)`` (a constant, captured as its numpy array). The engine enforces the guard every
fusion needs: a matched inner node's output has no other consumer and is not a graph output
(set ``P(..., shared=True)`` to allow it). The rule function receives the graph and a
:class:`Match`; it returns the replacement value (or a list, one per root output) or a
:class:`Decline` with a reason, which ``--debug`` shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import numpy as np

from .ir import Graph, Node, Value


class V:
    """Any value (a graph input, a constant or a node output), captured under ``name``."""

    def __init__(self, name: Optional[str] = None):
        self.name = name


class C:
    """A constant value, captured under ``name`` as its numpy array (and ``name + "_v"`` as
    the Value). ``exclusive=True`` also requires the constant to have no other reader."""

    def __init__(self, name: Optional[str] = None, exclusive: bool = False):
        self.name = name
        self.exclusive = exclusive


class P:
    """A node of op ``op`` (a name or a tuple of names) whose inputs match ``inputs``.

    Keyword ``attrs`` must equal the node's attributes (a callable is called with the value);
    ``name`` captures the node; ``shared`` lifts the single-consumer guard for this node.
    """

    def __init__(self, op, *inputs, name: Optional[str] = None, shared: bool = False,
                 **attrs: Any):
        self.ops = (op,) if isinstance(op, str) else tuple(op)
        self.inputs = inputs
        self.name = name
        self.shared = shared
        self.attrs = attrs


@dataclass
class Decline:
    """Returned by a rule function that matched but will not rewrite, with the reason."""

    reason: str


@dataclass
class Match:
    """Captures of one pattern match: values, constant arrays and nodes by name."""

    root: Node
    captures: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.captures[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.captures.get(key, default)


@dataclass(frozen=True)
class Rule:
    """A named rewrite: ``fn(graph, match) -> Value | list[Value] | Decline | None``."""

    name: str
    pattern: P
    fn: Callable


def _attr_ok(node: Node, key: str, want: Any) -> bool:
    from .ops import attr

    have = attr(node, key)
    return bool(want(have)) if callable(want) else have == want


def match(pattern: P, node: Node, graph: Graph) -> Optional[Match]:
    """Match ``pattern`` rooted at ``node``; None when it does not match or a guard fails."""
    m = Match(root=node)
    outputs = {id(o) for o in graph.outputs}

    def rec(p: Any, v: Optional[Value], is_root: bool) -> bool:
        if isinstance(p, V):
            if v is None:
                return False
            if p.name:
                m.captures[p.name] = v
            return True
        if isinstance(p, C):
            if v is None or not v.is_const:
                return False
            if p.exclusive and len(v.uses) != 1:
                return False
            if p.name:
                m.captures[p.name] = v.const
                m.captures[p.name + "_v"] = v
            return True
        n = node if is_root else (v.producer if v is not None else None)
        if n is None or n.op not in p.ops:
            return False
        if not is_root and not p.shared:
            if len(v.uses) != 1 or id(v) in outputs:
                return False
        if not all(_attr_ok(n, k, w) for k, w in p.attrs.items()):
            return False
        if len(p.inputs) > len(n.inputs):
            return False
        for sub, iv in zip(p.inputs, n.inputs):
            if not rec(sub, iv, False):
                return False
        if p.name:
            m.captures[p.name] = n
        m.nodes.append(n)
        return True

    return m if rec(pattern, None, True) else None


@dataclass
class RewriteLog:
    """What a :func:`run_rules` call did: fire counts per rule and every decline reason."""

    counts: dict = field(default_factory=dict)
    declines: list = field(default_factory=list)
    rounds: int = 0


def _apply(graph: Graph, node: Node, result: Union[Value, list, tuple]) -> None:
    news = list(result) if isinstance(result, (list, tuple)) else [result]
    for old, new in zip(node.outputs, news):
        if new is not None and new is not old:
            graph.replace_uses(old, new)


def run_rules(graph: Graph, rules: list[Rule], max_rounds: int = 50,
              log: Optional[RewriteLog] = None) -> RewriteLog:
    """Apply ``rules`` to a fixed point (at most ``max_rounds`` rounds over all nodes).

    Each round visits a snapshot of the nodes in order and tries every rule on each live
    node; afterwards dead nodes are removed and the graph is re-sorted.
    Returns the :class:`RewriteLog` (fire count per rule name, declines).
    """
    log = log or RewriteLog()
    for _ in range(max_rounds):
        fired = 0
        outputs = graph.outputs
        for node in list(graph.nodes):
            for rule in rules:
                if not any(o.uses for o in node.outputs) and not any(
                        o is g for o in node.outputs for g in outputs):
                    break  # dead: its readers were rewritten away this round
                if node.op not in rule.pattern.ops:
                    continue
                m = match(rule.pattern, node, graph)
                if m is None:
                    continue
                res = rule.fn(graph, m)
                if res is None:
                    continue
                if isinstance(res, Decline):
                    log.declines.append((rule.name, node.name, res.reason))
                    continue
                _apply(graph, node, res)
                log.counts[rule.name] = log.counts.get(rule.name, 0) + 1
                fired += 1
                break
        graph.cleanup()
        graph.toposort()
        log.rounds += 1
        outputs = graph.outputs
        if not fired:
            break
    log.declines = sorted(set(log.declines))
    return log


def const_scalar(arr: Any) -> Optional[float]:
    """The single value of a constant whose elements are all equal, else None."""
    a = np.asarray(arr)
    if a.size == 0:
        return None
    flat = a.reshape(-1)
    return float(flat[0]) if np.all(flat == flat[0]) else None
