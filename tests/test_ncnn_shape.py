"""ncnn exporter: shape and data-movement ops, Resize, Pad and reductions, each compared with
onnxruntime on the same IR graph (helpers in ``test_ncnn_export``)."""
from __future__ import annotations

import itertools

import pytest

import ncnn  # noqa: F401  (required: the test extra installs it)
import onnxruntime  # noqa: F401  (required: the test extra installs it)

from converter.ir import Graph  # noqa: E402
from exporters import ncnn as nx  # noqa: E402
from tests.test_ncnn_export import (  # noqa: E402
    export_and_compare, f32, i64, layer_lines, layer_types, rnd, single)


# ------------------------------------------------------------------ concat / split / slice
@pytest.mark.parametrize("shape,axis", [((1, 4, 5, 6), 1), ((1, 4, 5, 6), 2), ((1, 4, 5, 6), -1),
                                        ((1, 4, 7), 2), ((1, 6), 1), ((1, 2, 3, 4, 5), 2)])
def test_concat(tmp_path, shape, axis):
    def build(g, x):
        y = g.op("Sigmoid", x)
        return g.op("Concat", x, y, g.op("Neg", x), axis=axis)
    files = single(build, shape, tmp_path)
    assert layer_types(files[0]).count("Concat") == 1


def test_concat_constant_input(tmp_path):
    single(lambda g, x: g.op("Concat", x, g.const(rnd(1, 2, 5, 6, seed=4)), axis=1),
           (1, 3, 5, 6), tmp_path)


@pytest.mark.parametrize("shape,axis,sizes", [
    ((1, 6, 4, 5), 1, (2, 4)), ((1, 6, 4, 5), 2, (1, 3)), ((1, 6, 4, 5), -1, (2, 2, 1)),
    ((1, 6, 8), 2, (3, 5))])
def test_split(tmp_path, shape, axis, sizes):
    def build(g, x):
        return g.add("Split", [x, g.const(i64(*sizes))], {"axis": axis},
                     n_out=len(sizes)).outputs
    files = single(build, shape, tmp_path)
    assert "Slice" in layer_types(files[0])


def test_split_equal_chunks_and_unused_output(tmp_path):
    def build(g, x):
        a, b = g.add("Split", [x], {"axis": 1, "num_outputs": 2}, n_out=2).outputs
        c, _, e = g.add("Split", [x], {"axis": 2, "num_outputs": 3}, n_out=3).outputs
        return [a, g.op("Relu", b), c, e]
    files = single(build, (1, 6, 6, 5), tmp_path)
    assert layer_types(files[0]).count("Crop") == 2


SLICES = [  # starts, ends, axes, steps
    ((1,), (3,), (1,), None),
    ((0, 1), (2, -1), (2, 3), None),
    ((-3,), (1000,), (-1,), None),
    ((1, 0), (5, 4), (1, 2), (1, 1)),
    ((0,), (1 << 62,), (2,), (2,)),
    ((1,), (6,), (3,), (2,)),
    ((0, 0), (7, 6), (2, 3), (2, 2)),
    ((-1,), (-1000,), (3,), (-1,)),
    ((4,), (0,), (2,), (-2,)),
    ((0,), (1,), (0,), None),
    ((0,), (7,), (3,), (3,)),
    ((1,), (5,), (1,), (3,)),
    ((0, 1), (5, 7), (1, 2), (2, 3)),
    ((5,), (-1000,), (2,), (-3,)),
]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice(tmp_path, starts, ends, axes, steps):
    def build(g, x):
        ins = [x, g.const(i64(*starts)), g.const(i64(*ends)), g.const(i64(*axes))]
        if steps:
            ins.append(g.const(i64(*steps)))
        return g.op("Slice", *ins)
    single(build, (1, 5, 7, 6), tmp_path)


# ------------------------------------------------------------------ reshapes
@pytest.mark.parametrize("shape,target", [((1, 4, 6, 5), (1, 24, 5)), ((1, 4, 6, 5), (1, -1)),
                                          ((1, 4, 6, 5), (1, 2, 2, 30)), ((1, 120), (1, 4, 6, 5)),
                                          ((1, 4, 6, 5), (0, 2, 2, 6, 5))])
def test_reshape(tmp_path, shape, target):
    files = single(lambda g, x: g.op("Reshape", g.op("Relu", x), g.const(i64(*target))),
                   shape, tmp_path)
    assert layer_types(files[0]) == ["Input", "ReLU", "Reshape"]


@pytest.mark.parametrize("shape,axis", [((1, 4, 6, 5), 1), ((1, 4, 6, 5), 0), ((1, 4, 6), 1)])
def test_flatten(tmp_path, shape, axis):
    single(lambda g, x: g.op("Flatten", g.op("Relu", x), axis=axis), shape, tmp_path)


@pytest.mark.parametrize("op,shape,axes", [("Squeeze", (1, 4, 1, 5), (2,)),
                                           ("Squeeze", (1, 1, 6, 5), (1,)),
                                           ("Unsqueeze", (1, 4, 5), (2,)),
                                           ("Unsqueeze", (1, 4, 5), (-1,))])
def test_squeeze_unsqueeze(tmp_path, op, shape, axes):
    single(lambda g, x: g.op(op, g.op("Relu", x), g.const(i64(*axes))), shape, tmp_path)


def _perms(rank):
    return [(0,) + p for p in itertools.permutations(range(1, rank))]


@pytest.mark.parametrize("shape,perm", [((1, 4, 5), p) for p in _perms(3)]
                         + [((1, 3, 4, 5), p) for p in _perms(4)]
                         + [((1, 2, 3, 4, 5), p) for p in _perms(5)])
def test_transpose(tmp_path, shape, perm):
    files = single(lambda g, x: g.op("Transpose", x, perm=perm), shape, tmp_path)
    if perm != tuple(range(len(shape))):
        assert layer_types(files[0]) == ["Input", "Permute"]


def test_transpose_size_one_axes_is_a_reshape(tmp_path):
    files = single(lambda g, x: g.op("Transpose", g.op("Relu", x), perm=(0, 2, 1, 3)),
                   (1, 1, 4, 5), tmp_path)
    assert "Permute" not in layer_types(files[0])


def test_mtcnn_style_permute_flatten_linear(tmp_path):
    def build(g, x):
        t = g.op("Transpose", x, perm=(0, 3, 2, 1))
        f = g.op("Reshape", t, g.const(i64(1, -1)))
        return g.op("Gemm", f, g.const(rnd(6, 60, scale=0.2)), transB=1)
    single(build, (1, 4, 3, 5), tmp_path)


def test_channel_shuffle(tmp_path):
    def build(g, x):
        r = g.op("Reshape", g.op("Relu", x), g.const(i64(1, 2, 4, 5, 6)))
        t = g.op("Transpose", r, perm=(0, 2, 1, 3, 4))
        return g.op("Reshape", t, g.const(i64(1, 8, 5, 6)))
    files = single(build, (1, 8, 5, 6), tmp_path)
    lines = layer_lines(files[0])
    assert [t for t, *_ in lines] == ["Input", "ReLU", "ShuffleChannel"]
    assert lines[-1][4] == {"0": "2"}


def test_identity_and_dropout_are_free(tmp_path):
    def build(g, x):
        y = g.add("Dropout", [g.op("Identity", g.op("Relu", x))], n_out=2).outputs[0]
        return g.op("Identity", y)
    files = single(build, (1, 3, 4, 5), tmp_path)
    assert layer_types(files[0]) == ["Input", "ReLU"]


def test_output_aliasing_input(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4, 5))
    g.outputs = [g.op("Identity", x), g.op("Relu", x)]
    export_and_compare(g, tmp_path)


# ------------------------------------------------------------------ resize
RESIZE = [  # in hw, mode, ctm, nearest_mode, scales or None, sizes or None
    ((5, 7), "nearest", "asymmetric", "floor", (2.0, 2.0), None),
    ((5, 7), "nearest", "asymmetric", "floor", (3.0, 2.0), None),
    ((5, 7), "nearest", "asymmetric", "floor", None, (12, 15)),
    ((6, 8), "nearest", "asymmetric", "floor", None, (3, 5)),
    ((5, 7), "linear", "half_pixel", None, (2.0, 2.0), None),
    ((5, 7), "linear", "pytorch_half_pixel", None, None, (9, 16)),
    ((5, 7), "linear", "align_corners", None, None, (10, 13)),
    ((5, 7), "linear", "align_corners", None, (2.0, 2.0), None),
    ((8, 8), "linear", "half_pixel", None, (0.5, 0.5), None),
    ((5, 7), "cubic", "half_pixel", None, (2.0, 2.0), None),
    ((5, 7), "cubic", "align_corners", None, None, (9, 12)),
]


@pytest.mark.parametrize("hw,mode,ctm,nearest,scales,sizes", RESIZE)
def test_resize(tmp_path, hw, mode, ctm, nearest, scales, sizes):
    def build(g, x):
        attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
        if nearest:
            attrs["nearest_mode"] = nearest
        sc = g.const(f32(1, 1, *scales)) if scales else None
        sz = g.const(i64(1, 3, *sizes)) if sizes else None
        return g.add("Resize", [x, None, sc, sz], attrs).outputs[0]
    files = single(build, (1, 3) + hw, tmp_path)
    assert layer_types(files[0]) == ["Input", "Interp"]


@pytest.mark.parametrize("mode,ctm", [("linear", "half_pixel"), ("linear", "align_corners"),
                                      ("nearest", "asymmetric")])
def test_resize_1d(tmp_path, mode, ctm):
    def build(g, x):
        attrs = {"mode": mode, "coordinate_transformation_mode": ctm, "nearest_mode": "floor"}
        return g.add("Resize", [x, None, None, g.const(i64(1, 3, 17))], attrs).outputs[0]
    single(build, (1, 3, 7), tmp_path)


# ------------------------------------------------------------------ pad
PADS = [  # shape, pads, mode, value
    ((1, 3, 5, 6), (0, 0, 1, 2, 0, 0, 3, 1), "constant", 0.5),
    ((1, 3, 5, 6), (0, 0, 1, 2, 0, 0, 3, 1), "reflect", None),
    ((1, 3, 5, 6), (0, 0, 2, 2, 0, 0, 2, 2), "edge", None),
    ((1, 3, 5, 6), (0, 1, 0, 0, 0, 2, 1, 0), "constant", -1.0),
    ((1, 3, 5, 6), (0, 1, 1, 1, 0, 1, 1, 1), "edge", None),
    ((1, 3, 5, 6), (0, 1, 1, 1, 0, 1, 1, 1), "reflect", None),
    ((1, 3, 7), (0, 0, 2, 0, 0, 3), "reflect", None),
    ((1, 3, 7), (0, 1, 2, 0, 1, 3), "constant", 0.0),
    ((1, 7), (0, 2, 0, 1), "constant", 2.0),
    ((1, 2, 3, 4, 5), (0, 0, 1, 1, 1, 0, 0, 1, 1, 1), "constant", 0.0),
]


@pytest.mark.parametrize("shape,pads,mode,value", PADS)
def test_pad(tmp_path, shape, pads, mode, value):
    def build(g, x):
        ins = [x, g.const(i64(*pads))]
        if value is not None:
            ins.append(g.const(f32(value)))
        return g.op("Pad", *ins, mode=mode)
    files = single(build, shape, tmp_path)
    assert layer_types(files[0]) == ["Input", "Padding"]


# ------------------------------------------------------------------ reductions
REDUCE = [  # shape, axes, keepdims
    ((1, 4, 5, 6), (2, 3), 1), ((1, 4, 5, 6), (2, 3), 0), ((1, 4, 5, 6), (1,), 1),
    ((1, 4, 5, 6), (-1,), 0), ((1, 4, 5, 6), (1, 2, 3), 0), ((1, 4, 5, 6), (0, 2), 1),
    ((1, 1, 1, 6), (0, 1), 0), ((1, 4, 5, 6), None, 1), ((1, 4, 7), (2,), 0), ((1, 8), (1,), 1),
]


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax"])
@pytest.mark.parametrize("shape,axes,keep", REDUCE)
def test_reduce(tmp_path, op, shape, axes, keep):
    def build(g, x):
        ins = [x] + ([g.const(i64(*axes))] if axes is not None else [])
        return g.op(op, *ins, keepdims=keep)
    single(build, shape, tmp_path)


def test_reduce_dropping_batch_is_rejected():
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 4, 5, 6))
    g.outputs = [g.op("ReduceSum", x, g.const(i64(0, 1)), keepdims=0)]
    assert [(i.op, i.code) for i in nx.scan(g, None)] == [("ReduceSum", "ncnn.batch")]


def test_reduce_global_pool_is_one_layer(tmp_path):
    files = single(lambda g, x: g.op("ReduceMean", x, g.const(i64(2, 3)), keepdims=0),
                   (1, 4, 5, 6), tmp_path)
    assert layer_types(files[0]) == ["Input", "Pooling"]
