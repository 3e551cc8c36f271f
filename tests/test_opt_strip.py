"""strip.py: each no-op is removed, each near-miss is kept, graph outputs keep their names."""
from __future__ import annotations

import numpy as np
import pytest

from converter.ir import Graph
from converter.rewrite import run_rules
from optimizers.strip import RULES
from tests.test_opt_util import fconst, ops, rewrite

I64 = np.iinfo(np.int64).max


def _sandwich(op_fn, shape=(1, 3, 4, 4), **kw):
    """x -> Relu -> <op under test> -> Sigmoid (output "out")."""
    g = Graph()
    x = g.add_input("x", "float32", shape)
    y = op_fn(g, g.op("Relu", x), **kw)
    g.outputs = [g.op("Sigmoid", y, name="out")]
    return g


def _i64(g, a, name="k"):
    return g.const(np.array(a, np.int64), name)


def _dropout_with_mask(g, y):
    d = g.add("Dropout", [y], n_out=2)
    return g.op("Add", d.outputs[0], g.op("Cast", d.outputs[1], to=1))


# (rule, builder) pairs whose middle node is a no-op and must go
STRIPPED = {
    "dropout": ("strip_dropout", lambda g, y: g.op("Dropout", y)),
    "identity": ("strip_identity", lambda g, y: g.op("Identity", y)),
    "cast": ("strip_cast", lambda g, y: g.op("Cast", y, to=1)),
    "reshape_copy": ("strip_reshape", lambda g, y: g.op("Reshape", y, _i64(g, [0, 3, -1, 4]))),
    "reshape_literal": ("strip_reshape", lambda g, y: g.op("Reshape", y, _i64(g, [1, 3, 4, 4]))),
    "transpose": ("strip_transpose", lambda g, y: g.op("Transpose", y, perm=(0, 1, 2, 3))),
    "slice_max": ("strip_slice", lambda g, y: g.op("Slice", y, _i64(g, [0]), _i64(g, [I64]),
                                                   _i64(g, [2]))),
    "slice_neg": ("strip_slice", lambda g, y: g.op("Slice", y, _i64(g, [-4, 0]),
                                                   _i64(g, [4, 99]), _i64(g, [-1, 1]),
                                                   _i64(g, [1, 1]))),
    "concat": ("strip_concat", lambda g, y: g.op("Concat", y, axis=1)),
    "split": ("strip_split", lambda g, y: g.op("Split", y, axis=1, num_outputs=1)),
    "pad": ("strip_pad", lambda g, y: g.op("Pad", y, _i64(g, [0] * 8))),
    "clip_none": ("strip_clip", lambda g, y: g.op("Clip", y)),
    "clip_inf": ("strip_clip", lambda g, y: g.op("Clip", y, fconst(g, -np.inf),
                                                 fconst(g, np.inf))),
    "mul_scalar": ("strip_mul_one", lambda g, y: g.op("Mul", y, fconst(g, 1.0))),
    "mul_first": ("strip_mul_one", lambda g, y: g.op("Mul", fconst(g, np.ones((3, 1, 1))), y)),
    "add_zero": ("strip_add_zero", lambda g, y: g.op("Add", y, fconst(g, np.zeros((1, 3, 1, 1))))),
    "add_first": ("strip_add_zero", lambda g, y: g.op("Add", fconst(g, 0.0), y)),
    "sub_zero": ("strip_sub_zero", lambda g, y: g.op("Sub", y, fconst(g, [0.0]))),
    "div_one": ("strip_div_one", lambda g, y: g.op("Div", y, fconst(g, 1.0))),
}


@pytest.mark.parametrize("case", sorted(STRIPPED))
def test_stripped(case):
    rule, build = STRIPPED[case]
    g = _sandwich(build)
    assert len(g.nodes) == 3
    log = rewrite(g, RULES)
    assert ops(g) == ["Relu", "Sigmoid"]
    assert log.counts == {rule: 1}


KEPT = {
    "dropout_mask_used": lambda g, y: _dropout_with_mask(g, y),
    "cast_other_dtype": lambda g, y: g.op("Cast", g.op("Cast", y, to=7), to=1),
    "reshape_changes": lambda g, y: g.op("Reshape", y, _i64(g, [1, 3, 2, 8])),
    "transpose_perm": lambda g, y: g.op("Transpose", y, perm=(0, 1, 3, 2)),
    "slice_part": lambda g, y: g.op("Slice", y, _i64(g, [1]), _i64(g, [I64]), _i64(g, [2])),
    "slice_reverse": lambda g, y: g.op("Slice", y, _i64(g, [-1]), _i64(g, [-I64]),
                                       _i64(g, [3]), _i64(g, [-1])),
    "concat_two": lambda g, y: g.op("Concat", y, y, axis=1),
    "pad_nonzero": lambda g, y: g.op("Pad", y, _i64(g, [0, 0, 1, 0, 0, 0, 0, 1])),
    "clip_bounded": lambda g, y: g.op("Clip", y, None, fconst(g, 6.0)),
    "mul_two": lambda g, y: g.op("Mul", y, fconst(g, 2.0)),
    "mul_runtime": lambda g, y: g.op("Mul", y, g.op("Relu", y)),
    "mul_broadcasts": lambda g, y: g.op("Mul", y, fconst(g, np.ones((2, 1, 1, 1, 1)))),
    "mul_expands_dim": lambda g, y: g.op("Mul", g.op("ReduceMean", y, _i64(g, [1])),
                                         fconst(g, np.ones((1, 3, 1, 1)))),
    "sub_from_zero": lambda g, y: g.op("Sub", fconst(g, 0.0), y),
    "div_into_one": lambda g, y: g.op("Div", fconst(g, 1.0), y),
}


@pytest.mark.parametrize("case", sorted(KEPT))
def test_kept(case):
    g = _sandwich(KEPT[case])
    before = ops(g)
    log = rewrite(g, RULES)
    assert ops(g) == before
    assert log.counts == {}


def test_dropout_mask_graph_output_kept():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3))
    d = g.add("Dropout", [g.op("Relu", x)], n_out=2)
    g.outputs = [g.op("Sigmoid", d.outputs[0]), d.outputs[1]]
    assert run_rules(g, list(RULES)).counts == {}


@pytest.mark.parametrize("training, stripped", [(False, True), (True, False)])
def test_dropout_training_mode_operand(training, stripped):
    # no onnxruntime run here: exporters/onnx/build.py writes 0-d initializers as shape (1,)
    # (np.ascontiguousarray), which onnxruntime rejects for Dropout's scalar operands.
    g = _sandwich(lambda g, y: g.op("Dropout", y, fconst(g, 0.5), g.const(np.array(training))))
    assert run_rules(g, list(RULES)).counts == ({"strip_dropout": 1} if stripped else {})
    g.cleanup()
    g.validate()
    assert ("Dropout" in ops(g)) != stripped


def test_dropout_runtime_training_mode_kept():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3))
    t = g.add_input("training", "bool", ())
    g.outputs = [g.op("Dropout", g.op("Relu", x), None, t)]
    assert run_rules(g, list(RULES)).counts == {}


def test_symbolic_reshape():
    g = _sandwich(lambda g, y: g.op("Reshape", y, _i64(g, [-1, 3, 4, 4])), shape=("N", 3, 4, 4))
    assert rewrite(g, RULES).counts == {"strip_reshape": 1}
    g = _sandwich(lambda g, y: g.op("Reshape", y, _i64(g, [2, 3, 4, 4])), shape=("N", 3, 4, 4))
    assert rewrite(g, RULES).counts == {}  # N == 2 is not provable


def _slice_unknown(g, y, end):
    # ops.slice_infer cannot take a symbolic dim yet: build without inference, set the shape
    n = g.add("Slice", [y, _i64(g, [0]), _i64(g, [end]), _i64(g, [0])], infer=False)
    n.outputs[0].dtype, n.outputs[0].shape = "float32", (None,) + y.shape[1:]
    return n.outputs[0]


@pytest.mark.parametrize("end, stripped", [(I64, True), (2 ** 31 - 1, True), (2, False)])
def test_slice_unknown_dim_needs_open_end(end, stripped):
    g = _sandwich(lambda g, y: _slice_unknown(g, y, end), shape=("N", 3, 4, 4))
    assert rewrite(g, RULES).counts == ({"strip_slice": 1} if stripped else {})


def test_int_clip_at_dtype_limits():
    g = Graph()
    x = g.add_input("x", "int32", (5,))
    info = np.iinfo(np.int32)
    y = g.op("Clip", g.op("Abs", x), g.const(np.array(info.min, np.int32)),
             g.const(np.array(info.max, np.int32)))
    g.outputs = [g.op("Neg", y)]
    assert rewrite(g, RULES).counts == {"strip_clip": 1}


def test_output_keeps_name_when_producer_replaced():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3))
    g.outputs = [g.op("Identity", g.op("Relu", x, name="r"), name="logits")]
    assert rewrite(g, RULES).counts == {"strip_identity": 1}
    assert ops(g) == ["Relu"]
    assert g.outputs[0].name == "logits" and g.outputs[0].producer.name == "r"


@pytest.mark.parametrize("kind", ["input", "const", "other_output"])
def test_output_rename_declined(kind):
    g = Graph()
    x = g.add_input("x", "float32", (2, 3))
    src = {"input": x, "const": fconst(g, np.ones((2, 3))), "other_output": g.op("Relu", x)}[kind]
    g.outputs = [g.op("Identity", src, name="y")] + ([src] if kind == "other_output" else [])
    log = rewrite(g, RULES)
    assert log.counts == {} and "Identity" in ops(g)
    assert log.declines and log.declines[0][0] == "strip_identity"
    assert "graph output" in log.declines[0][2]
