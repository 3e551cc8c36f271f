"""OpenVINO exporter, per lowering family: tiny IR graphs built by hand with seeded weights,
exported with ``exporters.openvino.export``, run in the openvino runtime (CPU, f32) and compared
with onnxruntime on the same IR graph (``exporters.onnx.build.run_onnxruntime``) at
1e-5 x max(1, |ref|), parameterized over attributes. Also: fp16 weights, names, byte-identical
output across processes, atomic writes, the pre-flight scan."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import openvino  # noqa: F401  (required: the test extra installs it)
import onnxruntime  # noqa: F401  (required: the test extra installs it)

from converter.errors import UnsupportedOpsError  # noqa: E402
from converter.ir import Graph  # noqa: E402
from converter.options import ConvertOptions  # noqa: E402
from exporters import openvino as ovx  # noqa: E402
from exporters.onnx.build import run_onnxruntime  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ helpers
def rnd(*shape, scale=1.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def i64(*v):
    return np.array(v, dtype=np.int64)


def f32(*v):
    return np.array(v, dtype=np.float32)


def inputs_for(graph, positive=False, seed=1, batch=None):
    rng = np.random.default_rng(seed)
    out = {}
    for v in graph.inputs:
        shape = [d if isinstance(d, int) else batch for d in v.shape]
        a = rng.standard_normal(shape).astype(np.float32)
        out[v.name] = (np.abs(a) + 0.1).astype(np.float32) if positive else a
    return out


def op_types(files) -> dict:
    return ovx.describe(files)["op_counts"]


def export_and_compare(graph, tmp_path, positive=False, fp16=False, atol=1e-5, feeds=None,
                       stem="m"):
    """Export, run in openvino and compare every output with onnxruntime; returns the files."""
    graph.validate()
    assert ovx.scan(graph, None) == []
    before = graph.dump()
    files = ovx.export(graph, tmp_path, stem, ConvertOptions(fp16=fp16))
    assert graph.dump() == before  # the exporter never changes the IR graph
    feeds = feeds if feeds is not None else inputs_for(graph, positive)
    got = ovx.run(files, feeds)
    ref = run_onnxruntime(graph, feeds)
    assert len(got) == len(ref) == len(graph.outputs)
    for g, r, v in zip(got, ref, graph.outputs):
        assert g.shape == r.shape, (v.name, g.shape, r.shape)
        assert g.dtype == r.dtype, (v.name, g.dtype, r.dtype)
        tol = atol * max(1.0, float(np.abs(r).max())) if r.size else 0
        err = float(np.abs(g.astype(np.float64) - r).max()) if r.size else 0.0
        assert err <= tol, f"{v.name}: max err {err:.3g} > {tol:.3g}"
    return files


def single(op_builder, shape, tmp_path, **kw):
    """Graph ``y = op_builder(g, x)`` on one float input of ``shape``; export and compare."""
    g = Graph("t")
    x = g.add_input("x", "float32", shape)
    y = op_builder(g, x)
    g.outputs = list(y) if isinstance(y, (list, tuple)) else [y]
    return export_and_compare(g, tmp_path, **kw)


# ------------------------------------------------------------------ convolution
CONV2D = [  # cin, cout, kernel, strides, pads, dilations, group, bias
    (3, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    (4, 6, (3, 3), (2, 2), (0, 1, 2, 1), (1, 1), 1, False),   # asymmetric pads
    (8, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8, True),    # depthwise
    (8, 8, (5, 5), (2, 2), (2, 1, 2, 3), (1, 1), 8, False),
    (8, 12, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 4, True),   # groups + dilation
    (4, 6, (1, 3), (2, 1), (0, 1, 0, 1), (1, 2), 1, True),
]


@pytest.mark.parametrize("cin,cout,k,s,p,d,group,bias", CONV2D)
def test_conv2d(tmp_path, cin, cout, k, s, p, d, group, bias):
    def build(g, x):
        w = g.const(rnd(cout, cin // group, *k, scale=0.3), "w")
        ins = [x, w] + ([g.const(rnd(cout, seed=2), "b")] if bias else [])
        return g.op("Conv", *ins, kernel_shape=k, strides=s, pads=p, dilations=d, group=group)
    files = single(build, (1, cin, 9, 11), tmp_path)
    want = "Convolution" if group == 1 else "GroupConvolution"
    assert op_types(files) == {want: 1, **({"Add": 1} if bias else {})}


@pytest.mark.parametrize("rank,group", [(3, 1), (3, 4), (5, 1), (5, 2)])
def test_conv_1d_3d(tmp_path, rank, group):
    nsp = rank - 2
    def build(g, x):
        w = g.const(rnd(8, 4 // group, *(3,) * nsp, scale=0.3), "w")
        return g.op("Conv", x, w, g.const(rnd(8, seed=3), "b"), strides=(2,) * nsp,
                    pads=(1,) * nsp + (0,) * nsp, group=group)
    single(build, (1, 4) + (7,) * nsp, tmp_path)


def test_conv_weight_from_tensor(tmp_path):
    """A non-constant grouped weight and bias go through Reshape nodes."""
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 4, 6, 6))
    w = g.add_input("w", "float32", (6, 2, 3, 3))
    b = g.add_input("b", "float32", (6,))
    g.outputs = [g.op("Conv", x, w, b, pads=(1, 1, 1, 1), group=2)]
    files = export_and_compare(g, tmp_path)
    assert op_types(files)["Reshape"] == 2


CONVT = [  # cin, cout, kernel, strides, pads, output_padding, dilations, group
    (4, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), 1),
    (4, 6, (4, 4), (2, 2), (1, 0, 2, 1), (0, 0), (1, 1), 2),
    (6, 6, (3, 3), (1, 1), (0, 0, 0, 0), (0, 0), (2, 2), 6),  # depthwise
    (4, 4, (2, 3), (3, 2), (0, 1, 0, 1), (2, 1), (1, 1), 1),
]


@pytest.mark.parametrize("cin,cout,k,s,p,op_,d,group", CONVT)
def test_conv_transpose(tmp_path, cin, cout, k, s, p, op_, d, group):
    def build(g, x):
        w = g.const(rnd(cin, cout // group, *k, scale=0.3), "w")
        return g.op("ConvTranspose", x, w, g.const(rnd(cout, seed=4), "b"), kernel_shape=k,
                    strides=s, pads=p, output_padding=op_, dilations=d, group=group)
    files = single(build, (1, cin, 5, 6), tmp_path)
    want = "ConvolutionBackpropData" if group == 1 else "GroupConvolutionBackpropData"
    assert want in op_types(files)


@pytest.mark.parametrize("shape", [(1, 5, 4, 3), (3, 5)])
def test_batchnorm(tmp_path, shape):
    def build(g, x):
        c = shape[1]
        var = np.abs(rnd(c, seed=5)) + 0.5
        return g.op("BatchNormalization", x, g.const(rnd(c, seed=1), "s"),
                    g.const(rnd(c, seed=2), "b"), g.const(rnd(c, seed=3), "m"),
                    g.const(var, "v"), epsilon=1e-3)
    files = single(build, shape, tmp_path)
    assert op_types(files) == {"BatchNormInference": 1}


@pytest.mark.parametrize("transA,transB,alpha,beta,bias", [
    (0, 1, 1.0, 1.0, "n"), (0, 0, 0.5, 2.0, "1n"), (1, 0, 1.0, 1.0, None),
    (1, 1, 2.0, 0.5, "mn")])
def test_gemm(tmp_path, transA, transB, alpha, beta, bias):
    m, k, n = 3, 5, 4
    def build(g, x):
        b = g.const(rnd(*((n, k) if transB else (k, n)), seed=2), "B")
        ins = [x, b]
        if bias:
            ins.append(g.const(rnd(*{"n": (n,), "1n": (1, n), "mn": (m, n)}[bias], seed=3), "C"))
        return g.op("Gemm", *ins, transA=transA, transB=transB, alpha=alpha, beta=beta)
    files = single(build, (k, m) if transA else (m, k), tmp_path)
    assert op_types(files)["MatMul"] == 1


@pytest.mark.parametrize("a,b,const_b", [((2, 3, 4), (4, 5), True), ((2, 1, 3, 4), (5, 4, 2), False),
                                         ((4,), (4, 3), True), ((2, 3, 4), (4,), True)])
def test_matmul(tmp_path, a, b, const_b):
    g = Graph("t")
    x = g.add_input("x", "float32", a)
    y = g.const(rnd(*b, seed=2), "w") if const_b else g.add_input("y", "float32", b)
    g.outputs = [g.op("MatMul", x, y)]
    files = export_and_compare(g, tmp_path)
    assert op_types(files) == {"MatMul": 1}


# ------------------------------------------------------------------ activations
UNARY = [("Relu", "ReLU", False), ("Sigmoid", "Sigmoid", False), ("Tanh", "Tanh", False),
         ("Exp", "Exp", False), ("Log", "Log", True), ("Sqrt", "Sqrt", True),
         ("Neg", "Negative", False), ("Abs", "Abs", False), ("Floor", "Floor", False),
         ("Ceil", "Ceiling", False), ("Softplus", "SoftPlus", False), ("Mish", "Mish", False),
         ("Erf", "Erf", False), ("HardSwish", "HSwish", False),
         ("Reciprocal", "Divide", True)]


@pytest.mark.parametrize("op,want,positive", UNARY)
def test_unary(tmp_path, op, want, positive):
    files = single(lambda g, x: g.op(op, x), (1, 3, 4, 5), tmp_path, positive=positive)
    assert op_types(files) == {want: 1}


@pytest.mark.parametrize("op,attrs,want", [
    ("LeakyRelu", {"alpha": 0.1}, "PReLU"), ("Elu", {"alpha": 0.7}, "Elu"),
    ("Selu", {}, "Selu"), ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, "HSigmoid"),
    ("HardSigmoid", {"alpha": 0.2, "beta": 0.4}, "HardSigmoid"),
    ("Gelu", {}, "Gelu"), ("Gelu", {"approximate": "tanh"}, "Gelu"),
    ("Softmax", {"axis": 1}, "SoftMax"), ("Softmax", {"axis": -1}, "SoftMax"),
    ("LogSoftmax", {"axis": -1}, "LogSoftmax"), ("LogSoftmax", {"axis": 2}, "LogSoftmax")])
def test_activation_attrs(tmp_path, op, attrs, want):
    files = single(lambda g, x: g.op(op, x, **attrs), (2, 3, 4, 5), tmp_path)
    assert op_types(files) == {want: 1}


@pytest.mark.parametrize("lo,hi,want", [(0.0, 6.0, {"Clamp": 1}), (-0.5, None, {"Maximum": 1}),
                                        (None, 0.25, {"Minimum": 1}), (None, None, {})])
def test_clip(tmp_path, lo, hi, want):
    def build(g, x):
        ins = [x, g.const(f32(lo).reshape(()), "lo") if lo is not None else None]
        if hi is not None:
            ins.append(g.const(f32(hi).reshape(()), "hi"))
        return g.op("Clip", *ins)
    files = single(build, (1, 3, 4, 5), tmp_path)
    assert op_types(files) == want


@pytest.mark.parametrize("slope_shape", [(3, 1, 1), (5,), (1,), (1, 3, 1, 1)])
def test_prelu(tmp_path, slope_shape):
    """A ``[5]`` slope on a ``[1,5,4,5]`` input is a W-slope (numpy), not per channel."""
    shape = (1, 5, 4, 5) if slope_shape == (5,) else (1, 3, 4, 5)
    files = single(lambda g, x: g.op("PRelu", x, g.const(rnd(*slope_shape, seed=7), "slope")),
                   shape, tmp_path)
    assert op_types(files) == {"PReLU": 1}


def test_swish_fusion(tmp_path):
    files = single(lambda g, x: g.op("Mul", g.op("Sigmoid", x), x), (1, 3, 4, 5), tmp_path)
    assert op_types(files) == {"Swish": 1}


def test_swish_not_fused_when_sigmoid_is_shared(tmp_path):
    def build(g, x):
        s = g.op("Sigmoid", x)
        return [g.op("Mul", x, s), s]
    files = single(build, (1, 3, 4, 5), tmp_path)
    assert op_types(files) == {"Sigmoid": 1, "Multiply": 1}


# ------------------------------------------------------------------ arithmetic
BINARY = [("Add", "Add"), ("Sub", "Subtract"), ("Mul", "Multiply"), ("Div", "Divide"),
          ("Max", "Maximum"), ("Min", "Minimum"), ("Pow", "Power")]
OPERANDS = [(1, 4, 3, 5), (4, 1, 1), (5,), (), "tensor", "const_left"]


@pytest.mark.parametrize("op,want", BINARY)
@pytest.mark.parametrize("other", OPERANDS, ids=str)
def test_binary_broadcast(tmp_path, op, want, other):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 4, 3, 5))
    positive = op == "Pow"
    if other == "tensor":
        y = g.add_input("y", "float32", (4, 1, 5))
        out = g.op(op, x, y)
    elif other == "const_left":
        out = g.op(op, g.const(np.abs(rnd(4, 1, 1, seed=3)) + 0.5, "c"), x)
    else:
        c = np.abs(rnd(*other, seed=3)) + 0.5 if other else np.float32(1.7)
        out = g.op(op, x, g.const(np.asarray(c, np.float32), "c"))
    g.outputs = [out]
    files = export_and_compare(g, tmp_path, positive=positive)
    assert op_types(files) == {want: 1}


def test_clip_tensor_bounds(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (2, 3))
    lo = g.add_input("lo", "float32", ())
    g.outputs = [g.op("Clip", x, lo, g.const(np.float32(np.inf), "inf"))]
    files = export_and_compare(g, tmp_path, feeds={"x": rnd(2, 3), "lo": np.asarray(0.1, np.float32)})
    assert op_types(files) == {"Maximum": 1}


def test_pow_int_exponent(tmp_path):
    files = single(lambda g, x: g.op("Pow", x, g.const(np.asarray(3, np.int64), "e")),
                   (1, 3, 4), tmp_path)
    assert op_types(files) == {"Power": 1}


def test_integer_div_truncates(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "int64", (6,))
    g.outputs = [g.op("Div", x, g.const(np.asarray([2, -2, 3, 2, -4, 5], np.int64), "d"))]
    export_and_compare(g, tmp_path, feeds={"x": np.asarray([-3, 3, -7, 7, 9, -11], np.int64)})


def test_equal_where_cast(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (2, 3, 4))
    r = g.op("Cast", g.op("Cast", x, to=7), to=1)
    eq = g.op("Equal", r, g.const(np.float32(0), "zero"))
    g.outputs = [g.op("Where", eq, g.const(f32(5.0), "five"), x), g.op("Cast", x, to=7)]
    files = export_and_compare(g, tmp_path, feeds={"x": (rnd(2, 3, 4) * 3).round(1)})
    assert op_types(files) == {"Convert": 3, "Equal": 1, "Select": 1}


# ------------------------------------------------------------------ pooling, reductions
POOL = [  # kernel, strides, pads, ceil, dilations
    ((2, 2), (2, 2), (0, 0, 0, 0), 0, (1, 1)),
    ((3, 3), (2, 2), (1, 1, 1, 1), 1, (1, 1)),
    ((3, 3), (2, 2), (0, 0, 0, 0), 1, (1, 1)),
    ((3, 2), (1, 2), (1, 0, 1, 1), 0, (1, 1)),
    ((3, 3), (2, 1), (2, 1, 1, 2), 1, (1, 1)),
]


@pytest.mark.parametrize("k,s,p,ceil,d", POOL + [((3, 3), (1, 1), (2, 2, 2, 2), 0, (2, 2))])
def test_maxpool(tmp_path, k, s, p, ceil, d):
    files = single(lambda g, x: g.op("MaxPool", x, kernel_shape=k, strides=s, pads=p,
                                     ceil_mode=ceil, dilations=d), (1, 3, 9, 10), tmp_path)
    assert op_types(files) == {"MaxPool": 1}


@pytest.mark.parametrize("include", [0, 1])
@pytest.mark.parametrize("k,s,p,ceil,d", POOL)
def test_avgpool(tmp_path, k, s, p, ceil, d, include):
    files = single(lambda g, x: g.op("AveragePool", x, kernel_shape=k, strides=s, pads=p,
                                     ceil_mode=ceil, count_include_pad=include),
                   (1, 3, 9, 10), tmp_path)
    assert op_types(files)["AvgPool"] == 1


@pytest.mark.parametrize("op,want", [("MaxPool", "MaxPool"), ("AveragePool", "AvgPool")])
def test_pool1d(tmp_path, op, want):
    files = single(lambda g, x: g.op(op, x, kernel_shape=(3,), strides=(2,), pads=(1, 1)),
                   (1, 3, 11), tmp_path)
    assert op_types(files) == {want: 1}


@pytest.mark.parametrize("op,want", [("GlobalAveragePool", "ReduceMean"),
                                     ("GlobalMaxPool", "ReduceMax")])
def test_global_pool(tmp_path, op, want):
    files = single(lambda g, x: g.op(op, x), (1, 6, 5, 7), tmp_path)
    assert op_types(files) == {want: 1}


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax"])
@pytest.mark.parametrize("axes,keep", [((2, 3), 1), ((-1,), 0), ((1,), 1), (None, 0)])
def test_reduce(tmp_path, op, axes, keep):
    def build(g, x):
        return g.op(op, x, *([g.const(i64(*axes), "axes")] if axes else []), keepdims=keep)
    files = single(build, (2, 3, 4, 5), tmp_path)
    assert op_types(files) == {op: 1}


def test_reduce_noop_with_empty_axes(tmp_path):
    files = single(lambda g, x: g.op("Relu", g.op("ReduceSum", x, noop_with_empty_axes=1)),
                   (2, 3), tmp_path)
    assert op_types(files) == {"ReLU": 1}


# ------------------------------------------------------------------ resize, pad
RESIZE = [  # in shape, sizes or scales, mode, coordinate_transformation_mode, nearest_mode
    ((1, 2, 6, 6), ("sizes", (1, 2, 12, 12)), "nearest", "asymmetric", "floor"),
    ((1, 2, 6, 6), ("sizes", (1, 2, 10, 10)), "nearest", "asymmetric", "floor"),
    ((1, 2, 6, 6), ("sizes", (1, 2, 10, 9)), "nearest", "half_pixel", "round_prefer_floor"),
    ((1, 2, 6, 6), ("sizes", (1, 2, 12, 12)), "linear", "half_pixel", "floor"),
    ((1, 2, 5, 7), ("sizes", (1, 2, 9, 13)), "linear", "pytorch_half_pixel", "floor"),
    ((1, 2, 5, 7), ("sizes", (1, 2, 9, 13)), "linear", "align_corners", "floor"),
    ((1, 2, 6, 6), ("scales", (1, 1, 1.5, 2.5)), "linear", "half_pixel", "floor"),
    ((1, 2, 6, 6), ("scales", (1, 1, 1.5, 0.5)), "nearest", "asymmetric", "floor"),
    ((1, 2, 5, 6), ("sizes", (1, 2, 10, 8)), "cubic", "half_pixel", "floor"),
    ((1, 3, 7), ("sizes", (1, 3, 14)), "linear", "pytorch_half_pixel", "floor"),
    ((1, 3, 7), ("sizes", (1, 3, 11)), "nearest", "asymmetric", "floor"),
]


@pytest.mark.parametrize("shape,operand,mode,ctm,nearest", RESIZE)
def test_resize(tmp_path, shape, operand, mode, ctm, nearest):
    kind, vals = operand
    def build(g, x):
        ops = [x, None]
        ops += [g.const(f32(*vals), "scales")] if kind == "scales" else [
            None, g.const(i64(*vals), "sizes")]
        return g.op("Resize", *ops, mode=mode, coordinate_transformation_mode=ctm,
                    nearest_mode=nearest)
    files = single(build, shape, tmp_path)
    assert op_types(files) == {"Interpolate": 1}


@pytest.mark.parametrize("mode,pads,value", [
    ("constant", (0, 0, 1, 2, 0, 0, 3, 0), 0.5), ("constant", (0, 0, -1, 1, 0, 0, 1, -2), None),
    ("reflect", (0, 0, 2, 1, 0, 0, 1, 3), None), ("edge", (0, 1, 2, 1, 0, 1, 1, 3), None)])
def test_pad(tmp_path, mode, pads, value):
    def build(g, x):
        ins = [x, g.const(np.asarray(pads, np.int64), "pads")]
        if value is not None:
            ins.append(g.const(f32(value).reshape(()), "v"))
        return g.op("Pad", *ins, mode=mode)
    files = single(build, (1, 3, 5, 6), tmp_path)
    assert op_types(files) == {"Pad": 1}


# ------------------------------------------------------------------ shape ops
def test_concat_transpose_reshape_flatten(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 4, 3, 5))
    c = g.op("Concat", x, g.const(rnd(1, 4, 3, 2, seed=3), "k"), x, axis=-1)
    t = g.op("Transpose", c, perm=(0, 2, 1, 3))
    r = g.op("Reshape", t, g.const(i64(0, -1, 6), "shape"))
    g.outputs = [r, g.op("Flatten", x, axis=2), g.op("Transpose", x)]
    files = export_and_compare(g, tmp_path)
    assert op_types(files) == {"Concat": 1, "Transpose": 2, "Reshape": 2}


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ((1, 0), (3, 4), (1, 3), None), ((-1,), (-2**63,), (2,), (-1,)),
    ((0, 1), (2**63 - 1, 100), (2, 3), (2, 2)), ((2,), (0,), (-1,), (-1,))])
def test_slice(tmp_path, starts, ends, axes, steps):
    def build(g, x):
        ins = [x, g.const(i64(*starts), "st"), g.const(i64(*ends), "en"),
               g.const(i64(*axes), "ax")]
        if steps:
            ins.append(g.const(i64(*steps), "sp"))
        return g.op("Slice", *ins)
    files = single(build, (1, 4, 5, 6), tmp_path)
    assert op_types(files) == {"Slice": 1}


@pytest.mark.parametrize("c,sizes,n,want", [(6, None, 2, "Split"), (6, (1, 3, 2), 3, "VariadicSplit"),
                                            (7, None, 2, "VariadicSplit"), (6, (3, 3), 2, "Split")])
def test_split(tmp_path, c, sizes, n, want):
    def build(g, x):
        ins = [x] + ([g.const(np.asarray(sizes, np.int64), "sz")] if sizes else [])
        attrs = {} if sizes else {"num_outputs": n}
        return g.add("Split", ins, dict(axis=1, **attrs), n_out=n).outputs
    files = single(build, (1, c, 3), tmp_path)
    assert op_types(files) == {want: 1}


def test_squeeze_unsqueeze_gather_shape(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 1, 5))
    s1 = g.op("Squeeze", x, g.const(i64(-2), "ax"))
    s2 = g.op("Squeeze", x)
    u = g.op("Unsqueeze", s1, g.const(i64(0, -1), "ax2"))
    ga = g.op("Gather", x, g.const(i64(4, -1, 0), "idx"), axis=3)
    gs = g.op("Gather", x, g.const(np.asarray(1, np.int64), "i"), axis=1)
    g.outputs = [s2, u, ga, gs, g.op("Shape", u)]
    files = export_and_compare(g, tmp_path)
    assert op_types(files) == {"Squeeze": 2, "Unsqueeze": 1, "Gather": 2, "ShapeOf": 1}


def test_gather_tensor_indices(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (4, 3))
    idx = g.add_input("i", "int64", (2, 2))
    g.outputs = [g.op("Gather", x, idx, axis=0)]
    export_and_compare(g, tmp_path, feeds={"x": rnd(4, 3), "i": i64(0, 3, -1, 2).reshape(2, 2)})


def _shuffle(g, x, groups=2, extra_reader=False):
    n, c, h, w = x.shape
    v = g.op("Reshape", x, g.const(i64(n, groups, c // groups, h, w), "s1"))
    t = g.op("Transpose", v, perm=(0, 2, 1, 3, 4))
    out = g.op("Reshape", t, g.const(i64(n, c, h, w), "s2"))
    return [out, g.op("Relu", t)] if extra_reader else out


def test_channel_shuffle_fusion(tmp_path):
    files = single(_shuffle, (1, 6, 3, 4), tmp_path)
    assert op_types(files) == {"ShuffleChannels": 1}


def test_channel_shuffle_not_fused_with_second_reader(tmp_path):
    files = single(lambda g, x: _shuffle(g, x, 3, True), (1, 6, 3, 4), tmp_path)
    assert op_types(files) == {"Reshape": 2, "Transpose": 1, "ReLU": 1}


def test_identity_dropout_aliases(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4))
    d = g.add("Dropout", [g.op("Identity", x)], n_out=1).outputs[0]
    r = g.op("Relu", d)
    g.outputs = [r, g.op("Identity", r)]
    files = export_and_compare(g, tmp_path)
    assert op_types(files) == {"ReLU": 1}


def test_dynamic_batch(tmp_path):
    """Symbolic batch: the Parameter is dynamic, Flatten keeps ``[0, -1]``; batch 1 and 3."""
    g = Graph("t")
    x = g.add_input("x", "float32", ("N", 3, 8, 8))
    c = g.op("Relu", g.op("Conv", x, g.const(rnd(4, 3, 3, 3, scale=0.3), "w"), pads=(1,) * 4))
    f = g.op("Flatten", g.op("MaxPool", c, kernel_shape=(2, 2), strides=(2, 2)), axis=1)
    g.outputs = [g.op("Gemm", f, g.const(rnd(5, 64, scale=0.1), "fc"), transB=1)]
    for batch in (1, 3):
        export_and_compare(g, tmp_path / str(batch), feeds=inputs_for(g, batch=batch))


# ------------------------------------------------------------------ fp16, names, files
def _small_cnn(name="net", in_name="input.1", out_names=("prob", "feat:0")):
    g = Graph(name)
    x = g.add_input(in_name, "float32", (1, 3, 16, 16))
    c = g.op("Conv", x, g.const(rnd(16, 3, 3, 3, scale=0.3), "conv.weight"),
             g.const(rnd(16, seed=2), "conv.bias"), pads=(1, 1, 1, 1))
    r = g.op("Relu", c)
    p = g.op("GlobalAveragePool", r)
    f = g.op("Flatten", p)
    y = g.op("Gemm", f, g.const(rnd(10, 16, scale=0.3, seed=3), "fc.weight"),
             g.const(rnd(10, seed=4), "fc.bias"), transB=1)
    s = g.op("Softmax", y, axis=1)
    g.rename(s, out_names[0])
    g.rename(r, out_names[1])
    g.outputs = [s, r]
    return g


def test_fp16_weights(tmp_path):
    g = _small_cnn()
    f32_files = export_and_compare(g, tmp_path / "f32")
    f16_files = export_and_compare(g, tmp_path / "f16", fp16=True, atol=1e-2)
    assert f16_files[1].stat().st_size < 0.6 * f32_files[1].stat().st_size
    assert 'element_type="f16"' in f16_files[0].read_text()
    assert op_types(f16_files) == op_types(f32_files)  # decompression Converts not counted


def test_names_kept(tmp_path):
    import openvino

    g = _small_cnn(in_name="data,0", out_names=("prob/out", "feat:0"))
    files = export_and_compare(g, tmp_path)
    model = openvino.Core().read_model(str(files[0]))
    assert [p.get_names() for p in model.inputs] == [{"data,0"}]
    assert [o.get_names() for o in model.outputs] == [{"prob/out"}, {"feat:0"}]
    assert model.get_parameters()[0].get_friendly_name() == "data,0"
    assert model.get_friendly_name() == "net"
    assert files[0].read_text().splitlines()[1] == '<net name="net" version="11">'
    assert model.get_rt_info(["mconv", "version"]).astype(str)


def test_graph_output_is_input_and_const(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (2, 3))
    g.outputs = [g.op("Relu", x), x, g.const(f32(1, 2, 3), "table")]
    files = export_and_compare(g, tmp_path)
    assert op_types(files) == {"ReLU": 1}


_SAMPLE = """
import sys
import openvino.opset16 as o
for _ in range(int(sys.argv[2])):   # shift OpenVINO's global node counter
    o.relu(o.parameter([1], name="noise"))
from tests.test_openvino_export import _small_cnn
from exporters import openvino as ovx
from converter.options import ConvertOptions
ovx.export(_small_cnn(), sys.argv[1], "m", ConvertOptions(fp16=sys.argv[3] == "1"))
"""


@pytest.mark.parametrize("fp16", [0, 1])
def test_byte_identical_across_processes(tmp_path, fp16):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for i, noise in enumerate((0, 7)):
        subprocess.run([sys.executable, "-c", _SAMPLE, str(tmp_path / str(i)), str(noise),
                        str(fp16)], check=True, cwd=ROOT, env=env, timeout=120)
    for suffix in (".xml", ".bin"):
        a, b = (tmp_path / str(i) / f"m{suffix}" for i in (0, 1))
        assert a.read_bytes() == b.read_bytes(), suffix
    assert "_auto_" not in (tmp_path / "0" / "m.xml").read_text()


def test_writer_failure_leaves_no_files(tmp_path, monkeypatch):
    from exporters.openvino import writer

    def broken(model, path, fp16):
        Path(path).write_text("<net")  # a partial file, then the failure
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "save", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        ovx.export(_small_cnn(), tmp_path / "out", "m", ConvertOptions())
    assert list((tmp_path / "out").iterdir()) == []


def test_failed_rename_removes_renamed_file_and_keeps_nothing(tmp_path, monkeypatch):
    from exporters.openvino import writer

    real = os.replace
    def replace(src, dst):
        if str(dst).endswith(".bin"):
            raise OSError("rename failed")
        real(src, dst)

    monkeypatch.setattr(writer.os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        ovx.export(_small_cnn(), tmp_path, "m", ConvertOptions())
    assert list(tmp_path.iterdir()) == []


def test_describe_counts(tmp_path):
    files = ovx.export(_small_cnn(), tmp_path, "m", ConvertOptions())
    d = ovx.describe(files)
    assert d == {"ops": 8, "op_counts": {"Add": 2, "Convolution": 1, "MatMul": 1,
                                         "ReLU": 1, "ReduceMean": 1, "Reshape": 1,
                                         "SoftMax": 1}}


# ------------------------------------------------------------------ scan
def test_scan_collects_every_problem_and_writes_nothing(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4, 4))
    mask = g.add("Dropout", [x], n_out=2).outputs[1]
    a = g.op("Resize", x, None, None, g.const(i64(1, 3, 8, 8), "sz"), mode="linear",
             coordinate_transformation_mode="tf_crop_and_resize")
    b = g.op("Pad", x, g.const(i64(0, 0, 1, 1, 0, 0, 1, 1), "pads"), mode="wrap")
    c = g.op("Cast", mask, to=1)
    d = g.op("Resize", x, None, None, g.const(i64(1, 6, 8, 8), "sz2"), mode="linear")
    g.outputs = [a, b, c, d]
    codes = sorted((i.op, i.code) for i in ovx.scan(g))
    assert codes == [("Dropout", "openvino.attr"), ("Pad", "openvino.attr"),
                     ("Resize", "openvino.attr"), ("Resize", "openvino.attr")]
    with pytest.raises(UnsupportedOpsError):
        ovx.export(g, tmp_path / "o", "m", ConvertOptions())
    assert not (tmp_path / "o").exists()


def test_scan_does_not_import_openvino():
    code = ("import sys\nfrom exporters import openvino as ovx\nfrom converter.ir import Graph\n"
            "g = Graph('t')\ng.outputs = [g.op('Relu', g.add_input('x', 'float32', (1, 2)))]\n"
            "assert ovx.scan(g) == []\nassert 'openvino' not in sys.modules")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env, timeout=120)


def test_every_ir_op_has_a_lowering():
    from converter.ops import SCHEMAS
    from converter.registry import find_lowering

    assert [op for op in SCHEMAS if find_lowering("openvino", op) is None] == []


def test_float64_refused_naming_tensors(tmp_path):
    """The CPU plugin computes f64 in f32 (see exporters/openvino/checks.py F64_REASON): every
    float64 tensor is an ``openvino.float64`` issue, exit 3, nothing written."""
    g = Graph("t")
    x = g.add_input("x", "float64", (1, 3))
    y = g.op("Add", x, g.const(np.array([1e-10, 2.0, 3.0]), "bias"), name="add")
    g.outputs = [g.op("Cast", y, to=1, name="out"), g.op("Relu", x, name="r")]
    issues = ovx.scan(g)
    assert {i.code for i in issues} == {"openvino.float64"}
    named = {(i.op, n) for i in issues for n in i.nodes}
    assert named == {("<input>", "x"), ("<output>", "r"), ("Add", "add: x"),
                     ("Add", "add: bias"), ("Add", "add: add"), ("Cast", "out: add"),
                     ("Relu", "r: x"), ("Relu", "r: r")}
    assert all("float32" in i.reason and "cast the model to float32" in i.hint
               for i in issues)
    with pytest.raises(UnsupportedOpsError) as e:
        ovx.export(g, tmp_path / "o", "m", ConvertOptions())
    assert e.value.exit_code == 3 and not (tmp_path / "o").exists()


def test_float64_onnx_model_cli_exit_3(tmp_path):
    import onnx

    from exporters.onnx.build import to_model

    g = Graph("f64")
    x = g.add_input("x", "float64", (2, 3))
    g.outputs = [g.op("Mul", x, g.const(np.array(1.5), "k"), name="y")]
    onnx.save(to_model(g, 17), tmp_path / "f64.onnx")
    r = subprocess.run([sys.executable, "-m", "converter", "convert", str(tmp_path / "f64.onnx"),
                        "--to", "openvino", "-o", str(tmp_path / "out")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 3, r.stderr
    assert "openvino.float64" in r.stderr + r.stdout and "float32" in r.stderr + r.stdout
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.xml"))
