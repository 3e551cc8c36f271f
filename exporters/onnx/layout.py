"""NHWC graph inputs and outputs for models of an NHWC source (``--io-layout``).

A graph whose ``source_layout`` is ``"nhwc"`` (TensorFlow / Keras) is fed NHWC images by its
users. With ``options.io_layout == "nhwc"`` (the default) every rank-4 graph input and
output of such a graph is declared NHWC, with one Transpose at the boundary:
``input X [N,H,W,C] -> Transpose(perm=[0,3,1,2]) -> X/nchw`` (what the IR reads) and
``Y/nchw -> Transpose(perm=[0,2,3,1]) -> output Y [N,H,W,C]``; the boundary keeps the IR
names. Graphs of NCHW sources (PyTorch, ONNX, Caffe) and ``io_layout == "nchw"`` are not
touched.

The boundary is recorded in ``metadata_props`` under :data:`LAYOUT_KEY` as JSON
``{"inputs": {name: perm}, "outputs": {name: perm}}`` with ``physical = ir.transpose(perm)``
(the same convention as the TFLite exporter's ``mconv.io_layout`` metadata), so that
:func:`exporters.onnx.runtime.run` takes and returns IR-layout (NCHW) arrays.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from converter.names import NameSet

from .context import LoweredModel, OnnxNode, TensorInfo

LAYOUT_KEY = "mconv.io_layout"
IO_LAYOUTS = ("nhwc", "nchw")
NHWC = (0, 2, 3, 1)  # physical NHWC = ir NCHW .transpose(NHWC)
NCHW = (0, 3, 1, 2)  # the inverse


def layout_issues(target: str, options: Any) -> list:
    """An :class:`~converter.errors.Issue` when ``options.io_layout`` is not in
    :data:`IO_LAYOUTS` (the Python API does not check it; the CLI does)."""
    from converter.errors import Issue

    io = getattr(options, "io_layout", "nhwc") or "nhwc"
    if io in IO_LAYOUTS:
        return []
    return [Issue(f"target:{target}", "<options>", f"{target}.option",
                  f"io_layout must be one of {IO_LAYOUTS}", [str(io)], "use nhwc or nchw")]


def nhwc_boundary(graph: Any, options: Any) -> bool:
    """True when rank-4 inputs/outputs get NHWC: an NHWC source and ``io_layout`` "nhwc"
    (the :class:`~converter.options.ConvertOptions` default)."""
    io = getattr(options, "io_layout", "nhwc") or "nhwc"
    return getattr(graph, "source_layout", "nchw") == "nhwc" and io == "nhwc"


def _physical(t: TensorInfo) -> TensorInfo:
    return TensorInfo(t.name, t.dtype, tuple(t.shape[p] for p in NHWC))


def _rename(nodes: list, old: str, new: str) -> list:
    return [replace(n, inputs=[new if t == old else t for t in n.inputs],
                    outputs=[new if t == old else t for t in n.outputs]) for n in nodes]


def to_nhwc_io(model: LoweredModel) -> LoweredModel:
    """A copy of ``model`` with NHWC rank-4 inputs and outputs (module docstring); other
    ranks and constant outputs are kept; an output that is an NHWC input stays NHWC."""
    names = NameSet([n.name for n in model.nodes] + list(model.initializers)
                    + list(model.value_info) + [t.name for t in model.inputs + model.outputs]
                    + [x for n in model.nodes for x in n.inputs + n.outputs])
    nodes, vi, layout = list(model.nodes), dict(model.value_info), {"inputs": {}, "outputs": {}}
    ins, outs, head, tail = [], [], [], []
    in_names = {t.name for t in model.inputs}
    for t in model.inputs:
        if t.shape is None or len(t.shape) != 4:
            ins.append(t)
            continue
        inner = names.unique(f"{t.name}/nchw")
        nodes = _rename(nodes, t.name, inner)
        head.append(OnnxNode("Transpose", names.unique(f"{t.name}/to_nchw"), [t.name], [inner],
                             {"perm": list(NCHW)}))
        vi[inner] = TensorInfo(inner, t.dtype, t.shape)
        ins.append(_physical(t))
        layout["inputs"][t.name] = list(NHWC)
    for t in model.outputs:
        if t.name in layout["inputs"] or t.name in layout["outputs"]:  # already NHWC
            outs.append(_physical(t))
            layout["outputs"][t.name] = list(NHWC)
            continue
        if t.shape is None or len(t.shape) != 4 or t.name in in_names | set(model.initializers):
            outs.append(t)
            continue
        inner = names.unique(f"{t.name}/nchw")
        nodes = _rename(nodes, t.name, inner)
        tail.append(OnnxNode("Transpose", names.unique(f"{t.name}/to_nhwc"), [inner], [t.name],
                             {"perm": list(NHWC)}))
        vi[inner] = TensorInfo(inner, t.dtype, t.shape)
        outs.append(_physical(t))
        layout["outputs"][t.name] = list(NHWC)
    meta = dict(model.metadata)
    meta[LAYOUT_KEY] = json.dumps(layout, sort_keys=True)
    return replace(model, inputs=ins, outputs=outs, nodes=head + nodes + tail, value_info=vi,
                   metadata=meta)
