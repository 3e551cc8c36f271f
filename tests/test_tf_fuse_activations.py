"""optimizers/fuse_activations.py: GELU / hard-sigmoid / hard-swish arithmetic as TensorFlow
graphs spell it becomes one IR op (numerics checked in onnxruntime by ``rewrite``), and
near-misses (a second reader, a wrong constant) are kept."""
from __future__ import annotations

import math

import numpy as np
import pytest

from converter.ir import Graph
from optimizers.fuse_activations import RULES
from tests.test_opt_util import ops, rewrite


def _c(g, v):
    return g.const(np.array(v, np.float32), "c")


def gelu_keras(g, x):
    """tf.nn.gelu(approximate=False): Mul(Mul(0.5, x), Add(1, Erf(x / sqrt 2)))."""
    erf = g.op("Erf", g.op("Div", x, _c(g, math.sqrt(2.0))))
    return g.op("Mul", g.op("Mul", _c(g, 0.5), x), g.op("Add", _c(g, 1.0), erf))


def gelu_half_last(g, x):
    """(x * (1 + erf(x * (1/sqrt 2)))) * 0.5."""
    erf = g.op("Erf", g.op("Mul", x, _c(g, 1 / math.sqrt(2.0))))
    return g.op("Mul", g.op("Mul", x, g.op("Add", erf, _c(g, 1.0))), _c(g, 0.5))


def gelu_keras3_erfc(g, x):
    """Keras 3: (x * 0.5) * erfc(-x * (1/sqrt 2)), Erfc arriving as 1 - erf."""
    erf = g.op("Erf", g.op("Mul", g.op("Neg", x), _c(g, 1 / math.sqrt(2.0))))
    return g.op("Mul", g.op("Mul", x, _c(g, 0.5)), g.op("Sub", _c(g, 1.0), erf))


def _relu6(g, v):
    return g.op("Clip", v, _c(g, 0.0), _c(g, 6.0))


def hard_sigmoid_keras(g, x):
    """relu6(x + 3) / 6 (Keras 3 divides, MobileNetV3's helper multiplies by 1/6)."""
    return g.op("Div", _relu6(g, g.op("Add", x, _c(g, 3.0))), _c(g, 6.0))


def hard_swish_keras(g, x):
    """x * (relu6(x + 3) * (1/6))."""
    hs = g.op("Mul", _relu6(g, g.op("Add", x, _c(g, 3.0))), _c(g, 1 / 6))
    return g.op("Mul", x, hs)


def hard_swish_mul_last(g, x):
    """(x * relu6(3 + x)) / 6."""
    return g.op("Div", g.op("Mul", _relu6(g, g.op("Add", _c(g, 3.0), x)), x), _c(g, 6.0))


def _graph(build, extra_reader=False):
    """x -> Relu -> <pattern> -> Sigmoid (output "out"); ``extra_reader`` also outputs the
    first intermediate node of the pattern (a second reader)."""
    g = Graph()
    x = g.op("Relu", g.add_input("x", "float32", (1, 4, 5, 5)))
    n0 = len(g.nodes)
    y = build(g, x)
    g.outputs = [g.op("Sigmoid", y, name="out")]
    if extra_reader:
        g.outputs.append(g.op("Tanh", g.nodes[n0].outputs[0], name="side"))
    return g


@pytest.mark.parametrize("build,rule,op", [
    (gelu_keras, "fuse_gelu", "Gelu"), (gelu_half_last, "fuse_gelu", "Gelu"),
    (gelu_keras3_erfc, "fuse_gelu", "Gelu"),
    (hard_sigmoid_keras, "fuse_hard_sigmoid", "HardSigmoid"),
    (hard_swish_keras, "fuse_hard_swish", "HardSwish"),
    (hard_swish_mul_last, "fuse_hard_swish", "HardSwish")])
def test_pattern_fuses(build, rule, op):
    g = _graph(build)
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", op, "Sigmoid"]
    assert log.counts[rule] == 1
    n = g.nodes[1]
    if op == "HardSigmoid":
        assert n.attrs == {"alpha": pytest.approx(1 / 6), "beta": pytest.approx(0.5)}
    assert len(n.meta["fused_from"]) >= 2


@pytest.mark.parametrize("build", [gelu_keras, hard_swish_keras, hard_sigmoid_keras])
def test_second_reader_blocks_the_fusion(build):
    """The pattern's first node (Div / Add) is also read elsewhere: nothing fuses."""
    g = _graph(build, extra_reader=True)
    before = ops(g)
    log = rewrite(g, RULES)
    assert ops(g) == before and not log.counts


def test_wrong_constants_are_kept():
    """0.4 x (1 + erf(x / sqrt 2)) and relu6(x + 2) / 6 are not the activations."""
    def near_gelu(g, x):
        erf = g.op("Erf", g.op("Div", x, _c(g, math.sqrt(2.0))))
        return g.op("Mul", g.op("Mul", _c(g, 0.4), x), g.op("Add", _c(g, 1.0), erf))

    def shifted(g, x):
        return g.op("Div", _relu6(g, g.op("Add", x, _c(g, 2.0))), _c(g, 6.0))

    for build in (near_gelu, shifted):
        g = _graph(build)
        before = ops(g)
        log = rewrite(g, RULES)
        assert ops(g) == before and not log.counts
