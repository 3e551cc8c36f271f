"""Run a written ``<stem>.onnx`` in onnxruntime's CPU execution provider (verification and
tests).

Facts (shared/docs/formats/onnx.md section 2): onnxruntime 1.31 loads IR <= 13 and ai.onnx
opset <= 26; a model with external data is loaded from its path so that the data file is found
relative to it (onnx/onnx ``docs/ExternalData.md``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .layout import LAYOUT_KEY

_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
             "tensor(double)": np.float64, "tensor(int64)": np.int64,
             "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
             "tensor(int16)": np.int16, "tensor(bool)": np.bool_}


def runtime_available() -> bool:
    """True when ``onnxruntime`` imports and has the CPU execution provider."""
    try:
        import onnxruntime as ort
    except Exception:
        return False
    return "CPUExecutionProvider" in ort.get_available_providers()


def model_file(files: Sequence) -> Path:
    """The ``.onnx`` file among ``files``.

    Raises:
        ValueError: no ``.onnx`` file.
    """
    for f in files:
        if Path(f).suffix == ".onnx":
            return Path(f)
    raise ValueError(f"no .onnx file among {[str(f) for f in files]}")


def session(path: Path):
    """An onnxruntime CPU ``InferenceSession`` of the model at ``path``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(files: Sequence, inputs: dict, options: Any = None) -> list[np.ndarray]:
    """Run the written model (``files``, the ``.onnx`` one is used) on ``inputs`` (graph
    input name -> IR-layout array, cast to the model's input type) and return every graph
    output, in graph order, in the IR layout: NHWC boundaries recorded in the model's
    metadata (:func:`io_layout`) are transposed on the way in and out.

    Raises:
        ValueError: no ``.onnx`` file among ``files``.
        KeyError: ``inputs`` misses a graph input.
        onnxruntime exceptions: the model does not load or run.
    """
    sess = session(model_file(files))
    layout = io_layout(sess)
    feeds = {}
    for i in sess.get_inputs():
        arr, perm = np.asarray(inputs[i.name]), layout["inputs"].get(i.name)
        feeds[i.name] = np.ascontiguousarray(arr.transpose(perm) if perm else arr,
                                             dtype=_NP_TYPES.get(i.type))
    outs = []
    for o, arr in zip(sess.get_outputs(), sess.run(None, feeds)):
        perm = layout["outputs"].get(o.name)
        outs.append(np.ascontiguousarray(np.asarray(arr).transpose(np.argsort(perm)))
                    if perm else np.asarray(arr))
    return outs


def io_layout(sess) -> dict:
    """The boundary perms the exporter recorded in ``metadata_props`` (``mconv.io_layout``,
    see :mod:`.layout`; ``physical = ir.transpose(perm)``), empty dicts when absent."""
    raw = sess.get_modelmeta().custom_metadata_map.get(LAYOUT_KEY)
    layout = json.loads(raw) if raw else {}
    return {"inputs": layout.get("inputs", {}), "outputs": layout.get("outputs", {})}
