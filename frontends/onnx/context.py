"""Shared state of an ONNX graph walk: the source-node record handed to converters and
checks, the emit helpers, and the small attribute/shape utilities every converter family uses.

A converter is registered with ``@converter("onnx", "<op_type>", emits=..., checks=...)`` and
called as ``fn(cx, n)`` with an :class:`OnnxNode` whose ``inputs`` are IR
:class:`~converter.ir.Value` objects (None for an omitted optional input) and whose ``attrs``
are decoded Python values (bytes -> str, TensorProto -> ndarray). It returns one Value, or a
list with one entry per ONNX output (None for an output it does not produce; a check must
then guarantee the output is unused). Attribute and input forms per opset: onnx/onnx
``docs/Operators.md`` and ``docs/Changelog.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from converter.ir import Value
from frontends.source_node import EmitContext, NodeAccess, Unsupported  # noqa: F401  (re-exported)

__all__ = ["OnnxNode", "Ctx", "Unsupported", "norm_axis", "static", "auto_pads"]


@dataclass
class OnnxNode(NodeAccess):
    """One ONNX node as converters see it.

    Attributes:
        op: ``op_type`` (``"Conv"``); ``domain``: ``""`` for ai.onnx.
        name: unique, sanitized label (the node name, else its first output name).
        version: opset version of the node's domain in the model (``opset_import``).
        inputs: Values (None for an omitted optional input), in ONNX order.
        attrs: attribute name -> decoded value.
        outputs: ONNX output names (``""`` for an omitted optional output).
        used: per output, True when a later node or the graph outputs read it.
    """

    op: str
    name: str
    domain: str = ""
    version: int = 0
    inputs: list = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    outputs: list = field(default_factory=list)
    used: list = field(default_factory=list)

    def has_input(self, i: int) -> bool:
        return self.input(i) is not None

    @property
    def x(self) -> Value:
        """The first input (the data tensor of nearly every op)."""
        return self.inputs[0]


class Ctx(EmitContext):
    """Conversion context: the graph being built, the current node, emit helpers."""

    def source_op(self) -> str:
        """``domain.op`` for ops outside ai.onnx."""
        n = self.node
        return n.op if not n.domain else f"{n.domain}.{n.op}"

    def reshape(self, v: Value, shape) -> Value:
        """``v`` reshaped to the static ``shape``: a reshaped constant for constants, a
        Reshape node otherwise, ``v`` itself when the shape does not change."""
        shape = tuple(int(d) for d in shape)
        if tuple(v.shape or ()) == shape:
            return v
        if v.is_const:
            return self.const(v.const.reshape(shape))
        return self.emit("Reshape", v, self.i64(shape))


def norm_axis(axis: int, rank: int) -> int:
    """A possibly negative axis as 0..rank-1."""
    return int(axis) + rank if int(axis) < 0 else int(axis)


def static(v: Optional[Value]) -> bool:
    """True when ``v`` has a fully known integer shape."""
    return v is not None and v.shape is not None and all(isinstance(d, int) for d in v.shape)


def auto_pads(n: OnnxNode, kernel, strides, dilations) -> list:
    """Explicit ``pads`` ``[b1.., e1..]`` of a Conv/Pool node, resolving ``auto_pad``.

    ``SAME_UPPER`` / ``SAME_LOWER``: output = ceil(in / stride), total pad =
    max(0, (out - 1) * stride + (k - 1) * d + 1 - in), the odd pixel at the end (UPPER) or the
    beginning (LOWER); ``VALID``: no padding (docs/Operators.md, Conv "auto_pad").
    """
    mode = n.get("auto_pad", "NOTSET")
    nsp = len(kernel)
    if mode in ("NOTSET", ""):
        return list(n.get("pads") or [0] * (2 * nsp))
    if mode == "VALID":
        return [0] * (2 * nsp)
    sizes = n.x.shape[2:]
    begin, end = [], []
    for i in range(nsp):
        out = -(-sizes[i] // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - sizes[i])
        small, big = total // 2, total - total // 2
        begin.append(small if mode == "SAME_UPPER" else big)
        end.append(big if mode == "SAME_UPPER" else small)
    return begin + end
