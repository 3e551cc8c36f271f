"""Lowering state of the TFLite exporter: the :class:`~exporters.tflite.model.TModel` being
built, the layout plan (:mod:`.layout`), the map IR value (+ perm) -> tensor index, and the
helpers lowerings use (operands in the planned layout, int32 operand constants, weights in
the requested precision).

Tensor names: every IR value keeps its name for its tensor in its planned layout; a copy in
another layout is named ``<value>/<perm digits>`` (``x/0231``); helper tensors
``<node>/<role>``. Graph outputs carry their IR names exactly (:meth:`LowerCtx.finish`).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from converter.ir import Graph, Node, Value

from . import quant
from .layout import (LayoutPlan, Realization, align_const, apply_steps, identity, inverse,
                     phys_shape, realize, realize_columns, relative)
from .model import TModel

#: IR dtype -> TFLite tensor dtype (int64 data is kept; bool is one byte).
DTYPES = ("float32", "float16", "int32", "int64", "int8", "uint8", "int16", "bool")


def perm_tag(perm: Sequence[int]) -> str:
    """``(0, 2, 3, 1)`` -> ``"0231"`` (tensor name suffix of a re-laid-out copy)."""
    return "".join(str(p) for p in perm)


class LowerCtx:
    """State of one lowering run (the IR graph itself is never changed).

    Attributes:
        graph: the IR graph; ``options``: the ConvertOptions (or None);
        plan: its :class:`~exporters.tflite.layout.LayoutPlan`; ``model``: the TModel built.
    """

    def __init__(self, graph: Graph, plan: LayoutPlan, options: Any = None):
        self.graph, self.plan, self.options = graph, plan, options
        self.model = TModel(graph.name)
        self._t: dict[tuple, int] = {}
        self.precision = quant.precision_of(options)

    # ------------------------------------------------------------ tensors
    def perm(self, v: Value) -> tuple:
        """The perm ``v``'s own tensor has (movements: their natural perm)."""
        return self.plan.natural(v)

    def out(self, v: Value, perm: Optional[Sequence[int]] = None) -> int:
        """Create the tensor of IR value ``v`` (layout: the plan's, or ``perm``) and bind it."""
        p = tuple(perm) if perm is not None else self.plan.perms[id(v)]
        t = self.model.tensor(v.name, phys_shape(v.shape, p), v.dtype)
        self._t[(id(v), p)] = t
        return t

    def bind(self, v: Value, t: int, perm: Optional[Sequence[int]] = None) -> None:
        """Record tensor ``t`` as IR value ``v`` in ``perm`` (default: the planned one)."""
        p = tuple(perm) if perm is not None else self.plan.perms[id(v)]
        self._t[(id(v), p)] = t

    def temp(self, base: str, role: str, shape: Sequence[int], dtype: str = "float32") -> int:
        """A helper activation tensor named ``<base>/<role>``."""
        return self.model.tensor(f"{base}/{role}", shape, dtype)

    def const(self, array: Any, name: str, dtype: Optional[str] = None) -> int:
        """A constant tensor (physical layout: as given)."""
        return self.model.const(array, name, dtype)

    def i32(self, values: Any, base: str, role: str) -> int:
        """An int32 operand constant (shapes, axes, paddings: INT32 is what every kernel
        takes; tflite.md rule 5)."""
        return self.model.const(np.asarray(values, dtype=np.int32), f"{base}/{role}")

    def op(self, code: str, inputs, outputs, options: Optional[str] = None, **fields):
        """Append a builtin operator (execution order = call order)."""
        return self.model.op(code, inputs, outputs, options, **fields)

    def emit(self, code: str, inputs, like: int, name: str, options: Optional[str] = None,
             out: Optional[int] = None, **fields) -> int:
        """One elementwise-shaped op writing ``out`` (default: a new tensor named ``name``
        shaped like tensor ``like``); returns the output tensor."""
        if out is None:
            src = self.model.tensors[like]
            out = self.model.tensor(name, src.shape, src.dtype)
        self.op(code, inputs, [out], options, **fields)
        return out

    def scalar(self, value: float, name: str, dtype: str = "float32") -> int:
        """A one-element ``[1]`` constant (broadcasts against anything)."""
        return self.const(np.asarray([value], dtype=dtype), name)

    def tensor(self, v: Value, perm: Optional[Sequence[int]] = None) -> int:
        """Tensor of IR value ``v`` laid out in ``perm`` (default: its natural perm),
        writing the RESHAPE / GATHER / TRANSPOSE that produce it when needed."""
        perm = tuple(perm) if perm is not None else self.perm(v)
        key = (id(v), perm)
        if key in self._t:
            return self._t[key]
        arr = self.plan.const_of(v)
        if arr is not None:
            t = self.const(np.ascontiguousarray(np.asarray(arr).transpose(perm)), v.name)
        elif id(v) in self.plan.moves:
            t = self._movement(v, perm)
        else:
            own = self.plan.perms[id(v)]
            src = self._t[(id(v), own)]
            t = self.transpose(src, relative(own, perm), f"{v.name}/{perm_tag(perm)}")
        self._t[key] = t
        return t

    def transpose(self, src: int, rel: Sequence[int], name: str) -> int:
        """TRANSPOSE of tensor ``src`` by physical perm ``rel``; returns the new tensor."""
        shape = self.model.tensors[src].shape
        t = self.model.tensor(name, [shape[p] for p in rel], self.model.tensors[src].dtype)
        self.op("TRANSPOSE", [src, self.i32(rel, name, "perm")], [t])
        return t

    def reshape(self, src: int, shape: Sequence[int], name: str) -> int:
        """RESHAPE of ``src`` to ``shape`` (int32 shape input; tflite.md rule 5)."""
        shape = [int(d) for d in shape]
        t = self.model.tensor(name, shape, self.model.tensors[src].dtype)
        self.op("RESHAPE", [src, self.i32(shape, name, "shape")], [t])
        return t

    def _movement(self, v: Value, perm: tuple) -> int:
        src, steps = self.plan.source(v)
        arr = self.plan.const_of(src)
        if arr is not None:
            return self.const(np.ascontiguousarray(apply_steps(arr, steps).transpose(perm)),
                              v.name)
        sp = self.perm(src)
        st = self.tensor(src, sp)
        name = v.name if perm == self.plan.natural(v) else f"{v.name}/{perm_tag(perm)}"
        z = realize(src.shape, sp, steps, perm)
        if z.kind == "alias":
            return st
        if z.kind == "reshape":
            return self.reshape(st, z.shape, name)
        if z.kind == "gather":
            return self._gather(st, z, name)
        return self._literal(st, sp, steps, perm, v, name)

    def _gather(self, st: int, z: Realization, name: str) -> int:
        src_shape = list(self.model.tensors[st].shape)
        src_shape[z.axis] = len(z.indices)
        g = self.model.tensor(name, src_shape, self.model.tensors[st].dtype)
        self.op("GATHER", [st, self.const(z.indices, f"{name}/indices")], [g],
                "GatherOptions", Axis=z.axis)
        if tuple(src_shape) != tuple(z.shape):
            return self.reshape(g, z.shape, f"{name}/reshape")
        return g

    def _literal(self, st: int, sp: tuple, steps, perm: tuple, v: Value, name: str) -> int:
        """The movement written step by step in IR order (TRANSPOSE to the source's IR
        layout, each RESHAPE / TRANSPOSE, TRANSPOSE to ``perm``); :mod:`.fuse` merges."""
        t = st
        if sp != identity(len(sp)):
            t = self.transpose(t, inverse(sp), f"{name}/to_ir")
        for k, (kind, arg) in enumerate(steps):
            t = (self.reshape(t, arg, f"{name}/step{k}") if kind == "reshape"
                 else self.transpose(t, arg, f"{name}/step{k}"))
        if perm != identity(len(perm)):
            t = self.transpose(t, perm, name)
        return t

    def columns(self, v: Value) -> tuple[int, Optional[np.ndarray]]:
        """A 2-D ``[N, K]`` value for FULLY_CONNECTED: ``(tensor, cols)``; ``cols`` (IR column
        q -> physical column) is set when a flatten of a channel-last tensor is written as a
        RESHAPE whose column order the caller folds into its weights."""
        if id(v) in self.plan.moves and self.plan.const_of(self.plan.source(v)[0]) is None:
            src, steps = self.plan.source(v)
            sp = self.perm(src)
            if realize(src.shape, sp, steps, (0, 1)).kind not in ("alias", "reshape"):
                cols = realize_columns(src.shape, sp, steps)
                if cols is not None:
                    key = (id(v), "cols")
                    if key not in self._t:
                        self._t[key] = self.reshape(self.tensor(src, sp), v.shape, v.name)
                    return self._t[key], cols
        return self.tensor(v, identity(len(v.shape))), None

    # ------------------------------------------------------------ node operands
    def want(self, node: Node, i: int) -> Optional[tuple]:
        """The perm the plan wants input ``i`` of ``node`` in (None: weights, constants)."""
        w = self.plan.want.get(id(node))
        return w[i] if w is not None and i < len(w) else None

    def input(self, node: Node, i: int, broadcast: bool = True,
              dtype: Optional[str] = None) -> int:
        """Input ``i`` of ``node`` in its planned layout. A constant operand is laid out for
        the planned layout of the node's leading input (aligned, permuted once; with
        ``broadcast`` leading 1s are dropped) and cast to ``dtype``; a lower-rank tensor
        operand is broadcast-aligned by a RESHAPE."""
        v = node.inputs[i]
        perm = self.want(node, i)
        arr = self.plan.const_of(v)
        if perm is None:
            perm = self._lead_perm(node)
        if arr is not None:
            arr = np.asarray(arr, dtype=dtype) if dtype else np.asarray(arr)
            if perm is None or arr.ndim > len(perm):
                return self.const(arr, v.name)
            return self.const(align_const(arr, perm, broadcast), v.name)
        if len(v.shape) < len(perm):
            return self._broadcast(v, perm)
        return self.tensor(v, perm)

    def _lead_perm(self, node: Node) -> Optional[tuple]:
        w = self.plan.want.get(id(node)) or []
        full = [p for p in w if p is not None]
        return max(full, key=len) if full else None

    def _broadcast(self, v: Value, perm: tuple) -> int:
        """A rank-r tensor operand of a rank-R op (numpy broadcast: leading 1s) in ``perm``."""
        full = (1,) * (len(perm) - len(v.shape)) + tuple(v.shape)
        t = self.tensor(v, identity(len(v.shape)))
        z = realize(v.shape, identity(len(v.shape)), (("reshape", full),), perm)
        if z.kind in ("alias", "reshape"):
            return self.reshape(t, z.shape, f"{v.name}/bcast")
        t = self.reshape(t, full, f"{v.name}/bcast")
        return self.transpose(t, perm, f"{v.name}/bcast_{perm_tag(perm)}")

    def weight(self, array: np.ndarray, name: str, kind: str = "other",
               axis: int = 0) -> int:
        """A float weight in the requested precision (:mod:`.quant`): float32; float16 +
        DEQUANTIZE (``--fp16``); int8 per-channel along ``axis`` read directly by hybrid
        CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED (``kind`` "hybrid") or int8 +
        DEQUANTIZE (``--quantize dynamic``, other weights)."""
        return quant.weight(self, np.asarray(array), name, kind, axis)

    # ------------------------------------------------------------ boundary
    def add_input(self, v: Value) -> None:
        """The tensor of graph input ``v`` in its boundary layout."""
        t = self.out(v)
        self.model.inputs.append(t)
        self.model.input_names.append(v.name)

    def finish(self) -> TModel:
        """Bind graph inputs/outputs (boundary layouts from the plan, IR names) and return
        the model."""
        m = self.model
        for v, p in zip(self.graph.outputs, self.plan.outputs):
            t = self.tensor(v, p)
            if m.tensors[t].name != v.name:
                self._rename(t, v.name)
            m.outputs.append(t)
            m.output_names.append(v.name)
        return m

    def _rename(self, t: int, name: str) -> None:
        """Give tensor ``t`` the exact name ``name`` (the tensor holding it is renamed)."""
        m = self.model
        for other in m.tensors:
            if other.name == name:
                other.name = m.unique(name + "/internal")
        m.tensors[t].name = name
