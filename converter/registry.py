"""Registries of frontend converters and exporter lowerings, each with its checks.

A converter turns one source op (``("pytorch", "aten.conv2d")``) into IR nodes; a lowering turns
one IR op into a target's layers. Both declare the ops they may emit and a tuple of
:class:`Check` objects; the pre-flight scan and ``mconv ops`` report the text of the very check
that decided, so a report can never disagree with the code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from .errors import Issue


@dataclass(frozen=True)
class Check:
    """A support condition: ``fn(node) -> bool`` (True = supported), its text and reason code.

    ``fn`` receives what the registry entry handles: a source-op record for a converter, an
    IR :class:`~converter.ir.Node` for a lowering. An exception inside ``fn`` counts as failed.
    """

    text: str
    fn: Callable[[Any], bool]
    code: str

    def passes(self, node: Any) -> bool:
        try:
            return bool(self.fn(node))
        except Exception:  # a check that cannot evaluate the node rejects it
            return False


@dataclass(frozen=True)
class Entry:
    """One registered converter or lowering."""

    owner: str  # framework ("pytorch") or target ("ncnn")
    op: str
    fn: Callable
    emits: tuple = ()
    checks: tuple = ()
    note: str = ""

    def failed_checks(self, node: Any) -> list[Check]:
        return [c for c in self.checks if not c.passes(node)]


class RegistryError(Exception):
    """A converter or lowering registered twice for the same (owner, op)."""


CONVERTERS: dict[tuple[str, str], Entry] = {}
LOWERINGS: dict[tuple[str, str], Entry] = {}


def _register(table: dict, owner: str, ops, emits, checks, note) -> Callable:
    names = (ops,) if isinstance(ops, str) else tuple(ops)

    def deco(fn: Callable) -> Callable:
        for name in names:
            if (owner, name) in table:
                raise RegistryError(f"{owner}: {name} registered twice")
            table[(owner, name)] = Entry(owner, name, fn, tuple(emits), tuple(checks), note)
        return fn

    return deco


def converter(framework: str, ops, emits: Iterable[str] = (), checks: Iterable[Check] = (),
              note: str = "") -> Callable:
    """Decorator registering a frontend converter for one source op name or several.

    Raises:
        RegistryError: the (framework, op) pair is already registered.
    """
    return _register(CONVERTERS, framework, ops, emits, checks, note)


def lowering(target: str, ops, emits: Iterable[str] = (), checks: Iterable[Check] = (),
             note: str = "") -> Callable:
    """Decorator registering an exporter lowering for one IR op name or several.

    Raises:
        RegistryError: the (target, op) pair is already registered.
    """
    return _register(LOWERINGS, target, ops, emits, checks, note)


def find_converter(framework: str, op: str) -> Optional[Entry]:
    return CONVERTERS.get((framework, op))


def find_lowering(target: str, op: str) -> Optional[Entry]:
    return LOWERINGS.get((target, op))


def scan_lowering(graph, target: str) -> list[Issue]:
    """Pre-flight scan of an IR graph for ``target``: every node without a lowering or
    failing a lowering check becomes an :class:`~converter.errors.Issue` (all are collected)."""
    issues: list[Issue] = []
    for node in graph.nodes:
        entry = find_lowering(target, node.op)
        src = node.meta.get("source_op", "")
        label = f"{node.name}" + (f" ({src})" if src else "")
        if entry is None:
            issues.append(Issue(f"target:{target}", node.op, "no-lowering",
                                f"{target} has no layer for IR op {node.op}", [label],
                                "try another target or open an issue with the model"))
            continue
        for check in entry.failed_checks(node):
            issues.append(Issue(f"target:{target}", node.op, check.code, check.text, [label]))
    return issues
