"""ONNX frontend, per op family: tiny models built with ``onnx.helper`` at the opsets where an
op's form differs (attribute vs input operands, legacy broadcasting, Softmax coercion, ...),
loaded, and the IR evaluated with onnxruntime (``exporters.onnx.build.run_onnxruntime``)
compared with the frontend's own ``run_source`` on the original file (onnxruntime, or
onnx.reference for opset-6 ops onnxruntime no longer implements) on a seeded input:
``|ir - ref| <= 1e-5 x max(1, max|ref|)``. Also: load-time folding, names, input shapes,
issue collection and the error contract on bad files (exit codes through the CLI).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh

from converter.errors import UnreadableModelError, UnsupportedOpsError, UsageError
from converter.options import ConvertOptions
from exporters.onnx.build import run_onnxruntime
from frontends.onnx import load
from tests.conftest import assert_clean_failure, run_mconv

F = TP.FLOAT
IR_FOR_OPSET = {**{o: 4 for o in range(1, 10)}, 10: 5, 11: 6, 12: 7, 13: 7, 14: 7, 15: 8,
                16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11, 24: 11, 25: 12,
                26: 13}
N = oh.make_node
RNG = np.random.default_rng(1234)


def W(*shape, lo=None) -> np.ndarray:
    """Seeded float32 weights (uniform in [lo, lo+1) when ``lo`` is given, else normal)."""
    if lo is not None:
        return (RNG.random(shape) + lo).astype(np.float32)
    return RNG.standard_normal(shape).astype(np.float32)


def I64(*v) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


def model(opset: int, nodes: list, inputs: dict, outputs: list, inits: dict | None = None,
          ir_version: int | None = None) -> onnx.ModelProto:
    """A model: ``inputs`` name -> shape (or (shape, elem_type)), ``outputs`` names (or
    (name, elem_type)), ``inits`` name -> array; ir_version paired with the opset (ORT 1.31
    refuses IR 14)."""
    def vi(name, spec, out=False):
        shape, elem = (spec if isinstance(spec, tuple) and isinstance(spec[1], int) and
                       not isinstance(spec[0], int) else (spec, F))
        return oh.make_tensor_value_info(name, elem, None if out else list(shape))
    ins = [vi(k, v) for k, v in inputs.items()]
    outs = [oh.make_tensor_value_info(o, F, None) if isinstance(o, str) else
            oh.make_tensor_value_info(o[0], o[1], None) for o in outputs]
    g = oh.make_graph(nodes, "g", ins, outs,
                      initializer=[nh.from_array(a, k) for k, a in (inits or {}).items()])
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)],
                         ir_version=ir_version or IR_FOR_OPSET[opset])


def seeded_inputs(graph, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {v.name: rng.standard_normal(v.shape).astype(v.dtype) for v in graph.inputs}


def assert_close(got: list, ref: list, atol: float = 1e-5) -> None:
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        g, r = np.asarray(g), np.asarray(r)
        assert g.shape == r.shape, (g.shape, r.shape)
        if r.dtype == bool or np.issubdtype(r.dtype, np.integer):
            np.testing.assert_array_equal(g, r)
            continue
        tol = atol * max(1.0, float(np.nanmax(np.abs(r))) if r.size else 1.0)
        np.testing.assert_allclose(g.astype(np.float64), r.astype(np.float64), rtol=0,
                                   atol=tol, equal_nan=True)


def check(tmp_path: Path, m: onnx.ModelProto, shapes: dict | None = None, atol: float = 1e-5):
    """Save, load with the frontend, validate, and compare the IR with the source model."""
    p = tmp_path / "m.onnx"
    onnx.save(m, p)
    lm = load(p, ConvertOptions(input_shapes=shapes or {}))
    lm.graph.validate()
    inputs = seeded_inputs(lm.graph)
    ref = lm.run_source(inputs)
    assert_close(run_onnxruntime(lm.graph, inputs), ref, atol)
    lm.reference = ref
    return lm


def checker(m: onnx.ModelProto, outputs: list) -> None:
    """``onnx.checker`` (full check) on ``m`` with the graph outputs' shapes taken from the
    computed ``outputs`` (the checker wants typed outputs; test models leave them open)."""
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    for vi, arr in zip(m2.graph.output, outputs):
        shape = vi.type.tensor_type.shape
        del shape.dim[:]
        for d in np.asarray(arr).shape:
            shape.dim.add().dim_value = d
    onnx.checker.check_model(m2, full_check=True)


X4 = {"x": [1, 4, 9, 9]}


# ----------------------------------------------------------------- conv / pool / norm
def c_conv(o):
    return model(o, [N("Conv", ["x", "w", "b"], ["y"], group=2, strides=[2, 1],
                       pads=[1, 0, 2, 1], dilations=[1, 2])], X4, ["y"],
                 {"w": W(6, 2, 3, 3), "b": W(6)})


def c_conv_auto_pad(o):
    return model(o, [N("Conv", ["x", "w1"], ["a"], auto_pad="SAME_UPPER", strides=[2, 2]),
                     N("Conv", ["x", "w2"], ["b"], auto_pad="SAME_LOWER", strides=[2, 3]),
                     N("Conv", ["x", "w2"], ["c"], auto_pad="VALID", kernel_shape=[3, 3])],
                 {"x": [1, 4, 10, 9]}, ["a", "b", "c"], {"w1": W(5, 4, 4, 4), "w2": W(3, 4, 3, 3)})


def c_conv1d(o):
    return model(o, [N("Conv", ["x", "w"], ["y"], pads=[2, 1], strides=[2])], {"x": [1, 3, 10]},
                 ["y"], {"w": W(4, 3, 3)})


def c_conv_transpose(o):
    return model(o, [N("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 0, 0, 1],
                       output_padding=[1, 0]),
                     N("ConvTranspose", ["x", "w2"], ["z"], group=2, dilations=[2, 1])],
                 {"x": [1, 4, 5, 6]}, ["y", "z"],
                 {"w": W(4, 3, 3, 3), "b": W(3), "w2": W(4, 2, 2, 3)})


def c_conv_transpose_shape(o):
    return model(o, [N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], output_shape=[12, 11]),
                     N("ConvTranspose", ["x", "w"], ["z"], strides=[2, 2], auto_pad="SAME_UPPER"),
                     N("ConvTranspose", ["x", "w"], ["u"], strides=[3, 2], auto_pad="SAME_LOWER")],
                 {"x": [1, 4, 5, 6]}, ["y", "z", "u"], {"w": W(4, 3, 3, 3)})


def c_pools(o):
    return model(o, [N("MaxPool", ["x"], ["a", "idx"], kernel_shape=[3, 3], strides=[2, 2],
                       pads=[1, 1, 1, 1], ceil_mode=1),
                     N("MaxPool", ["x"], ["b"], kernel_shape=[2, 3], dilations=[2, 1]),
                     N("AveragePool", ["x"], ["c"], kernel_shape=[3, 3], strides=[2, 2],
                       pads=[1, 1, 1, 1], count_include_pad=1),
                     N("AveragePool", ["x"], ["d"], kernel_shape=[3, 2], strides=[2, 2],
                       auto_pad="SAME_UPPER", ceil_mode=1),
                     N("MaxPool", ["x"], ["e"], kernel_shape=[2, 2], strides=[2, 2],
                       auto_pad="SAME_LOWER"),
                     N("GlobalAveragePool", ["x"], ["f"]), N("GlobalMaxPool", ["x"], ["g"])],
                 {"x": [1, 3, 10, 11]}, list("abcdefg"))


def c_avgpool_dilations(o):
    return model(o, [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2],
                       pads=[1, 1, 1, 1])], X4, ["y"])


def c_batchnorm(o):
    return model(o, [N("Conv", ["x", "w"], ["c"]),
                     N("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
                 X4, ["y"], {"w": W(5, 4, 3, 3), "s": W(5, lo=.5), "b": W(5), "m": W(5),
                             "v": W(5, lo=.5)})


def c_instance_norm(o):
    return model(o, [N("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-4)], X4,
                 ["y"], {"s": W(4), "b": W(4)})


def c_layer_norm(o):
    return model(o, [N("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1),
                     N("LayerNormalization", ["x", "s2"], ["z"], axis=1, epsilon=1e-3)],
                 {"x": [1, 4, 6]}, ["y", "z"], {"s": W(6), "b": W(6), "s2": W(4, 6)})


def c_lrn(o):
    return model(o, [N("LRN", ["x"], ["y"], size=3, alpha=1e-2, beta=0.7, bias=2.0),
                     N("LRN", ["x"], ["z"], size=5)], X4, ["y", "z"])  # ORT: odd sizes only


def c_gemm(o):
    return model(o, [N("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=0.5, beta=2.0),
                     N("Gemm", ["xt", "w"], ["z"], transA=1, transB=1),
                     N("MatMul", ["x3", "m"], ["u"])],
                 {"x": [2, 6], "xt": [6, 2], "x3": [1, 2, 3, 6]}, ["y", "z", "u"],
                 {"w": W(5, 6), "c": W(5), "m": W(6, 4)})


# ----------------------------------------------------------------- activations
_UNARY = ("Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "Floor", "Ceil", "Softplus", "Erf",
          "Softsign")


def c_unary(o):
    nodes = [N(op, ["x"], [op.lower()]) for op in _UNARY]
    nodes += [N("Abs", ["x"], ["ax"]), N("Add", ["ax", "one"], ["ax1"]),
              N("Sqrt", ["ax"], ["sqrt"]), N("Log", ["ax1"], ["log"]),
              N("Reciprocal", ["ax1"], ["rec"])]
    if o >= 14:
        nodes.append(N("HardSwish", ["x"], ["hswish"]))
    if o >= 18:
        nodes.append(N("Mish", ["x"], ["mish"]))
    outs = [n.output[0] for n in nodes if n.output[0] not in ("ax", "ax1")]
    return model(o, nodes, X4, outs, {"one": np.ones((), np.float32)})


def c_param_act(o):
    nodes = [N("LeakyRelu", ["x"], ["a"], alpha=0.2), N("Elu", ["x"], ["b"], alpha=0.7),
             N("Selu", ["x"], ["c"]), N("HardSigmoid", ["x"], ["d"], alpha=1 / 6, beta=0.5)]
    if o >= 20:
        nodes += [N("Gelu", ["x"], ["e"]), N("Gelu", ["x"], ["f"], approximate="tanh")]
    return model(o, nodes, X4, [n.output[0] for n in nodes])


def c_clip(o):
    if o < 11:
        nodes = [N("Clip", ["x"], ["y"], min=-0.5), N("Clip", ["x"], ["z"], min=-0.2, max=0.3)]
    else:
        nodes = [N("Clip", ["x", "", "hi"], ["y"]), N("Clip", ["x", "lo", "hi"], ["z"])]
    return model(o, nodes, X4, ["y", "z"], {"lo": np.float32(-0.2), "hi": np.float32(0.3)}
                 if o >= 11 else {})


def c_prelu(o):
    slope = W(4) if o < 7 else W(4, 1, 1)
    return model(o, [N("PRelu", ["x", "s"], ["y"])], X4, ["y"], {"s": slope})


def c_softmax(o):
    return model(o, [N("Softmax", ["x"], ["a"], axis=1), N("Softmax", ["x"], ["b"]),
                     N("LogSoftmax", ["x"], ["c"], axis=2), N("Softmax", ["x"], ["d"], axis=-1)],
                 {"x": [1, 3, 4, 5]}, list("abcd"))


# ----------------------------------------------------------------- element-wise
def c_binary(o):
    return model(o, [N("Add", ["x", "c"], ["a"]), N("Sub", ["x", "y"], ["b"]),
                     N("Mul", ["a", "b"], ["m"]), N("Div", ["m", "two"], ["d"]),
                     N("Abs", ["d"], ["ad"]), N("Pow", ["ad", "e"], ["p"])],
                 {"x": [1, 3, 4, 5], "y": [1, 1, 1, 5]}, ["d", "p"],
                 {"c": W(3, 1, 1), "two": np.float32(2), "e": np.float32(1.5)})


def c_legacy_broadcast(o):
    return model(o, [N("Add", ["x", "b"], ["a"], broadcast=1, axis=1),
                     N("Mul", ["a", "y"], ["m"], broadcast=1),
                     N("Sub", ["m", "x"], ["s"])],
                 {"x": [2, 3, 4, 5], "y": [4, 5]}, ["s"], {"b": W(3)})


def c_variadic(o):
    return model(o, [N("Sum", ["x", "y", "c"], ["a"]), N("Mean", ["x", "y", "c"], ["b"]),
                     N("Max", ["x", "y", "c"], ["m"]), N("Min", ["x", "y"], ["n"]),
                     N("Sum", ["x"], ["s1"])],
                 {"x": [1, 3, 4, 5], "y": [1, 3, 4, 5]}, ["a", "b", "m", "n", "s1"],
                 {"c": W(5)})


def c_where_cast(o):
    nodes = [N("Cast", ["x"], ["xi"], to=TP.INT32), N("Equal", ["xi", "zero"], ["eq"]),
             N("Neg", ["x"], ["nx"]), N("Where", ["eq", "x", "nx"], ["w"]),
             N("Cast", ["xi"], ["xf"], to=TP.FLOAT)]
    if o >= 15:
        nodes.append(N("CastLike", ["xi", "x"], ["cl"]))
    outs = ["w", "xf", ("eq", TP.BOOL)] + (["cl"] if o >= 15 else [])
    return model(o, nodes, X4, outs, {"zero": np.int32(0)})


# ----------------------------------------------------------------- shape ops
def c_reshape(o):
    nodes = [N("Reshape", ["x", "s1"], ["a"]), N("Reshape", ["a", "s2"], ["b"]),
             N("Flatten", ["x"], ["f"], axis=2), N("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
             N("Transpose", ["f"], ["t2"]), N("Concat", ["x", "x"], ["c"], axis=-1)]
    return model(o, nodes, {"x": [1, 3, 4, 5]}, ["b", "f", "t", "t2", "c"],
                 {"s1": I64(0, -1), "s2": I64(1, 12, 5)})


def c_split(o):
    extra = {"num_outputs": 2} if o >= 18 else {}
    if o < 13:
        nodes = [N("Split", ["x"], ["a", "b"], axis=1, split=[1, 3]),
                 N("Split", ["x"], ["c", "d"], axis=-1)]
        inits = {}
    else:
        nodes = [N("Split", ["x", "sp"], ["a", "b"], axis=1),
                 N("Split", ["x"], ["c", "d"], axis=-1, **extra)]
        inits = {"sp": I64(1, 3)}
    if o >= 18:
        nodes.append(N("Split", ["x"], ["e", "f", "g"], axis=2, num_outputs=3))
    outs = [o_ for n in nodes for o_ in n.output]
    return model(o, nodes, {"x": [1, 4, 8, 6]}, outs, inits)


def c_slice(o):
    if o < 10:
        nodes = [N("Slice", ["x"], ["y"], starts=[1, -3], ends=[3, 1000], axes=[1, 3])]
        inits = {}
    else:
        nodes = [N("Slice", ["x", "st", "en", "ax", "sp"], ["y"]),
                 N("Slice", ["x", "st2", "en2"], ["z"])]
        inits = {"st": I64(-1, 1), "en": I64(-1000, 5), "ax": I64(2, 3), "sp": I64(-2, 2),
                 "st2": I64(0, 1), "en2": I64(1, 3)}
    return model(o, nodes, {"x": [1, 4, 6, 7]}, [n.output[0] for n in nodes], inits)


def c_squeeze(o):
    if o < 13:
        nodes = [N("Squeeze", ["x"], ["a"], axes=[2]), N("Unsqueeze", ["a"], ["b"], axes=[0, -1]),
                 N("Squeeze", ["x"], ["c"])]
        inits = {}
    else:
        nodes = [N("Squeeze", ["x", "ax"], ["a"]), N("Unsqueeze", ["a", "ax2"], ["b"]),
                 N("Squeeze", ["x"], ["c"])]
        inits = {"ax": I64(2), "ax2": I64(0, -1)}
    return model(o, nodes, {"x": [1, 3, 1, 5]}, ["b", "c"], inits)


def c_gather(o):
    return model(o, [N("Gather", ["x", "i"], ["a"], axis=1),
                     N("Gather", ["x", "j"], ["b"], axis=-1),
                     N("Gather", ["x", "k"], ["c"], axis=2)],
                 {"x": [1, 4, 5, 6]}, ["a", "b", "c"],
                 {"i": I64(2, -1, 0), "j": np.int64(-2),
                  "k": np.asarray([[0, 1], [4, 3]], np.int64)})


def c_dropout(o):
    if o < 12:
        nodes = [N("Dropout", ["x"], ["y", "mask"], ratio=0.3)]
    else:
        nodes = [N("Dropout", ["x", "r", "t"], ["y", "mask"])]
    nodes += [N("Identity", ["y"], ["z"])]
    return model(o, nodes, X4, ["z", ("mask", TP.BOOL)],
                 {"r": np.float32(0.3), "t": np.bool_(False)} if o >= 12 else {})


def c_expand_tile(o):
    return model(o, [N("Expand", ["x", "s"], ["e"]), N("Tile", ["x", "r"], ["t"]),
                     N("Expand", ["x", "s1"], ["e1"])],
                 {"x": [1, 3, 1, 5]}, ["e", "t", "e1"],
                 {"s": I64(2, 1, 4, 1), "r": I64(1, 2, 3, 1), "s1": I64(1, 1)})


def c_shape_chain(o):
    """x.view(x.size(0), -1) as traced exporters write it: Shape -> Gather -> Unsqueeze ->
    Concat -> Reshape, plus Size / ConstantOfShape / Range folded at load time."""
    unsq = (N("Unsqueeze", ["n"], ["n1"], axes=[0]) if o < 13 else
            N("Unsqueeze", ["n", "zero1"], ["n1"]))
    nodes = [N("Shape", ["x"], ["s"]), N("Gather", ["s", "zero"], ["n"], axis=0), unsq,
             N("Concat", ["n1", "minus1"], ["target"], axis=0),
             N("Reshape", ["x", "target"], ["y"]),
             N("Size", ["x"], ["sz"]), N("Cast", ["sz"], ["szf"], to=TP.FLOAT),
             N("ConstantOfShape", ["s"], ["ones"], value=nh.from_array(np.ones(1, np.float32))),
             N("Range", ["zero_f", "five", "one_f"], ["rng"]),
             N("Add", ["x", "ones"], ["p"]), N("Mul", ["p", "szf"], ["q"]),
             N("Add", ["q", "rng"], ["r"])]
    if o >= 15:
        nodes += [N("Shape", ["x"], ["tail"], start=1, end=-2),
                  N("Reshape", ["tail", "m1"], ["tail1"]),
                  N("Cast", ["tail1"], ["tailf"], to=TP.FLOAT), N("Mul", ["r", "tailf"], ["yy"])]
    inits = {"zero": np.int64(0), "minus1": I64(-1), "zero1": I64(0), "zero_f": np.float32(0),
             "five": np.float32(5), "one_f": np.float32(1), "m1": I64(-1)}
    outs = ["y", "r"] + (["yy"] if o >= 15 else [])
    return model(o, nodes, {"x": [1, 3, 4, 5]}, outs, inits)


def c_constants(o):
    return model(o, [N("Constant", [], ["c1"], value_floats=[1.0, 2.0, 3.0, 4.0, 5.0]),
                     N("Constant", [], ["c2"], value=nh.from_array(W(4, 1, 1))),
                     N("Constant", [], ["c3"], value_float=0.5),
                     N("Add", ["x", "c1"], ["a"]), N("Mul", ["a", "c2"], ["b"]),
                     N("Sub", ["b", "c3"], ["y"])], {"x": [1, 4, 3, 5]}, ["y"])


# ----------------------------------------------------------------- resize / pad / reduce
def c_resize(o):
    roi = np.zeros(0, np.float32)
    if o < 10:
        nodes = ([N("Upsample", ["x"], ["a"], scales=[1.0, 1.0, 2.0, 3.0])] if o < 9 else
                 [N("Upsample", ["x", "sc"], ["a"], mode="linear")])
    elif o == 10:
        nodes = [N("Resize", ["x", "sc"], ["a"], mode="nearest")]
    else:
        nodes = [N("Resize", ["x", "roi", "sc"], ["a"]),
                 N("Resize", ["x", "roi", "" if o >= 13 else "nosc", "sz"], ["b"], mode="linear",
                   coordinate_transformation_mode="align_corners"),
                 N("Resize", ["x", "roi", "sc2"], ["c"], mode="nearest",
                   coordinate_transformation_mode="asymmetric", nearest_mode="floor")]
        if o >= 18:
            nodes += [N("Resize", ["x", "", "sc_ax"], ["d"], axes=[2, 3], mode="cubic"),
                      N("Resize", ["x", "", "", "sz_ax"], ["e"], axes=[3], mode="linear")]
    inits = {"sc": np.asarray([1, 1, 2, 3], np.float32), "roi": roi,
             "sz": I64(1, 3, 7, 9), "sc2": np.asarray([1, 1, 1.5, 0.5], np.float32),
             "sc_ax": np.asarray([2, 1.5], np.float32), "sz_ax": I64(11), "nosc": roi}
    used = {i for n in nodes for i in n.input}
    return model(o, nodes, {"x": [1, 3, 4, 5]}, [n.output[0] for n in nodes],
                 {k: v for k, v in inits.items() if k in used})


def c_pad(o):
    if o < 11:
        nodes = [N("Pad", ["x"], ["a"], pads=[0, 0, 1, 2, 0, 0, 2, 1], value=1.5),
                 N("Pad", ["x"], ["b"], pads=[0, 0, 2, 1, 0, 0, 1, 2], mode="reflect")]
        inits = {}
    else:
        nodes = [N("Pad", ["x", "p", "v"], ["a"]), N("Pad", ["x", "p2"], ["b"], mode="edge"),
                 N("Pad", ["x", "p"], ["c"], mode="reflect")]
        inits = {"p": I64(0, 0, 1, 2, 0, 0, 2, 1), "v": np.float32(-1),
                 "p2": I64(0, 1, 0, 0, 0, 0, 0, 3)}
        if o >= 18:
            nodes.append(N("Pad", ["x", "p3", "", "ax"], ["d"]))
            inits.update(p3=I64(1, 2, 3, 0), ax=I64(-1, 2))
    return model(o, nodes, {"x": [1, 3, 4, 5]}, [n.output[0] for n in nodes], inits)


def c_reduce(o):
    def red(op, out, axes, **kw):
        in_attr = o < 18 and not (op == "ReduceSum" and o >= 13)
        if in_attr:
            return N(op, ["x"], [out], axes=axes, **kw)
        return N(op, ["x", f"ax_{out}"], [out], **kw)
    spec = [("ReduceMean", "a", [2, 3], {}), ("ReduceSum", "b", [1], {"keepdims": 0}),
            ("ReduceMax", "c", [-1], {}), ("ReduceMin", "d", [1, 2], {"keepdims": 0}),
            ("ReduceL1", "e", [3], {}), ("ReduceL2", "f", [1], {}),
            ("ReduceSumSquare", "g", [2], {"keepdims": 0})]
    nodes = [red(op, out, ax, **kw) for op, out, ax, kw in spec]
    inits = {f"ax_{out}": I64(*ax) for _, out, ax, _ in spec}
    nodes.append(N("ReduceMean", ["x"], ["h"], keepdims=0))
    if o >= 18:
        nodes.append(N("ReduceMax", ["x", "empty"], ["i"], noop_with_empty_axes=1))
        inits["empty"] = np.zeros(0, np.int64)
    used = {i for n in nodes for i in n.input}
    return model(o, nodes, {"x": [1, 3, 4, 5]}, [n.output[0] for n in nodes],
                 {k: v for k, v in inits.items() if k in used})


CASES = {
    "conv": (c_conv, (11, 17, 26)), "conv_auto_pad": (c_conv_auto_pad, (11, 17)),
    "conv1d": (c_conv1d, (13,)), "conv_transpose": (c_conv_transpose, (11, 17, 26)),
    "conv_transpose_output_shape": (c_conv_transpose_shape, (11, 17)),
    "pools": (c_pools, (11, 17, 22)), "avgpool_dilations": (c_avgpool_dilations, (19,)),
    "batchnorm": (c_batchnorm, (9, 15, 26)), "instance_norm": (c_instance_norm, (6, 17)),
    "layer_norm": (c_layer_norm, (17, 26)), "lrn": (c_lrn, (13,)),
    "gemm_matmul": (c_gemm, (11, 13)),
    "unary": (c_unary, (13, 14, 18, 26)), "param_act": (c_param_act, (13, 20)),
    "clip": (c_clip, (6, 11, 13)), "prelu": (c_prelu, (6, 7, 16)),
    "softmax": (c_softmax, (11, 13, 26)), "binary": (c_binary, (13, 26)),
    "variadic": (c_variadic, (8, 13)), "where_cast": (c_where_cast, (13, 15, 26)),
    "reshape_flatten_transpose": (c_reshape, (13, 26)), "split": (c_split, (11, 13, 18, 26)),
    "slice": (c_slice, (9, 13, 26)), "squeeze_unsqueeze": (c_squeeze, (11, 13, 26)),
    "gather": (c_gather, (13,)), "dropout_identity": (c_dropout, (11, 13)),
    "expand_tile": (c_expand_tile, (13,)), "shape_chain": (c_shape_chain, (11, 13, 15, 26)),
    "constants": (c_constants, (13,)),
    "resize_upsample": (c_resize, (7, 9, 10, 11, 13, 18, 19, 26)),
    "pad": (c_pad, (6, 11, 13, 18, 26)), "reduce": (c_reduce, (11, 13, 18, 26)),
}
PARAMS = [pytest.param(name, o, id=f"{name}-opset{o}") for name, (_, ops) in CASES.items()
          for o in ops]


@pytest.mark.parametrize("name,opset", PARAMS)
def test_op_family(tmp_path, name, opset):
    m = CASES[name][0](opset)
    lm = check(tmp_path, m)
    checker(m, lm.reference)
    assert lm.framework == "onnx"
    assert sum(lm.source_ops.values()) == len(m.graph.node)


def test_shape_chain_folded(tmp_path):
    lm = check(tmp_path, c_shape_chain(13))
    ops = lm.graph.op_counts()
    assert not {"Shape", "Gather", "Concat", "Size", "Cast", "Unsqueeze"} & set(ops), ops
    assert ops["Reshape"] == 1


def test_softmax_coerced_forms(tmp_path):
    """Opset 11 axis=1 on 4-D is the 2-D coercion (Flatten + Softmax + Reshape); the last
    axis and opset 13 stay one Softmax node."""
    ops11 = check(tmp_path, c_softmax(11)).graph.op_counts()
    ops13 = check(tmp_path, c_softmax(13)).graph.op_counts()
    assert ops11["Flatten"] == 3 and ops11["Softmax"] == 3
    assert "Flatten" not in ops13 and ops13["Softmax"] == 3


def test_legacy_broadcast_opset6(tmp_path):
    """Opset-6 ``broadcast=1`` with ``axis``: neither onnxruntime 1.31 (no Add(6) kernel) nor
    onnx.reference runs it, so the expected values come from numpy (docs/Changelog.md Add-6:
    B's dims line up with A's starting at ``axis``, else as a suffix)."""
    m = c_legacy_broadcast(6)
    onnx.save(m, tmp_path / "m.onnx")
    lm = load(tmp_path / "m.onnx", ConvertOptions())
    inputs = seeded_inputs(lm.graph)
    x, y = inputs["x"], inputs["y"]
    b = nh.to_array(m.graph.initializer[0])
    expected = (x + b[:, None, None]) * y - x
    assert_close(run_onnxruntime(lm.graph, inputs), [expected])


def test_legacy_forms_become_inputs(tmp_path):
    """Attribute operands of old opsets arrive in the IR as constant inputs."""
    g = check(tmp_path, c_squeeze(11)).graph
    for n in g.nodes:
        assert not n.attrs.get("axes") and n.input(1).is_const
    g = check(tmp_path, c_clip(6)).graph
    assert all(n.input(1).is_const and "min" not in n.attrs for n in g.nodes if n.op == "Clip")
    g = check(tmp_path, c_resize(9)).graph
    (r,) = g.nodes
    assert r.op == "Resize" and r.attrs["coordinate_transformation_mode"] == "asymmetric"


# ----------------------------------------------------------------- graph-level behaviour
def test_names_kept_and_sanitized(tmp_path):
    m = model(13, [N("Relu", ["in/put:0"], ["conv 1/out"], name="relu/1"),
                   N("Sigmoid", ["conv 1/out"], ["final.out"])],
              {"in/put:0": [1, 3, 4, 4]}, ["final.out", "conv 1/out"])
    g = check(tmp_path, m).graph
    assert [v.name for v in g.inputs] == ["in_put_0"]
    assert [v.name for v in g.outputs] == ["final.out", "conv_1_out"]
    assert g.nodes[0].name == "relu_1" and g.nodes[0].meta["source_op"] == "Relu"


def test_output_is_input_or_alias(tmp_path):
    m = model(13, [N("Identity", ["x"], ["y"]), N("Relu", ["x"], ["r"]),
                   N("Identity", ["r"], ["r2"])], {"x": [1, 2, 3]}, ["y", "r", "r2", "x"])
    g = check(tmp_path, m).graph
    names = [v.name for v in g.outputs]
    assert names[:3] == ["y", "r", "r2"] and len(set(names)) == 4


def test_unsorted_nodes(tmp_path):
    m = c_binary(13)
    nodes = list(m.graph.node)[::-1]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    check(tmp_path, m)


def test_initializer_listed_as_input_is_constant(tmp_path):
    """IR 3 files list every initializer in graph.input; they are weights, not inputs."""
    m = c_conv(11)
    w = oh.make_tensor_value_info("w", F, [6, 2, 3, 3])
    m.graph.input.append(w)
    m.ir_version = 3
    g = check(tmp_path, m).graph
    assert [v.name for v in g.inputs] == ["x"]
    assert g.nodes[0].input(1).is_const


def _symbolic(tmp_path):
    m = model(13, [N("Relu", ["x"], ["y"])], {"x": ["N", 3, "H", 8]}, ["y"])
    p = tmp_path / "sym.onnx"
    onnx.save(m, p)
    return p


def test_symbolic_dims_need_input_shape(tmp_path):
    p = _symbolic(tmp_path)
    with pytest.raises(UsageError) as e:
        load(p, ConvertOptions())
    assert "--input-shape x=1x3x1x8" in e.value.one_line() and "Nx3xHx8" in e.value.message
    for shapes in ({"x": (1, 3, 5, 8)}, {"": (1, 3, 5, 8)}):
        g = load(p, ConvertOptions(input_shapes=shapes)).graph
        assert g.inputs[0].shape == (1, 3, 5, 8) and g.outputs[0].shape == (1, 3, 5, 8)
    with pytest.raises(UsageError, match="declares 4"):
        load(p, ConvertOptions(input_shapes={"x": (1, 3, 5)}))
    with pytest.raises(UsageError, match="'nope'"):
        load(p, ConvertOptions(input_shapes={"nope": (1, 3, 5, 8)}))


def test_unsupported_collects_everything(tmp_path):
    """Unknown domain + ops outside the IR + an op failing a check: one error listing all,
    with stage, counts and node names; nodes downstream of an unsupported one add nothing."""
    nodes = [N("Relu", ["x"], ["r"]), N("Custom", ["r"], ["c"], domain="com.acme", name="acme1"),
             N("NonMaxSuppression", ["b", "s"], ["nms"], name="nms"),
             N("Hardmax", ["x"], ["h1"], name="hm1"), N("Hardmax", ["r"], ["h2"], name="hm2"),
             N("Relu", ["c"], ["c2"]),
             N("MaxPool", ["x"], ["mp", "idx"], kernel_shape=[2, 2], name="mp"),
             N("Cast", ["idx"], ["idxf"], to=TP.FLOAT)]
    m = model(13, nodes, {"x": [1, 3, 4, 4], "b": [1, 5, 4], "s": [1, 1, 5]},
              ["c2", ("nms", TP.INT64), "h1", "h2", "idxf"])
    m.opset_import.append(oh.make_opsetid("com.acme", 1))
    p = tmp_path / "bad.onnx"
    onnx.save(m, p)
    with pytest.raises(UnsupportedOpsError) as e:
        load(p, ConvertOptions())
    issues = {i.op: i for i in e.value.issues}
    assert set(issues) == {"com.acme.Custom", "NonMaxSuppression", "Hardmax", "MaxPool"}
    assert issues["Hardmax"].nodes == ["hm1", "hm2"] and issues["com.acme.Custom"].code == \
        "onnx.domain"
    assert all(i.stage == "frontend:onnx" for i in e.value.issues)
    m2 = model(13, nodes[-2:], {"x": [1, 3, 4, 4]}, ["idxf"])
    onnx.save(m2, p)
    with pytest.raises(UnsupportedOpsError) as e:
        load(p, ConvertOptions())
    assert [(i.op, i.code, i.nodes) for i in e.value.issues] == [
        ("MaxPool", "onnx.maxpool_indices", ["mp"])]


@pytest.mark.parametrize("opset,outs,attrs", [(9, ["y", "m", "v", "sm", "sv"], {}),
                                              (15, ["y"], {"training_mode": 1})],
                         ids=["opset9-training-outputs", "opset15-training_mode"])
def test_batchnorm_training_refused(tmp_path, opset, outs, attrs):
    m = model(opset, [N("BatchNormalization", ["x", "s", "b", "m0", "v0"], outs, **attrs)],
              X4, ["y"], {k: W(4, lo=.5) for k in ("s", "b", "m0", "v0")})
    onnx.save(m, tmp_path / "bn.onnx")
    with pytest.raises(UnsupportedOpsError) as e:
        load(tmp_path / "bn.onnx", ConvertOptions())
    assert e.value.issues[0].code == "onnx.bn_training"


# ----------------------------------------------------------------- files and external data
def _save_external(tmp_path: Path) -> Path:
    m = c_conv(17)
    p = tmp_path / "ext.onnx"
    onnx.save_model(m, p, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.weights", size_threshold=0)
    return p


def test_external_data(tmp_path):
    p = _save_external(tmp_path)
    lm = load(p, ConvertOptions())
    inputs = seeded_inputs(lm.graph)
    assert_close(run_onnxruntime(lm.graph, inputs), lm.run_source(inputs))
    (tmp_path / "ext.weights").write_bytes((tmp_path / "ext.weights").read_bytes()[:100])
    with pytest.raises(UnreadableModelError, match="ext.weights.*truncated"):
        load(p, ConvertOptions())
    (tmp_path / "ext.weights").unlink()
    with pytest.raises(UnreadableModelError, match="external data file 'ext.weights'"):
        load(p, ConvertOptions())


def _save_offsets(tmp_path: Path, data_name: str = "w.bin") -> Path:
    """c_conv(17) with hand-placed external data (docs/ExternalData.md keys): ``w`` after a
    13-byte junk header with explicit offset + length, ``b`` last with an offset only (its
    length is the rest of the file), plus a Constant-node tensor in the same file."""
    m = c_conv(17)
    w, b = (nh.to_array(t) for t in m.graph.initializer)
    k = nh.from_array(np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1) / 7, "k")
    m.graph.node[0].output[0] = "c"
    m.graph.node.extend([oh.make_node("Constant", [], ["kc"], value=k),
                         oh.make_node("Add", ["c", "kc"], ["y"])])
    blobs = [(b"junk-header!!", None), (w.tobytes(), m.graph.initializer[0]),
             (b"pad", None), (nh.to_array(k).tobytes(), m.graph.node[1].attribute[0].t),
             (b.tobytes(), m.graph.initializer[1])]
    data, keys = b"", []
    for raw, t in blobs:
        if t is not None:
            keys.append((t, len(data), len(raw)))
        data += raw
    (tmp_path / data_name).write_bytes(data)
    for t, off, n in keys:
        t.ClearField("raw_data")
        t.data_location = TP.EXTERNAL
        kv = {"location": data_name, "offset": str(off)}
        if t is not m.graph.initializer[1]:
            kv["length"] = str(n)
        for key, val in kv.items():
            t.external_data.add(key=key, value=val)
    p = tmp_path / "offs.onnx"
    p.write_bytes(m.SerializeToString())
    return p


def test_external_data_offset_length(tmp_path):
    p = _save_offsets(tmp_path)
    lm = load(p, ConvertOptions())
    inputs = seeded_inputs(lm.graph)
    ref = lm.run_source(inputs)  # onnxruntime on the same file and data
    assert_close(run_onnxruntime(lm.graph, inputs), ref)
    full = onnx.load(str(p))  # onnx's own loader on the same file: same weights
    assert_close(run_onnxruntime(load(_resave(tmp_path, full), ConvertOptions()).graph,
                                 inputs), ref)


def _resave(tmp_path: Path, m) -> Path:
    q = tmp_path / "inline.onnx"
    onnx.save(m, q)
    return q


@pytest.mark.parametrize("cut", [1, 30])
def test_external_data_too_short_names_tensor(tmp_path, cut):
    p = _save_offsets(tmp_path)
    f = tmp_path / "w.bin"
    f.write_bytes(f.read_bytes()[:-cut])
    with pytest.raises(UnreadableModelError, match="'w.bin'.*tensor 'b'.*truncated") as e:
        load(p, ConvertOptions())
    assert str(p) in e.value.one_line()
    out = tmp_path / "out"
    out.mkdir()
    assert_clean_failure(run_mconv("convert", str(p), "-o", str(out), "--no-verify"), 5, out,
                         "'b'")


@pytest.mark.parametrize("where", ["../w.bin", "ABS", "sub/../../w.bin"])
def test_external_data_location_outside_folder_refused(tmp_path, where):
    d = tmp_path / "m"
    d.mkdir()
    p = _save_offsets(tmp_path)  # data at tmp_path/w.bin, outside d
    m = onnx.load(str(p), load_external_data=False)
    loc = str(tmp_path / "w.bin") if where == "ABS" else where
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = loc
    q = d / "esc.onnx"
    q.write_bytes(m.SerializeToString())
    with pytest.raises(UnreadableModelError, match="is not a file inside"):
        load(q, ConvertOptions())


def _bad_files(tmp_path: Path) -> dict:
    good = c_conv(13).SerializeToString()
    ssa = model(13, [N("Relu", ["x"], ["y"]), N("Neg", ["x"], ["y"])], {"x": [1, 2]}, ["y"])
    files = {"empty": b"", "truncated": good[: len(good) // 2], "text": b"hello, not a model\n",
             "random": np.random.default_rng(0).bytes(4096),
             "no_opset": c_conv(13).graph.SerializeToString(),
             "not_ssa": ssa.SerializeToString()}
    out = {}
    for k, data in files.items():
        out[k] = tmp_path / f"{k}.onnx"
        out[k].write_bytes(data)
    return out


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "random", "no_opset", "not_ssa"])
def test_bad_file(tmp_path, kind):
    p = _bad_files(tmp_path)[kind]
    with pytest.raises(UnreadableModelError) as e:
        load(p, ConvertOptions())
    line = e.value.one_line()
    assert str(p) in line and "\n" not in line


@pytest.mark.parametrize("kind", ["truncated", "random"])
def test_cli_unreadable_exit_5(tmp_path, kind):
    p = _bad_files(tmp_path)[kind]
    out = tmp_path / "out"
    out.mkdir()
    proc = run_mconv("convert", str(p), "-o", str(out), "--no-verify")
    assert_clean_failure(proc, 5, out, p.name)


def test_cli_missing_external_data_exit_5(tmp_path):
    p = _save_external(tmp_path)
    (tmp_path / "ext.weights").unlink()
    out = tmp_path / "out"
    out.mkdir()
    assert_clean_failure(run_mconv("convert", str(p), "-o", str(out)), 5, out, "ext.weights")


def test_cli_unknown_domain_exit_3(tmp_path):
    m = model(13, [N("Relu", ["x"], ["r"]), N("Fancy", ["r"], ["y"], domain="com.acme")],
              {"x": [1, 3, 4, 4]}, ["y"])
    m.opset_import.append(oh.make_opsetid("com.acme", 1))
    p = tmp_path / "custom.onnx"
    onnx.save(m, p)
    out = tmp_path / "out"
    out.mkdir()
    rep = tmp_path / "r.json"
    proc = run_mconv("convert", str(p), "-o", str(out), "--report", str(rep))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert "com.acme.Fancy" in proc.stdout + proc.stderr
    assert not any(out.iterdir())
    issues = json.loads(rep.read_text())["issues"]
    assert [(i["stage"], i["op"], i["count"]) for i in issues] == [
        ("frontend:onnx", "com.acme.Fancy", 1)]
