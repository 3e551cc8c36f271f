"""fold_pad.py: a zero constant Pad of the spatial axes folds into the Conv (or, after a
non-negative producer, the MaxPool) reading it.

Every graph is run in onnxruntime before and after the rewrite on seeded inputs and the
outputs must agree within 1e-5 (``tests.test_opt_util.rewrite``); folds are also checked
against onnxruntime with its graph optimizations off (``_checked_rewrite``)."""
from __future__ import annotations

import numpy as np
import pytest

from converter.ir import Graph
from converter.rewrite import Decline, run_rules
from exporters.onnx.build import run_onnxruntime, to_model
from optimizers.fold_pad import RULES, _per_axis
from tests.test_opt_util import assert_close, fconst, feeds, ops, rewrite


def _checked_rewrite(g):
    """``rewrite`` (onnxruntime before == after at 1e-5), plus the same check against an
    onnxruntime run with graph optimizations off: its default level has its own Pad fusion,
    so the reference above may already be a folded graph."""
    import onnxruntime as ort

    x = feeds(g)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(to_model(g).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    ref = sess.run([o.name for o in g.outputs], x)
    log = rewrite(g, RULES)
    assert_close(ref, run_onnxruntime(g, x))
    return log


def _i64(g, a, name="pads"):
    return g.const(np.asarray(a, np.int64), name)


def _graph(pads, conv_pads=None, value=None, mode="constant", shape=(1, 3, 9, 9),
           strides=2, group=1, bias=True):
    """x -> Pad -> Conv(3x3) -> out; returns (graph, pad output value)."""
    rng = np.random.default_rng(len(pads))
    g = Graph()
    x = g.add_input("x", "float32", shape)
    k = len(shape) - 2
    ins = [x, _i64(g, pads)]
    if value is not None:
        ins.append(fconst(g, value, "value"))
    p = g.op("Pad", *ins, mode=mode, name="pad")
    w = fconst(g, rng.standard_normal((6, p.shape[1] // group) + (3,) * k), "w")
    cins = [p, w] + ([fconst(g, rng.normal(size=6), "b")] if bias else [])
    attrs = {"strides": (strides,) * k, "group": group}
    if conv_pads is not None:
        attrs["pads"] = conv_pads
    g.outputs = [g.op("Conv", *cins, name="conv", **attrs)]
    return g, p


@pytest.mark.parametrize("pads, conv_pads, kw", [
    ((0, 0, 0, 0, 0, 0, 1, 1), None, {}),                       # Keras ((0, 1), (0, 1))
    ((0, 0, 3, 3, 0, 0, 3, 3), (0, 0, 0, 0), {}),               # Keras ZeroPadding2D(3)
    ((0, 0, 1, 2, 0, 0, 2, 1), (1, 0, 0, 1), {"strides": 1}),   # F.pad, padded conv
    ((0, 0, 1, 0, 0, 0, 0, 2), None, {"value": 0.0, "group": 3, "bias": False}),
])
def test_folds(pads, conv_pads, kw):
    g, _ = _graph(pads, conv_pads, **kw)
    log = _checked_rewrite(g)
    assert ops(g) == ["Conv"] and log.counts == {"fold_pad_conv": 1}
    conv = g.nodes[0]
    assert conv.input(0) is g.inputs[0] and conv.meta["fused_from"] == ["Pad"]
    assert g.outputs[0].name == "conv"


def test_conv1d_and_pads_sum():
    g, _ = _graph((0, 0, 2, 0, 0, 5), conv_pads=(1, 1), shape=(2, 3, 12), strides=1)
    _checked_rewrite(g)
    assert ops(g) == ["Conv"] and g.nodes[0].attrs["pads"] == (3, 6)


@pytest.mark.parametrize("pads, kw, reason", [
    ((0, 0, 1, 1, 0, 0, 1, 1), {"mode": "reflect"}, "not constant"),
    ((0, 0, 1, 1, 0, 0, 1, 1), {"value": 0.5}, "is not 0"),
    ((0, 1, 1, 1, 0, 1, 1, 1), {}, "batch or channel"),
    ((0, 0, 2, 2, 0, 0, -1, 0), {}, "negative"),
])
def test_declines(pads, kw, reason):
    g, _ = _graph(pads, **kw)
    log = rewrite(g, RULES)
    assert ops(g) == ["Pad", "Conv"] and log.counts == {}
    assert log.declines and reason in log.declines[0][2]


def test_runtime_pad_value_declined():
    g = Graph()
    x = g.add_input("x", "float32", (1, 2, 6, 6))
    v = g.add_input("v", "float32", ())
    p = g.op("Pad", x, _i64(g, (0, 0, 1, 1, 0, 0, 1, 1)), v)
    g.outputs = [g.op("Conv", p, fconst(g, np.ones((2, 2, 3, 3))), name="out")]
    log = rewrite(g, RULES)
    assert ops(g) == ["Pad", "Conv"] and "not a constant" in log.declines[0][2]


def test_second_consumer_keeps_pad():
    g, p = _graph((0, 0, 1, 1, 0, 0, 1, 1))
    g.outputs = g.outputs + [g.op("Relu", p, name="side")]
    log = rewrite(g, RULES)
    assert sorted(ops(g)) == ["Conv", "Pad", "Relu"] and log.counts == {}


def test_graph_output_pad_kept():
    g, p = _graph((0, 0, 1, 1, 0, 0, 1, 1))
    g.outputs = [p] + g.outputs
    log = rewrite(g, RULES)
    assert ops(g) == ["Pad", "Conv"] and log.counts == {}


def test_conv_transpose_not_folded():
    g = Graph()
    x = g.add_input("x", "float32", (1, 2, 5, 5))
    p = g.op("Pad", x, _i64(g, (0, 0, 1, 1, 0, 0, 1, 1)))
    g.outputs = [g.op("ConvTranspose", p, fconst(g, np.ones((2, 3, 3, 3))), name="out")]
    assert rewrite(g, RULES).counts == {} and ops(g) == ["Pad", "ConvTranspose"]


def test_axes_operand_maps_pads():
    # IR shape inference of Pad ignores the axes operand, so this is checked on the helper.
    pads = np.array([1, 2, 0, 1], np.int64)
    assert _per_axis(pads, [2, -1], 4) == [(0, 0), (0, 0), (1, 0), (2, 1)]
    assert isinstance(_per_axis(pads, [2, 2], 4), Decline)
    assert isinstance(_per_axis(pads, None, 4), Decline)  # 4 pads for rank 4


def _pool_graph(pad_pads, src="Relu", shape=(1, 4, 8, 8), **attrs):
    """x -> src -> Pad -> MaxPool -> out (Keras ResNet50 pool1: pad 1, 3x3 stride 2)."""
    g = Graph()
    x = g.add_input("x", "float32", shape)
    y = {"Relu": lambda: g.op("Relu", x),
         "Clip": lambda: g.op("Clip", x, fconst(g, 0.0), fconst(g, 6.0)),
         "Clip-1": lambda: g.op("Clip", x, fconst(g, -1.0), fconst(g, 6.0)),
         "input": lambda: x}[src]()
    p = g.op("Pad", y, _i64(g, pad_pads))
    attrs = {"kernel_shape": (3, 3), "strides": (2, 2), **attrs}
    g.outputs = [g.op("MaxPool", p, name="pool", **attrs)]
    return g


@pytest.mark.parametrize("pads, src, attrs", [
    ((0, 0, 1, 1, 0, 0, 1, 1), "Relu", {}),
    ((0, 0, 0, 1, 0, 0, 2, 0), "Clip", {"pads": (1, 0, 0, 1)}),
    ((0, 0, 1, 1, 0, 0, 1, 1), "Relu", {"dilations": (2, 2)}),
])
def test_maxpool_folds(pads, src, attrs):
    g = _pool_graph(pads, src, **attrs)
    log = _checked_rewrite(g)
    assert log.counts == {"fold_pad_maxpool": 1} and ops(g) == [src, "MaxPool"]
    assert g.nodes[1].meta["fused_from"] == ["Pad"]


@pytest.mark.parametrize("pads, src, attrs, reason", [
    ((0, 0, 1, 1, 0, 0, 1, 1), "input", {}, "not known to be >= 0"),
    ((0, 0, 1, 1, 0, 0, 1, 1), "Clip-1", {}, "not known to be >= 0"),
    ((0, 0, 1, 1, 0, 0, 1, 1), "Relu", {"ceil_mode": 1}, "ceil_mode"),
    ((0, 0, 1, 1, 0, 0, 1, 1), "Relu", {"kernel_shape": (2, 2), "dilations": (3, 3),
                                        "strides": (1, 1), "shape": (1, 4, 2, 2)},
     "only padding"),  # padded 4x4, window cells 0 and 3 per axis: all padding
])
def test_maxpool_declines(pads, src, attrs, reason):
    g = _pool_graph(pads, src, **attrs)
    log = rewrite(g, RULES)
    assert log.counts == {} and "Pad" in ops(g) and reason in log.declines[0][2]


def test_maxpool_pads_not_above_kernel():
    # windows would hold x cells (dilation 3), but ONNX Runtime rejects MaxPool pads >= kernel;
    # not run in onnxruntime: its own graph optimizer fuses this Pad and then fails the same way
    g = _pool_graph((0, 0, 2, 0, 0, 0, 0, 0), kernel_shape=(2, 2), dilations=(3, 3))
    log = run_rules(g, list(RULES))
    assert log.counts == {} and "pads >= kernel" in log.declines[0][2]
