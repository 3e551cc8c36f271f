"""Run written OpenVINO IR files in the ``openvino`` runtime (verification and tests).

Facts used (shared/docs/formats/openvino-ir.md): ``read_model("x.xml")`` finds ``x.bin`` next to
it; the CPU plugin on AMX / AVX512-BF16 machines infers in bf16 by default, so the model is
compiled with ``INFERENCE_PRECISION_HINT=f32`` (rule 9); inputs are addressed by tensor name
(the IR input names); the compiled model's outputs follow the Result order, which is the graph
output order.
"""
from __future__ import annotations

import json
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
    NCHW array); returns the outputs in graph output order (copies), in the IR layout (an
    NHWC boundary recorded by the exporter, :func:`io_layout`, is transposed in and out).

    Raises:
        RuntimeError: OpenVINO fails to read, compile or infer the model.
        KeyError: an input of the model has no array in ``inputs``.
    """
    model = core().read_model(str(xml_of(files)))
    layout = io_layout(model)
    compiled = core().compile_model(model, "CPU", CONFIG)
    request = compiled.create_infer_request()
    result = request.infer(_feeds(compiled, _to_physical(inputs, layout["inputs"])))
    outs = []
    for k, out in enumerate(compiled.outputs):
        arr = np.array(result[out], copy=True)
        perm = layout["output_perms"][k] if k < len(layout["output_perms"]) else None
        outs.append(np.ascontiguousarray(arr.transpose(np.argsort(perm))) if perm else arr)
    return outs


def io_layout(model) -> dict:
    """The NHWC boundary the exporter recorded as rt_info ``mconv/io_layout`` (JSON
    ``{"inputs": {name: perm}, "outputs": {name: perm}, "output_perms": [perm or None per
    output]}``, ``physical = ir.transpose(perm)``; empty when absent)."""
    raw = (model.get_rt_info(["mconv", "io_layout"]).astype(str)
           if model.has_rt_info(["mconv", "io_layout"]) else "")
    layout = json.loads(raw) if raw else {}
    return {"inputs": layout.get("inputs", {}), "outputs": layout.get("outputs", {}),
            "output_perms": layout.get("output_perms", [])}


def _to_physical(inputs: dict, perms: dict) -> dict:
    return {k: np.asarray(a).transpose(perms[k]) if k in perms else a for k, a in inputs.items()}
