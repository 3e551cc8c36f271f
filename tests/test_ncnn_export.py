"""ncnn exporter, per lowering family: tiny IR graphs built by hand with seeded weights, exported
with ``exporters.ncnn.export``, run in the ncnn Python binding and compared with onnxruntime on
the same IR graph (``exporters.onnx.build.run_onnxruntime``), parameterized over attributes."""
from __future__ import annotations

import numpy as np
import pytest

import ncnn  # noqa: F401  (required: the test extra installs it)
import onnxruntime  # noqa: F401  (required: the test extra installs it)

from converter.ir import Graph  # noqa: E402
from converter.options import ConvertOptions  # noqa: E402
from exporters import ncnn as nx  # noqa: E402
from exporters.onnx.build import run_onnxruntime  # noqa: E402


# ------------------------------------------------------------------ helpers
def rnd(*shape, scale=1.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def inputs_for(graph, positive=False, seed=1):
    rng = np.random.default_rng(seed)
    out = {}
    for v in graph.inputs:
        a = rng.standard_normal(v.shape).astype(np.float32)
        out[v.name] = (np.abs(a) + 0.1).astype(np.float32) if positive else a
    return out


def layer_lines(param_path):
    """``[(type, name, inputs, outputs, params)]`` of a written .param."""
    lines = open(param_path).read().splitlines()[2:]
    out = []
    for line in lines:
        tok = line.split()
        nin, nout = int(tok[2]), int(tok[3])
        params = dict(t.split("=", 1) for t in tok[4 + nin + nout:])
        out.append((tok[0], tok[1], tok[4:4 + nin], tok[4 + nin:4 + nin + nout], params))
    return out


def layer_types(param_path):
    return [t for t, *_ in layer_lines(param_path)]


def export_and_compare(graph, tmp_path, positive=False, fp16=False, atol=1e-4, stem="m"):
    """Export, run in ncnn (no graph given, as the exporter contract runs it) and compare
    every output with onnxruntime; returns the written files."""
    graph.validate()
    assert nx.scan(graph, None) == []
    opts = ConvertOptions(fp16=fp16)
    files = nx.export(graph, tmp_path, stem, opts)
    feeds = inputs_for(graph, positive)
    # a rank-1 [1] output reads back as (1, 1) without the graph (ncnn blob (1,))
    rank1 = any(len(v.shape) == 1 for v in graph.outputs)
    got = nx.run(files, feeds, opts, graph=graph if rank1 else None)
    ref = run_onnxruntime(graph, feeds)
    assert len(got) == len(ref)
    for g, r, v in zip(got, ref, graph.outputs):
        assert g.shape == tuple(v.shape) == r.shape, (v.name, g.shape, r.shape)
        tol = atol * max(1.0, float(np.abs(r).max()))
        err = float(np.abs(g - r).max())
        assert err <= tol, f"{v.name}: max err {err:.3g} > {tol:.3g}"
    return files


def single(op_builder, shape, tmp_path, positive=False, **kw):
    """Graph ``y = op_builder(g, x)`` on one input of ``shape``; export and compare."""
    g = Graph("t")
    x = g.add_input("x", "float32", shape)
    y = op_builder(g, x)
    g.outputs = list(y) if isinstance(y, (list, tuple)) else [y]
    return export_and_compare(g, tmp_path, positive=positive, **kw)


def i64(*v):
    return np.array(v, dtype=np.int64)


def f32(*v):
    return np.array(v, dtype=np.float32)


# ------------------------------------------------------------------ convolution
CONV2D = [  # cin, cout, kernel, strides, pads, dilations, group, bias
    (3, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    (4, 6, (3, 3), (2, 2), (0, 1, 2, 1), (1, 1), 1, False),
    (8, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8, True),
    (8, 8, (5, 5), (2, 2), (2, 1, 2, 3), (1, 1), 8, False),
    (8, 12, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 4, True),
    (4, 6, (1, 3), (2, 1), (0, 1, 0, 1), (1, 2), 1, True),
    (6, 4, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2, True),
]


@pytest.mark.parametrize("cin,cout,k,s,p,d,group,bias", CONV2D)
def test_conv2d(tmp_path, cin, cout, k, s, p, d, group, bias):
    def build(g, x):
        w = g.const(rnd(cout, cin // group, *k, scale=0.3), "w")
        b = g.const(rnd(cout, seed=2), "b") if bias else None
        ins = [x, w] + ([b] if bias else [])
        return g.op("Conv", *ins, kernel_shape=k, strides=s, pads=p, dilations=d, group=group)
    files = single(build, (1, cin, 9, 11), tmp_path)
    want = "Convolution" if group == 1 else "ConvolutionDepthWise"
    assert want in layer_types(files[0])


CONV1D = [
    (4, 8, 3, 1, (1, 1), 1, 1, True),
    (8, 8, 3, 2, (1, 0), 1, 8, True),
    (8, 6, 5, 1, (2, 3), 2, 2, False),
]


@pytest.mark.parametrize("cin,cout,k,s,p,d,group,bias", CONV1D)
def test_conv1d(tmp_path, cin, cout, k, s, p, d, group, bias):
    def build(g, x):
        w = g.const(rnd(cout, cin // group, k, scale=0.3), "w")
        ins = [x, w] + ([g.const(rnd(cout, seed=2), "b")] if bias else [])
        return g.op("Conv", *ins, kernel_shape=(k,), strides=(s,), pads=p, dilations=(d,),
                    group=group)
    files = single(build, (1, cin, 13), tmp_path)
    want = "Convolution1D" if group == 1 else "ConvolutionDepthWise1D"
    assert want in layer_types(files[0])


DECONV = [  # cin, cout, kernel, strides, pads, output_padding, dilations, group
    (4, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), 1),
    (6, 6, (4, 4), (2, 2), (1, 1, 1, 1), (0, 0), (1, 1), 6),
    (4, 8, (3, 2), (2, 3), (0, 1, 1, 0), (1, 0), (1, 1), 2),
    (4, 4, (3, 3), (1, 1), (0, 0, 0, 0), (0, 0), (2, 2), 1),
]


@pytest.mark.parametrize("cin,cout,k,s,p,op_,d,group", DECONV)
def test_conv_transpose2d(tmp_path, cin, cout, k, s, p, op_, d, group):
    def build(g, x):
        w = g.const(rnd(cin, cout // group, *k, scale=0.3), "w")
        b = g.const(rnd(cout, seed=2), "b")
        return g.op("ConvTranspose", x, w, b, kernel_shape=k, strides=s, pads=p,
                    output_padding=op_, dilations=d, group=group)
    files = single(build, (1, cin, 5, 7), tmp_path)
    want = "Deconvolution" if group == 1 else "DeconvolutionDepthWise"
    assert want in layer_types(files[0])


@pytest.mark.parametrize("group", [1, 4])
def test_conv_transpose1d(tmp_path, group):
    def build(g, x):
        w = g.const(rnd(8, 8 // group, 3, scale=0.3), "w")
        return g.op("ConvTranspose", x, w, kernel_shape=(3,), strides=(2,), pads=(1, 0),
                    output_padding=(1,), group=group)
    files = single(build, (1, 8, 6), tmp_path)
    assert ("Deconvolution1D" if group == 1 else "DeconvolutionDepthWise1D") in \
        layer_types(files[0])


# ------------------------------------------------------------------ gemm / matmul / bn
@pytest.mark.parametrize("trans_b,alpha,beta,c_shape", [
    (0, 1.0, 1.0, (5,)), (1, 0.5, 2.0, (1, 5)), (1, 1.0, 1.0, None), (0, 1.0, 0.5, (1,))])
def test_gemm(tmp_path, trans_b, alpha, beta, c_shape):
    def build(g, x):
        b = g.const(rnd(5, 12, seed=3) if trans_b else rnd(12, 5, seed=3), "B")
        c = [g.const(rnd(*c_shape, seed=4), "C")] if c_shape else []
        return g.op("Gemm", x, b, *c, transB=trans_b, alpha=alpha, beta=beta)
    files = single(build, (1, 12), tmp_path)
    assert layer_types(files[0]) == ["Input", "InnerProduct"]


def test_flatten_gemm_after_conv(tmp_path):
    def build(g, x):
        c = g.op("Conv", x, g.const(rnd(4, 3, 3, 3, scale=0.3)), pads=(1, 1, 1, 1))
        f = g.op("Flatten", g.op("Relu", c), axis=1)
        return g.op("Gemm", f, g.const(rnd(10, 4 * 6 * 5, scale=0.1)), g.const(rnd(10)),
                    transB=1)
    files = single(build, (1, 3, 6, 5), tmp_path)
    assert layer_types(files[0]) == ["Input", "Convolution", "Flatten", "InnerProduct"]


@pytest.mark.parametrize("a_shape,b_shape,b_const", [
    ((1, 12), (12, 5), True),
    ((1, 7, 12), (12, 5), True),
    ((1, 2, 3, 4), (4, 5), True),
    ((1, 2, 3, 4), (1, 2, 4, 5), False),
    ((1, 3, 4), (1, 4, 6), False),
    ((1, 2, 3, 4), (1, 1, 4, 5), False),
    ((1, 3, 4), (1, 2, 4, 5), False),
])
def test_matmul(tmp_path, a_shape, b_shape, b_const):
    g = Graph("t")
    a = g.add_input("a", "float32", a_shape)
    b = g.const(rnd(*b_shape, seed=5)) if b_const else g.add_input("b", "float32", b_shape)
    g.outputs = [g.op("MatMul", a, b)]
    files = export_and_compare(g, tmp_path)
    if b_const and len(a_shape) <= 3:
        assert "InnerProduct" in layer_types(files[0])
    else:
        assert "MatMul" in layer_types(files[0])


@pytest.mark.parametrize("shape", [(1, 4, 5, 6), (1, 4, 7), (1, 4), (1, 4, 2, 3, 3)])
def test_batchnorm(tmp_path, shape):
    def build(g, x):
        c = shape[1]
        var = g.const(np.abs(rnd(c, seed=6)) + 0.5)
        return g.op("BatchNormalization", x, g.const(rnd(c, seed=2)), g.const(rnd(c, seed=3)),
                    g.const(rnd(c, seed=4)), var, epsilon=1e-3)
    files = single(build, shape, tmp_path)
    assert layer_types(files[0]) == ["Input", "BatchNorm"]


# ------------------------------------------------------------------ activations
ACTS = [
    ("Relu", {}, ()), ("LeakyRelu", {"alpha": 0.1}, ()), ("Sigmoid", {}, ()), ("Tanh", {}, ()),
    ("Mish", {}, ()), ("HardSwish", {}, ()), ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, ()),
    ("HardSigmoid", {}, ()), ("Softplus", {}, ()), ("Elu", {"alpha": 0.5}, ()), ("Elu", {}, ()),
    ("Selu", {}, ()), ("Gelu", {}, ()), ("Gelu", {"approximate": "tanh"}, ()),
    ("Clip", {}, (0.0, 6.0)), ("Clip", {}, (-0.5, 0.5)), ("Clip", {}, (0.0, None)),
    ("Clip", {}, (None, 0.3)), ("Exp", {}, ()), ("Neg", {}, ()), ("Abs", {}, ()),
    ("Floor", {}, ()), ("Ceil", {}, ()), ("Erf", {}, ()),
]


def _act(g, x, op, attrs, bounds):
    extra = [None if b is None else g.const(np.array(b, dtype=np.float32)) for b in bounds]
    return g.add(op, [x] + extra, attrs).outputs[0]


@pytest.mark.parametrize("op,attrs,bounds", ACTS, ids=lambda v: str(v))
@pytest.mark.parametrize("shape", [(1, 4, 5, 6), (1, 16)])
def test_activation(tmp_path, op, attrs, bounds, shape):
    single(lambda g, x: _act(g, x, op, attrs, bounds), shape, tmp_path)


@pytest.mark.parametrize("op", ["Log", "Sqrt", "Reciprocal"])
def test_unary_positive(tmp_path, op):
    single(lambda g, x: g.op(op, x), (1, 3, 4, 5), tmp_path, positive=True)


@pytest.mark.parametrize("slope_shape", [(4, 1, 1), (1,), (1, 4, 1, 1)])
def test_prelu(tmp_path, slope_shape):
    files = single(lambda g, x: g.op("PRelu", x, g.const(rnd(*slope_shape, seed=3))),
                   (1, 4, 5, 6), tmp_path)
    assert layer_types(files[0]) == ["Input", "PReLU"]


def test_prelu_after_linear(tmp_path):
    def build(g, x):
        y = g.op("Gemm", x, g.const(rnd(6, 8)), transB=1)
        return g.op("PRelu", y, g.const(rnd(6, seed=3)))
    single(build, (1, 8), tmp_path)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis", [((1, 10), 1), ((1, 10), -1), ((1, 4, 5, 6), 1),
                                        ((1, 4, 5, 6), 2), ((1, 4, 5, 6), -1), ((1, 4, 7), 1)])
def test_softmax(tmp_path, op, shape, axis):
    single(lambda g, x: g.op(op, x, axis=axis), shape, tmp_path)


FUSED = [("Relu", {}, (), "1"), ("LeakyRelu", {"alpha": 0.2}, (), "2"),
         ("Clip", {}, (0.0, 6.0), "3"), ("Clip", {}, (0.0, None), "1"),
         ("Sigmoid", {}, (), "4"), ("Mish", {}, (), "5"), ("HardSwish", {}, (), "6")]


@pytest.mark.parametrize("op,attrs,bounds,code", FUSED, ids=lambda v: str(v))
@pytest.mark.parametrize("producer", ["Conv", "ConvTranspose", "Gemm"])
def test_fused_activation(tmp_path, op, attrs, bounds, code, producer):
    def build(g, x):
        if producer == "Gemm":
            y = g.op("Gemm", g.op("Flatten", x), g.const(rnd(7, 60, scale=0.2)), transB=1)
        else:
            w = rnd(5, 3, 3, 3, scale=0.3) if producer == "Conv" else rnd(3, 5, 3, 3, scale=0.3)
            y = g.op(producer, x, g.const(w), pads=(1, 1, 1, 1))
        return _act(g, y, op, attrs, bounds)
    files = single(build, (1, 3, 4, 5), tmp_path)
    lines = layer_lines(files[0])
    assert len(lines) == 2 + (producer == "Gemm")
    assert lines[-1][4]["9"] == code


# ------------------------------------------------------------------ pooling
POOL2D = [  # kernel, strides, pads, ceil, count_include_pad
    ((2, 2), (2, 2), (0, 0, 0, 0), 0, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), 0, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), 0, 1),
    ((3, 3), (2, 2), (0, 0, 0, 0), 1, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), 1, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), 1, 1),
    ((2, 2), (2, 2), (1, 1, 1, 1), 1, 1),
    ((2, 3), (1, 2), (0, 1, 1, 0), 0, 1),
    ((5, 5), (1, 1), (2, 2, 2, 2), 0, 0),
    ((2, 2), (2, 2), (0, 0, 0, 0), 1, 1),
]


POOL2D_CASES = [("AveragePool",) + c for c in POOL2D] + [("MaxPool",) + c for c in POOL2D
                                                          if not c[-1]]


@pytest.mark.parametrize("op,k,s,p,ceil,cip", POOL2D_CASES)
@pytest.mark.parametrize("hw", [(9, 11), (7, 7), (6, 8)])
def test_pool2d(tmp_path, op, k, s, p, ceil, cip, hw):
    attrs = dict(kernel_shape=k, strides=s, pads=p, ceil_mode=ceil)
    if op == "AveragePool":
        attrs["count_include_pad"] = cip
    single(lambda g, x: g.op(op, x, **attrs), (1, 3) + hw, tmp_path)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("k,s,p,ceil", [(2, 2, (0, 0), 0), (3, 2, (1, 1), 1), (3, 2, (0, 1), 0)])
def test_pool1d(tmp_path, op, k, s, p, ceil):
    single(lambda g, x: g.op(op, x, kernel_shape=(k,), strides=(s,), pads=p, ceil_mode=ceil),
           (1, 3, 11), tmp_path)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(1, 4, 5, 6), (1, 4, 9)])
def test_global_pool(tmp_path, op, shape):
    files = single(lambda g, x: g.op(op, x), shape, tmp_path)
    assert layer_types(files[0])[:2] == ["Input", "Pooling1D" if len(shape) == 3 else "Pooling"]


def test_squeeze_excite_block(tmp_path):
    """SE block: global pool -> 1x1 conv -> relu -> 1x1 conv -> hardsigmoid -> mul."""
    def build(g, x):
        s = g.op("GlobalAveragePool", x)
        s = g.op("Relu", g.op("Conv", s, g.const(rnd(4, 8, 1, 1, scale=0.3)), g.const(rnd(4))))
        s = g.op("Conv", s, g.const(rnd(8, 4, 1, 1, scale=0.3)), g.const(rnd(8, seed=2)))
        s = g.op("HardSigmoid", s, alpha=1 / 6, beta=0.5)
        return g.op("Mul", x, s)
    files = single(build, (1, 8, 5, 6), tmp_path)
    assert layer_types(files[0]) == ["Input", "Split", "Pooling", "InnerProduct",
                                     "InnerProduct", "HardSigmoid", "BinaryOp"]


@pytest.mark.parametrize("keep", [0, 1])
def test_global_pool_outputs_and_consumers(tmp_path, keep):
    """Compact pooled blobs as graph outputs, into concat, into a 3x3-less elementwise op."""
    def build(g, x):
        p = g.op("ReduceMean", x, g.const(i64(2, 3)), keepdims=keep)
        q = g.op("GlobalMaxPool", x)
        q2 = g.op("Sigmoid", q)
        cat = g.op("Concat", g.op("GlobalAveragePool", x), q2, axis=1)
        return [p, q2, cat, g.op("Add", x, q)]
    single(build, (1, 4, 5, 6), tmp_path)


# ------------------------------------------------------------------ binary ops
BIN_SHAPES = [  # a, b, b constant
    ((1, 4, 5, 6), (1, 4, 5, 6), False),
    ((1, 4, 5, 6), (1, 4, 1, 1), False),
    ((1, 4, 5, 6), (1, 1, 5, 6), False),
    ((1, 4, 5, 6), (1, 1, 1, 6), False),
    ((1, 4, 1, 6), (1, 1, 5, 1), False),
    ((1, 1, 5, 6), (1, 4, 5, 6), False),
    ((1, 4, 5, 6), (6,), True),
    ((1, 4, 5, 6), (4, 1, 1), True),
    ((1, 4, 5, 6), (5, 6), True),
    ((1, 4, 5, 6), (1, 4, 5, 6), True),
    ((1, 4, 5, 6), (), True),
    ((1, 4, 7), (1, 4, 1), False),
    ((1, 4, 7), (7,), True),
    ((1, 8), (8,), True),
    ((1, 8), (1, 8), False),
    ((1, 2, 3, 4, 5), (1, 2, 1, 4, 1), False),
    ((1, 2, 3, 4, 5), (3, 1, 5), True),
    ((1, 16, 1, 6), (1, 1, 5, 1), False),  # channel counts that ncnn packs (elempack 4/8/16)
    ((1, 1, 5, 6), (1, 32, 5, 6), False),
    ((1, 16, 5, 6), (1, 16, 1, 6), False),
    ((1, 16, 5, 6), (16, 1, 1), True),
    ((1, 16, 5), (1, 1, 5), False),
    ((1, 16), (1, 1), False),
    ((1, 16), (1, 1, 1, 1), True),  # a scalar that raises the rank
]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"])
@pytest.mark.parametrize("a_shape,b_shape,b_const", BIN_SHAPES)
@pytest.mark.parametrize("swap", [False, True])
def test_binary(tmp_path, op, a_shape, b_shape, b_const, swap):
    g = Graph("t")
    a = g.add_input("a", "float32", a_shape)
    if b_const:
        bv = np.abs(rnd(*b_shape, seed=7)) + 0.5 if b_shape else np.array(1.5, np.float32)
        b = g.const(bv.astype(np.float32))
    else:
        b = g.add_input("b", "float32", b_shape)
    g.outputs = [g.op(op, *((b, a) if swap else (a, b)))]
    export_and_compare(g, tmp_path, positive=True)


def test_swish_fusion(tmp_path):
    def build(g, x):
        c = g.op("Conv", x, g.const(rnd(4, 3, 3, 3, scale=0.3)), pads=(1, 1, 1, 1))
        return g.op("Mul", g.op("Sigmoid", c), c)
    files = single(build, (1, 3, 6, 6), tmp_path)
    assert layer_types(files[0]) == ["Input", "Convolution", "Swish"]


def test_hardswish_pattern(tmp_path):
    def build(g, x):
        c = g.op("Conv", x, g.const(rnd(4, 3, 3, 3, scale=0.3)), pads=(1, 1, 1, 1))
        return g.op("Mul", c, g.op("HardSigmoid", c, alpha=1 / 6, beta=0.5))
    files = single(build, (1, 3, 6, 6), tmp_path)
    lines = layer_lines(files[0])
    assert [t for t, *_ in lines] == ["Input", "Convolution"] and lines[1][4]["9"] == "6"
