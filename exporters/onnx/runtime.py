"""Run a written ``<stem>.onnx`` in onnxruntime's CPU execution provider (verification and
tests).

Facts (shared/docs/formats/onnx.md section 2): onnxruntime 1.31 loads IR <= 13 and ai.onnx
opset <= 26; a model with external data is loaded from its path so that the data file is found
relative to it (onnx/onnx ``docs/ExternalData.md``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

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
    input name -> array, cast to the model's input type) and return every graph output, in
    graph order.

    Raises:
        ValueError: no ``.onnx`` file among ``files``.
        KeyError: ``inputs`` misses a graph input.
        onnxruntime exceptions: the model does not load or run.
    """
    sess = session(model_file(files))
    feeds = {}
    for i in sess.get_inputs():
        feeds[i.name] = np.ascontiguousarray(inputs[i.name], dtype=_NP_TYPES.get(i.type))
    return [np.asarray(o) for o in sess.run(None, feeds)]
