"""Run the *source* ONNX file for verification: onnxruntime's CPU provider, the reference.

onnxruntime 1.31 has no kernels for some opset<7 op versions (``Add(6)`` with the legacy
``broadcast`` attribute, ``BatchNormalization(6)``, ``AveragePool(1)``, ``PRelu(6)``, ... -
measured on the onnx package's ``pytorch-converted`` test models) and rejects IR version 14 /
opset > 26 (shared/docs/formats/onnx.md section 2). When onnxruntime cannot load the file the
ONNX reference implementation (``onnx.reference.ReferenceEvaluator``) runs it instead.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from converter.errors import UsageError


def source_runner(path: Path, input_names: dict, output_names: list) -> Callable:
    """``run(inputs) -> [outputs]`` of the file at ``path``.

    Args:
        input_names: IR input name -> ONNX input name (inputs arrive keyed by IR names).
        output_names: ONNX output names in graph output order.
    The session is created on the first call. Raises UsageError when neither onnxruntime nor
    the reference implementation can run the file (verification impossible).
    """
    state: dict = {}

    def run(inputs: dict) -> list:
        feeds = {input_names.get(k, k): np.require(a, requirements="C") for k, a in inputs.items()}
        if "fn" not in state:
            state["fn"] = _session(path, output_names)
        return [np.asarray(o) for o in state["fn"](feeds)]
    return run


def _run_session(path: Path, sess, output_names: list, feeds: dict) -> list:
    """``sess.run``; a refusal of the inputs (e.g. an --input-shape the file's static dims
    contradict) is a usage error."""
    try:
        return sess.run(output_names, feeds)
    except Exception as e:
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        shapes = ", ".join(f"{k}={'x'.join(map(str, a.shape))}" for k, a in feeds.items())
        raise UsageError(f"{path}: onnxruntime cannot run the source model on {shapes}: "
                         f"{msg}", "check --input-shape against the model's inputs, or "
                         "pass --no-verify") from None


def _session(path: Path, output_names: list) -> Callable:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only: legacy-opset warnings are expected
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return lambda feeds: _run_session(path, sess, output_names, feeds)
    except Exception as e:
        ort_error = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
    try:
        import onnx
        from onnx.reference import ReferenceEvaluator

        ref = ReferenceEvaluator(onnx.load(str(path)))
    except Exception as e:
        raise UsageError(f"{path}: cannot run the source model for verification: "
                         f"onnxruntime: {ort_error}; onnx.reference: {str(e)[:120]}",
                         "pass --no-verify") from None

    def run_reference(feeds: dict) -> list:
        try:
            return ref.run(output_names, feeds)
        except Exception as e:  # an attribute or input the reference rejects at run time
            raise UsageError(f"{path}: cannot run the source model for verification: "
                             f"onnxruntime: {ort_error}; onnx.reference: "
                             f"{str(e).splitlines()[0][:120]}", "pass --no-verify") from None
    return run_reference
