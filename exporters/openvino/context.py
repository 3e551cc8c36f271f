"""Lowering state of the OpenVINO exporter: IR value -> ``openvino.Output`` map, deterministic
node names, and constant helpers.

Lowerings build an ``openvino.Model`` with the runtime's own opset factories
(``openvino.opset16`` ...), which run OpenVINO's shape and type inference on every node as it is
created, so a lowering mistake fails here and not at load time.

Determinism: a node created without a name gets an automatic friendly name from a process-wide
counter (``Constant_1234``) that the serializer writes, so two runs would differ. Every node is
therefore created through :meth:`LowerCtx.name` (IR node name, or ``<ir node>/<role>`` for
helpers), every constant through :meth:`LowerCtx.const` (never a Python list or ndarray passed
straight to an opset factory, which would create an unnamed Constant), and
:meth:`LowerCtx.finish` renames anything that still escaped, in graph order.

Tensor names: every IR value keeps its name as the OpenVINO tensor name (``names="..."`` on the
output port in the XML), so graph inputs and outputs are addressed by their IR names
(shared/docs/formats/openvino-ir.md, "Ports and edges").
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from converter.ir import Graph, Node, Value
from converter.names import NameSet

#: IR dtype name -> OpenVINO element type name (``openvino.Type``; Constant-1 spec:
#: docs/articles_en/documentation/openvino-ir-format/operation-sets/operation-specs/
#: infrastructure/constant-1.rst).
NHWC, NCHW = (0, 2, 3, 1), (0, 3, 1, 2)  # physical = ir.transpose(NHWC); its inverse

OV_TYPES = {"float32": "f32", "float16": "f16", "float64": "f64", "int64": "i64",
            "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "boolean"}


def ov_modules():
    """``(openvino, opset)``: the package and the newest opset module used here (imported
    lazily so that registering lowerings needs no openvino).

    Raises:
        ImportError: openvino is not installed.
    """
    import openvino
    import openvino.opset16 as opset

    return openvino, opset


def partial_shape(shape: Optional[Sequence]):
    """``openvino.PartialShape`` of an IR shape: int dims static, symbolic/None dims dynamic
    (-1), an unknown rank (None) fully dynamic."""
    ov, _ = ov_modules()
    if shape is None:
        return ov.PartialShape.dynamic()
    return ov.PartialShape([int(d) if isinstance(d, int) else -1 for d in shape])


class LowerCtx:
    """State of one lowering run over an IR graph (the graph itself is never changed).

    Attributes:
        graph: the IR graph being lowered.
        options: the :class:`~converter.options.ConvertOptions` (or None).
        ops: the OpenVINO opset module (``openvino.opset16``) lowerings build nodes with.
    """

    def __init__(self, graph: Graph, options: Any = None):
        self.ov, self.ops = ov_modules()
        self.graph = graph
        self.options = options
        self._out: dict[int, Any] = {}
        self._cast: dict[tuple, Any] = {}  # (id(const value), dtype) -> cast Constant output
        self._nhwc: dict[int, Any] = {}  # id(graph output) -> its NHWC Transpose output
        self._names = NameSet()
        self.parameters: list = []

    # ------------------------------------------------------------------ names
    def name(self, base: str, role: str = "") -> str:
        """A friendly name not used yet in this model: ``base`` or ``base/role``, with ``_N``
        appended on a clash (deterministic: depends only on the lowering order)."""
        cand = f"{base}/{role}" if role else base
        return self._names.unique(cand)

    # ------------------------------------------------------------------ values
    def const(self, array: Any, name: str, dtype: Optional[str] = None):
        """A named ``Constant`` node output holding ``array`` (cast to IR dtype ``dtype``)."""
        arr = np.asarray(array, dtype=dtype) if dtype else np.asarray(array)
        arr = np.require(arr, requirements="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        return self.ops.constant(arr, name=self.name(name)).output(0)

    def i64(self, values: Any, base: str, role: str):
        """An i64 constant (axes, shapes, pads) named ``base/role``."""
        return self.const(np.asarray(values, dtype=np.int64), f"{base}/{role}")

    def value(self, v: Value):
        """The OpenVINO output computing IR value ``v``; a constant becomes a ``Const`` named
        after the value (created once, shared by all readers).

        Raises:
            KeyError: ``v`` is not produced yet (the graph is not in topological order).
        """
        out = self._out.get(id(v))
        if out is None and v.is_const:
            out = self.const(v.const, v.name)
            out.get_tensor().set_names({v.name})
            self._out[id(v)] = out
        if out is None:
            raise KeyError(f"value {v.name} has no OpenVINO producer")
        return out

    def input(self, node: Node, i: int, dtype_of: Optional[Value] = None):
        """Input ``i`` of ``node``; a constant is first cast to the dtype of ``dtype_of``
        (OpenVINO has no implicit type promotion: element types of binary ops must match)."""
        v = node.inputs[i]
        if dtype_of is None or not v.is_const or v.dtype == dtype_of.dtype:
            return self.value(v)
        key = (id(v), dtype_of.dtype)
        if key not in self._cast:
            self._cast[key] = self.const(v.const.astype(dtype_of.dtype), v.name)
        return self._cast[key]

    def bind(self, v: Value, out) -> None:
        """Record ``out`` (an ``openvino.Output`` or a node: its output 0) as IR value ``v``
        and add ``v``'s name to the tensor's names."""
        if not isinstance(out, self.ov.Output):
            out = out.output(0)
        out.get_tensor().add_names({v.name})
        self._out[id(v)] = out

    def bind_node(self, node: Node, out) -> None:
        """Bind the single (first) output of ``node``."""
        self.bind(node.outputs[0], out)

    # ------------------------------------------------------------------ graph
    def add_parameter(self, v: Value, nhwc: bool = False) -> None:
        """A ``Parameter`` for graph input ``v`` (friendly and tensor name = ``v.name``);
        ``nhwc``: declared ``[N,H,W,C]`` (layout ``NHWC``) and transposed to the IR's NCHW by
        a ``Transpose`` named ``<v>/to_nchw``."""
        et = getattr(self.ov.Type, OV_TYPES[v.dtype])
        shape = tuple(v.shape[i] for i in NHWC) if nhwc else v.shape
        p = self.ops.parameter(partial_shape(shape), et, name=self.name(v.name))
        p.output(0).get_tensor().set_names({v.name})
        self._out[id(v)] = p.output(0)
        if nhwc:
            p.set_layout(self.ov.Layout("NHWC"))
            self._out[id(v)] = self.ops.transpose(p.output(0), self.i64(NCHW, v.name, "perm"),
                                                  name=self.name(v.name, "to_nchw")).output(0)
        self.parameters.append(p)

    def _boundary(self, v: Value, nhwc: bool):
        """The output feeding the Result of graph output ``v``: its value, or for ``nhwc``
        (rank 4) a ``Transpose`` to NHWC that takes over the tensor name ``v.name``."""
        src = self.value(v)
        if not nhwc or v.shape is None or len(v.shape) != 4:
            return src
        if id(v) in self._nhwc:  # the same value listed twice as an output
            return self._nhwc[id(v)]
        t = self.ops.transpose(src, self.i64(NHWC, v.name, "perm_nhwc"),
                               name=self.name(v.name, "to_nhwc")).output(0)
        if v.name in src.get_tensor().get_names():
            src.get_tensor().set_names(src.get_tensor().get_names() - {v.name})
        t.get_tensor().set_names({v.name})
        self._nhwc[id(v)] = t
        return t

    def finish(self, name: str, nhwc: bool = False):
        """The ``openvino.Model``: one ``Result`` per graph output (in order, named
        ``<output>/sink_port_0``; ``nhwc``: rank-4 ones transposed to NHWC), the parameters in
        graph input order; any node still carrying an automatic name is renamed
        ``<type>_auto_<k>`` in topological order."""
        results = []
        for v in self.graph.outputs:
            src = self._boundary(v, nhwc)
            results.append(self.ops.result(src, name=self.name(v.name, "sink_port_0")))
        model = self.ov.Model(results, self.parameters, name)
        k = 0
        for op in model.get_ordered_ops():
            if op.get_friendly_name() not in self._names:
                op.set_friendly_name(self.name(f"{op.get_type_name()}_auto_{k}"))
                k += 1
        return model
