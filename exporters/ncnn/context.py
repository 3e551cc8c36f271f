"""Lowering state of the ncnn exporter: layer records, blob bookkeeping and shared helpers.

A lowered net is a plain list of :class:`Layer` records. While lowering, blobs are integer ids;
:meth:`LowerCtx.finish` turns them into names (graph inputs and outputs keep their IR names,
the writer sanitizes them).

Blob shapes are tracked in ncnn's own terms: the IR shape without its batch dim, outermost
first (an NCHW ``[1,C,H,W]`` tensor is the 3-D blob ``(C,H,W)``; Tencent/ncnn
``docs/developer-guide/param-and-model-file-structure.md`` / shared/docs/formats/ncnn.md §2).
A blob may be *compact*: global pooling yields the 1-D blob ``(C,)`` where the IR keeps
``[1,C,1,1]`` (Tencent/ncnn src/layer/pooling.cpp: ``global_pooling`` creates
``top_blob(channels)``). Invariant: a blob's shape is the canonical shape of its IR value, or
that shape with trailing 1s dropped, so its outer dim is always the IR channel dim. Consumers
that need the canonical shape ask :meth:`LowerCtx.inp`, which inserts a ``Reshape``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from converter.ir import Graph, Node, Value
from converter.names import NameSet

from .names import io_names

#: layers taking a fused activation (``9=activation_type``, ``10=activation_params``);
#: Tencent/ncnn src/layer/fused_activation.h and each layer's ``load_param``.
FUSIBLE = frozenset({"Convolution", "ConvolutionDepthWise", "Convolution1D",
                     "ConvolutionDepthWise1D", "Deconvolution", "DeconvolutionDepthWise",
                     "Deconvolution1D", "DeconvolutionDepthWise1D", "InnerProduct"})


@dataclass
class Layer:
    """One ncnn layer: ``type`` (exact ncnn layer name), ``name``, input and output blobs (ids
    while lowering, names after :meth:`LowerCtx.finish`), ``params`` (ncnn param id -> int,
    float, str or list) and ``weights`` in ``.bin`` order as ``(array, tagged)`` pairs
    (tagged = read with ``mb.load(n, 0)``: 4-byte type tag, fp16-able; else raw fp32)."""

    type: str
    name: str
    inputs: list
    outputs: list
    params: dict = field(default_factory=dict)
    weights: list = field(default_factory=list)


@dataclass
class LoweredNet:
    """A lowered graph: layers in topological order (without ``Input`` and ``Split``, which
    the writer adds), graph input blobs with their ncnn shapes, graph output blobs in IR
    order, and the ncnn shape of every blob."""

    layers: list
    inputs: list  # [(blob name, ncnn shape)]
    outputs: list  # [blob name]
    shapes: dict  # blob name -> ncnn shape


def ncnn_shape(shape: Sequence) -> tuple:
    """The ncnn blob shape of an IR shape ``[1, d1, ...]``: the dims after the batch dim
    (outermost first); a rank-1 ``[1]`` becomes ``(1,)``."""
    dims = tuple(int(d) for d in shape)
    return dims[1:] if len(dims) >= 2 else (1,)


def aligned(shape: Sequence, rank: int) -> tuple:
    """``shape`` padded with leading 1s to ``rank`` (numpy broadcasting alignment)."""
    dims = tuple(int(d) for d in shape)
    return (1,) * (rank - len(dims)) + dims


def reshape_params(shape: Sequence) -> dict:
    """``Reshape`` params for an ncnn shape: ``0=w 1=h 11=d 2=c`` (innermost first;
    Tencent/ncnn src/layer/reshape.cpp ``load_param``)."""
    keys = {1: (0,), 2: (1, 0), 3: (2, 1, 0), 4: (2, 11, 1, 0)}[len(shape)]
    return {k: int(d) for k, d in zip(keys, shape)}


def memorydata_params(shape: Sequence) -> dict:
    """``MemoryData`` params ``0=w 1=h 11=d 2=c`` for an ncnn shape (src/layer/memorydata.cpp)."""
    return reshape_params(shape)


class LowerCtx:
    """Mutable state of one lowering run (see the module docstring)."""

    def __init__(self, graph: Graph, options: Any = None):
        self.graph, self.options = graph, options
        self.layers: list[Layer] = []
        self.shape: dict[int, tuple] = {}
        self.hint: dict[int, str] = {}
        self.producer: dict[int, Layer] = {}
        self.input_blobs: list[int] = []
        self._vblob: dict[int, int] = {}
        self._values: dict[int, list[Value]] = {}
        self._skip: set[int] = set()
        self._cache: dict[tuple, int] = {}
        self._layer_names = NameSet()

    # ------------------------------------------------------------------ blobs
    def new_blob(self, hint: str, shape: Sequence) -> int:
        """A fresh blob id with a name hint and an ncnn shape."""
        b = len(self.hint)
        self.hint[b] = hint
        self.shape[b] = tuple(int(d) for d in shape)
        self._values[b] = []
        return b

    def bind(self, value: Value, blob: int) -> None:
        """Make ``value`` read from ``blob`` (an alias when the blob already has values)."""
        self._vblob[id(value)] = blob
        self._values[blob].append(value)

    def out(self, value: Value, shape: Optional[Sequence] = None) -> int:
        """A new blob for the node output ``value``, shape ``shape`` or its canonical one."""
        b = self.new_blob(value.name, ncnn_shape(value.shape) if shape is None else shape)
        self.bind(value, b)
        return b

    def blob(self, value: Value) -> int:
        """The blob holding ``value`` as it is (maybe compact); constants become
        ``MemoryData`` with their canonical shape."""
        if value.is_const:
            return self.memdata(value, ncnn_shape(value.shape))
        return self._vblob[id(value)]

    def inp(self, value: Value, shape: Optional[Sequence] = None) -> int:
        """A blob holding ``value`` with exactly the ncnn shape ``shape`` (default: canonical),
        inserting a ``Reshape`` layer when the current blob differs."""
        want = tuple(ncnn_shape(value.shape) if shape is None else shape)
        if value.is_const:
            return self.memdata(value, want)
        return self.reshape(self.blob(value), want)

    def reshape(self, blob: int, shape: Sequence, hint: str = "") -> int:
        """``blob`` viewed as ``shape`` through a (cached) ``Reshape`` layer; same shape: as is."""
        shape = tuple(int(d) for d in shape)
        if self.shape[blob] == shape:
            return blob
        key = ("reshape", blob, shape)
        if key not in self._cache:
            out = self.new_blob(hint or self.hint[blob] + "_reshape", shape)
            self.emit("Reshape", self.hint[blob] + "_reshape", [blob], [out], reshape_params(shape))
            self._cache[key] = out
        return self._cache[key]

    def memdata(self, value: Value, shape: Sequence) -> int:
        """A (cached) ``MemoryData`` layer holding constant ``value`` as ncnn shape ``shape``.

        Raises:
            ValueError: the element counts differ.
        """
        shape = tuple(int(d) for d in shape)
        key = ("memdata", id(value), shape)
        if key not in self._cache:
            arr = np.asarray(value.const, dtype=np.float32)
            if arr.size != int(np.prod(shape)):
                raise ValueError(f"constant {value.name}{arr.shape} cannot be shaped {shape}")
            out = self.new_blob(value.name, shape)
            self.emit("MemoryData", value.name, [], [out], memorydata_params(shape),
                      [(arr.reshape(shape), False)])
            self._cache[key] = out
        return self._cache[key]

    # ----------------------------------------------------------------- layers
    def layer_name(self, base: str) -> str:
        """``base``, or ``base_N`` when a layer already has that name."""
        return self._layer_names.unique(base)

    def emit(self, type_: str, name: str, inputs: list, outputs: list,
             params: Optional[dict] = None, weights: Optional[list] = None) -> Layer:
        """Append a layer reading blob ids ``inputs`` and writing blob ids ``outputs``."""
        layer = Layer(type_, self.layer_name(name), list(inputs), list(outputs),
                      dict(params or {}), list(weights or []))
        self.layers.append(layer)
        for b in outputs:
            self.producer[b] = layer
        return layer

    def unary(self, node: Node, type_: str, params: Optional[dict] = None,
              x: Optional[int] = None) -> Layer:
        """Emit a one-in one-out layer for ``node`` (input blob ``x``, default: input 0 as it
        is) whose output keeps the input blob's (maybe compact) shape."""
        x = self.blob(node.inputs[0]) if x is None else x
        return self.emit(type_, node.name, [x], [self.out(node.outputs[0], self.shape[x])], params)

    # ------------------------------------------------------------- graph info
    def alias(self, value: Value, blob: int) -> None:
        """``value`` is ``blob`` (no layer: Identity, Dropout, no-op reshapes, fusions)."""
        self.bind(value, blob)

    def skip(self, node: Node) -> None:
        """Mark ``node`` as absorbed by a fusion; the driver will not lower it."""
        self._skip.add(id(node))

    def skipped(self, node: Node) -> bool:
        """True when a fusion absorbed ``node``."""
        return id(node) in self._skip

    def is_output(self, value: Value) -> bool:
        """True when ``value`` is a graph output."""
        return any(o is value for o in self.graph.outputs)

    def sole_user(self, value: Value) -> Optional[Node]:
        """The only consumer node of ``value`` (one use, not a graph output), else None."""
        if len(value.uses) != 1 or self.is_output(value):
            return None
        return value.uses[0][0]

    def blob_users(self, blob: int) -> list[Node]:
        """IR consumer nodes of every value bound to ``blob`` (one entry per use)."""
        return [n for v in self._values[blob] for n, _ in v.uses]

    def blob_is_output(self, blob: int) -> bool:
        """True when a graph output is bound to ``blob``."""
        return any(self.is_output(v) for v in self._values[blob])

    def try_fuse(self, node: Node, act_type: int, act_params: Sequence = (),
                 x: Optional[Value] = None, out: Optional[Value] = None,
                 users: Sequence[Node] = ()) -> bool:
        """Fuse activation ``node`` into the Convolution*/Deconvolution*/InnerProduct layer
        producing its input ``x`` (default input 0) (``9=act_type``, ``10=act_params``;
        Tencent/ncnn src/layer/fused_activation.h) when that blob feeds only ``node`` (or the
        nodes ``users``) and is no graph output. Binds ``out`` (default output 0) to it."""
        x = node.inputs[0] if x is None else x
        if x is None or x.is_const:
            return False
        blob = self.blob(x)
        layer = self.producer.get(blob)
        if layer is None or layer.type not in FUSIBLE or 9 in layer.params:
            return False
        ok = {id(n) for n in (users or (node,))}
        if self.blob_is_output(blob) or any(id(n) not in ok for n in self.blob_users(blob)):
            return False
        layer.params[9] = act_type
        if act_params:
            layer.params[10] = [float(p) for p in act_params]
        self.alias(node.outputs[0] if out is None else out, blob)
        return True

    # ----------------------------------------------------------------- finish
    def add_input(self, value: Value) -> None:
        """Bind graph input ``value`` to a new blob with its canonical shape."""
        self.input_blobs.append(self.out(value))

    def finish(self) -> LoweredNet:
        """Resolve graph outputs (restore canonical shapes; ``Noop`` for an output that aliases
        a graph input or an earlier output), order the layers so that the output blobs are
        produced in graph output order, and turn blob ids into names."""
        outs: list[int] = []
        for v in self.graph.outputs:
            b = self.inp(v)
            if b in self.input_blobs or b in outs:
                b = self._noop(b, v.name)
            outs.append(b)
        outs = self._order_layers(outs)
        names = _blob_names(self, outs)
        for layer in self.layers:
            layer.inputs = [names[b] for b in layer.inputs]
            layer.outputs = [names[b] for b in layer.outputs]
        return LoweredNet(self.layers, [(names[b], self.shape[b]) for b in self.input_blobs],
                          [names[b] for b in outs], {names[b]: s for b, s in self.shape.items()
                                                      if b in names})

    def _noop(self, blob: int, hint: str) -> int:
        nb = self.new_blob(hint, self.shape[blob])
        self.emit("Noop", hint + "_out", [blob], [nb])
        return nb

    def _order_layers(self, outs: list[int]) -> list[int]:
        """Keep only layers that reach an output, ordered so output producers follow graph
        output order (a depth-first post-order from the outputs when the lowering order does
        not already); an output produced too early gets a trailing ``Noop``. Returns the
        (possibly new) output blobs."""
        pos = {id(l): i for i, l in enumerate(self.layers)}
        order: list[Layer] = []
        seen: set[int] = set()
        for b in outs:
            stack = [(self.producer.get(b), False)]
            while stack:
                layer, done = stack.pop()
                if layer is None or (id(layer) in seen and not done):
                    continue
                if done:
                    order.append(layer)
                    continue
                seen.add(id(layer))
                stack.append((layer, True))
                stack.extend((self.producer.get(i), False) for i in reversed(layer.inputs))
        natural = sorted(order, key=lambda l: pos[id(l)])
        self.layers = natural if _in_output_order(natural, outs, self.producer) else order
        fixed, last = [], -1
        for b in outs:
            at = self.layers.index(self.producer[b]) if b in self.producer else -1
            if at < last:
                b = self._noop(b, self.hint[b])
                at = len(self.layers) - 1
            fixed.append(b)
            last = at
        return fixed

def _in_output_order(layers: list[Layer], outs: list[int], producer: dict) -> bool:
    index = {id(l): i for i, l in enumerate(layers)}
    at = [index.get(id(producer.get(b)), -1) for b in outs]
    return all(a <= b for a, b in zip(at, at[1:]))


def _blob_names(ctx: LowerCtx, outs: list[int]) -> dict[int, str]:
    """Blob id -> name: graph inputs and outputs get their IR names (sanitized and unique,
    :func:`~exporters.ncnn.names.io_names`), the rest their hints made unique (``_N``
    suffix); only blobs used by a layer or the graph are named."""
    ins, outs_n = io_names([v.name for v in ctx.graph.inputs],
                           [v.name for v in ctx.graph.outputs])
    fixed = dict(zip(ctx.input_blobs, ins))
    fixed.update(zip(outs, outs_n))
    taken = set(fixed.values())
    names = dict(fixed)
    used = [b for layer in ctx.layers for b in (*layer.inputs, *layer.outputs)]
    for b in used:
        if b in names:
            continue
        base, n, name = ctx.hint[b], 0, ctx.hint[b]
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names[b] = name
    return names
