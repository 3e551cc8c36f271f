"""Serializer of a :class:`~exporters.onnx.context.LoweredModel` to ``<stem>.onnx`` (and
``<stem>.onnx.data`` when the weights need external data).

Format facts (onnx/onnx ``onnx/onnx.proto``, ``docs/IR.md``, ``docs/ExternalData.md``,
``docs/Versioning.md``; verified in shared/docs/formats/onnx.md sections 1-3):

* ``ir_version`` is always set (``helper.make_model`` defaults to the newest IR, 14, which
  onnxruntime 1.31 rejects): the IR of the first onnx release with the target opset
  (``onnx.helper.VERSION_TABLE``), capped at 13.
* Initializers are not repeated in ``graph.input`` (IR >= 4); ``value_info`` types every
  intermediate tensor the IR knows; ``metadata_props`` records the mconv version, the source
  file's sha256 and the rewrite rules applied.
* A protobuf message cannot exceed 2 GiB: when the weights exceed ``external_threshold``,
  every initializer of >= 1 KiB goes to ``<stem>.onnx.data`` (``data_location = EXTERNAL``,
  keys ``location`` / ``offset`` / ``length``; offsets 4096-aligned).
* ``fp16``: float32 initializers of >= 16 elements inside float16 range are stored as float16
  (``<name>_fp16``), each read through a ``Cast(to=FLOAT)`` that writes the original name, so
  every node, graph input and output stays float32 (shared/docs/formats/onnx.md rule 7: no
  implicit casts).

The bytes are deterministic (protobuf deterministic serialization of a model built in IR
order). Files are written into a temporary folder beside the target, checked with
``onnx.checker.check_model(full_check=True)`` (which includes strict shape inference), then
renamed into place; on any error nothing is left behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

from converter import __version__
from converter.ops import ONNX_DTYPE_CODE

from .context import LoweredModel, OnnxNode, TensorInfo

MAX_IR_VERSION = 13  # onnxruntime 1.31: "max supported IR version: 13"
PROTOBUF_LIMIT = 1 << 31
EXTERNAL_THRESHOLD = PROTOBUF_LIMIT - (64 << 20)  # leave 64 MiB for the graph structure
EXTERNAL_MIN_BYTES = 1024
EXTERNAL_ALIGN = 4096
FP16_MIN_ELEMENTS = 16
FP16_MAX = 65504.0


def ir_version_for(opset: int) -> int:
    """IR version of the first onnx release whose ai.onnx opset is >= ``opset``
    (``onnx.helper.VERSION_TABLE``: 17 -> 8, 20 -> 9, 21 -> 10, 26 -> 13), capped at 13."""
    from onnx import helper

    rows = [row for row in helper.VERSION_TABLE if row[2] >= opset]
    ir = min((row[1] for row in rows if row[2] == rows[0][2]), default=MAX_IR_VERSION)
    return min(ir, MAX_IR_VERSION)


# ------------------------------------------------------------------ fp16 weights
def _fp16_ok(arr: np.ndarray) -> bool:
    return (arr.dtype == np.float32 and arr.size >= FP16_MIN_ELEMENTS
            and bool(np.all(np.isfinite(arr))) and float(np.abs(arr).max()) <= FP16_MAX)


def weights_to_fp16(model: LoweredModel) -> LoweredModel:
    """A copy of ``model`` whose large float32 initializers are float16 behind a
    ``Cast(to=FLOAT)`` each (see the module docstring); ``model`` is not changed."""
    taken = {n.name for n in model.nodes} | set(model.initializers) | set(model.value_info)
    taken |= {t for n in model.nodes for t in (*n.inputs, *n.outputs)}

    def unique(base: str) -> str:
        name, k = base, 0
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name)
        return name

    inits, casts, vi = {}, [], dict(model.value_info)
    for name, arr in model.initializers.items():
        if not _fp16_ok(arr):
            inits[name] = arr
            continue
        half = unique(name + "_fp16")
        inits[half] = arr.astype(np.float16)
        casts.append(OnnxNode("Cast", unique(name + "/cast"), [half], [name],
                              {"to": ONNX_DTYPE_CODE["float32"]}))
        if name not in {t.name for t in model.outputs}:
            vi[name] = TensorInfo(name, "float32", tuple(arr.shape))
    return replace(model, nodes=casts + list(model.nodes), initializers=inits, value_info=vi)


# ------------------------------------------------------------------ ModelProto
def _value_info(t: TensorInfo):
    from onnx import helper

    dims = None if t.shape is None else [d if isinstance(d, (int, str)) else None
                                         for d in t.shape]
    return helper.make_tensor_value_info(t.name, ONNX_DTYPE_CODE[t.dtype], dims)


def _tensor(name: str, arr: np.ndarray, external: Optional[tuple]):
    """A TensorProto; ``external`` = ``(location, offset)`` stores a reference instead of the
    bytes (docs/ExternalData.md)."""
    from onnx import TensorProto, numpy_helper

    if external is None:
        return numpy_helper.from_array(arr, name)
    t = TensorProto(name=name, data_type=ONNX_DTYPE_CODE[str(arr.dtype)], dims=arr.shape)
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", external[0]), ("offset", str(external[1])),
                       ("length", str(arr.nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def external_layout(model: LoweredModel, threshold: int) -> dict:
    """Initializer name -> offset in the data file; empty when the weights fit inline
    (total bytes <= ``threshold``)."""
    if sum(a.nbytes for a in model.initializers.values()) <= threshold:
        return {}
    layout, offset = {}, 0
    for name, arr in model.initializers.items():
        if arr.nbytes >= EXTERNAL_MIN_BYTES:
            offset += -offset % EXTERNAL_ALIGN
            layout[name] = offset
            offset += arr.nbytes
    return layout


def metadata(options) -> dict:
    """``metadata_props`` entries: mconv version, source sha256, rewrite rules applied."""
    meta = {"mconv_version": __version__}
    sha = getattr(options, "source_sha256", "") if options is not None else ""
    if sha:
        meta["source_sha256"] = sha
    passes = getattr(options, "passes", ()) if options is not None else ()
    meta["passes"] = ",".join(passes)
    if getattr(options, "fp16", False):
        meta["weights"] = "float16"
    return meta


def to_model_proto(model: LoweredModel, meta: dict, layout: dict, data_name: str):
    """The ``onnx.ModelProto`` of a lowered model (external tensors per ``layout``)."""
    from onnx import helper

    nodes = [helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, **n.attrs)
             for n in model.nodes]
    inits = [_tensor(k, a, (data_name, layout[k]) if k in layout else None)
             for k, a in model.initializers.items()]
    graph = helper.make_graph(nodes, model.name, [_value_info(t) for t in model.inputs],
                              [_value_info(t) for t in model.outputs], initializer=inits,
                              value_info=[_value_info(t) for t in model.value_info.values()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", model.opset)],
                              ir_version=ir_version_for(model.opset), producer_name="mconv",
                              producer_version=__version__)
    helper.set_model_props(proto, dict(sorted(meta.items())))
    return proto


# ------------------------------------------------------------------ files
def _write_data(path: Path, model: LoweredModel, layout: dict) -> None:
    with open(path, "wb") as f:
        for name, offset in layout.items():
            arr = model.initializers[name]
            f.write(b"\0" * (offset - f.tell()))
            np.asarray(arr, order="C").astype(arr.dtype.newbyteorder("<"), copy=False).tofile(f)


def write(model: LoweredModel, out_dir: Path, stem: str, options=None, check: bool = True,
          external_threshold: int = EXTERNAL_THRESHOLD) -> list[Path]:
    """Write ``<stem>.onnx`` (+ ``<stem>.onnx.data`` when external) into ``out_dir``.

    ``options``: ``fp16`` (float16 weights), ``source_sha256`` and ``passes`` (metadata).
    Returns the written paths, model first. A stale ``<stem>.onnx.data`` of an earlier export
    is removed when this model keeps its weights inline.

    Raises:
        onnx.checker.ValidationError / onnx.shape_inference.InferenceError: the model fails
            the checker (a lowering bug); nothing is written.
        OSError: writing failed; nothing is left behind.
    """
    if getattr(options, "fp16", False):
        model = weights_to_fp16(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{stem}.onnx"
    data = out_dir / f"{stem}.onnx.data"
    layout = external_layout(model, external_threshold)
    proto = to_model_proto(model, {**metadata(options), **model.metadata}, layout, data.name)
    payload = proto.SerializeToString(deterministic=True)
    del proto
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}.onnx.", suffix=".tmp", dir=out_dir))
    done: list[Path] = []
    try:
        _stage(tmp, final.name, data.name, payload, model, layout, check)
        for name in ([data.name] if layout else []) + [final.name]:
            os.replace(tmp / name, out_dir / name)
            done.append(out_dir / name)
    except BaseException:
        for p in done:
            p.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not layout:
        data.unlink(missing_ok=True)
    return done[::-1]


def _stage(tmp: Path, model_name: str, data_name: str, payload: bytes, model: LoweredModel,
           layout: dict, check: bool) -> None:
    """Write the files under their final names into the folder ``tmp`` and check them (the
    path form reads external data relative to the model, docs/ExternalData.md)."""
    import onnx

    if check and not layout:
        onnx.checker.check_model(payload, full_check=True)
    if layout:
        _write_data(tmp / data_name, model, layout)
    (tmp / model_name).write_bytes(payload)
    if check and layout:
        onnx.checker.check_model(str(tmp / model_name), full_check=True)
