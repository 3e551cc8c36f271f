"""Run written ncnn files in the ``ncnn`` Python binding (verification and tests).

Facts used (shared/docs/formats/ncnn.md §3, verified on the 1.0.20261020 wheel):
``net.opt`` allows fp16/bf16 storage and arithmetic by default, so they are switched off before
``load_param`` for fp32-exact results (rule 7); ``ncnn.Mat(array)`` wraps numpy memory without a
refcount and in-place first layers then crash, so inputs are ``clone()``d (rule 6); in light mode
an upstream blob cannot be extracted after a downstream one, so outputs are extracted in layer
order (rule 8).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .names import io_names, sanitize


def runtime_available() -> bool:
    """True when the ``ncnn`` Python binding imports."""
    try:
        import ncnn  # noqa: F401
    except Exception:
        return False
    return True


def parse_param(text: str) -> list[tuple[str, str, list[str], list[str]]]:
    """``(type, name, inputs, outputs)`` of every layer line of a ``.param`` text."""
    layers = []
    for line in text.splitlines()[2:]:
        tok = line.split()
        if len(tok) < 4:
            continue
        nin, nout = int(tok[2]), int(tok[3])
        layers.append((tok[0], tok[1], tok[4:4 + nin], tok[4 + nin:4 + nin + nout]))
    return layers


def _default_outputs(layers) -> list[str]:
    """Blobs no layer reads (except Input blobs), in producer order."""
    read = {b for _, _, ins, _ in layers for b in ins}
    return [b for t, _, _, outs in layers if t != "Input" for b in outs if b not in read]


def _files(files: Sequence) -> tuple[Path, Path]:
    paths = [Path(f) for f in files]
    param = next(p for p in paths if p.suffix == ".param")
    binp = next(p for p in paths if p.suffix == ".bin")
    return param, binp


def run(files: Sequence, inputs: dict, options: Any = None, graph: Optional[Any] = None
        ) -> list[np.ndarray]:
    """Run ``<stem>.ncnn.param``/``.bin`` (``files``) on ``inputs`` (IR name -> NCHW array with
    batch 1) and return the outputs as float32 arrays with the batch dim restored.

    With ``graph`` (the exported IR graph) the outputs follow ``graph.outputs`` and take their
    IR shapes. Without it, the outputs are the blobs no layer reads, in layer order (the writer
    guarantees these are exactly the graph outputs), each shaped ``(1, *blob_shape)``.

    Raises:
        RuntimeError: ncnn fails to load the files or to compute an output.
        StopIteration: ``files`` lacks a ``.param`` or ``.bin`` file.
    """
    import ncnn

    param, binp = _files(files)
    layers = parse_param(param.read_text(encoding="utf-8"))
    names, shapes = _output_spec(layers, graph)
    net = ncnn.Net()
    for flag in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed",
                 "use_bf16_storage"):
        setattr(net.opt, flag, False)
    if net.load_param(str(param)) != 0 or net.load_model(str(binp)) != 0:
        raise RuntimeError(f"ncnn failed to load {param} / {binp}")
    try:
        return _extract(net, layers, _feeds(inputs, graph), names, shapes)
    finally:
        net.clear()


def _output_spec(layers, graph) -> tuple[list[str], list]:
    """Output blob names and IR shapes (None: restore the batch dim only)."""
    if graph is None:
        names = _default_outputs(layers)
        return names, [None] * len(names)
    _, outs = io_names([v.name for v in graph.inputs], [v.name for v in graph.outputs])
    return outs, [tuple(v.shape) for v in graph.outputs]


def _feeds(inputs: dict, graph) -> dict[str, np.ndarray]:
    """Blob name -> batch-less array. IR names map through :func:`io_names` (with the graph:
    its inputs; without: the ``inputs`` keys in order, as graph inputs are named first)."""
    ir_names = [v.name for v in graph.inputs] if graph is not None else list(inputs)
    by_ir = dict(zip(ir_names, io_names(ir_names, [])[0]))
    feeds = {}
    for name, arr in inputs.items():
        a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32))
        feeds[by_ir.get(name, sanitize(name))] = a[0] if a.ndim >= 2 else a
    return feeds


def _extract(net, layers, feeds, names, shapes) -> list[np.ndarray]:
    import ncnn

    order = {b: i for i, (_, _, _, outs) in enumerate(layers) for b in outs}
    ex = net.create_extractor()
    for name, arr in feeds.items():
        if ex.input(name, ncnn.Mat(arr).clone()) != 0:
            raise RuntimeError(f"ncnn has no input blob {name!r}")
    results: dict[str, np.ndarray] = {}
    for name in sorted(set(names), key=lambda b: order.get(b, -1)):
        ret, mat = ex.extract(name)
        if ret != 0:
            raise RuntimeError(f"ncnn failed to compute {name!r} (code {ret})")
        results[name] = np.array(mat, dtype=np.float32, copy=True)
    out = []
    for name, shape in zip(names, shapes):
        arr = results[name]
        out.append(arr.reshape(shape) if shape is not None else arr.reshape((1,) + arr.shape))
    return out
