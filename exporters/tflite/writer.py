"""Serialize a :class:`~exporters.tflite.model.TModel` as a ``.tflite`` FlatBuffer, atomically.

Written directly with the ``tflite`` package's flatc-generated builder functions
(``tflite.ModelStart``, ``tflite.Conv2DOptionsAddStrideW`` ...) on a ``flatbuffers.Builder``;
no TensorFlow. Layout of the file (tensorflow/tensorflow
``tensorflow/compiler/mlir/lite/schema/schema.fbs``; shared/docs/formats/tflite.md §1-2):

* ``Model.version`` 3 and file identifier ``TFL3`` (the interpreter rejects anything else);
* ``buffers[0]`` is the empty sentinel; every constant tensor has its own buffer whose data
  vector starts on a 16-byte boundary (``Buffer.data`` is ``force_align: 16``; the generated
  ``BufferStartDataVector`` aligns to 1, so the vector is started with
  ``Builder.StartVector(1, n, 16)``); activations point at buffer 0;
* one subgraph, operators in execution order, ``OperatorCode`` with
  ``deprecated_builtin_code = min(code, 127)`` and ``builtin_code = code``
  (``schema_conversion_utils.cc``);
* one ``SignatureDef`` ``serving_default`` mapping the IR input/output names to tensors, and
  ``Model.metadata`` entries (name -> buffer) from ``TModel.metadata``.

Deterministic: the bytes depend only on the model (no time stamps, dict orders are insertion
orders of a deterministic lowering). Atomic: the bytes go to a temporary file in the output
folder that is renamed into place with ``os.replace``; on any failure it is removed.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .model import TENSOR_TYPES, TModel, TOp, TTensor

SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"
BUFFER_ALIGN = 16


def _tfl():
    import tflite

    return tflite


def _ivec(b, start, values, prepend="PrependInt32") -> int:
    start(b, len(values))
    for v in reversed(list(values)):
        getattr(b, prepend)(v)
    return b.EndVector()


def _ovec(b, start, offsets) -> int:
    return _ivec(b, start, offsets, "PrependUOffsetTRelative")


def _buffer(b, data: bytes) -> int:
    """A ``Buffer`` table whose data starts 16-byte aligned (empty data: no vector)."""
    t = _tfl()
    vec = None
    if data:
        b.StartVector(1, len(data), BUFFER_ALIGN)
        b.head = b.head - len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        vec = b.EndVector()
    t.BufferStart(b)
    if vec is not None:
        t.BufferAddData(b, vec)
    return t.BufferEnd(b)


def _raw(arr: np.ndarray) -> bytes:
    """Little-endian row-major bytes of a constant (bool as one byte per element)."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr.tobytes()


def _quant(b, q) -> int:
    t = _tfl()
    scale = _ivec(b, t.QuantizationParametersStartScaleVector,
                  [float(s) for s in q.scale], "PrependFloat32")
    zp = _ivec(b, t.QuantizationParametersStartZeroPointVector,
               [int(z) for z in q.zero_point], "PrependInt64")
    t.QuantizationParametersStart(b)
    t.QuantizationParametersAddScale(b, scale)
    t.QuantizationParametersAddZeroPoint(b, zp)
    t.QuantizationParametersAddQuantizedDimension(b, int(q.axis))
    return t.QuantizationParametersEnd(b)


def _tensor(b, tensor: TTensor, buffer: int) -> int:
    t = _tfl()
    name = b.CreateString(tensor.name)
    shape = _ivec(b, t.TensorStartShapeVector, tensor.shape)
    quant = _quant(b, tensor.quant) if tensor.quant is not None else None
    t.TensorStart(b)
    t.TensorAddShape(b, shape)
    t.TensorAddType(b, TENSOR_TYPES[tensor.dtype])
    t.TensorAddBuffer(b, buffer)
    t.TensorAddName(b, name)
    if quant is not None:
        t.TensorAddQuantization(b, quant)
    return t.TensorEnd(b)


def _options(b, op: TOp):
    """``(BuiltinOptions enum value, table offset)`` of ``op`` or None. Fields are written
    in sorted name order; list fields become int32 vectors (built before the table)."""
    if op.options is None:
        return None
    t = _tfl()
    name = op.options
    vectors = {k: _ivec(b, getattr(t, f"{name}Start{k}Vector"), v)
               for k, v in sorted(op.fields.items()) if isinstance(v, (list, tuple))}
    getattr(t, f"{name}Start")(b)
    for k, v in sorted(op.fields.items()):
        value = vectors.get(k, v)
        getattr(t, f"{name}Add{k}")(b, value)
    return getattr(t.BuiltinOptions, name), getattr(t, f"{name}End")(b)


def _operator(b, op: TOp, opcode_index: int) -> int:
    t = _tfl()
    opts = _options(b, op)
    ins = _ivec(b, t.OperatorStartInputsVector, op.inputs)
    outs = _ivec(b, t.OperatorStartOutputsVector, op.outputs)
    t.OperatorStart(b)
    t.OperatorAddOpcodeIndex(b, opcode_index)
    t.OperatorAddInputs(b, ins)
    t.OperatorAddOutputs(b, outs)
    if opts is not None:
        t.OperatorAddBuiltinOptionsType(b, opts[0])
        t.OperatorAddBuiltinOptions(b, opts[1])
    return t.OperatorEnd(b)


def _opcodes(model: TModel) -> list[tuple]:
    """Distinct ``(builtin code, version)`` pairs in order of first use."""
    t = _tfl()
    return list(dict.fromkeys((getattr(t.BuiltinOperator, o.code), o.version)
                              for o in model.ops))


def _opcode(b, code: int, version: int) -> int:
    t = _tfl()
    t.OperatorCodeStart(b)
    t.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    t.OperatorCodeAddBuiltinCode(b, code)
    t.OperatorCodeAddVersion(b, version)
    return t.OperatorCodeEnd(b)


def _subgraph(b, model: TModel, buffers: list) -> int:
    """The main subgraph; appends each constant's bytes to ``buffers`` (index = buffer id)."""
    t = _tfl()
    offs = []
    for tensor in model.tensors:
        buf = 0
        if tensor.data is not None:
            buffers.append(_raw(tensor.data))
            buf = len(buffers) - 1
        offs.append(_tensor(b, tensor, buf))
    codes = _opcodes(model)
    index = {c: i for i, c in enumerate(codes)}
    ops = [_operator(b, o, index[(getattr(t.BuiltinOperator, o.code), o.version)])
           for o in model.ops]
    tensors_v = _ovec(b, t.SubGraphStartTensorsVector, offs)
    inputs_v = _ivec(b, t.SubGraphStartInputsVector, model.inputs)
    outputs_v = _ivec(b, t.SubGraphStartOutputsVector, model.outputs)
    ops_v = _ovec(b, t.SubGraphStartOperatorsVector, ops)
    name = b.CreateString(model.name)
    t.SubGraphStart(b)
    t.SubGraphAddTensors(b, tensors_v)
    t.SubGraphAddInputs(b, inputs_v)
    t.SubGraphAddOutputs(b, outputs_v)
    t.SubGraphAddOperators(b, ops_v)
    t.SubGraphAddName(b, name)
    return t.SubGraphEnd(b)


def _tensor_maps(b, names, indices, start) -> int:
    t = _tfl()
    maps = []
    for name, idx in zip(names, indices):
        s = b.CreateString(name)
        t.TensorMapStart(b)
        t.TensorMapAddName(b, s)
        t.TensorMapAddTensorIndex(b, idx)
        maps.append(t.TensorMapEnd(b))
    return _ovec(b, start, maps)


def _signature(b, model: TModel) -> int:
    """``serving_default``: IR input/output names -> subgraph 0 tensor indices."""
    t = _tfl()
    ins = _tensor_maps(b, model.input_names, model.inputs, t.SignatureDefStartInputsVector)
    outs = _tensor_maps(b, model.output_names, model.outputs, t.SignatureDefStartOutputsVector)
    key = b.CreateString("serving_default")
    t.SignatureDefStart(b)
    t.SignatureDefAddInputs(b, ins)
    t.SignatureDefAddOutputs(b, outs)
    t.SignatureDefAddSignatureKey(b, key)
    t.SignatureDefAddSubgraphIndex(b, 0)
    return t.SignatureDefEnd(b)


def _metadata(b, model: TModel, buffers: list) -> list[int]:
    t = _tfl()
    offs = []
    for name, data in model.metadata.items():
        buffers.append(bytes(data))
        s = b.CreateString(name)
        t.MetadataStart(b)
        t.MetadataAddName(b, s)
        t.MetadataAddBuffer(b, len(buffers) - 1)
        offs.append(t.MetadataEnd(b))
    return offs


def serialize(model: TModel) -> bytes:
    """The FlatBuffer bytes of ``model`` (schema version 3, identifier ``TFL3``)."""
    import flatbuffers

    t = _tfl()
    b = flatbuffers.Builder(1 << 16)
    buffers: list = [b""]
    sg = _subgraph(b, model, buffers)
    sig = _signature(b, model)
    meta = _metadata(b, model, buffers)
    buf_offs = [_buffer(b, data) for data in buffers]
    codes = [_opcode(b, c, v) for c, v in _opcodes(model)]
    oc_v = _ovec(b, t.ModelStartOperatorCodesVector, codes)
    sg_v = _ovec(b, t.ModelStartSubgraphsVector, [sg])
    bufs_v = _ovec(b, t.ModelStartBuffersVector, buf_offs)
    sig_v = _ovec(b, t.ModelStartSignatureDefsVector, [sig])
    meta_v = _ovec(b, t.ModelStartMetadataVector, meta)
    desc = b.CreateString(model.description)
    t.ModelStart(b)
    t.ModelAddVersion(b, SCHEMA_VERSION)
    t.ModelAddOperatorCodes(b, oc_v)
    t.ModelAddSubgraphs(b, sg_v)
    t.ModelAddDescription(b, desc)
    t.ModelAddBuffers(b, bufs_v)
    t.ModelAddMetadata(b, meta_v)
    t.ModelAddSignatureDefs(b, sig_v)
    b.Finish(t.ModelEnd(b), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def write(model: TModel, out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>.tflite`` into ``out_dir`` (created if missing); returns ``[path]``.

    Raises:
        OSError: the file cannot be written (no temporary file is left behind).
        ValueError: the model exceeds the 2 GiB FlatBuffer limit.
    """
    data = serialize(model)
    if len(data) >= 1 << 31:
        raise ValueError(f"{stem}.tflite would be {len(data)} bytes; FlatBuffers stop at 2 GiB")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{stem}.tflite"
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tflite.tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return [final]
