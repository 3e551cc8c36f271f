"""ncnn exporter: IR graph -> ``<stem>.ncnn.param`` + ``<stem>.ncnn.bin`` (Tencent/ncnn).

Contract of :mod:`exporters`: :func:`scan`, :func:`export`, :func:`runtime_available`,
:func:`run`. Modules: ``lower*.py`` (IR -> ncnn layers, registered lowerings), ``context.py``
(layer records and blob bookkeeping), ``writer.py`` (serializer), ``names.py`` (blob/layer
names), ``runtime.py`` (the ncnn Python binding). Format facts: shared/docs/formats/ncnn.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from converter.errors import Issue, UnsupportedOpsError
from converter.ir import Graph

from . import writer
from .lower import lower_graph
from .lower import scan as _scan
from .runtime import run, runtime_available

__all__ = ["scan", "export", "run", "runtime_available", "describe"]


def scan(graph: Graph, options: Any = None) -> list[Issue]:
    """Pre-flight scan: every IR node ncnn cannot take (no lowering, or a failed check such as
    ``ncnn.batch``) and every graph input/output it cannot represent, all collected; nothing is
    written."""
    return _scan(graph)


def export(graph: Graph, out_dir, stem: str, options: Any = None) -> list[Path]:
    """Lower ``graph`` and write ``<stem>.ncnn.param`` and ``<stem>.ncnn.bin`` into ``out_dir``
    (``options.fp16``: fp16 weights for Convolution*/Deconvolution*/InnerProduct).

    Returns:
        ``[param_path, bin_path]``.

    Raises:
        UnsupportedOpsError: the scan found problems (nothing is written).
        OSError: writing failed (no partial files are left).
    """
    issues = scan(graph, options)
    if issues:
        raise UnsupportedOpsError(issues)
    net = lower_graph(graph, options)
    return writer.write(net, Path(out_dir), stem, fp16=bool(getattr(options, "fp16", False)))


def describe(files: list[Path]) -> dict:
    """Layer counts of a written ``.param`` (first file): ``{"ops": n, "op_counts": {...}}``."""
    lines = Path(files[0]).read_text().splitlines()[2:]
    counts: dict = {}
    for ln in lines:
        if ln.strip():
            t = ln.split()[0]
            counts[t] = counts.get(t, 0) + 1
    return {"ops": sum(counts.values()), "op_counts": dict(sorted(counts.items()))}
