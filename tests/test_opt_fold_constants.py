"""fold_constants.py: all-constant nodes become constants with the right dtype and values."""
from __future__ import annotations

import numpy as np

from converter.ir import Graph
from converter.rewrite import run_rules
from optimizers.fold_constants import FOLDABLE_OPS, RULES
from tests.test_opt_util import fconst, ops, rewrite


def test_weight_layout_transpose_folded():
    rng = np.random.default_rng(0)
    g = Graph()
    x = g.add_input("x", "float32", (1, 3, 6, 6))
    w_hwio = fconst(g, rng.standard_normal((3, 3, 3, 4)), "w_hwio")
    original = w_hwio.const.copy()
    g.outputs = [g.op("Conv", x, g.op("Transpose", w_hwio, perm=(3, 2, 0, 1)), name="y")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Conv"] and log.counts == {"fold_constants": 1}
    w = g.nodes[0].input(1)
    assert w.is_const and w.shape == (4, 3, 3, 3) and w.dtype == "float32"
    np.testing.assert_array_equal(w.const, original.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(w_hwio.const, original)  # the source is not mutated


def test_chain_folds_to_fixed_point_and_keeps_float32():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3))
    base = fconst(g, [[1.0, 2.0, 3.0]])
    p = g.op("Pow", base, g.const(np.array([2], np.int64)))  # numpy would give float64
    s = g.op("Sqrt", g.op("Add", p, fconst(g, 1.0)))
    g.outputs = [g.op("Mul", x, s, name="y")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Mul"] and log.counts == {"fold_constants": 3}
    c = g.nodes[0].input(1)
    assert c.dtype == "float32" and c.const.dtype == np.float32
    np.testing.assert_allclose(c.const, np.sqrt(np.array([[2, 5, 10]], np.float32)))


def test_integer_div_truncates_like_onnx():
    g = Graph()
    x = g.add_input("x", "float32", (4,))
    q = g.op("Div", g.const(np.array([7, -7, 7, -7], np.int64)),
             g.const(np.array([2, 2, -2, -2], np.int64)))
    g.outputs = [g.op("Add", x, g.op("Cast", q, to=1), name="y")]
    log = rewrite(g, RULES)  # compares with onnxruntime's own integer Div
    assert log.counts == {"fold_constants": 2}
    np.testing.assert_array_equal(g.nodes[0].input(1).const, [3, -3, -3, 3])


def test_shape_operand_folded_for_reshape():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3, 4))
    shape = g.op("Concat", g.const(np.array([2], np.int64)), g.const(np.array([-1], np.int64)),
                 axis=0)
    r = g.add("Reshape", [x, shape], infer=False).outputs[0]
    r.dtype, r.shape = "float32", (2, 12)
    g.outputs = [g.op("Relu", r, name="y")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Reshape", "Relu"] and log.counts == {"fold_constants": 1}
    assert g.nodes[0].input(1).const.tolist() == [2, -1]
    assert g.nodes[0].input(1).dtype == "int64"


def test_multi_output_split():
    g = Graph()
    x = g.add_input("x", "float32", (2,))
    parts = g.add("Split", [fconst(g, [1.0, 2.0, 3.0, 4.0])], {"axis": 0, "num_outputs": 2},
                  n_out=2).outputs
    g.outputs = [g.op("Add", g.op("Mul", x, parts[0]), parts[1], name="y")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Mul", "Add"] and log.counts == {"fold_constants": 1}


def test_graph_output_not_folded():
    g = Graph()
    x = g.add_input("x", "float32", (2,))
    g.outputs = [g.op("Relu", x), g.op("Add", fconst(g, [1.0, 2.0]), fconst(g, 3.0), name="k")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Add"] and log.counts == {}
    assert [d[0] for d in log.declines] == ["fold_constants"]
    assert "graph output" in log.declines[0][2]


def test_ops_without_evaluator_kept():
    assert "Conv" not in FOLDABLE_OPS and "Erf" not in FOLDABLE_OPS and "Shape" not in FOLDABLE_OPS
    g = Graph()
    x = g.add_input("x", "float32", (3,))
    e = g.op("Erf", fconst(g, [0.1, 0.2, 0.3]))
    g.outputs = [g.op("Add", x, e, name="y")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Erf", "Add"] and log.counts == {}


def test_runtime_input_not_folded():
    g = Graph()
    x = g.add_input("x", "float32", (3,))
    g.outputs = [g.op("Relu", g.op("Add", x, fconst(g, [1.0, 2.0, 3.0])), name="y")]
    assert run_rules(g, list(RULES)).counts == {}
