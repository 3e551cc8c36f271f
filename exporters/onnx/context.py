"""Records of a lowered ONNX graph and the mutable context lowerings write into.

A lowering turns one IR node into ONNX nodes for the chosen opset. It never builds protobuf
messages: it appends :class:`OnnxNode` records (names, not objects) and registers constants as
initializers; :mod:`.writer` turns a :class:`LoweredModel` into an ``onnx.ModelProto``.

Naming (stable and readable, onnx/onnx ``docs/IR.md`` "Names Within a Graph": every tensor is
produced once, names are unique per graph): IR values and nodes keep their names (the IR
guarantees uniqueness, graph inputs/outputs keep the source names); tensors, nodes and
constants a lowering adds are named ``<IR node name>/<role>`` and made unique against every IR
name with a ``_N`` suffix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from converter.ir import Graph, Node, Value
from converter.names import NameSet


@dataclass
class OnnxNode:
    """One ONNX node: ``op_type`` (ai.onnx domain), unique ``name``, input tensor names (``""``
    skips an optional input), output tensor names and attributes (int / float / str / lists of
    those; never None)."""

    op_type: str
    name: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)


@dataclass
class TensorInfo:
    """Type of a graph input, output or intermediate tensor: numpy dtype name and shape (a
    tuple of int / symbolic str / None dims, or None when the rank is unknown)."""

    name: str
    dtype: str
    shape: Optional[tuple]


@dataclass
class LoweredModel:
    """A graph lowered for one opset: inputs, outputs, nodes in topological order,
    initializers (name -> array, first-use order), the types of intermediate tensors and
    extra ``metadata_props`` entries (e.g. the NHWC boundary, :mod:`.layout`)."""

    name: str
    opset: int
    inputs: list
    outputs: list
    nodes: list
    initializers: dict
    value_info: dict
    metadata: dict = field(default_factory=dict)


def _attr(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, (tuple, list)):
        return [_attr(x) for x in v]
    return v


def clean_attrs(attrs: dict) -> dict:
    """ONNX attribute values from IR attributes: None and empty lists dropped (both mean "the
    default"), bools as ints, tuples as lists; keys sorted (deterministic order)."""
    out = {}
    for k in sorted(attrs):
        v = _attr(attrs[k])
        if v is None or (isinstance(v, list) and not v):
            continue
        out[k] = v
    return out


class OnnxCtx:
    """State of one lowering run over ``graph`` for ``opset`` (see the module docstring)."""

    def __init__(self, graph: Graph, opset: int):
        self.graph, self.opset = graph, opset
        self.nodes: list[OnnxNode] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.value_info: dict[str, TensorInfo] = {}
        self._taken = NameSet([v.name for v in graph.values()] +
                              [n.name for n in graph.nodes])
        self._const_names: dict[int, str] = {}
        self._const_cache: dict[tuple, str] = {}

    # ------------------------------------------------------------------ names
    def unique(self, base: str) -> str:
        """``base``, or ``base_N`` with the first free N, reserved against every IR name and
        every name handed out before."""
        return self._taken.unique(base)

    def name(self, v: Optional[Value]) -> str:
        """Tensor name of an IR input: ``""`` for an omitted one; a constant becomes an
        initializer under its IR name on first use."""
        if v is None:
            return ""
        if v.is_const and id(v) not in self._const_names:
            self._const_names[id(v)] = v.name
            self.initializers[v.name] = np.asarray(v.const, order="C")
        return v.name

    def const(self, array: Any, hint: str, dtype: str = "float32") -> str:
        """Initializer for a constant a lowering adds (shared by value: two Gelu
        decompositions read the same ``0.5``); named ``hint`` made unique."""
        arr = np.asarray(array, dtype=dtype, order="C")
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._const_cache:
            name = self.unique(hint)
            self.initializers[name] = arr
            self._const_cache[key] = name
        return self._const_cache[key]

    def tensor(self, hint: str, like: Value, dtype: Optional[str] = None,
               shape: Any = "same") -> str:
        """A new intermediate tensor name, typed like IR value ``like`` (or ``dtype`` /
        ``shape`` when given) in ``value_info``."""
        name = self.unique(hint)
        self.value_info[name] = TensorInfo(name, dtype or like.dtype,
                                           like.shape if shape == "same" else shape)
        return name

    # ------------------------------------------------------------------ nodes
    def emit(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str],
             attrs: Optional[dict] = None, name: str = "", ir_node: Optional[Node] = None
             ) -> OnnxNode:
        """Append a node (trailing omitted inputs trimmed), named after ``ir_node`` (the IR
        node it stands for, once per IR node) or ``name`` made unique (default: op_type)."""
        ins = list(inputs)
        while ins and ins[-1] == "":
            ins.pop()
        node_name = ir_node.name if ir_node is not None else self.unique(name or op_type)
        node = OnnxNode(op_type, node_name, ins, list(outputs), clean_attrs(attrs or {}))
        self.nodes.append(node)
        return node

    def emit_ir(self, node: Node, op_type: Optional[str] = None,
                inputs: Optional[Sequence[str]] = None, attrs: Optional[dict] = None
                ) -> OnnxNode:
        """Emit ``node`` as one ONNX node writing its IR outputs (types recorded): by default
        same op, same inputs, same attributes. The node keeps its IR name."""
        ins = [self.name(v) for v in node.inputs] if inputs is None else list(inputs)
        outs = [self.out(v) for v in node.outputs]
        return self.emit(op_type or node.op, ins, outs,
                         node.attrs if attrs is None else attrs, ir_node=node)

    def out(self, v: Value) -> str:
        """Name of IR output ``v``, its type recorded for ``value_info``."""
        self.value_info[v.name] = TensorInfo(v.name, v.dtype, v.shape)
        return v.name

    def sub(self, node: Node, role: str) -> str:
        """Name hint of a helper tensor or node of ``node``: ``<node name>/<role>``."""
        return f"{node.name}/{role}"

    def finish(self) -> LoweredModel:
        """The lowered model: graph inputs and outputs typed from the IR; ``value_info`` keeps
        only tensors that are neither graph inputs, outputs nor initializers."""
        ins = [TensorInfo(v.name, v.dtype, v.shape) for v in self.graph.inputs]
        outs = []
        for v in self.graph.outputs:
            self.name(v)
            outs.append(TensorInfo(v.name, v.dtype, v.shape))
        skip = {t.name for t in ins} | {t.name for t in outs} | set(self.initializers)
        vi = {k: t for k, t in self.value_info.items() if k not in skip}
        return LoweredModel(self.graph.name, self.opset, ins, outs, list(self.nodes),
                            dict(self.initializers), vi)
