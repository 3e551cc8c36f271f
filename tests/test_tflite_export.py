"""TFLite exporter, per lowering family: small IR graphs written to ``.tflite`` and run in
LiteRT (builtin kernels *and* the default XNNPACK delegate), compared with onnxruntime
evaluating the same IR graph (:func:`exporters.onnx.build.run_onnxruntime`).

Tolerances (``|got - ref| <= atol * max(1, max|ref|)``): fp32 1e-5; ``fp16`` weights 1e-2;
``quantize="dynamic"`` (int8 per-channel weights, activations quantized on the fly by the
hybrid kernels) :data:`DYNAMIC_ATOL` = 0.1, plus cosine similarity > 0.99 (measured on the
fixture zoo: worst 0.055 x max(1, |ref|), yolo_small / unet_small).
Also: the writer (determinism, 16-byte aligned buffers, opcode fields, signature, atomic
write), the scan (every unsupported node listed, nothing written) and the fusions.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import ai_edge_litert  # noqa: F401  (required: the test extra installs it)
import onnxruntime  # noqa: F401  (required: the test extra installs it)
import tflite as tflite_pkg

import exporters.tflite as tfl  # noqa: E402
from converter.errors import UnsupportedOpsError  # noqa: E402
from converter.ir import Graph  # noqa: E402
from exporters.onnx.build import run_onnxruntime  # noqa: E402
from exporters.tflite import runtime  # noqa: E402

FP32_ATOL = 1e-5
FP16_ATOL = 1e-2
DYNAMIC_ATOL = 0.1
RNG = np.random.default_rng(0)


@dataclass(frozen=True)
class Opts:
    """The option fields the exporter reads (a stand-in for ConvertOptions)."""

    io_layout: str = "nhwc"
    fp16: bool = False
    quantize: str = ""


def w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def graph(*shapes):
    g = Graph("t")
    xs = [g.add_input(f"x{i}", "float32", s) for i, s in enumerate(shapes)]
    return g, xs


def inputs_of(g, scale=1.0):
    rng = np.random.default_rng(1)
    return {v.name: (rng.standard_normal(v.shape) * scale).astype(np.float32) for v in g.inputs}


def check(g, tmp_path, feeds=None, atol=FP32_ATOL, opts=Opts(), xnnpack=(False, True)):
    """Export ``g``, run it on both kernel paths, compare with onnxruntime; returns the
    ``describe`` op counts."""
    g.validate()
    feeds = feeds or inputs_of(g)
    ref = run_onnxruntime(g, feeds)
    files = tfl.export(g, tmp_path, "m", opts)
    for x in xnnpack:
        got = runtime.run(files, feeds, opts, xnnpack=x)
        assert len(got) == len(ref)
        for r, o in zip(ref, got):
            assert o.shape == r.shape, (o.shape, r.shape)
            tol = atol * max(1.0, float(np.abs(r).max()))
            err = float(np.abs(o.astype(np.float64) - r).max())
            assert err <= tol, f"xnnpack={x}: max error {err:.3g} > {tol:.3g}"
    return tfl.describe(files)["op_counts"]


# ------------------------------------------------------------------ convolution family
CONVS = {
    "k3s1p1_same": dict(shape=(1, 3, 8, 8), w=(4, 3, 3, 3), pads=(1, 1, 1, 1), strides=(1, 1)),
    "k3s2p1_even_pad": dict(shape=(1, 3, 8, 8), w=(4, 3, 3, 3), pads=(1, 1, 1, 1),
                            strides=(2, 2)),
    "k3s2p1_odd_same": dict(shape=(1, 3, 9, 9), w=(4, 3, 3, 3), pads=(1, 1, 1, 1),
                            strides=(2, 2)),
    "k1_valid": dict(shape=(1, 5, 6, 7), w=(3, 5, 1, 1), pads=(0, 0, 0, 0), strides=(1, 1)),
    "asym_pads": dict(shape=(1, 3, 7, 6), w=(2, 3, 3, 2), pads=(0, 2, 1, 0), strides=(1, 2)),
    "dilated": dict(shape=(1, 3, 10, 10), w=(4, 3, 3, 3), pads=(2, 2, 2, 2), strides=(1, 1),
                    dilations=(2, 2)),
    "grouped": dict(shape=(1, 8, 6, 6), w=(6, 4, 3, 3), pads=(1, 1, 1, 1), strides=(1, 1),
                    group=2),
    "depthwise": dict(shape=(1, 6, 7, 7), w=(6, 1, 3, 3), pads=(1, 1, 1, 1), strides=(2, 2),
                      group=6),
    "depthwise_mult2": dict(shape=(1, 3, 6, 6), w=(6, 1, 3, 3), pads=(0, 0, 0, 0),
                            strides=(1, 1), group=3),
    "conv1d": dict(shape=(1, 4, 12), w=(5, 4, 3), pads=(1, 1), strides=(2,)),
}


@pytest.mark.parametrize("case", sorted(CONVS))
@pytest.mark.parametrize("bias", [True, False])
def test_conv(tmp_path, case, bias):
    c = dict(CONVS[case])
    shape = c.pop("shape")
    g, (x,) = graph(shape)
    wt = w(*c.pop("w"))
    b = g.const(w(wt.shape[0]), "b") if bias else None
    c.setdefault("group", 1)
    y = g.op("Conv", x, g.const(wt, "w"), b, kernel_shape=wt.shape[2:], **c)
    g.outputs = [g.op("Relu", y)]
    ops = check(g, tmp_path)
    assert "RELU" not in ops  # activation fused
    assert ops.get("TRANSPOSE", 0) == (0 if len(shape) == 4 else 2)  # 1-D: NCW boundary
    depthwise = 1 < c["group"] == shape[1]
    assert ops.get("DEPTHWISE_CONV_2D", 0) == int(depthwise)
    assert ops.get("CONV_2D", 0) == int(not depthwise)


TCONVS = {
    "k2s2_valid": dict(shape=(1, 4, 5, 5), w=(4, 3, 2, 2), strides=(2, 2), pads=(0, 0, 0, 0)),
    "k3s2p1op1_slice": dict(shape=(1, 4, 5, 6), w=(4, 3, 3, 3), strides=(2, 2),
                            pads=(1, 1, 1, 1), output_padding=(1, 1)),
    "k4s2p1": dict(shape=(1, 2, 4, 4), w=(2, 3, 4, 4), strides=(2, 2), pads=(1, 1, 1, 1)),
    "k3s1p1": dict(shape=(1, 2, 6, 5), w=(2, 2, 3, 3), strides=(1, 1), pads=(1, 1, 1, 1)),
}


@pytest.mark.parametrize("case", sorted(TCONVS))
def test_conv_transpose(tmp_path, case):
    c = dict(TCONVS[case])
    g, (x,) = graph(c.pop("shape"))
    wt = w(*c.pop("w"))
    y = g.op("ConvTranspose", x, g.const(wt, "w"), g.const(w(wt.shape[1]), "b"),
             kernel_shape=wt.shape[2:], **c)
    g.outputs = [y]
    ops = check(g, tmp_path)
    assert ops.get("TRANSPOSE_CONV") == 1 and "TRANSPOSE" not in ops


@pytest.mark.parametrize("attrs", [dict(transB=1), dict(transB=0, alpha=0.5, beta=2.0),
                                   dict(transA=1, transB=1)])
def test_gemm_const(tmp_path, attrs):
    ta, tb = attrs.get("transA", 0), attrs.get("transB", 0)
    g, (x,) = graph((6, 3) if ta else (3, 6))
    b = g.const(w(4, 6) if tb else w(6, 4), "B")
    g.outputs = [g.op("Gemm", x, b, g.const(w(4), "C"), **attrs)]
    assert check(g, tmp_path).get("FULLY_CONNECTED") == 1


def test_gemm_tensor_b_and_matmul(tmp_path):
    g, (a, b, c) = graph((3, 5), (4, 5), (2, 3, 5))
    y1 = g.op("Gemm", a, b, g.const(w(3, 4), "C"), transB=1, alpha=2.0)
    y2 = g.op("MatMul", c, g.const(w(5, 6), "W"))
    y3 = g.op("MatMul", c, g.op("Transpose", c, perm=(0, 2, 1)))
    g.outputs = [y1, y2, y3]
    ops = check(g, tmp_path)
    assert ops.get("BATCH_MATMUL") == 2 and ops.get("FULLY_CONNECTED") == 1


@pytest.mark.parametrize("perm", [None, (0, 3, 2, 1), (0, 2, 3, 1)])
def test_flatten_into_gemm_has_no_transpose(tmp_path, perm):
    """A flatten of an NHWC tensor (after any transpose) feeding Gemm: one RESHAPE, the
    column order folded into the FULLY_CONNECTED weights."""
    g, (x,) = graph((1, 3, 4, 5))
    y = g.op("Conv", x, g.const(w(6, 3, 1, 1), "cw"), kernel_shape=(1, 1))
    if perm is not None:
        y = g.op("Transpose", y, perm=perm)
    f = g.op("Reshape", y, g.const(np.array([1, -1], np.int64), "s"))
    g.outputs = [g.op("Gemm", f, g.const(w(7, 120), "W"), g.const(w(7), "b"), transB=1)]
    ops = check(g, tmp_path)
    assert "TRANSPOSE" not in ops and ops.get("RESHAPE") == 1


def test_batchnorm(tmp_path):
    g, (x,) = graph((1, 4, 5, 5))
    c = [g.const(np.abs(w(4)) + 0.5, n) for n in ("g", "b", "m", "v")]
    g.outputs = [g.op("BatchNormalization", x, *c)]
    assert check(g, tmp_path) == {"ADD": 1, "MUL": 1}


# ------------------------------------------------------------------ pooling family
POOLS = {
    "max_k3s2p1": ("MaxPool", dict(kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1))),
    "max_ceil": ("MaxPool", dict(kernel_shape=(3, 3), strides=(2, 2), ceil_mode=1)),
    "max_ceil_pads": ("MaxPool", dict(kernel_shape=(3, 3), strides=(2, 2), ceil_mode=1,
                                      pads=(1, 1, 1, 1))),
    "max_k2s2": ("MaxPool", dict(kernel_shape=(2, 2), strides=(2, 2))),
    "avg_k2s2": ("AveragePool", dict(kernel_shape=(2, 2), strides=(2, 2))),
    "avg_excl_pad": ("AveragePool", dict(kernel_shape=(3, 3), strides=(2, 2),
                                         pads=(1, 1, 1, 1))),
    "avg_incl_pad": ("AveragePool", dict(kernel_shape=(3, 3), strides=(1, 1),
                                         pads=(1, 1, 1, 1), count_include_pad=1)),
    "avg_ceil": ("AveragePool", dict(kernel_shape=(3, 3), strides=(2, 2), ceil_mode=1)),
    "avg_ceil_incl": ("AveragePool", dict(kernel_shape=(3, 3), strides=(2, 2), ceil_mode=1,
                                          pads=(1, 0, 1, 0), count_include_pad=1)),
}


@pytest.mark.parametrize("case", sorted(POOLS))
@pytest.mark.parametrize("size", [8, 9])
def test_pool(tmp_path, case, size):
    op, attrs = POOLS[case]
    g, (x,) = graph((1, 3, size, size + 2))
    g.outputs = [g.op(op, x, **attrs)]
    assert "TRANSPOSE" not in check(g, tmp_path)


def test_pool_1d_and_global(tmp_path):
    g, (x, z) = graph((1, 3, 11), (1, 4, 5, 6))
    g.outputs = [g.op("MaxPool", x, kernel_shape=(3,), strides=(2,), pads=(1, 1)),
                 g.op("GlobalAveragePool", z), g.op("GlobalMaxPool", z)]
    ops = check(g, tmp_path)
    assert ops.get("MEAN") == 1 and ops.get("REDUCE_MAX") == 1


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax"])
@pytest.mark.parametrize("axes,keep", [((1,), 1), ((1,), 0), ((2, 3), 0), ((0, 2), 1),
                                        ((-1,), 0)])
def test_reduce(tmp_path, op, axes, keep):
    g, (x,) = graph((2, 3, 4, 5))
    y = g.op(op, x, g.const(np.array(axes, np.int64), "axes"), keepdims=keep)
    g.outputs = [g.op("Relu", y)]
    check(g, tmp_path)


def test_global_pool_flatten_is_one_mean(tmp_path):
    g, (x,) = graph((1, 8, 5, 5))
    f = g.op("Flatten", g.op("GlobalAveragePool", x), axis=1)
    g.outputs = [g.op("Gemm", f, g.const(w(3, 8), "W"), transB=1)]
    assert check(g, tmp_path) == {"FULLY_CONNECTED": 1, "MEAN": 1}


RESIZES = [
    dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    dict(mode="nearest", coordinate_transformation_mode="half_pixel",
         nearest_mode="round_prefer_ceil"),
    dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
    dict(mode="linear", coordinate_transformation_mode="half_pixel"),
    dict(mode="linear", coordinate_transformation_mode="align_corners"),
    dict(mode="linear", coordinate_transformation_mode="asymmetric"),
]


@pytest.mark.parametrize("attrs", RESIZES, ids=lambda a: a["mode"] + "-" +
                         a["coordinate_transformation_mode"])
@pytest.mark.parametrize("out", [(12, 10), (10, 15)])
def test_resize(tmp_path, attrs, out):
    g, (x,) = graph((1, 3, 6, 5))
    sizes = g.const(np.array((1, 3) + out, np.int64), "sizes")
    g.outputs = [g.op("Resize", x, None, None, sizes, **attrs)]
    assert "TRANSPOSE" not in check(g, tmp_path)


def test_resize_scales(tmp_path):
    g, (x,) = graph((1, 3, 4, 5))
    sc = g.const(np.array([1, 1, 2, 2], np.float32), "scales")
    g.outputs = [g.op("Resize", x, None, sc, mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")]
    check(g, tmp_path)


@pytest.mark.parametrize("mode,value,pads", [
    ("constant", None, (0, 0, 1, 2, 0, 0, 3, 0)), ("constant", 0.5, (0, 1, 1, 0, 0, 0, 1, 1)),
    ("reflect", None, (0, 0, 2, 1, 0, 0, 1, 2)), ("edge", None, (0, 0, 1, 1, 0, 0, 1, 0))])
def test_pad(tmp_path, mode, value, pads):
    g, (x,) = graph((1, 3, 5, 6))
    cv = g.const(np.array(value, np.float32), "cv") if value is not None else None
    g.outputs = [g.op("Pad", x, g.const(np.array(pads, np.int64), "pads"), cv, mode=mode)]
    assert "TRANSPOSE" not in check(g, tmp_path)


# ------------------------------------------------------------------ activations
UNARY = ["Relu", "Sigmoid", "Tanh", "HardSwish", "Exp", "Neg", "Abs", "Floor", "Ceil",
         "Softplus", "Mish"]


@pytest.mark.parametrize("op", UNARY)
def test_unary(tmp_path, op):
    g, (x,) = graph((1, 3, 4, 5))
    g.outputs = [g.op(op, x)]
    feeds = {"x0": np.concatenate([inputs_of(g, 3.0)["x0"][:, :2],
                                   np.full((1, 1, 4, 5), 30.0, np.float32)], axis=1)}
    check(g, tmp_path, feeds if op in ("Softplus", "Mish") else None)


@pytest.mark.parametrize("op", ["Log", "Sqrt", "Reciprocal"])
def test_unary_positive(tmp_path, op):
    g, (x,) = graph((1, 3, 4, 5))
    g.outputs = [g.op(op, x)]
    check(g, tmp_path, {"x0": np.abs(inputs_of(g)["x0"]) + 0.5})


@pytest.mark.parametrize("op,attrs", [("LeakyRelu", dict(alpha=0.2)), ("Elu", {}),
                                      ("Elu", dict(alpha=0.5)), ("Selu", {}),
                                      ("Gelu", {}), ("Gelu", dict(approximate="tanh")),
                                      ("HardSigmoid", {}),
                                      ("HardSigmoid", dict(alpha=1 / 6, beta=0.5)),
                                      ("HardSigmoid", dict(alpha=0.3, beta=0.4))])
def test_activation_attrs(tmp_path, op, attrs):
    g, (x,) = graph((1, 3, 4, 5))
    g.outputs = [g.op(op, x, **attrs)]
    check(g, tmp_path, {"x0": inputs_of(g, 4.0)["x0"]})


@pytest.mark.parametrize("shape,slope", [((1, 4, 3, 3), (4, 1, 1)), ((2, 6), (6,)),
                                         ((1, 4, 3, 3), (1,))])
def test_prelu(tmp_path, shape, slope):
    g, (x,) = graph(shape)
    g.outputs = [g.op("PRelu", x, g.const(w(*slope), "slope"))]
    assert check(g, tmp_path) == {"PRELU": 1}


@pytest.mark.parametrize("lo,hi,code", [(0.0, 6.0, "RELU6"), (-1.0, 1.0, "RELU_N1_TO_1"),
                                        (0.0, 1.0, "RELU_0_TO_1"), (0.0, None, "RELU"),
                                        (-2.0, 3.0, "MINIMUM"), (None, 0.5, "MINIMUM")])
def test_clip(tmp_path, lo, hi, code):
    g, (x,) = graph((1, 3, 4, 5))
    mn = g.const(np.array(lo, np.float32), "lo") if lo is not None else None
    mx = g.const(np.array(hi, np.float32), "hi") if hi is not None else None
    g.outputs = [g.op("Clip", x, mn, mx)]
    assert code in check(g, tmp_path, {"x0": inputs_of(g, 5.0)["x0"]})


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis,code", [(1, "SOFTMAX"), (-1, "SUM"), (2, "SUM")])
def test_softmax(tmp_path, op, axis, code):
    """Axis 1 of NCHW is the last NHWC axis -> the builtin; others -> reductions."""
    g, (x,) = graph((1, 3, 4, 5))
    g.outputs = [g.op(op, x, axis=axis)]
    ops = check(g, tmp_path)
    want = code if op == "Softmax" or code == "SUM" else "LOG_SOFTMAX"
    assert want in ops and "TRANSPOSE" not in ops


def test_fused_activations(tmp_path):
    """RELU / RELU6 / RELU_N1_TO_1 fold into conv, FC, arithmetic and pools; TANH does
    not (the float kernels ignore a fused TANH); nothing folds into CONCATENATION."""
    g, (x,) = graph((1, 3, 6, 6))
    c = g.op("Conv", x, g.const(w(4, 3, 3, 3), "w"), kernel_shape=(3, 3), pads=(1, 1, 1, 1))
    a = g.op("Clip", c, g.const(np.float32(0), "lo"), g.const(np.float32(6), "hi"))
    m = g.op("Relu", g.op("Mul", a, g.const(w(4, 1, 1), "s")))
    p = g.op("Relu", g.op("MaxPool", m, kernel_shape=(2, 2), strides=(2, 2)))
    t = g.op("Tanh", g.op("Add", p, g.const(np.float32(0.1), "k")))
    cat = g.op("Relu", g.op("Concat", t, t, axis=1))
    g.outputs = [cat]
    ops = check(g, tmp_path, {"x0": inputs_of(g, 3.0)["x0"]})
    assert ops == {"ADD": 1, "CONCATENATION": 1, "CONV_2D": 1, "MAX_POOL_2D": 1, "MUL": 1,
                   "RELU": 1, "TANH": 1}


# ------------------------------------------------------------------ arithmetic
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"])
@pytest.mark.parametrize("other", ["channel", "scalar", "last", "tensor", "lower_rank"])
def test_binary(tmp_path, op, other):
    shapes = {"tensor": [(1, 3, 4, 5)], "lower_rank": [(4, 5)]}.get(other, [])
    g, xs = graph((1, 3, 4, 5), *shapes)
    consts = {"channel": (3, 1, 1), "scalar": (), "last": (5,)}
    b = g.const(np.abs(w(*consts[other])) + 0.5, "b") if other in consts else xs[1]
    g.outputs = [g.op(op, b if op == "Sub" and other == "channel" else xs[0],
                      xs[0] if op == "Sub" and other == "channel" else b)]
    feeds = {k: np.abs(v) + 0.5 for k, v in inputs_of(g).items()} if op in ("Div", "Pow") \
        else None
    assert "TRANSPOSE" not in check(g, tmp_path, feeds)


@pytest.mark.parametrize("exp,code", [(2.0, "MUL"), (0.5, "SQRT"), (3.0, "POW")])
def test_pow_scalar(tmp_path, exp, code):
    g, (x,) = graph((1, 3, 4, 5))
    g.outputs = [g.op("Pow", x, g.const(np.float32(exp), "e"))]
    assert code in check(g, tmp_path, {"x0": np.abs(inputs_of(g)["x0"]) + 0.1})


def test_where_equal_cast(tmp_path):
    g, (x, y) = graph((1, 3, 4, 5), (1, 3, 4, 5))
    fx = g.op("Floor", x)
    eq = g.op("Equal", fx, g.op("Floor", y))
    sel = g.op("Where", eq, x, g.const(np.float32(-1.0), "m1"))
    i = g.op("Cast", fx, to=6)
    g.outputs = [sel, g.op("Cast", g.op("Add", i, g.const(np.int32(2), "two")), to=1)]
    feeds = {"x0": np.round(inputs_of(g)["x0"]), "x1": np.round(inputs_of(g)["x0"]) + (
        np.arange(60).reshape(1, 3, 4, 5) % 2).astype(np.float32)}
    assert "SELECT_V2" in check(g, tmp_path, feeds)


# ------------------------------------------------------------------ shape ops
def test_concat_split_slice(tmp_path):
    g, (x, y) = graph((1, 3, 6, 6), (1, 5, 6, 6))
    cat = g.op("Concat", x, y, g.const(w(1, 2, 6, 6), "k"), axis=1)
    a = g.add("Split", [cat, g.const(np.array([4, 6], np.int64), "sz")], dict(axis=1),
              n_out=2).outputs
    b = g.add("Split", [cat], dict(axis=3, num_outputs=2), n_out=2).outputs
    s = g.op("Slice", cat, *[g.const(np.array(v, np.int64), n) for v, n in
                             (([1, 5], "st"), ([9, 0], "en"), ([1, 2], "ax"), ([2, -2], "sp"))])
    r = g.op("Slice", x, *[g.const(np.array(v, np.int64), n) for v, n in
                           (([-1], "st2"), ([-100], "en2"), ([3], "ax2"), ([-1], "sp2"))])
    g.outputs = [a[0], a[1], b[1], s, r]
    ops = check(g, tmp_path)
    assert "TRANSPOSE" not in ops and ops.get("SPLIT") == 1 and ops.get("SPLIT_V") == 1


def test_gather(tmp_path):
    g, (x,) = graph((1, 5, 4, 3))
    a = g.op("Gather", x, g.const(np.array([4, 0, -1], np.int64), "i"), axis=1)
    b = g.op("Gather", x, g.const(np.array([[1, 2], [0, -1]], np.int64), "j"), axis=2)
    c = g.op("Gather", x, g.const(np.array(2, np.int64), "k"), axis=3)
    g.outputs = [a, b, c]
    check(g, tmp_path)


def _shuffle(g, x, groups):
    n, c, h, wd = x.shape
    r = g.op("Reshape", x, g.const(np.array([n, groups, c // groups, h, wd], np.int64), "s1"))
    t = g.op("Transpose", r, perm=(0, 2, 1, 3, 4))
    return g.op("Reshape", t, g.const(np.array([n, c, h, wd], np.int64), "s2"))


@pytest.mark.parametrize("groups", [2, 3])
def test_channel_shuffle_is_transposes_not_gather(tmp_path, groups):
    """Reshape [N,C,H,W] -> [N,g,C/g,H,W], swap, reshape back (ShuffleNet) = a channel
    permutation. XNNPACK does not delegate GATHER (2x slower on shufflenet_v2), so it is
    written as RESHAPE to [N*H*W, C], TRANSPOSE, block swap [g, C/g] (TRANSPOSE), TRANSPOSE
    back (exporters/tflite/shuffle.py); checked on both kernel paths against onnxruntime."""
    g, (x,) = graph((1, 6, 4, 5))
    g.outputs = [g.op("Relu", _shuffle(g, x, groups))]
    assert check(g, tmp_path) == {"RELU": 1, "RESHAPE": 4, "TRANSPOSE": 3}


def test_channel_shuffle_nchw_is_one_block_swap(tmp_path):
    """With ``--io-layout nchw`` the channel axis is physical axis 1 with nothing before it
    (outer = 1): one TRANSPOSE swapping the [g, C/g] row blocks, no GATHER."""
    g, (x,) = graph((1, 6, 4, 5))
    g.outputs = [g.op("Relu", _shuffle(g, x, 2))]
    ops = check(g, tmp_path, opts=Opts(io_layout="nchw"))
    assert ops == {"RELU": 1, "RESHAPE": 2, "TRANSPOSE": 1}, ops


def test_shuffle_gather_rewrite_keeps_other_gathers(tmp_path):
    """An explicit Gather whose constant indices are a shuffle (g=4 of 8) is rewritten too;
    one that is not a shuffle stays a GATHER."""
    from exporters.tflite.shuffle import shuffle_groups
    assert shuffle_groups(np.arange(8).reshape(4, 2).T.reshape(-1)) == 4
    assert shuffle_groups(np.array([1, 0, 2])) is None
    g, (x,) = graph((2, 8, 3, 3))
    perm = np.arange(8).reshape(4, 2).T.reshape(-1)
    a = g.op("Gather", x, g.const(perm.astype(np.int64), "i"), axis=1)
    b = g.op("Gather", x, g.const(np.array([7, 0, 1, 2, 3, 4, 5, 6], np.int64), "j"), axis=1)
    g.outputs = [g.op("Relu", a), g.op("Relu", b)]
    ops = check(g, tmp_path)
    assert ops.get("GATHER") == 1 and ops.get("TRANSPOSE") == 3, ops


def test_movements(tmp_path):
    """Squeeze / Unsqueeze / Transpose / Flatten / Identity chains between layout-sensitive
    consumers: values right, TRANSPOSE only where no reshape or gather can express it."""
    g, (x, z) = graph((1, 4, 1, 6), (2, 3, 4, 5))
    s = g.op("Squeeze", x, g.const(np.array([2], np.int64), "ax"))  # [1, 4, 6]
    u = g.op("Unsqueeze", s, g.const(np.array([3], np.int64), "ax2"))  # [1, 4, 6, 1]
    c = g.op("Conv", u, g.const(w(3, 4, 1, 1), "w"), kernel_shape=(1, 1))
    t = g.op("Transpose", z, perm=(0, 2, 3, 1))
    m = g.op("MaxPool", g.op("Identity", t), kernel_shape=(2, 2))
    f = g.op("Flatten", g.op("Transpose", z, perm=(1, 0, 3, 2)), axis=2)
    g.outputs = [c, m, g.op("Relu", f)]
    check(g, tmp_path)


def test_shape_folding(tmp_path):
    g, (x,) = graph((2, 3, 4, 5))
    sh = g.op("Shape", x)
    n = g.op("Gather", sh, g.const(np.array([0], np.int64), "i"), axis=0)
    tgt = g.op("Concat", n, g.const(np.array([-1], np.int64), "m1"), axis=0)
    r = g.add("Reshape", [x, tgt], infer=False).outputs[0]
    r.dtype, r.shape = "float32", (2, 60)
    g.outputs = [r]
    assert set(check(g, tmp_path)) <= {"RESHAPE", "TRANSPOSE"}


# ------------------------------------------------------------------ boundary layout
def _small_cnn(c_in=3):
    g, (x,) = graph((1, c_in, 16, 16))
    y = g.op("Conv", x, g.const(w(32, c_in, 3, 3), "w1"), g.const(w(32), "b1"),
             kernel_shape=(3, 3), pads=(1, 1, 1, 1), strides=(2, 2))
    y = g.op("Relu", y)
    y = g.op("Conv", y, g.const(w(32, 1, 3, 3), "w2"), g.const(w(32), "b2"),
             kernel_shape=(3, 3), pads=(1, 1, 1, 1), group=32)
    y = g.op("Conv", y, g.const(w(48, 32, 1, 1, scale=0.2), "w3"), kernel_shape=(1, 1))
    f = g.op("Flatten", g.op("GlobalAveragePool", y))
    g.outputs = [y, g.op("Gemm", f, g.const(w(40, 48), "w4"), g.const(w(40), "b4"), transB=1)]
    return g


def test_io_layout_nchw(tmp_path):
    g = _small_cnn()
    ops_nhwc = check(g, tmp_path / "a")
    ops_nchw = check(g, tmp_path / "b", opts=Opts(io_layout="nchw"))
    assert "TRANSPOSE" not in ops_nhwc and ops_nchw["TRANSPOSE"] == 2
    m = tflite_pkg.Model.GetRootAsModel((tmp_path / "a" / "m.tflite").read_bytes(), 0)
    assert m.Subgraphs(0).Tensors(m.Subgraphs(0).Inputs(0)).ShapeAsNumpy().tolist() == \
        [1, 16, 16, 3]


# ------------------------------------------------------------------ precision
def _tensor_types(path: Path) -> dict:
    m = tflite_pkg.Model.GetRootAsModel(path.read_bytes(), 0)
    sg = m.Subgraphs(0)
    out = {}
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        out[t.Name().decode()] = (t.Type(), t.Quantization())
    return out


def test_fp16_weights(tmp_path):
    g = _small_cnn()
    ops = check(g, tmp_path, atol=FP16_ATOL, opts=Opts(fp16=True))
    types = _tensor_types(tmp_path / "m.tflite")
    assert types["w1/fp16"][0] == 1 and types["w4/fp16"][0] == 1  # FLOAT16
    assert "DEQUANTIZE" not in ops  # weight storage is not counted by describe
    size16 = (tmp_path / "m.tflite").stat().st_size
    tfl.export(g, tmp_path / "fp32", "m", Opts())
    assert size16 < 0.6 * (tmp_path / "fp32" / "m.tflite").stat().st_size


def test_dynamic_int8_weights(tmp_path):
    """Dynamic-range quantization: int8 per-channel weights (scales along the output
    channel), read directly by CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED; checked at
    DYNAMIC_ATOL and cosine > 0.99."""
    g = _small_cnn()
    check(g, tmp_path, atol=DYNAMIC_ATOL, opts=Opts(quantize="dynamic"))
    types = _tensor_types(tmp_path / "m.tflite")
    t, q = types["w3"]
    assert t == 9 and q.ScaleLength() == 48 and q.QuantizedDimension() == 0  # INT8
    feeds = inputs_of(g)
    ref = run_onnxruntime(g, feeds)
    got = runtime.run([tmp_path / "m.tflite"], feeds)
    for r, o in zip(ref, got):
        cos = float(np.dot(r.ravel(), o.ravel()) / np.linalg.norm(r) / np.linalg.norm(o))
        assert cos > 0.99


# ------------------------------------------------------------------ writer
def test_writer_format_and_determinism(tmp_path):
    g = _small_cnn()
    g.outputs.append(g.op("Gelu", g.outputs[1]))
    tfl.export(g, tmp_path / "a", "m", Opts())
    tfl.export(g, tmp_path / "b", "m", Opts())
    data = (tmp_path / "a" / "m.tflite").read_bytes()
    assert data == (tmp_path / "b" / "m.tflite").read_bytes()
    assert data[4:8] == b"TFL3"
    m = tflite_pkg.Model.GetRootAsModel(data, 0)
    assert m.Version() == 3 and m.Buffers(0).DataLength() == 0
    for i in range(1, m.BuffersLength()):
        b = m.Buffers(i)
        if b.DataLength():
            start = b._tab.Vector(b._tab.Offset(4))
            assert start % 16 == 0, (i, start)
    codes = [(m.OperatorCodes(i).DeprecatedBuiltinCode(), m.OperatorCodes(i).BuiltinCode())
             for i in range(m.OperatorCodesLength())]
    assert (127, 150) in codes and all(d == min(c, 127) for d, c in codes)
    sig = m.SignatureDefs(0)
    assert sig.SignatureKey() == b"serving_default"
    assert [sig.Inputs(i).Name() for i in range(sig.InputsLength())] == [b"x0"]
    names = [sig.Outputs(i).Name().decode() for i in range(sig.OutputsLength())]
    assert names == [v.name for v in g.outputs]


def test_no_partial_file_on_failure(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        tfl.export(_small_cnn(), tmp_path, "m", Opts())
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ scan
def test_scan_lists_every_unsupported_node(tmp_path):
    g, (x, k) = graph((1, 3, 8, 8), (4, 3, 3, 3))
    e = g.op("Erf", x)
    c = g.op("Conv", e, k, kernel_shape=(3, 3))  # tensor weights
    r = g.op("Resize", c, None, None, g.const(np.array([1, 4, 12, 12], np.int64), "s"),
             mode="cubic")
    d = g.op("MaxPool", r, kernel_shape=(2, 2), dilations=(2, 2))
    g.outputs = [d]
    issues = tfl.scan(g, Opts())
    assert {(i.op, i.code) for i in issues} == {
        ("Erf", "no-lowering"), ("Conv", "tflite.const"), ("Resize", "tflite.attr"),
        ("MaxPool", "tflite.attr")}
    with pytest.raises(UnsupportedOpsError):
        tfl.export(g, tmp_path / "out", "m", Opts())
    assert not (tmp_path / "out").exists()


def test_scan_dynamic_shape():
    g = Graph("t")
    x = g.add_input("x", "float32", ("N", 3, 4, 4))
    g.outputs = [g.op("Relu", x)]
    codes = {i.code for i in tfl.scan(g, Opts())}
    assert "tflite.dynamic" in codes


def test_output_aliasing_an_input(tmp_path):
    """A graph output that is a graph input (through Identity / Reshape) gets its own tensor
    (a RESHAPE copy, named like the IR output); a second output keeps working."""
    g, (x,) = graph((1, 3, 4, 5))
    a = g.op("Identity", x)
    b = g.op("Reshape", x, g.const(np.array([1, 60], np.int64), "s"))
    g.outputs = [a, g.op("Relu", b)]
    check(g, tmp_path)
    m = tflite_pkg.Model.GetRootAsModel((tmp_path / "m.tflite").read_bytes(), 0)
    sg = m.Subgraphs(0)
    assert sg.Outputs(0) != sg.Inputs(0)
    assert sg.Tensors(sg.Outputs(0)).Name().decode() == a.name


def test_dynamic_int8_depthwise_tconv_matmul(tmp_path):
    """Dynamic quantization of a depthwise filter (hybrid, scales along axis 3), a
    TRANSPOSE_CONV filter and a constant MatMul operand (int8 + DEQUANTIZE)."""
    g, (x,) = graph((1, 128, 6, 6))
    d = g.op("Conv", x, g.const(w(128, 1, 3, 3), "dw"), g.const(w(128), "db"),
             kernel_shape=(3, 3), pads=(1, 1, 1, 1), group=128)
    t = g.op("ConvTranspose", d, g.const(w(128, 8, 2, 2, scale=0.1), "tw"),
             kernel_shape=(2, 2), strides=(2, 2))
    m = g.op("MatMul", t, g.const(w(12, 100), "mw"))
    g.outputs = [m]
    ops = check(g, tmp_path, atol=DYNAMIC_ATOL, opts=Opts(quantize="dynamic"))
    # MatMul contracts the IR's last axis (W), not NHWC's (C): its input is transposed back
    # to NCHW, and its rank-4 NCHW result to the NHWC boundary
    assert ops == {"DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1,
                   "TRANSPOSE": 2}
    types = _tensor_types(tmp_path / "m.tflite")
    assert types["dw"][0] == 9 and types["dw"][1].QuantizedDimension() == 3
    assert types["tw"][0] == 9 and types["mw"][0] == 9


def test_hardsigmoid_after_conv_folds_into_bias(tmp_path):
    """Squeeze-excite gate: Conv -> HardSigmoid: the ``+ 3`` joins the conv bias and the
    RELU6 is fused, leaving CONV_2D + MUL(1/6) + the gating MUL."""
    g, (x,) = graph((1, 8, 5, 5))
    s = g.op("Conv", g.op("GlobalAveragePool", x), g.const(w(8, 8, 1, 1), "w"),
             g.const(w(8), "b"), kernel_shape=(1, 1))
    g.outputs = [g.op("Mul", x, g.op("HardSigmoid", s, alpha=1 / 6, beta=0.5))]
    assert check(g, tmp_path, {"x0": inputs_of(g, 4.0)["x0"]}) == {
        "CONV_2D": 1, "MEAN": 1, "MUL": 2}
