"""Shared state of a TensorFlow GraphDef walk: the source-node record handed to converters
and checks, the emit helpers, and the layout helpers of the NHWC -> NCHW wrapping.

A converter is registered with ``@converter("tensorflow", "<op>", emits=..., checks=...)``
and called as ``fn(cx, n)`` with a :class:`TfNode` whose ``inputs`` are IR
:class:`~converter.ir.Value` objects *in TensorFlow's own layout* (rank-4 image tensors are
NHWC) and whose ``attrs`` are decoded Python values (``AttrValue`` -> str / int / float /
bool / list / numpy dtype name / shape tuple). It returns one Value, or a list with one entry
per TF output (None for an output it does not produce; a check or :class:`Unsupported` must
then guarantee the output is unused). Layout-sensitive ops (convolutions, pooling,
FusedBatchNorm, resizes) call :meth:`Ctx.to_nchw` on their data input and
:meth:`Ctx.to_nhwc` on their result: explicit ``Transpose`` nodes that the optimizer's
transpose rules cancel. Op and attribute semantics: tensorflow/tensorflow
``tensorflow/core/ops/nn_ops.cc``, ``array_ops.cc``, ``math_ops.cc``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from converter.ir import Graph, Value

__all__ = ["TfNode", "Ctx", "Unsupported", "NHWC_TO_NCHW", "NCHW_TO_NHWC", "same_pads"]

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)


class Unsupported(Exception):
    """Raised by a converter for a condition found only while converting; the walk records
    it as an issue with ``code`` and ``reason``."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class TfNode:
    """One TensorFlow node as converters see it.

    Attributes:
        op: the TF op type (``"Conv2D"``); name: the sanitized node name.
        inputs: IR Values of the data inputs (control inputs dropped), TF layout.
        attrs: attribute name -> decoded value (see module docstring).
        n_out: number of outputs the node's op declares for these attributes.
        used: per output index, True when a walked node or a graph output reads it.
    """

    op: str
    name: str
    inputs: list = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    n_out: int = 1
    used: list = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.attrs.get(key)

    def get(self, key: str, default: Any = None) -> Any:
        """Attribute ``key`` or ``default``."""
        return self.attrs.get(key, default)

    def input(self, i: int) -> Optional[Value]:
        """Data input ``i`` or None."""
        return self.inputs[i] if i < len(self.inputs) else None

    def const(self, i: int) -> Optional[np.ndarray]:
        """Array of constant input ``i``; None when absent or not constant."""
        v = self.input(i)
        return v.const if v is not None and v.is_const else None

    def output_used(self, i: int) -> bool:
        """True when output ``i`` is read by a walked node or is a graph output."""
        return i < len(self.used) and bool(self.used[i])

    @property
    def x(self) -> Value:
        """The first input."""
        return self.inputs[0]

    @property
    def nchw(self) -> bool:
        """True for ``data_format`` NCHW (the IR layout: no wrapping needed)."""
        return str(self.get("data_format", "NHWC")).upper().startswith("NC")


class Ctx:
    """Conversion context: the graph being built, the current node, emit helpers."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.node: Optional[TfNode] = None

    def emit(self, op: str, *inputs: Optional[Value], n_out: int = 1, **attrs: Any):
        """Add an IR node named after the current TF node; returns its output (a list when
        ``n_out > 1``). Attributes whose value is None are left out (schema default)."""
        n = self.node
        meta = {"source_op": n.op, "source_name": n.name}
        attrs = {k: v for k, v in attrs.items() if v is not None}
        inputs = list(inputs)
        while inputs and inputs[-1] is None:
            inputs.pop()
        node = self.g.add(op, inputs, attrs, name=n.name, n_out=n_out, meta=meta,
                          out_names=[n.name] * n_out)
        return node.outputs if n_out > 1 else node.outputs[0]

    def const(self, array: Any, dtype: Optional[str] = None, suffix: str = "c") -> Value:
        """A constant named after the current node."""
        arr = np.asarray(array, dtype=dtype) if dtype else np.asarray(array)
        return self.g.const(np.require(arr, requirements="C"), f"{self.node.name}_{suffix}")

    def i64(self, values: Any) -> Value:
        """An int64 1-D constant (shapes, axes, pads, starts)."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1))

    def scalar(self, value: float, like: Value) -> Value:
        """A 0-d constant with the dtype of ``like``."""
        return self.const(np.asarray(value, dtype=like.dtype))

    def to_nchw(self, v: Value) -> Value:
        """Rank-4 NHWC ``v`` as NCHW: ``Transpose(perm=[0,3,1,2])``."""
        return self.emit("Transpose", v, perm=NHWC_TO_NCHW)

    def to_nhwc(self, v: Value) -> Value:
        """Rank-4 NCHW ``v`` back to NHWC: ``Transpose(perm=[0,2,3,1])``."""
        return self.emit("Transpose", v, perm=NCHW_TO_NHWC)


def same_pads(sizes, kernel, strides, dilations) -> list:
    """ONNX ``pads`` ``[b1.., e1..]`` of TF ``padding="SAME"`` for static input ``sizes``:
    out = ceil(in / stride), total = max(0, (out - 1) * stride + (k - 1) * d + 1 - in),
    ``total // 2`` before and the rest (the odd pixel) after (tensorflow/tensorflow
    ``tensorflow/core/framework/kernel_shape_util.cc``, GetWindowedOutputSizeVerbose)."""
    begin, end = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilations):
        out = -(-int(n) // int(s))
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - int(n))
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end
