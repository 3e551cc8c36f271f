"""OpenVINO exporter: IR graph -> ``<stem>.xml`` + ``<stem>.bin`` (OpenVINO IR v11).

Contract of :mod:`exporters`: :func:`scan`, :func:`export`, :func:`runtime_available`,
:func:`run`, :func:`describe`. Modules: ``lower*.py`` (IR -> OpenVINO ops, registered
lowerings building an ``openvino.Model`` with the runtime's opset factories), ``context.py``
(value map, deterministic names), ``checks.py``, ``writer.py`` (``openvino.save_model`` into a
temporary folder, renamed into place), ``runtime.py`` (CPU plugin, f32). Format facts:
shared/docs/formats/openvino-ir.md. The openvino package is needed to export, not to scan.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from converter.errors import Issue, UnsupportedOpsError, UsageError
from converter.ir import Graph

from . import writer
from .lower import lower_graph
from .lower import scan as _scan
from .runtime import run, runtime_available

__all__ = ["scan", "export", "run", "runtime_available", "describe"]

#: Layer types :func:`describe` leaves out: graph plumbing and weight storage, not compute.
NOT_COUNTED = ("Parameter", "Result", "Const")


def scan(graph: Graph, options: Any = None) -> list[Issue]:
    """Pre-flight scan: every IR node OpenVINO cannot take (no lowering, or a failed check
    such as ``openvino.const``) and every graph input/output it cannot declare; nothing is
    written and openvino is not imported. An unknown ``options.io_layout`` is an issue too."""
    from exporters.onnx.layout import layout_issues

    return _scan(graph) + layout_issues("openvino", options)


def export(graph: Graph, out_dir, stem: str, options: Any = None) -> list[Path]:
    """Lower ``graph`` and write ``<stem>.xml`` and ``<stem>.bin`` into ``out_dir``
    (``options.fp16``: float weights stored as float16 and decompressed on load).

    Returns:
        ``[xml_path, bin_path]``.

    Raises:
        UnsupportedOpsError: the scan found problems (nothing is written).
        UsageError: the openvino package is not installed.
        OSError / RuntimeError: writing failed (no partial files are left).
    """
    issues = scan(graph, options)
    if issues:
        raise UnsupportedOpsError(issues)
    if not runtime_available():
        raise UsageError("the openvino target needs the openvino package",
                         "pip install 'mconv[runtimes]'")
    model = lower_graph(graph, options)
    return writer.write(model, Path(out_dir), stem, fp16=bool(getattr(options, "fp16", False)))


def _is_decompression(layer: ET.Element) -> bool:
    return layer.get("type") == "Convert" and any(
        a.get("name") == "decompression" for a in layer.iter("attribute"))


def describe(files: list[Path]) -> dict:
    """Layer counts of a written ``.xml`` (the first ``.xml`` in ``files``):
    ``{"ops": n, "op_counts": {type: n}}``. Counted: every layer except ``Parameter``,
    ``Result``, ``Const`` and the fp16 weight-decompression ``Convert`` layers (weight storage,
    not compute); types as the XML spells them (``ReLU``, ``SoftMax``)."""
    xml = next(Path(f) for f in files if Path(f).suffix == ".xml")
    counts: dict = {}
    for layer in ET.parse(xml).getroot().iter("layer"):
        t = layer.get("type")
        if t in NOT_COUNTED or _is_decompression(layer):
            continue
        counts[t] = counts.get(t, 0) + 1
    return {"ops": sum(counts.values()), "op_counts": dict(sorted(counts.items()))}
