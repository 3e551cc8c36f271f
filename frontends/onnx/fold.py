"""Load-time constant folding of ONNX nodes whose inputs are all constants.

Shape-computation chains (``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``), weights built
by ``ConstantOfShape`` (the onnx ``light/`` test models) and any other all-constant subgraph
become IR constants here, so the IR never carries shape arithmetic. An op with a converter is
folded by running the converter and evaluating the IR nodes it emits with the IR's numpy
evaluators (:func:`converter.ops.evaluate` semantics), so folding and conversion agree.
``Constant``, ``ConstantOfShape`` and ``Identity`` are decoded directly; anything else (``Range``,
``NonZero``, IR ops without an evaluator such as ``Erf``) is run by the ONNX reference
implementation (``onnx.reference.ReferenceEvaluator``, every ai.onnx op version, ~1 ms per
node) in a one-node model stamped with the model's opset (onnx/onnx ``docs/Operators.md``).
Random ops are never folded.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

NONDETERMINISTIC = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike",
                              "RandomUniformLike", "Multinomial", "Bernoulli"})
#: Elements of one constant computed at load time (1 GiB of float32); a file asking for
#: more (``ConstantOfShape`` of 1e15 elements) is refused instead of exhausting memory.
MAX_FOLD_ELEMENTS = 1 << 28


class FoldTooLarge(Exception):
    """A node would compute a constant over :data:`MAX_FOLD_ELEMENTS` (the walk refuses it)."""


def _check_size(shape, what: str) -> None:
    dims = [int(d) for d in shape]
    if min(dims, default=0) < 0 or math.prod(dims) > MAX_FOLD_ELEMENTS:
        raise FoldTooLarge(f"{what} of shape {'x'.join(map(str, dims))} "
                           f"({math.prod(dims):,} elements)")


def foldable(pn, arrays: list) -> bool:
    """True when node proto ``pn`` (ai.onnx) can be computed now: every present input is a
    constant (``arrays`` holds None for omitted inputs and ``False`` for non-constants), it
    is deterministic and has no subgraph attribute."""
    from onnx import AttributeProto

    if pn.op_type in NONDETERMINISTIC or any(a is False for a in arrays):
        return False
    if not arrays and pn.op_type not in ("Constant",):
        return False
    return not any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
                   for a in pn.attribute)


def fold_node(pn, arrays: list, version: int) -> Optional[list]:
    """Output arrays of ``pn`` (one per ONNX output, None for omitted ones) evaluated on
    ``arrays``; None when the node cannot be evaluated (the converter path then decides)."""
    from onnx import numpy_helper

    attrs = {a.name: a for a in pn.attribute}
    if pn.op_type == "Constant" and "value" in attrs:
        return [np.require(numpy_helper.to_array(attrs["value"].t), requirements="C")]
    if pn.op_type == "ConstantOfShape":
        value = numpy_helper.to_array(attrs["value"].t) if "value" in attrs else \
            np.zeros(1, np.float32)
        shape = tuple(int(d) for d in arrays[0].reshape(-1))
        _check_size(shape, "ConstantOfShape")
        return [np.full(shape, value.reshape(-1)[0], dtype=value.dtype)]
    if pn.op_type == "Identity":
        return [arrays[0]]
    return _reference(pn, arrays, version)


def fold_converted(cx, entry, n) -> Optional[list]:
    """Outputs of ONNX node ``n`` (all inputs constant) computed by running its converter
    and evaluating the emitted IR nodes with :func:`converter.ops.evaluate`; the emitted
    nodes are removed again. None when a converter or an emitted op cannot be evaluated."""
    from converter.ops import SCHEMAS

    g = cx.g
    start = len(g.nodes)
    try:
        res = entry.fn(cx, n)
    except Exception:  # Unsupported, GraphError, ...: leave it to the regular path
        res = None
    new = g.nodes[start:]
    for node in new:  # shapes are inferred: refuse absurd constants before evaluating
        for o in node.outputs:
            if o.shape is not None and all(isinstance(d, int) for d in o.shape):
                _check_size(o.shape, f"{node.op} output")
    values = _evaluate(new, SCHEMAS) if res is not None else None
    for node in new:  # detach: the emitted nodes only fed each other
        for i in range(len(node.inputs)):
            g.set_input(node, i, None)
    g.nodes = g.nodes[:start]
    if values is None:
        return None
    res = res if isinstance(res, (list, tuple)) else [res]
    out = []
    for k, name in enumerate(n.outputs):
        v = res[k] if k < len(res) else None
        arr = None if v is None else (v.const if v.is_const else values.get(id(v)))
        if name and arr is None:
            return None
        out.append(None if arr is None else np.require(arr, requirements="C"))
    return out


def _evaluate(nodes: list, schemas: dict) -> Optional[dict]:
    """id(output Value) -> array for IR ``nodes`` whose inputs are constants or earlier
    outputs; None when an op has no numpy evaluator or fails."""
    known: dict = {}
    for node in nodes:
        ev = schemas[node.op].evaluate
        if ev is None:
            return None
        args = [None if v is None else (v.const if v.is_const else known.get(id(v)))
                for v in node.inputs]
        if any(a is None and v is not None for a, v in zip(args, node.inputs)):
            return None
        try:
            outs = ev(node, args)
        except Exception:
            return None
        for o, a in zip(node.outputs, outs):
            known[id(o)] = np.asarray(a)
    return known


def _reference(pn, arrays: list, version: int) -> Optional[list]:
    """One node run by ``onnx.reference`` inside a one-node model stamped with the model's
    opset (a bare NodeProto is evaluated with the newest op version)."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    feeds = {name: a for name, a in zip(pn.input, arrays) if name}
    graph = helper.make_graph([pn], "fold", [helper.make_empty_tensor_value_info(k)
                                             for k in feeds],
                              [helper.make_empty_tensor_value_info(o) for o in pn.output if o])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)])
    try:
        outs = ReferenceEvaluator(m).run(None, feeds)
    except Exception:  # an op or attribute form the reference cannot evaluate
        return None
    outs = iter(outs)
    outs = [next(outs) if o else None for o in pn.output]
    res = []
    for name, a in zip(pn.output, list(outs) + [None] * len(pn.output)):
        if name and not isinstance(a, (np.ndarray, np.generic)):
            return None  # a sequence / map / optional value: not a tensor constant
        res.append(np.require(np.asarray(a), requirements="C") if name else None)
    return res

