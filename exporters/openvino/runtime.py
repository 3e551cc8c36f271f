"""Run written OpenVINO IR files in the ``openvino`` runtime (verification and tests).

Facts used (shared/docs/formats/openvino-ir.md): ``read_model("x.xml")`` finds ``x.bin`` next to
it; the CPU plugin on AMX / AVX512-BF16 machines infers in bf16 by default, so the model is
compiled with ``INFERENCE_PRECISION_HINT=f32`` (rule 9); inputs are addressed by tensor name
(the IR input names); the compiled model's outputs follow the Result order, which is the graph
output order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}
_CORE = None


def runtime_available() -> bool:
    """True when the ``openvino`` package imports."""
    try:
        import openvino  # noqa: F401
    except Exception:
        return False
    return True


def core():
    """The process-wide ``openvino.Core`` (creating one costs ~0.1 s)."""
    global _CORE
    if _CORE is None:
        import openvino

        _CORE = openvino.Core()
    return _CORE


def xml_of(files: Sequence) -> Path:
    """The ``.xml`` among ``files``.

    Raises:
        StopIteration: no ``.xml`` file.
    """
    return next(Path(f) for f in files if Path(f).suffix == ".xml")


def _feeds(compiled, inputs: dict) -> dict:
    """Input port index -> array: by tensor name, else (a single input) the only array."""
    feeds = {}
    for i, port in enumerate(compiled.inputs):
        names = port.get_names()
        key = next((k for k in inputs if k in names), None)
        if key is None and len(inputs) == len(compiled.inputs) == 1:
            key = next(iter(inputs))
        if key is None:
            raise KeyError(f"no input array for model input {sorted(names)}")
        feeds[i] = np.require(inputs[key], requirements="C")  # keeps 0-d arrays 0-d
    return feeds


def run(files: Sequence, inputs: dict, options: Any = None) -> list[np.ndarray]:
    """Compile ``<stem>.xml`` (``files``) on CPU in f32 and infer ``inputs`` (IR input name ->
    NCHW array); returns the outputs in graph output order (copies).

    Raises:
        RuntimeError: OpenVINO fails to read, compile or infer the model.
        KeyError: an input of the model has no array in ``inputs``.
    """
    compiled = core().compile_model(str(xml_of(files)), "CPU", CONFIG)
    request = compiled.create_infer_request()
    result = request.infer(_feeds(compiled, inputs))
    return [np.array(result[out], copy=True) for out in compiled.outputs]
