"""Exporters: one package per target, each with ``lower.py`` (IR -> target ops, registered
with :func:`converter.registry.lowering`), ``writer.py`` (plain deterministic serializer) and
``runtime.py`` (loads the written files in the target's real runtime, for verification).

Every target package exposes:

* ``scan(graph, options) -> list[Issue]`` — the pre-flight scan, nothing written;
* ``export(graph, out_dir, stem, options) -> list[Path]`` — lower and write atomically;
* ``runtime_available() -> bool`` and ``run(files, inputs, options) -> list[ndarray]``
  (outputs in graph output order; ``inputs`` maps graph input names to NCHW arrays);
* optionally ``describe(files) -> dict`` (``{"ops": n, "op_counts": {type: n}}``) for the
  summary and the report.

Exporters never modify the IR graph they are given: the pipeline lowers the same optimized
graph for every requested target in turn. With several targets each writes into
``OUTDIR/<target>/``; with one, into ``OUTDIR``.
"""
from __future__ import annotations

import importlib
from types import ModuleType

TARGETS = {"ncnn": "exporters.ncnn", "onnx": "exporters.onnx", "openvino": "exporters.openvino",
           "tflite": "exporters.tflite"}


def get(target: str) -> ModuleType:
    """The exporter package of ``target``.

    Raises:
        KeyError: unknown target name.
    """
    return importlib.import_module(TARGETS[target])
