"""Frontends: one package per source framework. Each exposes
``load(path, options) -> LoadedModel`` (raising ``UnreadableModelError``, ``UsageError`` or
``UnsupportedOpsError`` with every unsupported op at once).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from converter.errors import UsageError
from converter.ir import Graph

FRONTENDS = {"pytorch": "frontends.pytorch", "onnx": "frontends.onnx",
             "tensorflow": "frontends.tensorflow", "caffe": "frontends.caffe"}
SUFFIXES = {".pt": "pytorch", ".pth": "pytorch", ".torchscript": "pytorch", ".pt2": "pytorch",
            ".onnx": "onnx", ".keras": "tensorflow", ".h5": "tensorflow",
            ".hdf5": "tensorflow", ".pb": "tensorflow", ".prototxt": "caffe"}


@dataclass
class LoadedModel:
    """A model translated to IR, with a callable that runs the *source* model.

    Attributes:
        graph: the IR graph (NCHW); ``graph.inputs`` / ``graph.outputs`` carry source names.
        run_source: ``f(inputs: dict[name, ndarray]) -> list[ndarray]`` in graph output order.
        framework: frontend name; ``source_ops``: source op name -> count.
    """

    graph: Graph
    run_source: Callable
    framework: str
    source_ops: dict = field(default_factory=dict)


def detect(path: Path) -> str:
    """Framework name for ``path`` from its suffix; a folder holding ``saved_model.pb`` is a
    TensorFlow SavedModel.

    Raises:
        UsageError: the suffix belongs to no frontend, or a folder is not a SavedModel.
    """
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "tensorflow"
        raise UsageError(f"{path}: a folder that is not a TensorFlow SavedModel (no "
                         "saved_model.pb)", "pass a model file or a SavedModel folder")
    fw = SUFFIXES.get(path.suffix.lower())
    if fw is None:
        known = ", ".join(sorted(SUFFIXES))
        raise UsageError(f"{path}: unknown model file type {path.suffix!r}",
                         f"mconv reads {known}")
    return fw


def load(path: Path, options) -> LoadedModel:
    """Load ``path`` with the frontend its suffix names."""
    fw = detect(path)
    return importlib.import_module(FRONTENDS[fw]).load(path, options)
