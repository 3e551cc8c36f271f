"""IR graph -> ``onnx.ModelProto``, nearly an identity because the IR *is* ONNX (opset 18+
operand form). Facts: onnxruntime 1.31 accepts IR version <= 13 and opset <= 26, and
``helper.make_model`` defaults to IR 14, so ``ir_version`` is always set
(shared/docs/formats/onnx.md, section 2). Gelu needs opset 20.
"""
from __future__ import annotations

import numpy as np

from converter.ir import Graph, Value
from converter.ops import ONNX_DTYPE_CODE

DEFAULT_OPSET = 20
IR_VERSION_FOR_OPSET = {17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11, 24: 11, 25: 12,
                        26: 13}


def _vi(v: Value):
    from onnx import helper

    dims = [d if isinstance(d, (int, str)) else None for d in (v.shape or ())]
    return helper.make_tensor_value_info(v.name, ONNX_DTYPE_CODE[v.dtype],
                                         dims if v.shape is not None else None)


def to_model(graph: Graph, opset: int = DEFAULT_OPSET):
    """Build an ``onnx.ModelProto`` of ``graph`` at ``opset`` (18..26): constants become
    initializers, every node keeps its op, attributes and name.

    Raises:
        KeyError: a value has a dtype ONNX cannot express.
    """
    from onnx import helper, numpy_helper

    inits, seen = [], set()
    nodes = []
    for n in graph.nodes:
        for v in n.inputs:
            if v is not None and v.is_const and v.name not in seen:
                seen.add(v.name)
                inits.append(numpy_helper.from_array(np.require(v.const, requirements="C"), v.name))
        attrs = {k: (list(a) if isinstance(a, tuple) else a)
                 for k, a in n.attrs.items() if a is not None}
        nodes.append(helper.make_node(n.op, [v.name if v is not None else "" for v in n.inputs],
                                      [o.name for o in n.outputs], name=n.name, **attrs))
    for v in graph.outputs:
        if v.is_const and v.name not in seen:
            seen.add(v.name)
            inits.append(numpy_helper.from_array(v.const, v.name))
    g = helper.make_graph(nodes, graph.name, [_vi(v) for v in graph.inputs],
                          [_vi(v) for v in graph.outputs], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=IR_VERSION_FOR_OPSET[opset], producer_name="mconv")


def run_onnxruntime(graph: Graph, inputs: dict) -> list:
    """Evaluate ``graph`` on ``inputs`` (name -> ndarray) with onnxruntime's CPU provider;
    returns the outputs in graph order. Used by tests as the IR's numerical reference."""
    import onnxruntime as ort

    model = to_model(graph)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([o.name for o in graph.outputs], inputs)
