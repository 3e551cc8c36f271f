"""sink_transposes / transpose_to_reshape: NHWC regions of TensorFlow-style graphs lose every
Transpose; numerics (onnxruntime, seeded inputs, 1e-5 x output scale) are unchanged.

The graphs are built the way the TF frontend emits them: every rank-4 graph input is an NCHW
IR input followed by Transpose[0,2,3,1]; every layout-sensitive op is wrapped as
Transpose[0,3,1,2] -> op -> Transpose[0,2,3,1]; everything else is in NHWC terms; a rank-4
output gets a final Transpose[0,3,1,2].
"""
from __future__ import annotations

import numpy as np
import pytest

from converter.ir import Graph
from converter.rewrite import run_rules
from optimizers import optimize
from optimizers.sink_transposes import RULES as SINK
from optimizers.transposes import RULES as COMPOSE
from tests.test_opt_util import fconst, ops, rewrite

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


class TF:
    """Builder of TF-frontend-shaped IR graphs (seeded weights)."""

    def __init__(self, seed: int = 0):
        self.g = Graph("tf")
        self.g.source_layout = "nhwc"
        self.rng = np.random.default_rng(seed)

    def input(self, name, n, c, h, w):
        x = self.g.add_input(name, "float32", (n, c, h, w))
        return self.g.op("Transpose", x, perm=TO_NHWC)

    def c(self, *shape, lo=-1.0, hi=1.0):
        return fconst(self.g, self.rng.uniform(lo, hi, shape))

    def wrap(self, op, x, *inputs, **attrs):
        y = self.g.op(op, self.g.op("Transpose", x, perm=TO_NCHW), *inputs, **attrs)
        return self.g.op("Transpose", y, perm=TO_NHWC)

    def conv(self, x, cout, k=1, stride=1, group=1, bias=True):
        cin = x.shape[3]
        w = self.c(cout, cin // group, k, k, lo=-0.5, hi=0.5)
        y = self.wrap("Conv", x, w, pads=(k // 2,) * 4, strides=(stride, stride), group=group)
        return self.g.op("Add", y, self.c(cout)) if bias else y  # BiasAdd: [C] const

    def bn(self, x):  # Keras 3 frozen BN: Mul / Add by [C] constants
        ch = x.shape[3]
        return self.g.op("Add", self.g.op("Mul", x, self.c(ch, lo=0.5, hi=1.5)), self.c(ch))

    def relu6(self, x):
        return self.g.op("Clip", x, fconst(self.g, 0.0), fconst(self.g, 6.0))

    def hswish(self, x):  # x * relu6(x + 3) / 6
        r6 = self.relu6(self.g.op("Add", x, fconst(self.g, 3.0)))
        return self.g.op("Div", self.g.op("Mul", x, r6), fconst(self.g, 6.0))

    def se(self, x, keepdims=True):
        ch = x.shape[3]
        axes = self.g.const(np.array([1, 2], np.int64))
        s = self.g.op("ReduceMean", x, axes, keepdims=int(keepdims))
        if not keepdims:  # Keras: GlobalAveragePooling2D -> Reshape((1, 1, C))
            s = self.g.op("Reshape", s, self.g.const(np.array([-1, 1, 1, ch], np.int64)))
        s = self.g.op("Relu", self.conv(s, max(ch // 4, 1)))
        s = self.g.op("Sigmoid", self.conv(s, ch))
        return self.g.op("Mul", x, s)

    def head(self, x, classes=5, flatten=False):
        if flatten:
            y = self.g.op("Reshape", x, self.g.const(np.array([1, -1], np.int64)))
        else:
            y = self.g.op("ReduceMean", x, self.g.const(np.array([1, 2], np.int64)), keepdims=0)
        y = self.g.op("MatMul", y, self.c(y.shape[1], classes))
        return self.g.op("Softmax", self.g.op("Add", y, self.c(classes)), axis=-1)

    def to_out(self, x, name="out"):
        return self.g.op("Transpose", x, perm=TO_NCHW, name=name)

    def done(self, *outs):
        self.g.outputs = list(outs)
        return self.g


def n_transposes(g):
    return ops(g).count("Transpose")


def _mbv2(t: TF, x):
    y = t.relu6(t.bn(t.conv(t.relu6(t.bn(t.conv(x, 12))), 12, k=3, group=12)))
    return t.g.op("Add", x, t.bn(t.conv(y, x.shape[3], bias=False)))


def mobilenet_v2_like():
    t = TF()
    x = t.input("image", 1, 3, 16, 16)
    x = t.g.op("Sub", t.g.op("Mul", x, fconst(t.g, 1 / 127.5)), fconst(t.g, 1.0))  # Rescaling
    x = t.relu6(t.bn(t.conv(x, 6, k=3, stride=2)))
    x = _mbv2(t, _mbv2(t, x))
    return t.done(t.head(x))


def resnet_like():
    t = TF(1)
    x = t.input("image", 1, 3, 16, 16)
    x = t.g.op("Pad", x, t.g.const(np.array([0, 3, 3, 0, 0, 3, 3, 0], np.int64)))  # ZeroPad
    x = t.g.op("Relu", t.bn(t.conv(x, 8, k=7, stride=2, bias=False)))
    x = t.g.op("Pad", x, t.g.const(np.array([0, 1, 1, 0, 0, 1, 1, 0], np.int64)))
    x = t.wrap("MaxPool", x, kernel_shape=(3, 3), strides=(2, 2))
    y = t.g.op("Relu", t.bn(t.conv(x, 8, k=3)))
    x = t.g.op("Relu", t.g.op("Add", t.bn(t.conv(y, 8, k=3)), x))
    return t.done(t.head(x))


def efficientnet_like(keepdims):
    t = TF(2)
    x = t.input("image", 1, 3, 16, 16)
    x = t.g.op("Div", t.g.op("Sub", x, t.c(3)), t.c(3, lo=0.5, hi=2))  # Normalization
    x = t.bn(t.conv(x, 8, k=3, stride=2))
    x = t.g.op("Mul", x, t.g.op("Sigmoid", x))  # swish
    x = t.se(x, keepdims)
    return t.done(t.head(t.bn(t.conv(x, 8))))


def densenet_like():
    t = TF(3)
    x = t.relu6(t.conv(t.input("image", 1, 3, 8, 8), 4, k=3))
    for _ in range(3):
        y = t.conv(t.g.op("Relu", t.bn(x)), 4, k=3)
        x = t.g.op("Concat", x, y, axis=3)
    x = t.wrap("AveragePool", t.g.op("Relu", t.bn(x)), kernel_shape=(2, 2), strides=(2, 2))
    return t.done(t.head(x))


def mobilenet_v3_like():
    t = TF(4)
    x = t.hswish(t.bn(t.conv(t.input("image", 1, 3, 16, 16), 8, k=3, stride=2)))
    y = t.g.op("Relu", t.bn(t.conv(x, 8, k=3, group=8)))
    x = t.g.op("Add", x, t.bn(t.conv(t.se(y), 8)))
    return t.done(t.head(t.hswish(x)))


@pytest.mark.parametrize("build", [mobilenet_v2_like, resnet_like, lambda: efficientnet_like(True),
                                   lambda: efficientnet_like(False), densenet_like,
                                   mobilenet_v3_like],
                         ids=["mobilenetv2", "resnet", "efficientnet_se_keepdims",
                              "efficientnet_se_reshape", "densenet", "mobilenetv3"])
def test_all_convolutional_models_lose_every_transpose(build):
    g = build()
    before = len(g.nodes)
    assert n_transposes(g) > 0
    log = rewrite(g)
    assert n_transposes(g) == 0, g.dump()
    assert len(g.nodes) < before and log.counts["sink_transposes"] > 0
    again = optimize(g)
    assert again.counts == {}, again.counts  # a fixed point: nothing fires twice


def test_rank4_output_keeps_its_name_and_nchw_result():
    t = TF()
    y = t.g.op("Relu", t.bn(t.conv(t.input("x", 1, 3, 6, 6), 4, k=3)))
    g = t.done(t.to_out(y, "feat"), t.to_out(t.g.op("Sigmoid", y), "gate"))
    rewrite(g)
    assert n_transposes(g) == 0 and [o.name for o in g.outputs] == ["feat", "gate"]
    assert g.outputs[0].shape == (1, 4, 6, 6)


def test_bias_constant_becomes_per_channel_and_folds_into_the_conv():
    t = TF()
    g = t.done(t.to_out(t.g.op("Relu", t.conv(t.input("x", 1, 3, 5, 5), 4, k=3))))
    rewrite(g)
    assert ops(g) == ["Conv", "Relu"] and len(g.nodes[0].inputs) == 3


def test_nhwc_flatten_folds_into_matmul_rows():
    t = TF(5)
    y = t.g.op("Relu", t.conv(t.input("x", 1, 3, 4, 4), 6, k=3))
    g = t.done(t.head(y, flatten=True))
    rewrite(g)
    assert n_transposes(g) == 0 and ops(g) == ["Conv", "Relu", "Reshape", "MatMul", "Add",
                                               "Softmax"]


def test_nhwc_flatten_into_gemm_transb():
    t = TF(6)
    y = t.g.op("Relu", t.conv(t.input("x", 1, 2, 3, 3), 4, k=3))
    f = t.g.op("Flatten", y)
    g = t.done(t.g.op("Gemm", f, t.c(7, 36), t.c(7), transB=1, name="logits"))
    rewrite(g)
    assert n_transposes(g) == 0


def test_concat_split_slice_softmax_axes_follow():
    t = TF(7)
    a = t.input("a", 1, 4, 5, 6)
    b = t.input("b", 1, 2, 5, 6)
    c = t.g.op("Concat", a, b, fconst(t.g, np.ones((1, 5, 6, 1))), axis=-1)
    s0, s1 = t.g.add("Split", [c, t.g.const(np.array([3, 4], np.int64))], {"axis": 3},
                     n_out=2).outputs
    sl = t.g.op("Slice", s1, t.g.const(np.array([1, 0], np.int64)),
                t.g.const(np.array([4, 3], np.int64)), t.g.const(np.array([1, 3], np.int64)))
    sm = t.g.op("Softmax", t.g.op("Mul", s0, fconst(t.g, 2.0)), axis=3)
    g = t.done(t.to_out(sm, "sm"), t.to_out(sl, "sl"))
    rewrite(g)
    assert n_transposes(g) == 0


def test_reduce_without_keepdims_and_squeeze():
    t = TF(8)
    x = t.g.op("Relu", t.input("x", 2, 3, 4, 5))
    m = t.g.op("ReduceMax", x, t.g.const(np.array([2], np.int64)), keepdims=0)  # NHWC W
    s = t.g.op("ReduceSum", x, t.g.const(np.array([1, 2], np.int64)), keepdims=1)
    sq = t.g.op("Squeeze", s, t.g.const(np.array([1, 2], np.int64)), name="sq")
    g = t.done(t.g.op("Identity", m, name="m"), sq)
    rewrite(g, SINK + COMPOSE)
    assert ops(g).count("Transpose") == 1  # the rank-3 [N, H, C] result needs one


def test_transpose_feeding_matmul_is_left_alone():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3, 4))
    t = g.op("Transpose", x, perm=(0, 2, 1))
    y = g.op("MatMul", g.op("Relu", t), fconst(g, np.ones((3, 5))), name="out")
    g.outputs = [y]
    log = rewrite(g)
    assert n_transposes(g) == 1 and "sink_transposes" not in log.counts
    assert any(d[0] == "sink_transposes" for d in log.declines)


def test_channel_shuffle_is_left_alone():
    g = Graph()
    x = g.add_input("x", "float32", (1, 8, 4, 4))
    y = g.op("Reshape", g.op("Relu", x), g.const(np.array([1, 2, 4, 4, 4], np.int64)))
    y = g.op("Transpose", y, perm=(0, 2, 1, 3, 4))
    y = g.op("Reshape", y, g.const(np.array([1, 8, 4, 4], np.int64)), name="out")
    g.outputs = [y]
    before = g.dump()
    rewrite(g)
    assert g.dump() == before


def test_fan_out_that_does_not_pay_is_left_alone():
    """An NHWC value read by two agnostic ops that each end in a MatMul: sinking would trade
    one Transpose for two, so nothing moves."""
    g = Graph()
    u = g.op("Transpose", g.add_input("x", "float32", (1, 3, 4, 4)), perm=TO_NHWC)
    w = fconst(g, np.ones((3, 2)))
    g.outputs = [g.op("MatMul", g.op("Relu", u), w, name="a"),
                 g.op("MatMul", g.op("Sigmoid", u), w, name="b")]
    before = g.dump()
    log = rewrite(g)
    assert g.dump() == before and "2" in dict((d[0], d[2]) for d in log.declines)[
        "sink_transposes"]


def test_fan_out_to_a_graph_output_keeps_one_transpose():
    g = Graph()
    u = g.op("Transpose", g.add_input("x", "float32", (1, 3, 4, 4)), perm=TO_NHWC, name="nhwc")
    a = g.op("Transpose", g.op("Relu", u), perm=TO_NCHW, name="a")
    g.outputs = [a, u]
    rewrite(g)
    assert sorted(ops(g)) == ["Relu", "Transpose"] and [o.name for o in g.outputs] == ["a", "nhwc"]


def test_symbolic_batch_flatten_folds_into_matmul():
    t = TF(12)
    x = t.g.add_input("x", "float32", ("N", 2, 4, 4))
    y = t.g.op("Relu", t.conv(t.g.op("Transpose", x, perm=TO_NHWC), 3, k=3))
    f = t.g.op("Reshape", y, t.g.const(np.array([-1, 48], np.int64)))
    g = t.done(t.g.op("MatMul", f, t.c(48, 5), name="out"))
    rewrite(g)
    assert n_transposes(g) == 0 and ops(g) == ["Conv", "Relu", "Reshape", "MatMul"]


def test_runtime_operand_broadcast_all_ones_kept():
    t = TF(10)
    x = t.input("x", 1, 3, 4, 4)
    s = t.g.add_input("s", "float32", (1, 1, 1, 1))
    g = t.done(t.to_out(t.g.op("Mul", t.g.op("Relu", x), s)))
    rewrite(g)
    assert n_transposes(g) == 0


def test_reshape_after_global_pool_is_free():
    t = TF(11)
    x = t.wrap("GlobalAveragePool", t.g.op("Relu", t.input("x", 1, 6, 4, 4)))
    y = t.g.op("Reshape", x, t.g.const(np.array([1, 6], np.int64)), name="out")
    g = t.done(y)
    rewrite(g)
    assert ops(g) == ["Relu", "GlobalAveragePool", "Reshape"]


def test_transpose_to_reshape_after_reshape():
    g = Graph()
    x = g.add_input("x", "float32", (2, 6))
    y = g.op("Reshape", x, g.const(np.array([2, 1, 1, 6], np.int64)))
    y = g.op("Transpose", y, perm=TO_NCHW)
    g.outputs = [g.op("Relu", y, name="out")]
    log = rewrite(g)
    assert ops(g) == ["Reshape", "Relu"] and log.counts["transpose_to_reshape"] == 1


def test_sink_rules_alone_reach_fixed_point_on_mobilenet():
    g = mobilenet_v2_like()
    run_rules(g, list(SINK + COMPOSE))
    g.cleanup()
    g.validate()
    assert n_transposes(g) == 0


def test_keras_se_mean_reshape_becomes_keepdims_mean():
    g = efficientnet_like(False)
    log = rewrite(g)
    assert "Reshape" not in ops(g) and log.counts["reduce_keepdims"] == 1
    se_mean = [n for n in g.nodes if n.op == "ReduceMean"][0]
    assert se_mean.attrs["keepdims"] == 1 and se_mean.outputs[0].shape == (1, 8, 1, 1)


def test_reduce_keepdims_needs_the_keepdims_shape():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3, 4, 5))
    m = g.op("ReduceMean", x, g.const(np.array([2, 3], np.int64)), keepdims=0)
    y = g.op("Reshape", m, g.const(np.array([2, 1, 3, 1], np.int64)), name="out")
    g.outputs = [y]
    before = g.dump()
    rewrite(g)
    assert g.dump() == before


# --------------------------------------------------------------------------- random regions
from hypothesis import given, settings, strategies as st  # noqa: E402

STEPS = ("relu", "bias_c", "bias_1111c", "scale", "residual", "pad", "slice", "concat",
         "softmax", "mean_keep", "max_keep", "clip", "prelu")


def _step(t: TF, y, kind, seen, rng):
    g, ch = t.g, y.shape[3]
    if kind == "relu":
        return g.op("Relu", y)
    if kind in ("bias_c", "bias_1111c", "scale"):
        shape = {"bias_c": (ch,), "bias_1111c": (1, 1, 1, ch), "scale": ()}[kind]
        return g.op("Add" if kind != "scale" else "Mul", y, t.c(*shape))
    if kind == "residual":
        same = [v for v in seen if v.shape == y.shape]
        return g.op("Sub", y, same[rng.integers(len(same))])
    if kind == "pad":
        return g.op("Pad", y, g.const(rng.integers(0, 2, 8).astype(np.int64)))
    if kind == "slice":
        ax = int(rng.integers(1, 4))
        return g.op("Slice", y, g.const(np.array([0], np.int64)),
                    g.const(np.array([max(1, y.shape[ax] - 1)], np.int64)),
                    g.const(np.array([ax], np.int64)))
    if kind == "concat":
        ax = int(rng.integers(1, 4))
        shape = list(y.shape)
        shape[ax] = 2
        return g.op("Concat", y, t.c(*shape), axis=ax - 4 if ax == 3 else ax)
    if kind == "softmax":
        return g.op("Softmax", y, axis=int(rng.integers(1, 4)))
    if kind in ("mean_keep", "max_keep"):
        axes = sorted(rng.choice([1, 2, 3], int(rng.integers(1, 3)), replace=False))
        op = "ReduceMean" if kind == "mean_keep" else "ReduceMax"
        return g.op("Mul", y, g.op(op, y, g.const(np.array(axes, np.int64)), keepdims=1))
    if kind == "clip":
        return t.relu6(y)
    return g.op("PRelu", y, t.c(ch))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(STEPS), min_size=1, max_size=6), st.integers(0, 2 ** 16))
def test_random_nhwc_regions_lose_every_transpose(kinds, seed):
    t = TF(seed)
    rng = np.random.default_rng(seed)
    y = t.input("x", 1, 3, 4, 5)
    seen = [y]
    for kind in kinds:
        y = _step(t, y, kind, seen, rng)
        seen.append(y)
    g = t.done(t.to_out(t.g.op("Relu", y), "out"))
    before = len(g.nodes)
    rewrite(g)
    assert n_transposes(g) == 0, (kinds, g.dump())
    assert len(g.nodes) <= before - 2 and [o.name for o in g.outputs] == ["out"]
