"""Conversion context of the Caffe walk: emit helpers and checked access to weight blobs.

A converter is registered with ``@converter("caffe", "<layer type>", emits=..., checks=...)``
and called as ``fn(cx, layer)`` with a :class:`~frontends.caffe.reader.CaffeLayer` whose
``inputs`` are the bottoms' IR Values. It returns one Value per top (a list, or one Value for
a single top). Layer semantics: BVLC/caffe ``src/caffe/layers/<type>_layer.cpp``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from converter.errors import UnreadableModelError
from converter.ir import Graph, Value
from frontends.source_node import Unsupported  # noqa: F401  (re-exported)


def fmt(shape: Sequence) -> str:
    """A shape as ``AxBxC`` (``scalar`` for rank 0)."""
    return "x".join(str(int(d)) for d in shape) or "scalar"


class Ctx:
    """The graph being built, the current layer, the weights file, emit helpers."""

    def __init__(self, graph: Graph, weights_path: Optional[Path] = None):
        self.g = graph
        self.layer: Any = None
        self.weights_path = weights_path

    def emit(self, op: str, *inputs: Optional[Value], n_out: int = 1, suffix: str = "",
             **attrs: Any):
        """Add an IR node named after the current layer; returns its output (a list when
        ``n_out > 1``). Attributes whose value is None are left out."""
        lay = self.layer
        meta = {"source_op": lay.op, "source_name": lay.name}
        name = lay.label + (f"_{suffix}" if suffix else "")
        node = self.g.add(op, list(inputs), {k: v for k, v in attrs.items() if v is not None},
                          name=name, n_out=n_out, meta=meta, out_names=[name] * n_out)
        return node.outputs if n_out > 1 else node.outputs[0]

    def const(self, array: Any, suffix: str = "c", dtype: str = "float32") -> Value:
        """A constant named after the current layer."""
        return self.g.const(np.asarray(array, dtype=dtype), f"{self.layer.label}_{suffix}")

    def i64(self, values: Any) -> Value:
        """An int64 1-D constant (shapes, axes, starts)."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1), "shape", "int64")

    def reshape(self, v: Value, shape: Sequence[int], suffix: str = "") -> Value:
        """``v`` reshaped to the static ``shape`` (``v`` itself when unchanged)."""
        shape = tuple(int(d) for d in shape)
        if tuple(v.shape or ()) == shape:
            return v
        return self.emit("Reshape", v, self.i64(shape), suffix=suffix)

    def channel_const(self, vec: np.ndarray, rank: int, axis: int = 1,
                      suffix: str = "c") -> Value:
        """A per-``axis`` vector shaped to broadcast against a rank-``rank`` tensor
        (``[C, 1, 1]`` for NCHW, ``[C]`` for ``[N, C]``)."""
        vec = np.asarray(vec, dtype=np.float32)
        return self.const(vec.reshape(vec.shape + (1,) * (rank - axis - vec.ndim)), suffix)

    def blobs(self, *shapes: Optional[Sequence[int]]) -> list[np.ndarray]:
        """The current layer's weight blobs, checked against the ``shapes`` the prototxt
        implies (None: any shape) and reshaped to them (legacy 4-D blobs hold the same
        values under other dims). Fewer shapes than blobs: extra blobs are ignored.

        Raises:
            UnreadableModelError: a blob is missing, or its element count differs, naming the
                layer and both shapes.
        """
        lay = self.layer
        have = list(lay.blobs)
        src = self.weights_path or "the caffemodel"
        want = ", ".join(fmt(s) if s is not None else "?" for s in shapes)
        if len(have) < len(shapes):
            raise UnreadableModelError(
                f"{src}: layer {lay.name!r} ({lay.op}) has {len(have)} weight blob(s), the "
                f"prototxt needs {len(shapes)} ({want})",
                "pass the .caffemodel trained with this prototxt (--weights)")
        out = []
        for i, (arr, shape) in enumerate(zip(have, shapes)):
            if shape is not None and arr.size != int(np.prod(shape, dtype=np.int64)):
                raise UnreadableModelError(
                    f"{src}: layer {lay.name!r} ({lay.op}) weight blob {i} has shape "
                    f"{fmt(arr.shape)}, the prototxt expects {fmt(shape)}",
                    "pass the .caffemodel trained with this prototxt (--weights)")
            out.append(arr.reshape(tuple(shape)) if shape is not None else arr)
        return out


def pair(p: Any, base: str, default: int, single: bool = False) -> tuple[int, int]:
    """(h, w) of a Caffe kernel/stride/pad/dilation spec: ``<base>_h`` / ``<base>_w`` when set,
    else the repeated ``<base>`` (one value for both, or h then w), else ``default``.
    ``single``: the field is a scalar (PoolingParameter)."""
    if p.HasField(f"{base}_h") or p.HasField(f"{base}_w"):
        return int(getattr(p, f"{base}_h")), int(getattr(p, f"{base}_w"))
    field_name = "kernel_size" if base == "kernel" else base
    if single:
        v = int(getattr(p, field_name)) if p.HasField(field_name) else default
        return v, v
    vals = [int(v) for v in getattr(p, field_name)]
    if not vals:
        return default, default
    return (vals[0], vals[0]) if len(vals) == 1 else (vals[0], vals[1])
