"""ncnn exporter: .param/.bin format, Split insertion, names, determinism, fp16, the pre-flight
scan, atomic writes and output order."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

import ncnn  # noqa: F401  (required: the test extra installs it)
import onnxruntime  # noqa: F401  (required: the test extra installs it)

from converter.errors import UnsupportedOpsError  # noqa: E402
from converter.ir import Graph  # noqa: E402
from converter.options import ConvertOptions  # noqa: E402
from exporters import ncnn as nx  # noqa: E402
from exporters.ncnn import writer  # noqa: E402
from exporters.onnx.build import run_onnxruntime  # noqa: E402
from tests.test_ncnn_export import (  # noqa: E402
    export_and_compare, i64, inputs_for, layer_lines, layer_types, rnd)


def small_net(name_x="x"):
    """conv+relu -> (depthwise conv + maxpool) concat -> add const -> gap -> gemm -> softmax."""
    g = Graph("net")
    x = g.add_input(name_x, "float32", (1, 3, 8, 8))
    c = g.op("Relu", g.op("Conv", x, g.const(rnd(8, 3, 3, 3, scale=0.3)),
                          g.const(rnd(8, seed=2)), pads=(1, 1, 1, 1)))
    d = g.op("Conv", c, g.const(rnd(8, 1, 3, 3, scale=0.3, seed=3)), pads=(1, 1, 1, 1), group=8)
    cat = g.op("Concat", g.op("AveragePool", d, kernel_shape=(2, 2), strides=(2, 2)),
               g.op("MaxPool", c, kernel_shape=(2, 2), strides=(2, 2)), axis=1)
    s = g.op("Add", cat, g.const(rnd(16, 1, 1, seed=4)))
    f = g.op("Flatten", g.op("GlobalAveragePool", s))
    y = g.op("Gemm", f, g.const(rnd(10, 16, seed=5)), g.const(rnd(10, seed=6)), transB=1)
    g.outputs = [g.op("Softmax", y, axis=1)]
    return g


# ------------------------------------------------------------------ .param format
def test_param_structure(tmp_path):
    files = export_and_compare(small_net(), tmp_path)
    assert [p.name for p in files] == ["m.ncnn.param", "m.ncnn.bin"]
    text = files[0].read_text()
    lines = text.splitlines()
    assert lines[0] == "7767517"
    n_layers, n_blobs = map(int, lines[1].split())
    layers = layer_lines(files[0])
    assert n_layers == len(layers) == len(lines) - 2
    blobs = {b for _, _, ins, outs, _ in layers for b in ins + outs}
    assert n_blobs == len(blobs)
    consumers = [b for _, _, ins, _, _ in layers for b in ins]
    assert len(consumers) == len(set(consumers)), "a blob is read by two layers"
    assert len({name for _, name, *_ in layers}) == len(layers)
    for typ, _, _, _, params in layers:
        for k, v in params.items():
            assert re.fullmatch(r"-?\d+", k)
            if int(k) <= -23300:
                count, *items = v.split(",")
                assert int(count) == len(items)
    # Softmax with axis writes fixbug0; float params carry a decimal point
    assert layers[-1][0] == "Softmax" and layers[-1][4] == {"0": "0", "1": "1"}


def test_float_and_array_formatting():
    assert writer.format_float(6) == "6.0"
    assert writer.format_float(1e-5) == "1e-05"
    assert writer.format_float(1 / 6) == "0.16666667"
    assert writer.format_float(float("inf")) == "3.4028235e+38"
    assert writer.format_params({10: [0.0, 6.0], 0: 3, 9: 3}) == "0=3 9=3 -23310=2,0.0,6.0"
    with pytest.raises(ValueError):
        writer.format_params({30: 1})
    with pytest.raises(ValueError):
        writer.format_float(float("nan"))


def test_input_layer_and_split_for_fan_out(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4, 5))
    r = g.op("Relu", x)
    g.outputs = [g.op("Add", g.op("Sigmoid", r), g.op("Tanh", r)), g.op("Neg", x)]
    files = export_and_compare(g, tmp_path)
    layers = layer_lines(files[0])
    assert layers[0][:4] == ("Input", "x", [], ["x"])
    assert layers[0][4] == {"0": "5", "1": "4", "2": "3"}
    splits = [l for l in layers if l[0] == "Split"]
    assert [len(s[3]) for s in splits] == [2, 2]  # x -> relu, neg; relu -> sigmoid, tanh


def test_graph_output_also_consumed_gets_split(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4, 5))
    r = g.op("Relu", x, name="relu")
    g.outputs = [r, g.op("Sigmoid", r)]
    files = export_and_compare(g, tmp_path)
    layers = layer_lines(files[0])
    split = next(l for l in layers if l[0] == "Split")
    assert r.name in split[3]
    assert all(r.name not in ins for _, _, ins, _, _ in layers)


def test_names_are_sanitized_unique_and_io_names_kept(tmp_path):
    g = Graph("t")
    x = g.add_input("in put", "float32", (1, 3, 4, 5))
    a = g.op("Relu", x, name="a b")
    b = g.op("Sigmoid", a, name="a_b")
    long = "n" * 300
    c = g.op("Tanh", b, name=long)
    g.outputs = [c, g.op("Neg", a, name="out put")]
    files = export_and_compare(g, tmp_path)
    layers = layer_lines(files[0])
    names = [n for _, n, *_ in layers] + [b for l in layers for b in l[2] + l[3]]
    assert all(len(n.encode()) <= 255 and not re.search(r"\s", n) for n in names)
    assert layers[0][1:4] == ("in_put", [], ["in_put"])
    outs = {b for l in layers for b in l[3]}
    assert "out_put" in outs and "n" * 255 in outs


# ------------------------------------------------------------------ weights
def test_bin_layout_fp32_and_fp16(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4, 4))
    w = rnd(3, 3, 1, 1, seed=3)  # 9 weights: odd count -> fp16 needs 2 bytes of padding
    b = rnd(3, seed=4)
    g.outputs = [g.op("Conv", x, g.const(w), g.const(b))]
    f32_files = export_and_compare(g, tmp_path / "a")
    data = f32_files[1].read_bytes()
    assert data == b"\0\0\0\0" + w.astype("<f4").tobytes() + b.astype("<f4").tobytes()
    f16_files = export_and_compare(g, tmp_path / "b", fp16=True, atol=1e-2)
    data = f16_files[1].read_bytes()
    assert data[:4] == bytes.fromhex("476b3001")
    assert data[4:22] == w.astype("<f2").tobytes() and data[22:24] == b"\0\0"
    assert data[24:] == b.astype("<f4").tobytes()


def test_fp16_small_net_runs(tmp_path):
    files = export_and_compare(small_net(), tmp_path, fp16=True, atol=1e-2)
    assert files[1].stat().st_size < export_and_compare(small_net(), tmp_path / "f32")[1].stat(
    ).st_size


def test_byte_identical_repeat_export(tmp_path):
    for fp16 in (False, True):
        opts = ConvertOptions(fp16=fp16)
        a = nx.export(small_net(), tmp_path / f"a{fp16}", "m", opts)
        b = nx.export(small_net(), tmp_path / f"b{fp16}", "m", opts)
        assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


# ------------------------------------------------------------------ scan and failures
def test_scan_lists_every_problem_and_export_writes_nothing(tmp_path):
    g = Graph("bad")
    x = g.add_input("x", "float32", (2, 3, 8, 8))
    c = g.op("Conv", x, g.const(rnd(4, 3, 3, 3)), name="conv_b2")
    e = g.op("Equal", c, c, name="eq")
    z = g.op("Where", e, c, g.const(np.float32(0)), name="where")
    y = g.add("Resize", [z, None, g.const(np.array([1, 1, 2, 2], np.float32))],
              {"mode": "nearest", "coordinate_transformation_mode": "half_pixel"},
              name="resize").outputs[0]
    g.outputs = [y]
    issues = nx.scan(g, None)
    found = {(i.op, i.code) for i in issues}
    assert ("<input>", "ncnn.batch") in found
    assert ("Conv", "ncnn.batch") in found
    assert ("Equal", "no-lowering") in found and ("Where", "no-lowering") in found
    assert ("Resize", "ncnn.attr") in found
    with pytest.raises(UnsupportedOpsError) as err:
        nx.export(g, tmp_path / "out", "m", None)
    assert len(err.value.issues) >= 5
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("fail_at", [1, 2])
def test_forced_writer_failure_leaves_no_files(tmp_path, monkeypatch, fail_at):
    calls = {"n": 0}
    real = os.replace

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError("disk full (forced)")
        return real(src, dst)

    monkeypatch.setattr(writer.os, "replace", flaky)
    with pytest.raises(OSError):
        nx.export(small_net(), tmp_path, "m", None)
    assert list(tmp_path.iterdir()) == []


def test_serialization_error_leaves_no_files(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise ValueError("forced")
    monkeypatch.setattr(writer, "bin_bytes", broken)
    with pytest.raises(ValueError):
        nx.export(small_net(), tmp_path, "m", None)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ outputs
def test_outputs_follow_graph_order(tmp_path):
    """Outputs listed against lowering order: the layers are reordered (or a Noop added) so
    that run() without the graph returns graph order; with the graph it is the same."""
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4, 5))
    a = g.op("Relu", x)
    b = g.op("Sigmoid", x)
    c = g.op("Tanh", a)
    g.outputs = [b, c, a]
    files = export_and_compare(g, tmp_path)
    feeds = inputs_for(g)
    with_graph = nx.run(files, feeds, None, graph=g)
    for got, ref in zip(with_graph, run_onnxruntime(g, feeds)):
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_unused_graph_input_and_multiple_inputs(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4, 5))
    g.add_input("unused", "float32", (1, 2))
    y = g.add_input("y", "float32", (1, 3, 4, 5))
    g.outputs = [g.op("Sub", y, x)]
    files = export_and_compare(g, tmp_path)
    assert layer_types(files[0]) == ["Input", "Input", "Input", "BinaryOp"]


# ------------------------------------------------------------------ small blocks, tightness
def _conv_bn_free(g, x, cin, cout, k=3, s=1, group=1, act="Relu", seed=0):
    w = g.const(rnd(cout, cin // group, k, k, scale=0.2, seed=seed))
    y = g.op("Conv", x, w, g.const(rnd(cout, seed=seed + 1)), pads=(k // 2,) * 4,
             strides=(s, s), group=group)
    return g.op(act, y) if act else y


def test_resnet_basic_block_is_tight(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 8, 6, 6))
    y = _conv_bn_free(g, x, 8, 8, seed=1)
    y = _conv_bn_free(g, y, 8, 8, act=None, seed=3)
    g.outputs = [g.op("Relu", g.op("Add", y, x))]
    files = export_and_compare(g, tmp_path)
    # pnnx: Input, Split, Convolution(relu), Convolution, BinaryOp, ReLU
    assert layer_types(files[0]) == ["Input", "Split", "Convolution", "Convolution", "BinaryOp",
                                     "ReLU"]


def test_mobilenet_v2_block_is_tight(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 8, 6, 6))
    y = _conv_bn_free(g, x, 8, 24, k=1, act="Relu", seed=1)
    y = g.op("Clip", y, g.const(np.float32(0)), g.const(np.float32(6)))
    y = _conv_bn_free(g, y, 24, 24, group=24, act=None, seed=3)
    y = g.op("Clip", y, g.const(np.float32(0)), g.const(np.float32(6)))
    y = _conv_bn_free(g, y, 24, 8, k=1, act=None, seed=5)
    g.outputs = [g.op("Add", x, y)]
    files = export_and_compare(g, tmp_path)
    types = layer_types(files[0])
    assert types == ["Input", "Split", "Convolution", "Clip", "ConvolutionDepthWise",
                     "Convolution", "BinaryOp"]


def test_shufflenet_unit(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 8, 6, 6))
    a, b = g.add("Split", [x], {"axis": 1, "num_outputs": 2}, n_out=2).outputs
    b = _conv_bn_free(g, b, 4, 4, k=1, seed=1)
    b = _conv_bn_free(g, b, 4, 4, group=4, act=None, seed=3)
    b = _conv_bn_free(g, b, 4, 4, k=1, seed=5)
    y = g.op("Concat", a, b, axis=1)
    r = g.op("Reshape", y, g.const(i64(1, 2, 4, 6, 6)))
    t = g.op("Transpose", r, perm=(0, 2, 1, 3, 4))
    g.outputs = [g.op("Reshape", t, g.const(i64(1, 8, 6, 6)))]
    files = export_and_compare(g, tmp_path)
    assert layer_types(files[0]) == ["Input", "Slice", "Convolution", "ConvolutionDepthWise",
                                     "Convolution", "Concat", "ShuffleChannel"]


# ------------------------------------------------------------------ odd graphs
def test_same_blob_read_twice_by_one_layer(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 4, 5))
    r = g.op("Relu", x)
    g.outputs = [g.op("Mul", r, r), g.op("Concat", x, x, axis=2)]
    files = export_and_compare(g, tmp_path)
    assert layer_types(files[0]).count("Split") == 2


@pytest.mark.parametrize("consumer", ["conv3x3", "batchnorm", "prelu", "softmax", "reshape",
                                      "gemm"])
def test_compact_pooled_blob_consumers(tmp_path, consumer):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 6, 5, 4))
    p = g.op("GlobalAveragePool", x)
    if consumer == "conv3x3":
        y = g.op("Conv", p, g.const(rnd(4, 6, 3, 3, scale=0.3)), pads=(1, 1, 1, 1))
    elif consumer == "batchnorm":
        c = [g.const(np.abs(rnd(6, seed=i)) + 0.2) for i in range(4)]
        y = g.op("BatchNormalization", p, *c)
    elif consumer == "prelu":
        y = g.op("PRelu", p, g.const(rnd(6, 1, 1, seed=3)))
    elif consumer == "softmax":
        y = g.op("Softmax", p, axis=1)
    elif consumer == "reshape":
        y = g.op("Reshape", p, g.const(i64(1, 3, 2)))
    else:
        y = g.op("Gemm", g.op("Flatten", p), g.const(rnd(6, 3)))
    g.outputs = [y]
    export_and_compare(g, tmp_path)


def _rejects(build, shape=(1, 3, 8, 8)):
    g = Graph("t")
    x = g.add_input("x", "float32", shape)
    g.outputs = [build(g, x)]
    return {(i.op, i.code) for i in nx.scan(g, None)}


@pytest.mark.parametrize("build,shape,expected", [
    (lambda g, x: g.op("Conv", x, g.const(rnd(4, 3, 3, 3, 3))), (1, 3, 5, 5, 5),
     ("Conv", "ncnn.rank")),
    (lambda g, x: g.op("Pad", x, g.const(i64(0, 0, 1, 1, 0, 0, 1, 1)), mode="wrap"), None,
     ("Pad", "ncnn.attr")),
    (lambda g, x: g.op("Pad", x, g.const(i64(0, 0, -1, 1, 0, 0, 1, 1))), None,
     ("Pad", "ncnn.attr")),
    (lambda g, x: g.op("Transpose", x, perm=(1, 0, 2, 3)), (1, 3, 4, 5),
     ("Transpose", "ncnn.batch")),
    (lambda g, x: g.op("Transpose", x, perm=(1, 0, 3, 2)), (1, 1, 4, 5),
     ("Transpose", "ncnn.batch_axis")),
    (lambda g, x: g.op("Concat", x, x, axis=0), None, ("Concat", "ncnn.batch_axis")),
    (lambda g, x: g.op("Softmax", x, axis=0), None, ("Softmax", "ncnn.batch_axis")),
    (lambda g, x: g.op("MaxPool", x, kernel_shape=(2, 2), dilations=(2, 2)), None,
     ("MaxPool", "ncnn.attr")),
    (lambda g, x: g.add("Resize", [x, None, g.const(np.array([1, 1, 1.5, 1.5], np.float32))],
                        {"mode": "linear"}).outputs[0], (1, 3, 5, 5), ("Resize", "ncnn.attr")),
    (lambda g, x: g.op("Conv", x, g.add_input("w", "float32", (4, 3, 3, 3))), None,
     ("Conv", "ncnn.const")),
    (lambda g, x: g.op("Slice", x, g.const(i64(0)), g.const(i64(1)), g.const(i64(1)),
                       g.const(i64(2))), (1, 2, 2, 3, 4), ("Slice", "ncnn.attr")),
])
def test_scan_rejections(build, shape, expected):
    assert expected in _rejects(build, shape or (1, 3, 8, 8))


def test_fp16_every_tagged_layer_kind(tmp_path):
    """Odd weight counts in Convolution, ConvolutionDepthWise, Deconvolution(DepthWise) and
    InnerProduct: each tagged fp16 array is padded to 4 bytes, so the reads stay aligned."""
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 3, 5, 5))
    y = g.op("Conv", x, g.const(rnd(3, 3, 3, 3, scale=0.3)), g.const(rnd(3)), pads=(1,) * 4)
    y = g.op("Conv", y, g.const(rnd(3, 1, 3, 3, scale=0.3, seed=2)), pads=(1,) * 4, group=3)
    y = g.op("ConvTranspose", y, g.const(rnd(3, 1, 3, 3, scale=0.3, seed=3)), strides=(2, 2),
             group=3)
    y = g.op("ConvTranspose", y, g.const(rnd(3, 3, 1, 1, scale=0.3, seed=4)))
    y = g.op("Gemm", g.op("Flatten", g.op("GlobalAveragePool", y)), g.const(rnd(3, 5)))
    g.outputs = [y]
    export_and_compare(g, tmp_path, fp16=True, atol=1e-2)
