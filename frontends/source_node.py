"""What every frontend's walk shares: the :class:`Unsupported` signal a converter raises, and
the accessors of a source node as converters see it (:class:`NodeAccess`)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from converter.ir import Value


class Unsupported(Exception):
    """Raised by a converter for a condition found only while converting; the walk records
    it as an issue with ``code`` and ``reason`` (prefer a registered Check where possible)."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


class NodeAccess:
    """Accessors of a source-node dataclass with ``inputs`` (IR Values, None for an omitted
    optional input), ``attrs`` (name -> decoded value) and ``used`` (per output: read by a
    walked node or a graph output)."""

    inputs: list
    attrs: dict
    used: list

    def __getitem__(self, key: str) -> Any:
        return self.attrs.get(key)

    def get(self, key: str, default: Any = None) -> Any:
        """Attribute ``key`` or ``default`` when the node does not carry it."""
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


class EmitContext:
    """Conversion context of a node-by-node walk: the graph being built (``g``), the current
    source node (``node``, a :class:`NodeAccess` dataclass with ``op`` and ``name``), and
    emit helpers that name IR nodes and constants after it."""

    def __init__(self, graph):
        self.g = graph
        self.node = None

    def source_op(self) -> str:
        """The current node's op as recorded in IR node meta (``source_op``)."""
        return self.node.op

    def emit(self, op: str, *inputs: Optional[Value], n_out: int = 1, **attrs: Any):
        """Add an IR node named after the current source node; returns its output (a list
        when ``n_out > 1``). Attributes whose value is None are left out (schema default);
        trailing None inputs (omitted optional inputs) are dropped."""
        n = self.node
        meta = {"source_op": self.source_op(), "source_name": n.name}
        attrs = {k: v for k, v in attrs.items() if v is not None}
        inputs = list(inputs)
        while inputs and inputs[-1] is None:
            inputs.pop()
        node = self.g.add(op, inputs, attrs, name=n.name, n_out=n_out, meta=meta,
                          out_names=[n.name] * n_out)
        return node.outputs if n_out > 1 else node.outputs[0]

    def const(self, array: Any, dtype: Optional[str] = None, suffix: str = "c") -> Value:
        """A C-contiguous constant named after the current node (``suffix`` alone outside
        a node)."""
        arr = np.asarray(array, dtype=dtype) if dtype else np.asarray(array)
        base = f"{self.node.name}_{suffix}" if self.node else suffix
        return self.g.const(np.require(arr, requirements="C"), base)

    def i64(self, values: Any) -> Value:
        """An int64 1-D constant (shapes, axes, pads, starts, sizes)."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1))

    def scalar(self, value: float, like: Value) -> Value:
        """A 0-d constant with the dtype of ``like``."""
        return self.const(np.asarray(value, dtype=like.dtype))
