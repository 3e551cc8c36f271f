"""Shared state of a PyTorch graph walk: the IR graph being built, source-node records with
their arguments normalized by the ATen schema, and helpers every converter uses.

Both walkers (TorchScript and ``torch.export``) reduce a source op to a :class:`SourceNode`
whose ``args`` maps the *schema argument names* (e.g. ``input``, ``weight``, ``stride``) to
IR :class:`~converter.ir.Value` objects (tensors) or plain Python values (ints, floats,
lists, None), with schema defaults filled in. Converters therefore never see which walker ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from converter.ir import Graph, Value


@dataclass
class SourceNode:
    """One source op: ``op`` like ``"aten.conv2d"`` (namespace.name, no overload, no trailing
    ``_`` of in-place variants), ``name`` (unique, from the source), ``args`` by schema name,
    ``loc`` the source location (file:line) when known."""

    op: str
    name: str
    args: dict = field(default_factory=dict)
    loc: str = ""
    overload: str = ""

    def __getitem__(self, key: str) -> Any:
        return self.args.get(key)


def op_name(qualified: str) -> tuple[str, str]:
    """``"aten::relu_"`` / ``"aten.relu_.default"`` -> ``("aten.relu", overload)``."""
    s = qualified.replace("::", ".")
    parts = s.split(".")
    ns, name = parts[0], parts[1] if len(parts) > 1 else parts[0]
    overload = parts[2] if len(parts) > 2 else ""
    if name.endswith("_") and not name.startswith("_"):
        name = name[:-1]
    elif name.endswith("_") and name.startswith("_") and not name.endswith("__"):
        name = name[:-1]
    return f"{ns}.{name}", overload


def normalize_args(schema, args: list, kwargs: dict, all_positional: bool = False) -> dict:
    """Map positional ``args`` and ``kwargs`` onto ``schema.arguments`` names, filling the
    schema's defaults for omitted arguments (``torch._C.FunctionSchema``). TorchScript nodes
    pass every argument positionally, keyword-only ones included (``all_positional``)."""
    out: dict = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(args) and (all_positional or not arg.kwarg_only):
            out[arg.name] = args[i]
        elif arg.name in kwargs:
            out[arg.name] = kwargs[arg.name]
        elif arg.has_default_value():
            out[arg.name] = arg.default_value
        else:
            out[arg.name] = None
    return out


class Ctx:
    """Conversion context: the graph, the current source node, and emit helpers."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.node: Optional[SourceNode] = None

    # --------------------------------------------------------------- emitting
    def emit(self, op: str, *inputs: Optional[Value], n_out: int = 1, **attrs: Any):
        """Add an IR node named after the current source node; returns its output value
        (or the list of outputs when ``n_out > 1``)."""
        meta = {"source_op": self.node.op, "source_name": self.node.name}
        if self.node.loc:
            meta["source_loc"] = self.node.loc
        attrs = {k: v for k, v in attrs.items() if v is not None}
        node = self.g.add(op, list(inputs), attrs, name=self.node.name, n_out=n_out, meta=meta,
                          out_names=[self.node.name] * n_out)
        return node.outputs if n_out > 1 else node.outputs[0]

    def const(self, array: Any, dtype: Optional[str] = None, name: str = "") -> Value:
        """A constant value named after the current source node."""
        arr = np.asarray(array, dtype=dtype) if dtype else np.asarray(array)
        return self.g.const(arr, name or (self.node.name + "_c" if self.node else "const"))

    def i64(self, values) -> Value:
        """An int64 1-D constant (shapes, axes, pads, starts, ...)."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1))

    def tensor(self, x: Any, like: Optional[Value] = None) -> Value:
        """``x`` as a Value: Values pass through; Python scalars / arrays become constants with
        the dtype of ``like`` (torch's type promotion for a scalar operand)."""
        if isinstance(x, Value):
            return x
        dtype = like.dtype if like is not None else None
        if dtype is None:
            dtype = "float32" if isinstance(x, float) else "int64"
        return self.const(np.asarray(x, dtype=dtype))

    def promote(self, a: Any, b: Any) -> tuple[Value, Value]:
        """Two operands of a binary op with torch's dtype promotion for scalars and 0-d
        constants: a float tensor with an int scalar computes in float."""
        av = a if isinstance(a, Value) else None
        bv = b if isinstance(b, Value) else None
        ref = _dominant(av, bv)
        return self._cast_to(a, ref), self._cast_to(b, ref)

    def _cast_to(self, x: Any, ref: Optional[Value]) -> Value:
        if isinstance(x, Value):
            if ref is not None and x.dtype != ref.dtype and x.is_const and x.const.size == 1:
                return self.const(x.const.astype(ref.dtype))
            return x
        return self.tensor(x, like=ref)

    # --------------------------------------------------------------- helpers
    @staticmethod
    def rank(v: Value) -> int:
        return len(v.shape)

    @staticmethod
    def axis(dim: int, rank: int) -> int:
        return dim + rank if dim < 0 else dim


def _dominant(a: Optional[Value], b: Optional[Value]) -> Optional[Value]:
    """The operand whose dtype wins: a non-0-d tensor beats a 0-d constant; float beats int."""
    cands = [v for v in (a, b) if v is not None]
    if not cands:
        return None
    full = [v for v in cands if not (v.is_const and v.const.size == 1)]
    pool = full or cands
    floats = [v for v in pool if v.dtype.startswith("float")]
    return (floats or pool)[0]


def as_list(x: Any, n: int) -> list:
    """An int or a sequence as a list of length ``n`` (torch's ``_pair`` / ``_single``)."""
    if isinstance(x, (list, tuple)):
        return list(x) * n if len(x) == 1 and n > 1 else list(x)
    return [x] * n
