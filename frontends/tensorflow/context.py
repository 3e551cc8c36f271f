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

from converter.ir import Value
from frontends.source_node import EmitContext, NodeAccess, Unsupported  # noqa: F401  (re-exported)

__all__ = ["TfNode", "Ctx", "Unsupported", "NHWC_TO_NCHW", "NCHW_TO_NHWC", "same_pads"]

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)


@dataclass
class TfNode(NodeAccess):
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

    @property
    def x(self) -> Value:
        """The first input."""
        return self.inputs[0]

    @property
    def nchw(self) -> bool:
        """True for ``data_format`` NCHW (the IR layout: no wrapping needed)."""
        return str(self.get("data_format", "NHWC")).upper().startswith("NC")


class Ctx(EmitContext):
    """Conversion context: the graph being built, the current node, emit helpers."""

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
