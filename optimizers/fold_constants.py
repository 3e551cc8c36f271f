"""Constant folding: a node whose inputs are all constants becomes constants.

Rule ``fold_constants``: for a node of an op that has a numpy evaluator in
:mod:`converter.ops` (``ops.evaluate``), when every present input is a constant (omitted
optional inputs are fine) and at least one input is present, its outputs are replaced by new
constants holding ``ops.evaluate(node)``. The originals are never mutated (they may be read
elsewhere); unused ones disappear in ``graph.cleanup()``.

Dtypes: an evaluator may widen (numpy promotes float32 ** int64 to float64); the result is
cast back to the output dtype that shape inference gave the node (ONNX output types follow
the inputs, e.g. Pow's output type is the base's), so a float32 graph stays float32.

Declines (reason shown by --debug):
- an output is a graph output: it would become an initializer and lose its name;
- the evaluator raised, or the result's shape differs from the inferred shape (a mismatch
  between evaluator and inference is a bug to report, never a reason to guess).

Ops without an evaluator (Conv, Erf, Shape, Dropout, ...) are left alone; ``Shape`` of a
statically known shape is deliberately not folded here: ncnn and OpenVINO run with dynamic
input sizes, and folding would bake the example size into the model.
"""
from __future__ import annotations

import numpy as np

from converter import ops
from converter.rewrite import Decline, P, Rule
from ._common import is_output, new_const

FOLDABLE_OPS = tuple(sorted(k for k, s in ops.SCHEMAS.items() if s.evaluate is not None))


def _fold(graph, m):
    node = m.root
    present = [v for v in node.inputs if v is not None]
    if not present or not all(v.is_const for v in present):
        return None
    if any(is_output(graph, o) for o in node.outputs):
        return Decline("an output is a graph output (it would become an initializer)")
    try:
        results = ops.evaluate(node)
    except Exception as e:  # evaluator failure on these operands: keep the node
        return Decline(f"evaluator failed: {type(e).__name__}: {e}")
    if results is None or len(results) != len(node.outputs):
        return Decline("no evaluator result for every output")
    arrays = []
    for out, arr in zip(node.outputs, results):
        arr = np.asarray(arr)
        if out.dtype and str(arr.dtype) != out.dtype:
            arr = arr.astype(out.dtype)
        if out.shape is not None and all(isinstance(d, int) for d in out.shape) \
                and tuple(arr.shape) != tuple(out.shape):
            return Decline(f"evaluated shape {arr.shape} != inferred {out.shape}")
        arrays.append(arr)
    return [new_const(graph, a, o.name + "_folded") for o, a in zip(node.outputs, arrays)]


RULES = (Rule("fold_constants", P(FOLDABLE_OPS), _fold),)
