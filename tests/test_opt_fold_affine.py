"""fold_affine.py: per-channel constant Mul / Add / Sub / Div after a linear op folds into it."""
from __future__ import annotations

import numpy as np
import pytest

from converter.ir import Graph
from converter.rewrite import run_rules
from optimizers.fold_affine import RULES, channel_vector
from tests.test_opt_util import fconst, ops, rewrite


def _conv_graph(op, cshape, const_first=False, seed=0, transpose=False, group=1):
    """x -> Conv/ConvTranspose(C=4) -> op(const of cshape) -> output "y"."""
    rng = np.random.default_rng(seed)
    g = Graph()
    x = g.add_input("x", "float32", (1, 4, 5, 5))
    if transpose:
        y = g.op("ConvTranspose", x, fconst(g, rng.standard_normal((4, 4 // group, 3, 3))),
                 group=group, strides=(2, 2))
    else:
        y = g.op("Conv", x, fconst(g, rng.standard_normal((4, 4 // group, 3, 3))),
                 fconst(g, rng.normal(size=4)), pads=(1, 1, 1, 1), group=group)
    c = fconst(g, rng.uniform(0.5, 2.0, cshape))
    g.outputs = [g.op(op, *((c, y) if const_first else (y, c)), name="y")]
    return g


CASES = [("Mul", (4, 1, 1), False), ("Mul", (1, 4, 1, 1), True), ("Mul", (), False),
         ("Add", (4, 1, 1), False), ("Add", (1, 4, 1, 1), True), ("Sub", (4, 1, 1), False),
         ("Sub", (1, 4, 1, 1), True), ("Div", (4, 1, 1), False), ("Div", (1, 1, 1, 1), False)]


@pytest.mark.parametrize("op, cshape, const_first", CASES)
@pytest.mark.parametrize("transpose", [False, True])
def test_folds(op, cshape, const_first, transpose):
    g = _conv_graph(op, cshape, const_first, transpose=transpose)
    lin = g.nodes[0].op
    log = rewrite(g, RULES)
    assert ops(g) == [lin] and log.counts == {f"fold_affine_{op.lower()}": 1}
    assert g.nodes[0].meta["fused_from"] == [op]
    assert g.outputs[0].name == "y"


def test_grouped_conv_transpose():
    g = _conv_graph("Mul", (1, 4, 1, 1), transpose=True, group=2, seed=3)
    assert rewrite(g, RULES).counts == {"fold_affine_mul": 1}


def test_keras3_split_batchnorm_chain():
    """(y - mean) * inv + beta, as Keras 3 frozen graphs write BatchNormalization."""
    rng = np.random.default_rng(4)
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 6, 6))
    y = g.op("Conv", x, fconst(g, rng.standard_normal((5, 3, 3, 3))))
    y = g.op("Sub", y, fconst(g, rng.normal(size=(5, 1, 1))))
    y = g.op("Mul", y, fconst(g, rng.uniform(.5, 2, (5, 1, 1))))
    y = g.op("Add", y, fconst(g, rng.normal(size=(5, 1, 1))))
    g.outputs = [g.op("Relu", y, name="out")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Conv", "Relu"]
    assert log.counts == {"fold_affine_sub": 1, "fold_affine_mul": 1, "fold_affine_add": 1}


@pytest.mark.parametrize("op, cshape", [("Mul", (6,)), ("Add", (1, 6)), ("Div", ()),
                                        ("Sub", (6,))])
@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm(op, cshape, trans_b):
    rng = np.random.default_rng(trans_b)
    g = Graph()
    x = g.add_input("x", "float32", (3, 5))
    w = fconst(g, rng.standard_normal((6, 5) if trans_b else (5, 6)))
    y = g.op("Gemm", x, w, fconst(g, rng.normal(size=6)), transB=trans_b, beta=0.5)
    g.outputs = [g.op(op, y, fconst(g, rng.uniform(.5, 2, cshape)), name="y")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Gemm"] and log.counts == {f"fold_affine_{op.lower()}": 1}


def test_channel_vector_shapes():
    shape = (1, 4, 5, 5)
    assert channel_vector(np.ones((4, 1, 1)), shape, 4).shape == (4,)
    assert channel_vector(np.ones(()), shape, 4).shape == (4,)
    assert channel_vector(np.ones((4,)), shape, 4) is None  # broadcasts along W
    assert channel_vector(np.ones((1, 4, 5, 1)), shape, 4) is None
    assert channel_vector(np.ones((1, 1, 4, 1, 1)), shape, 4) is None  # grows the rank
    assert channel_vector(np.ones((4,)), (3, 4), 4).shape == (4,)  # Gemm column vector
    assert channel_vector(np.ones((3, 1)), (3, 4), 4) is None  # per row


@pytest.mark.parametrize("cshape", [(4,), (1, 4, 5, 1), (2, 1, 1, 1)])
def test_not_per_channel_declined(cshape):
    # (4,) on a (1, 4, 5, 4)-shaped output would scale along W, not along channels
    rng = np.random.default_rng(5)
    g = Graph()
    x = g.add_input("x", "float32", (1, 4, 5, 4))
    y = g.op("Conv", x, fconst(g, rng.standard_normal((4, 4, 1, 1))))
    g.outputs = [g.op("Mul", y, fconst(g, rng.uniform(.5, 2, cshape)), name="y")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Conv", "Mul"] and log.counts == {}
    assert "not per-channel" in log.declines[0][2]


def test_runtime_operand_not_folded():
    g = Graph()
    x = g.add_input("x", "float32", (1, 4, 5, 5))
    s = g.add_input("s", "float32", (1, 4, 1, 1))
    y = g.op("Conv", x, fconst(g, np.ones((4, 4, 1, 1))))
    g.outputs = [g.op("Mul", y, s, name="y")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Conv", "Mul"] and log.counts == {} and log.declines == []


def test_second_consumer_declined():
    g = _conv_graph("Mul", (4, 1, 1))
    conv = g.nodes[0].outputs[0]
    g.outputs.append(g.op("Relu", conv, name="side"))
    log = rewrite(g, RULES)
    assert ops(g) == ["Conv", "Mul", "Relu"] and log.counts == {}
    assert "another consumer" in log.declines[0][2]


def test_div_by_zero_declined_and_const_over_y_kept():
    g = _conv_graph("Div", (4, 1, 1))
    c = g.nodes[1].input(1)
    c.const[1] = 0.0  # test-owned array
    g2 = _conv_graph("Div", (4, 1, 1), const_first=True)
    log2 = rewrite(g2, RULES)
    assert ops(g2) == ["Conv", "Div"] and log2.counts == {}
    log = run_rules(g, list(RULES))
    assert log.counts == {} and "zero" in log.declines[0][2]


def test_shared_weight_private_copy():
    rng = np.random.default_rng(6)
    g = Graph()
    x = g.add_input("x", "float32", (1, 4, 5, 5))
    w = fconst(g, rng.standard_normal((4, 4, 1, 1)), "w")
    original = w.const.copy()
    a = g.op("Mul", g.op("Conv", x, w, name="c1"), fconst(g, rng.uniform(.5, 2, (4, 1, 1))),
             name="a")
    b = g.op("Conv", x, w, name="c2")
    g.outputs = [a, b]
    log = rewrite(g, RULES)
    assert log.counts == {"fold_affine_mul": 1}
    convs = {n.name: n for n in g.nodes}
    assert convs["c2"].input(1) is w and convs["c1"].input(1) is not w
    np.testing.assert_array_equal(w.const, original)
    assert g.outputs[0].name == "a" and g.outputs[0].producer.name == "c1"


def test_caffe_scale_after_standalone_batchnorm():
    """Concat -> BatchNorm -> Scale (Mul, Add) as in Caffe DenseNets: the BN absorbs the Scale."""
    rng = np.random.default_rng(7)
    g = Graph()
    x = g.add_input("x", "float32", (1, 2, 4, 4))
    y = g.op("Concat", g.op("Relu", x), g.op("Neg", x), axis=1)
    y = g.op("BatchNormalization", y, fconst(g, np.ones(4)), fconst(g, np.zeros(4)),
             fconst(g, rng.normal(size=4)), fconst(g, rng.uniform(.5, 1.5, 4)), name="bn")
    y = g.op("Mul", y, fconst(g, rng.uniform(-2, 2, (1, 4, 1, 1))))
    g.outputs = [g.op("Add", y, fconst(g, rng.normal(size=(4, 1, 1))), name="scale")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Neg", "Concat", "BatchNormalization"]
    assert log.counts == {"fold_affine_mul": 1, "fold_affine_add": 1}
    assert g.outputs[0].name == "scale" and g.outputs[0].producer.name == "bn"
