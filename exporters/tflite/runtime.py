"""Run a written ``.tflite`` in LiteRT (``ai_edge_litert.interpreter.Interpreter``).

Two kernel paths (shared/docs/formats/tflite.md, verified with ai-edge-litert 2.3.0):

* ``xnnpack=True`` (default, what :func:`run` and so ``--verify`` use):
  ``OpResolverType.AUTO``, the builtin kernels with the default XNNPACK delegate applied,
  which is what a LiteRT user gets out of the box;
* ``xnnpack=False``: ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``, the builtin
  kernels only (the reference path; tests run both).

The model is run through its ``serving_default`` signature, so inputs and outputs are
addressed by the IR names. The boundary layout is read from the file's ``mconv.io_layout``
metadata (written by the exporter): ``{"inputs": {name: perm}, "outputs": {name: perm}}``
with ``physical = ir.transpose(perm)``; NCHW verification inputs are transposed to the
physical layout before feeding and outputs transposed back, so :func:`run` returns outputs
in the IR (source) layout.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

SIGNATURE = "serving_default"
LAYOUT_KEY = "mconv.io_layout"


def runtime_available() -> bool:
    """True when ``ai_edge_litert`` imports (the ``tflite`` package is needed to export)."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except Exception:
        return False
    return True


def tflite_of(files: Sequence) -> Path:
    """The ``.tflite`` among ``files``.

    Raises:
        StopIteration: no ``.tflite`` file.
    """
    return next(Path(f) for f in files if Path(f).suffix == ".tflite")


def read_metadata(data: bytes) -> dict[str, bytes]:
    """``Model.metadata`` of a ``.tflite`` as name -> buffer bytes."""
    import tflite

    m = tflite.Model.GetRootAsModel(data, 0)
    out = {}
    for i in range(m.MetadataLength()):
        md = m.Metadata(i)
        buf = m.Buffers(md.Buffer())
        out[md.Name().decode()] = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
    return out


def io_layout(data: bytes) -> dict:
    """The boundary perms recorded by the exporter (empty dicts when absent)."""
    raw = read_metadata(data).get(LAYOUT_KEY)
    layout = json.loads(raw.decode()) if raw else {}
    return {"inputs": layout.get("inputs", {}), "outputs": layout.get("outputs", {})}


def interpreter(path: Path, xnnpack: bool = True, threads: Optional[int] = None):
    """An ``Interpreter`` on ``path``: default delegate (XNNPACK) or builtin kernels only."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(model_path=str(path), experimental_op_resolver_type=kind,
                       num_threads=threads)


def _inverse(perm) -> list:
    return [int(i) for i in np.argsort(perm)]


def run(files: Sequence, inputs: dict, options: Any = None, xnnpack: bool = True,
        threads: Optional[int] = None) -> list[np.ndarray]:
    """Run the ``.tflite`` in ``files`` on ``inputs`` (IR input name -> NCHW array); returns
    the outputs in graph (signature) order, in the IR layout.

    Raises:
        KeyError: an input of the signature has no array in ``inputs``.
        RuntimeError / ValueError: LiteRT rejects the model or the inputs.
    """
    path = tflite_of(files)
    layout = io_layout(path.read_bytes())
    it = interpreter(path, xnnpack, threads)
    runner = it.get_signature_runner(SIGNATURE)
    details = runner.get_input_details()
    feeds = {}
    for name in details:
        key = name if name in inputs else (next(iter(inputs)) if len(inputs) == 1 else None)
        if key is None:
            raise KeyError(f"no input array for model input {name!r}")
        arr = np.asarray(inputs[key])
        perm = layout["inputs"].get(name)
        feeds[name] = np.ascontiguousarray(arr.transpose(perm) if perm else arr)
    result = runner(**feeds)
    order = list(layout["outputs"]) or list(result)
    out = []
    for name in order:
        perm = layout["outputs"].get(name)
        arr = np.array(result[name], copy=True)
        out.append(np.ascontiguousarray(arr.transpose(_inverse(perm))) if perm else arr)
    return out
