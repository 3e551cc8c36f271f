"""External tensor data read straight from its files, without a copy through the protobuf.

Format facts (onnx/onnx ``docs/ExternalData.md``, ``onnx/onnx.proto`` TensorProto): a tensor
with ``data_location = EXTERNAL`` has ``external_data`` key/value pairs ``location`` (a path
relative to the model's folder, required), ``offset`` (bytes, default 0) and ``length`` (bytes,
default: the rest of the file); the bytes are the tensor's ``raw_data`` (little-endian, dims
in row-major order).

Main-graph initializers of plain numeric dtypes are read with ``np.fromfile`` into read-only
arrays (the same values and dtype ``numpy_helper.to_array`` gives); every other external
tensor (Constant attributes, subgraphs, bfloat16 / float8 / int4 / string) gets its bytes put
back into ``raw_data`` so the proto decodes as before.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from converter.errors import UnreadableModelError

REEXPORT = "re-export the model (torch.onnx.export / tf2onnx) or check the download"
_PLAIN = ("FLOAT", "DOUBLE", "FLOAT16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
          "UINT32", "UINT64", "BOOL", "COMPLEX64", "COMPLEX128")


def load_external(path: Path, model) -> dict:
    """Read every external tensor of ``model`` (parsed from ``path``).

    Returns:
        main-graph initializer name -> read-only C-order ndarray of its dims; other external
        tensors are filled into their ``raw_data`` in place.
    Raises:
        UnreadableModelError (exit 5): a ``location`` that is absolute or leaves the model's
            folder, a missing file, a bad offset / length, a file shorter than
            offset + length, or a length that does not fit the tensor's dims (naming the tensor).
    """
    from onnx import TensorProto

    base = path.resolve().parent
    out = {}
    for t in model.graph.initializer:  # by position: protobuf wrappers have no stable id()
        if t.data_location == TensorProto.EXTERNAL:
            f, offset, length = _locate(path, base, t)
            dtype = _plain_dtype(t)
            if dtype is None:
                _fill_raw(t, f, offset, length)
            else:
                out[t.name] = _read_array(path, f, t, dtype, offset, length)
    for t in _attr_tensors(model.graph):
        if t.data_location == TensorProto.EXTERNAL:
            _fill_raw(t, *_locate(path, base, t))
    return out


def _attr_tensors(g):
    """Tensor attributes of ``g``'s nodes and the tensors of its subgraphs, in file order."""
    from onnx import AttributeProto

    for n in g.node:
        for a in n.attribute:
            if a.type == AttributeProto.TENSOR:
                yield a.t
            elif a.type == AttributeProto.TENSORS:
                yield from a.tensors
            elif a.type == AttributeProto.GRAPH:
                yield from (*a.g.initializer, *_attr_tensors(a.g))
            elif a.type == AttributeProto.GRAPHS:
                for sg in a.graphs:
                    yield from (*sg.initializer, *_attr_tensors(sg))


def _locate(path: Path, base: Path, t) -> tuple[Path, int, int]:
    """(file, offset, length) of ``t``'s bytes, checked against the folder and file size."""
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location", "")
    rel = Path(loc)
    f = (base / rel).resolve()
    if not loc or rel.is_absolute() or ".." in rel.parts or base not in f.parents:
        raise UnreadableModelError(f"{path}: external data location {loc!r} of tensor "
                                   f"{t.name!r} is not a file inside {base}", REEXPORT)
    if not f.is_file():
        raise UnreadableModelError(f"{path}: external data file {loc!r} of tensor {t.name!r} "
                                   f"not found in {base}", "copy it next to the .onnx file")
    size = f.stat().st_size
    try:
        offset = int(info.get("offset", 0) or 0)
        length = int(info["length"]) if info.get("length") else max(size - offset, 0)
    except ValueError:
        raise UnreadableModelError(f"{path}: tensor {t.name!r}: external data offset/length "
                                   "is not an integer", REEXPORT) from None
    if offset < 0 or length < 0:
        raise UnreadableModelError(f"{path}: tensor {t.name!r}: negative external data "
                                   "offset/length", REEXPORT)
    if size < offset + length:
        raise UnreadableModelError(f"{path}: external data file {loc!r} of tensor {t.name!r} "
                                   f"is truncated ({size} < {offset + length} bytes)", REEXPORT)
    return f, offset, length


def _plain_dtype(t):
    """The little-endian numpy dtype of ``t`` when its raw bytes decode 1:1, else None."""
    from onnx import TensorProto, helper

    names = {getattr(TensorProto, k): k for k in _PLAIN}
    if t.data_type not in names:
        return None
    return np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).newbyteorder("<")


def _read_array(path: Path, f: Path, t, dtype, offset: int, length: int) -> np.ndarray:
    """``t``'s dims read from ``f`` at ``offset`` (one read, file closed on return)."""
    dims = tuple(int(d) for d in t.dims)
    count = int(np.prod(dims, dtype=np.int64))
    if count < 0 or count * dtype.itemsize != length:
        raise UnreadableModelError(f"{path}: external data file {f.name!r} holds {length} "
                                   f"bytes for tensor {t.name!r}, its dims {list(dims)} need "
                                   f"{max(count, 0) * dtype.itemsize} (truncated or corrupt)",
                                   REEXPORT)
    with open(f, "rb") as fh:
        arr = np.fromfile(fh, dtype=dtype, count=count, offset=offset)
    if arr.size != count:
        raise UnreadableModelError(f"{path}: external data of tensor {t.name!r} ended early",
                                   REEXPORT)
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    arr = arr.reshape(dims)
    arr.flags.writeable = False
    return arr


def _fill_raw(t, f: Path, offset: int, length: int) -> None:
    """Move ``t``'s external bytes into ``raw_data`` (what onnx's loader does)."""
    from onnx import TensorProto

    with open(f, "rb") as fh:
        fh.seek(offset)
        t.raw_data = fh.read(length)
    t.data_location = TensorProto.DEFAULT
    del t.external_data[:]
