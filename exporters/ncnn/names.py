"""Blob and layer names of the ncnn ``.param`` file.

The loader reads names as whitespace-separated tokens of at most 255 bytes
(Tencent/ncnn src/net.cpp ``Net::load_param``, ``%255s``); blob names and layer names must each
be unique. Graph input and output names are assigned first so they stay predictable: the
runtime maps IR names with the same :func:`io_names`.
"""
from __future__ import annotations

from typing import Iterable, Sequence

MAX_NAME_BYTES = 255


def _truncate(name: str, limit: int) -> str:
    data = name.encode("utf-8")[:limit]
    return data.decode("utf-8", errors="ignore")


def sanitize(name: str) -> str:
    """``name`` with whitespace and non-printable characters replaced by ``_`` and cut to 255
    UTF-8 bytes; an empty name becomes ``_``."""
    clean = "".join(c if c.isprintable() and not c.isspace() else "_" for c in str(name))
    return _truncate(clean or "_", MAX_NAME_BYTES)


def unique_names(names: Iterable[str], taken: Iterable[str] = ()) -> list[str]:
    """Sanitized, unique versions of ``names`` in order (later duplicates get ``_N``)."""
    used = set(taken)
    out = []
    for raw in names:
        base = sanitize(raw)
        cand, k = base, 0
        while cand in used:
            k += 1
            suffix = f"_{k}"
            cand = _truncate(base, MAX_NAME_BYTES - len(suffix)) + suffix
        used.add(cand)
        out.append(cand)
    return out


def io_names(inputs: Sequence[str], outputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """The ``.param`` blob names of graph inputs and outputs given their IR names (inputs
    first, then outputs, as the writer assigns them)."""
    names = unique_names(list(inputs) + list(outputs))
    return names[:len(inputs)], names[len(inputs):]
