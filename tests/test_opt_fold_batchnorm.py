"""fold_batchnorm.py: BN after Conv / ConvTranspose / Gemm / MatMul folds into new weights."""
from __future__ import annotations

import numpy as np
import pytest

from converter.ir import Graph
from optimizers.fold_batchnorm import RULES
from tests.test_opt_util import fconst, ops, rewrite


def _bn(g, y, c, rng, name=None):
    return g.op("BatchNormalization", y, fconst(g, rng.uniform(.5, 1.5, c)),
                fconst(g, rng.normal(size=c)), fconst(g, rng.normal(size=c)),
                fconst(g, rng.uniform(.5, 1.5, c)), epsilon=1e-3, name=name)


def _consts(g):
    return {id(v): v.const.copy() for n in g.nodes for v in n.inputs if v is not None
            and v.is_const}


def _assert_not_mutated(g, before):
    for n in g.nodes:
        for v in n.inputs:
            if v is not None and id(v) in before:
                np.testing.assert_array_equal(v.const, before[id(v)])


@pytest.mark.parametrize("group, bias", [(1, True), (1, False), (2, True), (4, False)])
def test_conv(group, bias):
    rng = np.random.default_rng(group)
    g = Graph()
    x = g.add_input("x", "float32", (1, 4, 9, 9))
    ins = [x, fconst(g, rng.standard_normal((8, 4 // group, 3, 3)), "w")]
    ins += [fconst(g, rng.normal(size=8), "b")] if bias else []
    y = g.op("Conv", *ins, group=group, strides=(2, 2), dilations=(1, 2), pads=(1, 2, 1, 2))
    g.outputs = [g.op("Relu", _bn(g, y, 8, rng))]
    before = _consts(g)
    log = rewrite(g, RULES)
    assert ops(g) == ["Conv", "Relu"] and log.counts == {"fold_batchnorm_conv": 1}
    assert g.nodes[0].meta["fused_from"] == ["BatchNormalization"]
    assert len(g.nodes[0].inputs) == 3 and g.nodes[0].input(2).shape == (8,)
    _assert_not_mutated(g, before)


@pytest.mark.parametrize("group, bias", [(1, True), (2, False), (2, True)])
def test_conv_transpose(group, bias):
    rng = np.random.default_rng(10 + group)
    g = Graph()
    x = g.add_input("x", "float32", (1, 4, 5, 5))
    ins = [x, fconst(g, rng.standard_normal((4, 6 // group, 3, 3)), "w")]  # (in, out/g, k, k)
    ins += [fconst(g, rng.normal(size=6), "b")] if bias else []
    y = g.op("ConvTranspose", *ins, group=group, strides=(2, 2), pads=(1, 1, 1, 1),
             output_padding=(1, 1))
    assert y.shape == (1, 6, 10, 10)
    g.outputs = [_bn(g, y, 6, rng, name="out")]
    log = rewrite(g, RULES)
    assert ops(g) == ["ConvTranspose"] and log.counts == {"fold_batchnorm_convtranspose": 1}


def test_conv1d():
    rng = np.random.default_rng(3)
    g = Graph()
    x = g.add_input("x", "float32", (2, 3, 10))
    y = g.op("Conv", x, fconst(g, rng.standard_normal((5, 3, 3))))
    g.outputs = [_bn(g, y, 5, rng, name="out")]
    assert rewrite(g, RULES).counts == {"fold_batchnorm_conv": 1}


@pytest.mark.parametrize("trans_b, with_c", [(0, True), (1, True), (0, False), (1, False)])
def test_gemm(trans_b, with_c):
    rng = np.random.default_rng(trans_b)
    g = Graph()
    x = g.add_input("x", "float32", (3, 5))
    b = rng.standard_normal((6, 5) if trans_b else (5, 6))
    ins = [x, fconst(g, b)] + ([fconst(g, rng.normal(size=(1, 6)))] if with_c else [])
    y = g.op("Gemm", *ins, transB=trans_b, alpha=0.5, beta=2.0)
    g.outputs = [g.op("Relu", _bn(g, y, 6, rng))]
    log = rewrite(g, RULES)
    assert ops(g) == ["Gemm", "Relu"] and log.counts == {"fold_batchnorm_gemm": 1}
    assert g.nodes[0].attrs["beta"] == 1.0 and g.nodes[0].attrs["alpha"] == 0.5


def test_matmul_becomes_gemm():
    rng = np.random.default_rng(5)
    g = Graph()
    x = g.add_input("x", "float32", (3, 5))
    y = g.op("MatMul", x, fconst(g, rng.standard_normal((5, 6))), name="fc")
    g.outputs = [_bn(g, y, 6, rng, name="out")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Gemm"] and log.counts == {"fold_batchnorm_matmul": 1}
    assert g.nodes[0].name == "fc" and g.nodes[0].meta["fused_from"] == [
        "MatMul", "BatchNormalization"]


def test_matmul_rank3_kept():
    rng = np.random.default_rng(6)
    g = Graph()
    x = g.add_input("x", "float32", (2, 4, 5))
    y = g.op("MatMul", x, fconst(g, rng.standard_normal((5, 6))))
    g.outputs = [_bn(g, y, 4, rng, name="out")]  # BN channel axis 1 is the row axis
    log = rewrite(g, RULES)
    assert ops(g) == ["MatMul", "BatchNormalization"] and log.counts == {}
    assert log.declines[0][0] == "fold_batchnorm_matmul"


def test_second_consumer_keeps_bn():
    rng = np.random.default_rng(7)
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 6, 6))
    y = g.op("Conv", x, fconst(g, rng.standard_normal((4, 3, 1, 1))))
    g.outputs = [_bn(g, y, 4, rng, name="bn"), g.op("Relu", y, name="side")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Conv", "BatchNormalization", "Relu"] and log.counts == {}


def test_conv_output_is_graph_output_keeps_bn():
    rng = np.random.default_rng(8)
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 6, 6))
    y = g.op("Conv", x, fconst(g, rng.standard_normal((4, 3, 1, 1))), name="conv")
    g.outputs = [y, _bn(g, y, 4, rng, name="bn")]
    assert rewrite(g, RULES).counts == {}


def test_shared_weight_gets_private_copies():
    rng = np.random.default_rng(9)
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 6, 6))
    w = fconst(g, rng.standard_normal((4, 3, 3, 3)), "shared_w")
    original = w.const.copy()
    a = _bn(g, g.op("Conv", x, w, name="c1"), 4, rng, name="a")
    b = _bn(g, g.op("Conv", g.op("Relu", x), w, name="c2"), 4, rng, name="b")
    plain = g.op("Conv", x, w, name="c3")
    g.outputs = [a, b, plain]
    log = rewrite(g, RULES)
    assert log.counts == {"fold_batchnorm_conv": 2}
    convs = {n.name: n for n in g.nodes if n.op == "Conv"}
    assert convs["c3"].input(1) is w
    np.testing.assert_array_equal(w.const, original)
    assert convs["c1"].input(1) is not w and convs["c2"].input(1) is not w
    assert convs["c1"].input(1) is not convs["c2"].input(1)


def test_graph_output_keeps_name():
    rng = np.random.default_rng(11)
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 6, 6))
    y = g.op("Conv", x, fconst(g, rng.standard_normal((4, 3, 3, 3))), name="conv")
    g.outputs = [_bn(g, y, 4, rng, name="features")]
    rewrite(g, RULES)
    assert g.outputs[0].name == "features" and g.outputs[0].producer.name == "conv"


def test_standalone_bn_stays():
    rng = np.random.default_rng(12)
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 4, 4))
    g.outputs = [_bn(g, g.op("Relu", x), 3, rng, name="out")]
    assert rewrite(g, RULES).counts == {}
    assert ops(g) == ["Relu", "BatchNormalization"]


def test_runtime_weight_declined():
    rng = np.random.default_rng(13)
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 4, 4))
    w = g.add_input("w", "float32", (2, 3, 1, 1))
    g.outputs = [_bn(g, g.op("Conv", x, w), 2, rng, name="out")]
    log = rewrite(g, RULES)
    assert log.counts == {} and "weight is not a constant" in log.declines[0][2]


def test_runtime_bn_operand_not_matched():
    rng = np.random.default_rng(14)
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 4, 4))
    mean = g.add_input("mean", "float32", (2,))
    y = g.op("Conv", x, fconst(g, rng.standard_normal((2, 3, 1, 1))))
    g.outputs = [g.op("BatchNormalization", y, fconst(g, [1, 1]), fconst(g, [0, 0]), mean,
                      fconst(g, [1, 1]), name="out")]
    log = rewrite(g, RULES)
    assert log.counts == {} and ops(g) == ["Conv", "BatchNormalization"]
