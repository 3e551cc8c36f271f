"""ONNX exporter: IR graph -> ``<stem>.onnx`` (+ ``<stem>.onnx.data`` for weights over 2 GB).

Contract of :mod:`exporters`: :func:`scan`, :func:`export`, :func:`runtime_available`,
:func:`run`, :func:`describe`. Modules: ``lower.py`` (IR -> ONNX nodes for the target opset
13..26, registered lowerings), ``context.py`` (lowered-graph records), ``writer.py``
(ModelProto assembly, fp16 weights, external data, atomic write), ``runtime.py``
(onnxruntime CPU). ``build.py`` is the opset-20 identity ``to_model`` / ``run_onnxruntime``
that tests use as the IR's numerical reference. Format facts: shared/docs/formats/onnx.md.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from converter.errors import Issue, UnsupportedOpsError
from converter.ir import Graph

from . import writer
from .layout import layout_issues, nhwc_boundary, to_nhwc_io
from .lower import lower_graph
from .lower import scan as _scan
from .runtime import run, runtime_available

__all__ = ["scan", "export", "run", "runtime_available", "describe"]


def scan(graph: Graph, options: Any = None) -> list[Issue]:
    """Pre-flight scan at ``options.opset`` (default 17): nodes without a lowering, failed
    checks, opset conditions (e.g. AveragePool dilations need 19) and an opset outside
    13..26, an unknown ``options.io_layout``, all collected; nothing is written."""
    return _scan(graph, options) + layout_issues("onnx", options)


def export(graph: Graph, out_dir, stem: str, options: Any = None) -> list[Path]:
    """Lower ``graph`` for ``options.opset`` and write ``<stem>.onnx`` into ``out_dir``
    (``options.fp16``: float16 weights behind Cast nodes; metadata from
    ``options.source_sha256`` / ``options.passes``; an NHWC source with ``options.io_layout``
    "nhwc" gets NHWC rank-4 inputs/outputs, :mod:`.layout`). ``graph`` is not modified.

    Returns:
        ``[model_path]``, or ``[model_path, data_path]`` with external data.

    Raises:
        UnsupportedOpsError: the scan found problems (nothing is written).
        OSError: writing failed (no partial files are left).
    """
    issues = scan(graph, options)
    if issues:
        raise UnsupportedOpsError(issues)
    model = lower_graph(graph, options)
    if nhwc_boundary(graph, options):
        model = to_nhwc_io(model)
    return writer.write(model, Path(out_dir), stem, options)


def describe(files: list[Path]) -> dict:
    """Node counts of the written model (the ``.onnx`` file, external data not loaded):
    ``{"ops": n, "op_counts": {op_type: n}}``."""
    import onnx

    from .runtime import model_file

    model = onnx.load(str(model_file(files)), load_external_data=False)
    counts: dict = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return {"ops": sum(counts.values()), "op_counts": dict(sorted(counts.items()))}
