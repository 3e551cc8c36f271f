"""ONNX exporter, per lowering family: small IR graphs built by hand with seeded weights,
exported with ``exporters.onnx.export`` at opsets 13, 17, 18, 20 and 26, checked with
``onnx.checker.check_model(full_check=True)`` and strict shape inference, run in onnxruntime
and compared with the opset-20 identity model of the same graph
(``exporters.onnx.build.run_onnxruntime``) at atol 1e-5 x max(1, |ref|)."""
from __future__ import annotations

import numpy as np
import pytest

import onnx
import onnxruntime  # noqa: F401  (required: the test extra installs it)

from converter.ir import Graph  # noqa: E402
from converter.ops import SCHEMAS  # noqa: E402
from converter.options import ConvertOptions  # noqa: E402
from converter.registry import LOWERINGS, find_lowering  # noqa: E402
from exporters import onnx as ox  # noqa: E402
from exporters.onnx.build import run_onnxruntime  # noqa: E402

OPSETS = [13, 17, 18, 20, 26]


# ------------------------------------------------------------------ helpers
def rnd(*shape, scale=1.0, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def i64(*v):
    return np.array(v, dtype=np.int64)


def feeds_for(graph, positive=False, seed=1):
    rng = np.random.default_rng(seed)
    out = {}
    for v in graph.inputs:
        shape = [d if isinstance(d, int) else 2 for d in v.shape]  # symbolic dims: 2
        a = rng.standard_normal(shape).astype(v.dtype)
        out[v.name] = (np.abs(a) + 0.1).astype(v.dtype) if positive else a
    return out


def emitted_ok(graph, model):
    """Every ONNX node's op is declared in ``emits`` of some lowering of the graph's ops."""
    allowed = {e for n in graph.nodes for e in find_lowering("onnx", n.op).emits} | {"Cast"}
    return {n.op_type for n in model.graph.node} <= allowed


def export_check(graph, tmp_path, opset, positive=False, fp16=False, atol=1e-5):
    """Export at ``opset``, validate with the checker and strict shape inference, run in
    onnxruntime and compare with the opset-20 reference; returns the loaded ModelProto."""
    graph.validate()
    before = graph.dump()
    opts = ConvertOptions(targets=("onnx",), opset=opset, fp16=fp16)
    assert ox.scan(graph, opts) == []
    files = ox.export(graph, tmp_path, f"m{opset}{'h' if fp16 else ''}", opts)
    assert graph.dump() == before, "the exporter modified the IR graph"
    model = onnx.load(str(files[0]))
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                      data_prop=True)
    assert model.opset_import[0].version == opset and emitted_ok(graph, model)
    feeds = feeds_for(graph, positive)
    got = ox.run(files, feeds, opts)
    ref = run_onnxruntime(graph, feeds)
    assert [o.name for o in model.graph.output] == [v.name for v in graph.outputs]
    assert [i.name for i in model.graph.input] == [v.name for v in graph.inputs]
    for g, r, v in zip(got, ref, graph.outputs):
        assert g.shape == r.shape, (v.name, g.shape, r.shape)
        tol = atol * max(1.0, float(np.abs(r).max()) if r.size else 0.0)
        err = float(np.abs(g.astype(np.float64) - r).max()) if r.size else 0.0
        assert err <= tol, f"{v.name} @opset {opset}: max err {err:.3g} > {tol:.3g}"
    return model


def single(build, shape, tmp_path, opset, positive=False, **kw):
    """Graph ``outs = build(g, x)`` on one float input of ``shape``; export and compare."""
    g = Graph("t")
    x = g.add_input("x", "float32", shape)
    y = build(g, x)
    g.outputs = list(y) if isinstance(y, (list, tuple)) else [y]
    return export_check(g, tmp_path, opset, positive=positive, **kw)


def op_types(model):
    return [n.op_type for n in model.graph.node]


# ------------------------------------------------------------------ registry
def test_every_ir_op_has_an_onnx_lowering():
    """Every ONNX-named IR op lowers; the non-ONNX detection ops are scanned as unsupported."""
    from converter.ops_detection import NON_ONNX_OPS

    lowered = {op for target, op in LOWERINGS if target == "onnx"}
    assert set(SCHEMAS) - set(NON_ONNX_OPS) <= lowered
    assert not set(NON_ONNX_OPS) & lowered


# ------------------------------------------------------------------ activations / unary
UNARY = ["Relu", "Sigmoid", "Tanh", "Softplus", "Abs", "Neg", "Floor", "Ceil", "Erf",
         "HardSwish", "Mish", "Identity"]
POSITIVE = ["Log", "Sqrt", "Reciprocal", "Exp"]


@pytest.mark.parametrize("opset", OPSETS)
def test_unary(tmp_path, opset):
    model = single(lambda g, x: [g.op(op, x, name=op.lower()) for op in UNARY],
                   (1, 3, 4, 5), tmp_path, opset)
    ops = op_types(model)
    assert ("HardSwish" in ops) == (opset >= 14)
    assert ("Mish" in ops) == (opset >= 18)
    single(lambda g, x: [g.op(op, x) for op in POSITIVE], (2, 7), tmp_path, opset,
           positive=True)


@pytest.mark.parametrize("opset", OPSETS)
def test_parametric_activations(tmp_path, opset):
    def build(g, x):
        return [g.op("LeakyRelu", x, alpha=0.1), g.op("Elu", x, alpha=0.7), g.op("Selu", x),
                g.op("HardSigmoid", x, alpha=1 / 6, beta=0.5),
                g.op("Clip", x, g.const(np.float32(0.0)), g.const(np.float32(6.0))),
                g.op("Clip", x, g.const(np.float32(-0.5))), g.op("Clip", x, None,
                                                                 g.const(np.float32(0.3))),
                g.op("PRelu", x, g.const(rnd(3, 1, 1, scale=0.2))),
                g.op("Softmax", x, axis=1), g.op("LogSoftmax", x, axis=-1)]
    single(build, (1, 3, 4, 5), tmp_path, opset)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("opset", OPSETS)
def test_gelu(tmp_path, opset, approximate):
    model = single(lambda g, x: g.op("Gelu", x, approximate=approximate),
                   (2, 3, 8), tmp_path, opset)
    ops = op_types(model)
    assert ops == ["Gelu"] if opset >= 20 else "Gelu" not in ops
    if opset < 20:
        assert ops.count("Erf" if approximate == "none" else "Tanh") == 1
        assert len(ops) == (5 if approximate == "none" else 8)
        # helpers are named after the IR node; the last node keeps its name and output
        names = [n.name for n in model.graph.node]
        assert names[-1] == "Gelu" and all(n.startswith("Gelu/") for n in names[:-1])
        assert model.graph.node[-1].output[0] == model.graph.output[0].name


def test_decompositions_share_constants(tmp_path):
    def build(g, x):
        return [g.op("Gelu", x), g.op("Gelu", g.op("Relu", x))]
    model = single(build, (2, 5), tmp_path, 17)
    assert len(model.graph.initializer) == 3  # 1/sqrt2, 1, 0.5 once each


# ------------------------------------------------------------------ conv / gemm / bn
CONV = [  # cin, cout, kernel, strides, pads, dilations, group, bias
    (3, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    (4, 6, (3, 3), (2, 2), (0, 1, 2, 1), (1, 1), 1, False),
    (8, 8, (5, 5), (2, 2), (2, 1, 2, 3), (1, 1), 8, True),
    (8, 12, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 4, True),
]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("cin,cout,k,s,p,d,group,bias", CONV)
def test_conv(tmp_path, opset, cin, cout, k, s, p, d, group, bias):
    def build(g, x):
        w = g.const(rnd(cout, cin // group, *k, scale=0.3), "w")
        ins = [x, w] + ([g.const(rnd(cout, seed=2), "b")] if bias else [])
        return g.op("Conv", *ins, kernel_shape=k, strides=s, pads=p, dilations=d, group=group)
    single(build, (1, cin, 9, 11), tmp_path, opset)


@pytest.mark.parametrize("opset", OPSETS)
def test_conv_transpose_conv1d(tmp_path, opset):
    def build(g, x):
        w = g.const(rnd(4, 3, 3, 2, scale=0.3), "w")
        y = g.op("ConvTranspose", x, w, g.const(rnd(6, seed=2)), kernel_shape=(3, 2),
                 strides=(2, 3), pads=(0, 1, 1, 0), output_padding=(1, 0), group=2)
        r = g.op("Reshape", y, g.const(i64(1, 6, -1)))
        return [y, g.op("Conv", r, g.const(rnd(5, 6, 3, scale=0.3)), kernel_shape=(3,),
                        strides=(2,), pads=(1, 0))]
    single(build, (1, 4, 5, 7), tmp_path, opset)


@pytest.mark.parametrize("opset", OPSETS)
def test_gemm_matmul_batchnorm(tmp_path, opset):
    g = Graph("t")
    x = g.add_input("x", "float32", (2, 12))
    a = g.add_input("a", "float32", (2, 3, 4))
    c = g.add_input("c", "float32", (1, 3, 5, 5))
    bn = [g.const(np.abs(rnd(3, seed=k)) + 0.5) for k in range(4)]
    g.outputs = [g.op("Gemm", x, g.const(rnd(5, 12, seed=3)), g.const(rnd(5, seed=4)),
                      transB=1, alpha=0.5, beta=2.0),
                 g.op("Gemm", x, g.const(rnd(12, 5, seed=3))),
                 g.op("MatMul", a, g.const(rnd(4, 6, seed=5))),
                 g.op("MatMul", a, g.op("Transpose", a, perm=(0, 2, 1))),
                 g.op("BatchNormalization", c, *bn, epsilon=1e-3)]
    export_check(g, tmp_path, opset)


# ------------------------------------------------------------------ pooling
@pytest.mark.parametrize("opset", OPSETS)
def test_pooling(tmp_path, opset):
    def build(g, x):
        return [g.op("MaxPool", x, kernel_shape=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1)),
                g.op("MaxPool", x, kernel_shape=(2, 2), strides=(2, 2), ceil_mode=1),
                g.op("MaxPool", x, kernel_shape=(2, 2), dilations=(2, 2)),
                g.op("AveragePool", x, kernel_shape=(3, 3), strides=(2, 2),
                     pads=(1, 1, 1, 1), count_include_pad=1),
                g.op("AveragePool", x, kernel_shape=(2, 2), strides=(2, 2), ceil_mode=1,
                     dilations=(1, 1)),
                g.op("GlobalAveragePool", x), g.op("GlobalMaxPool", x)]
    single(build, (1, 3, 9, 7), tmp_path, opset)


@pytest.mark.parametrize("opset", [13, 18, 19, 26])
def test_average_pool_dilations_need_opset_19(tmp_path, opset):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 2, 9, 9))
    g.outputs = [g.op("AveragePool", x, kernel_shape=(2, 2), dilations=(2, 2))]
    issues = ox.scan(g, ConvertOptions(opset=opset))
    if opset >= 19:
        assert issues == []
        export_check(g, tmp_path, opset)
    else:
        (issue,) = issues
        assert issue.code == "onnx.attr" and issue.op == "AveragePool"
        assert "19" in issue.hint


# ------------------------------------------------------------------ elementwise
@pytest.mark.parametrize("opset", OPSETS)
def test_binary_broadcast(tmp_path, opset):
    g = Graph("t")
    a = g.add_input("a", "float32", (1, 3, 4, 5))
    b = g.add_input("b", "float32", (3, 1, 5))
    c = g.const(rnd(3, 1, 1, seed=7), "c")
    pos = g.op("Add", g.op("Abs", a), g.const(np.float32(0.5)))
    g.outputs = [g.op(op, a, b) for op in ("Add", "Sub", "Mul", "Max", "Min")]
    g.outputs += [g.op("Div", a, g.op("Add", g.op("Abs", b), g.const(np.float32(1.0)))),
                  g.op("Mul", a, c), g.op("Sub", c, a), g.op("Pow", pos, c),
                  g.op("Where", g.op("Equal", g.op("Floor", a), g.op("Floor", b)), a, b)]
    export_check(g, tmp_path, opset)


# ------------------------------------------------------------------ shape ops
@pytest.mark.parametrize("opset", OPSETS)
def test_shape_ops(tmp_path, opset):
    def build(g, x):
        return [g.op("Reshape", x, g.const(i64(0, 4, -1))),
                g.op("Flatten", x, axis=2),
                g.op("Transpose", x, perm=(0, 2, 3, 1)),
                g.op("Concat", x, g.op("Relu", x), axis=1),
                g.op("Slice", x, g.const(i64(1, -1)), g.const(i64(4, -6)),
                     g.const(i64(2, 3)), g.const(i64(2, -1))),
                g.op("Unsqueeze", g.op("Squeeze", x, g.const(i64(0))), g.const(i64(0, -1))),
                g.op("Squeeze", g.op("Reshape", x, g.const(i64(1, 4, 5, 6, 1)))),
                g.op("Gather", x, g.const(i64(2, 0)), axis=1),
                g.op("Gather", x, g.const(np.array(1, np.int64)), axis=3),
                g.op("Cast", g.op("Shape", x), to=1)]
    single(build, (1, 4, 5, 6), tmp_path, opset)


@pytest.mark.parametrize("opset", OPSETS)
def test_split(tmp_path, opset):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 7, 6))
    even = g.add("Split", [x], {"axis": 2, "num_outputs": 3}, n_out=3).outputs
    uneven = g.add("Split", [x], {"axis": 1, "num_outputs": 3}, n_out=3).outputs
    sized = g.add("Split", [x, g.const(i64(2, 5))], {"axis": -2}, n_out=2).outputs
    g.outputs = [*even, *uneven, *sized]
    model = export_check(g, tmp_path, opset)
    splits = [n for n in model.graph.node if n.op_type == "Split"]
    has_num = ["num_outputs" in {a.name for a in n.attribute} for n in splits]
    assert has_num == ([True, True, False] if opset >= 18 else [False] * 3)
    if opset < 18:  # the uneven split is written with explicit sizes
        assert [len(n.input) for n in splits] == [1, 2, 2]


@pytest.mark.parametrize("opset", OPSETS)
def test_reduce(tmp_path, opset):
    def build(g, x):
        outs = []
        for op in ("ReduceMean", "ReduceMax", "ReduceSum"):
            outs += [g.op(op, x, g.const(i64(2, 3)), keepdims=1),
                     g.op(op, x, g.const(i64(-1)), keepdims=0),
                     g.op(op, x, keepdims=0),
                     g.op(op, x, g.const(np.zeros(0, np.int64)), noop_with_empty_axes=1)]
        return outs
    model = single(build, (1, 3, 4, 5), tmp_path, opset)
    means = [n for n in model.graph.node if n.op_type == "ReduceMean"]
    assert all(len(n.input) == 1 for n in means) == (opset < 18)
    assert op_types(model).count("Identity") == (1 if opset < 18 else 0) * 2


def test_dynamic_reduce_axes_need_opset_18():
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4))
    axes = g.add_input("axes", "int64", (1,))
    y = g.add("ReduceMean", [x, axes], {"keepdims": 1}, infer=False).outputs[0]
    y.dtype, y.shape = "float32", (None, None, None)
    g.outputs = [y]
    (issue,) = ox.scan(g, ConvertOptions(opset=17))
    assert (issue.code, issue.hint) == ("onnx.operand", "use --opset 18")
    assert ox.scan(g, ConvertOptions(opset=18)) == []


RESIZE = [  # mode, coordinate_transformation_mode, nearest_mode, scales, sizes
    ("nearest", "asymmetric", "floor", (1, 1, 2, 2), None),
    ("nearest", "asymmetric", "floor", None, (1, 2, 10, 7)),
    ("linear", "half_pixel", "round_prefer_floor", (1, 1, 2, 1.5), None),
    ("linear", "align_corners", "round_prefer_floor", None, (1, 2, 9, 9)),
    ("cubic", "half_pixel", "round_prefer_floor", (1, 1, 2, 2), None),
]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("mode,ctm,nearest,scales,sizes", RESIZE)
def test_resize(tmp_path, opset, mode, ctm, nearest, scales, sizes):
    def build(g, x):
        sc = g.const(np.array(scales, np.float32)) if scales else None
        sz = g.const(np.array(sizes, np.int64)) if sizes else None
        return g.op("Resize", x, None, sc, sz, mode=mode, coordinate_transformation_mode=ctm,
                    nearest_mode=nearest)
    single(build, (1, 2, 6, 5), tmp_path, opset)


def _pad_axes(g, x):
    """Pad with an ``axes`` input (opset 18 form; IR inference takes full-rank pads only,
    so the output type is set by hand): pads W by (1, 3) and H by (2, 0)."""
    node = g.add("Pad", [x, g.const(i64(1, 2, 3, 0)), None, g.const(i64(-1, 2))], infer=False)
    y = node.outputs[0]
    y.dtype, y.shape = "float32", (1, 2, 7, 10)
    return y


@pytest.mark.parametrize("opset", OPSETS)
def test_pad(tmp_path, opset):
    def build(g, x):
        return [g.op("Pad", x, g.const(i64(0, 0, 1, 2, 0, 0, 2, 1)), g.const(np.float32(0.5))),
                g.op("Pad", x, g.const(i64(0, 0, 2, 1, 0, 0, 1, 2)), mode="reflect"),
                g.op("Pad", x, g.const(i64(0, 1, 1, 0, 2, 0, 0, 1)), mode="edge"),
                _pad_axes(g, x)]
    model = single(build, (1, 2, 5, 6), tmp_path, opset)
    pads = [n for n in model.graph.node if n.op_type == "Pad"]
    assert len(pads[-1].input) == (4 if opset >= 18 else 2)


def test_pad_wrap_needs_opset_19():
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 2, 5, 6))
    g.outputs = [g.op("Pad", x, g.const(i64(0, 0, 1, 1, 0, 0, 1, 1)), mode="wrap")]
    assert ox.scan(g, ConvertOptions(opset=19)) == []
    (issue,) = ox.scan(g, ConvertOptions(opset=18))
    assert issue.op == "Pad" and issue.hint == "use --opset 19"


@pytest.mark.parametrize("opset", [13, 17])
def test_dropout_and_reshape_allowzero(tmp_path, opset):
    def build(g, x):
        return [g.op("Dropout", x), g.op("Reshape", x, g.const(i64(2, -1)), allowzero=1)]
    single(build, (2, 3, 4), tmp_path, opset)
    g = Graph("t")
    x = g.add_input("x", "float32", (2, 0, 4))
    g.outputs = [g.op("Reshape", x, g.const(i64(0, 4)), allowzero=1)]
    assert [i.code for i in ox.scan(g, ConvertOptions(opset=13))] == ["onnx.attr"]
    assert ox.scan(g, ConvertOptions(opset=14)) == []


# ------------------------------------------------------------------ graph-level
@pytest.mark.parametrize("opset", [12, 27])
def test_opset_outside_range_is_reported(opset):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3))
    g.outputs = [g.op("Softmax", x)]
    issues = ox.scan(g, ConvertOptions(opset=opset))
    assert "onnx.opset" in {i.code for i in issues}
    with pytest.raises(ox.UnsupportedOpsError):
        ox.export(g, "/nonexistent/never", "m", ConvertOptions(opset=opset))


def test_boundary_outputs_and_symbolic_batch(tmp_path):
    """A graph input, a constant and the same value twice as outputs; a symbolic batch dim;
    value_info types every intermediate tensor."""
    g = Graph("t")
    x = g.add_input("x", "float32", ("N", 3, 4))
    r = g.op("Relu", x)
    s = g.op("Sigmoid", r)
    g.outputs = [s, x, g.const(rnd(2, 2), "table"), s]
    model = export_check(g, tmp_path, 17)
    assert {v.name for v in model.graph.value_info} == {r.name}
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    got = ox.run([tmp_path / "m17.onnx"], {"x": rnd(5, 3, 4)})
    assert got[0].shape == (5, 3, 4)
