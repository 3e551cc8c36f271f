"""transposes.py: Transpose / Reshape / Flatten / Squeeze / Unsqueeze chains compose or cancel."""
from __future__ import annotations

import numpy as np
import pytest

from converter.ir import Graph
from optimizers import optimize
from optimizers.transposes import RULES
from tests.test_opt_util import ops, rewrite


def _i64(g, a):
    return g.const(np.array(a, np.int64), "k")


def _chain(shape, *steps):
    """x -> Relu -> steps... -> Sigmoid "out"; each step is fn(graph, value) -> value."""
    g = Graph()
    y = g.op("Relu", g.add_input("x", "float32", shape))
    for step in steps:
        y = step(g, y)
    g.outputs = [g.op("Sigmoid", y, name="out")]
    return g


def _t(perm):
    return lambda g, y: g.op("Transpose", y, perm=perm) if perm else g.op("Transpose", y)


def test_nhwc_roundtrip_cancels():
    g = _chain((1, 3, 4, 5), _t((0, 2, 3, 1)), _t((0, 3, 1, 2)))
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Sigmoid"] and log.counts == {"compose_transposes": 1}


def test_reversed_perms_cancel():
    g = _chain((2, 3, 4), _t(None), _t(None))
    assert rewrite(g, RULES).counts == {"compose_transposes": 1}
    assert ops(g) == ["Relu", "Sigmoid"]


@pytest.mark.parametrize("p, q", [((0, 2, 3, 1), (0, 2, 3, 1)), ((1, 0, 3, 2), (0, 2, 1, 3))])
def test_non_identity_composes(p, q):
    g = _chain((1, 3, 4, 5), _t(p), _t(q))
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Transpose", "Sigmoid"] and log.counts == {"compose_transposes": 1}
    want = np.zeros((1, 3, 4, 5)).transpose(p).transpose(q).shape
    assert g.nodes[1].outputs[0].shape == want
    assert g.nodes[1].attrs["perm"] == tuple(p[i] for i in q)


def test_three_transposes_to_fixed_point():
    g = _chain((1, 3, 4, 5), _t((0, 2, 3, 1)), _t((0, 2, 3, 1)), _t((0, 2, 3, 1)))
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Sigmoid"] and log.counts == {"compose_transposes": 2}


def test_shared_inner_transpose_stays_for_its_other_reader():
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 4, 5))
    inner = g.op("Transpose", g.op("Relu", x), perm=(0, 2, 3, 1), name="to_nhwc")
    back = g.op("Transpose", inner, perm=(0, 3, 1, 2))
    g.outputs = [g.op("Sigmoid", back, name="a"), g.op("Tanh", inner, name="b")]
    log = rewrite(g, RULES)
    assert log.counts == {"compose_transposes": 1}
    assert ops(g) == ["Relu", "Transpose", "Sigmoid", "Tanh"]
    assert g.outputs[0].producer.input(0).producer.op == "Relu"


def test_identity_onto_graph_input_declined():
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 4, 5))
    g.outputs = [g.op("Transpose", g.op("Transpose", x, perm=(0, 2, 3, 1)), perm=(0, 3, 1, 2),
                      name="out")]
    log = rewrite(g, RULES)
    assert log.counts == {} and "graph input" in log.declines[0][2]


def test_reshape_of_reshape():
    g = _chain((2, 3, 4), lambda g, y: g.op("Reshape", y, _i64(g, [6, 4])),
               lambda g, y: g.op("Reshape", y, _i64(g, [4, -1])))
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Reshape", "Sigmoid"] and log.counts == {"compose_reshapes": 1}
    assert g.nodes[1].input(0).producer.op == "Relu"


@pytest.mark.parametrize("shape, first, second, want", [
    ((2, 3, 4), [2, 12], [0, 3, 4], [0, 3, 4]),   # dim 0 is x's dim 0: the 0 stays
    ((2, 3, 4), [6, 4], [0, 2, 2], [6, 2, 2]),    # dim 0 differs: 0 becomes 6
    (("N", 3, 4), [0, 12], [0, 3, 4], [0, 3, 4]),  # the same symbol: the 0 stays
])
def test_reshape_zero_copy(shape, first, second, want):
    g = _chain(shape, lambda g, y: g.op("Reshape", y, _i64(g, first)),
               lambda g, y: g.op("Reshape", y, _i64(g, second)))
    assert rewrite(g, RULES).counts == {"compose_reshapes": 1}
    assert g.nodes[1].const_input(1).tolist() == want


def test_reshape_zero_copy_of_unknown_dim_declined():
    g = _chain(("N", 3, 4), lambda g, y: g.op("Reshape", y, _i64(g, [-1, 4])),
               lambda g, y: g.op("Reshape", y, _i64(g, [0, 2, 2])))
    log = rewrite(g, RULES)
    assert log.counts == {} and ops(g).count("Reshape") == 2
    assert "unknown dim" in log.declines[0][2]


def test_flatten_then_reshape():
    g = _chain((2, 3, 4, 4), lambda g, y: g.op("Flatten", y),
               lambda g, y: g.op("Reshape", y, _i64(g, [2, 3, 16])))
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Reshape", "Sigmoid"]
    assert log.counts == {"compose_flatten_reshape": 1}


def test_reshape_back_to_input_shape_removed_by_optimize():
    g = _chain((2, 3, 4), lambda g, y: g.op("Flatten", y),
               lambda g, y: g.op("Reshape", y, _i64(g, [2, 3, 4])))
    log = rewrite(g)
    assert ops(g) == ["Relu", "Sigmoid"]
    assert log.counts == {"compose_flatten_reshape": 1, "strip_reshape": 1}


@pytest.mark.parametrize("shape, a, b", [((2, 1, 3), [1], [1]), ((2, 1, 3), [-2], [1]),
                                         ((1, 2, 1), None, [0, 2])])
def test_squeeze_unsqueeze_cancel(shape, a, b):
    sq = (lambda g, y: g.op("Squeeze", y, _i64(g, a))) if a else (lambda g, y: g.op("Squeeze", y))
    g = _chain(shape, sq, lambda g, y: g.op("Unsqueeze", y, _i64(g, b)))
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Sigmoid"] and log.counts == {"cancel_squeeze_unsqueeze": 1}


@pytest.mark.parametrize("shape, b, a", [((2, 3), [0], [0]), ((2, 3), [-1], [2]),
                                         ((2, 3), [0, 3], [-1, 0])])
def test_unsqueeze_squeeze_cancel(shape, b, a):
    g = _chain(shape, lambda g, y: g.op("Unsqueeze", y, _i64(g, b)),
               lambda g, y: g.op("Squeeze", y, _i64(g, a)))
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Sigmoid"] and log.counts == {"cancel_unsqueeze_squeeze": 1}


def test_squeeze_unsqueeze_other_axis_kept():
    g = _chain((2, 1, 3), lambda g, y: g.op("Squeeze", y, _i64(g, [1])),
               lambda g, y: g.op("Unsqueeze", y, _i64(g, [2])))
    assert rewrite(g, RULES).counts == {}
    assert ops(g) == ["Relu", "Squeeze", "Unsqueeze", "Sigmoid"]


def test_squeeze_all_ones_of_unknown_dims_declined():
    g = _chain(("N", 1, 3), lambda g, y: g.op("Unsqueeze", y, _i64(g, [0])),
               lambda g, y: g.op("Squeeze", y))
    log = rewrite(g, RULES)
    assert log.counts == {} and "Squeeze axes not known" in log.declines[0][2]


def test_optimize_is_idempotent_on_chain():
    g = _chain((1, 3, 4, 5), _t((0, 2, 3, 1)), lambda g, y: g.op("Reshape", y, _i64(g, [1, 60])))
    optimize(g)
    assert optimize(g).counts == {}


def test_squeeze_unsqueeze_different_counts_kept():
    # Squeeze [0] then Unsqueeze [0, -3] (rank 4 output): -3 is axis 1, not a second axis 0
    g = _chain((1, 2, 3), lambda g, y: g.op("Squeeze", y, _i64(g, [0])),
               lambda g, y: g.op("Unsqueeze", y, _i64(g, [0, -3])))
    assert rewrite(g, RULES).counts == {}
