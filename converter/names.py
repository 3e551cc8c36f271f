"""Unique names: ``base`` when free, else ``base_N`` with the first free N.

One mechanism for the IR graph and every exporter (ncnn layers, ONNX tensors, OpenVINO
friendly names, TFLite tensors), so naming is deterministic the same way everywhere.
"""
from __future__ import annotations

import re
from typing import Iterable

_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def sanitize(name: str) -> str:
    """A source value name safe for every target and file system: ``[A-Za-z0-9_.-]`` only,
    no leading/trailing dots, not empty, at most 200 characters (one rule for every frontend)."""
    s = _SAFE.sub("_", name).strip(".") or "v"
    return s[:200]


class NameSet:
    """A set of taken names that hands out fresh ones.

    Names are never released, so the search for ``base_N`` resumes after the last N given
    for ``base``: the result equals a scan from N = 1, without rescanning.
    """

    def __init__(self, taken: Iterable[str] = ()):
        self._used: set[str] = set(taken)
        self._next: dict[str, int] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._used

    def unique(self, base: str) -> str:
        """Reserve and return ``base``, or ``base_N`` with the first free N."""
        if base not in self._used:
            self._used.add(base)
            return base
        n = self._next.get(base, 0)
        while True:
            n += 1
            cand = f"{base}_{n}"
            if cand not in self._used:
                self._next[base] = n
                self._used.add(cand)
                return cand
