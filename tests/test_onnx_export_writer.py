"""ONNX writer: IR version per opset, metadata, deterministic bytes, fp16 weights behind Casts,
external data (mechanism tested with a lowered threshold), atomic writes, describe()."""
from __future__ import annotations

import os

import numpy as np
import pytest

import onnx
import onnxruntime  # noqa: F401  (required: the test extra installs it)

from converter.ir import Graph  # noqa: E402
from converter.options import ConvertOptions  # noqa: E402
from exporters import onnx as ox  # noqa: E402
from exporters.onnx import writer  # noqa: E402
from exporters.onnx.build import run_onnxruntime  # noqa: E402
from exporters.onnx.lower import lower_graph  # noqa: E402
from tests.test_onnx_export import export_check, feeds_for, rnd  # noqa: E402


def small_cnn(name="cnn"):
    """Conv -> Relu -> Conv -> GlobalAveragePool -> Flatten -> Gemm with seeded weights."""
    g = Graph(name)
    x = g.add_input("image", "float32", (1, 3, 12, 12))
    y = g.op("Relu", g.op("Conv", x, g.const(rnd(16, 3, 3, 3, scale=0.3), "conv1.weight"),
                          g.const(rnd(16, seed=1), "conv1.bias"), pads=(1, 1, 1, 1)))
    y = g.op("Conv", y, g.const(rnd(8, 16, 3, 3, scale=0.2, seed=2), "conv2.weight"),
             strides=(2, 2))
    y = g.op("Flatten", g.op("GlobalAveragePool", y))
    g.outputs = [g.op("Gemm", y, g.const(rnd(10, 8, seed=3), "fc.weight"),
                      g.const(rnd(10, seed=4), "fc.bias"), transB=1, name="logits")]
    return g


def _listing(path):
    return sorted(os.listdir(path))


@pytest.mark.parametrize("opset,ir", [(13, 7), (17, 8), (18, 8), (19, 9), (20, 9), (21, 10),
                                      (23, 11), (24, 12), (25, 13), (26, 13)])
def test_ir_version_follows_the_version_table(opset, ir):
    assert writer.ir_version_for(opset) == ir


def test_model_header_metadata_and_names(tmp_path):
    g = small_cnn()
    opts = ConvertOptions(opset=18, source_sha256="ab" * 32, passes=("fold_a", "strip_b"))
    (path,) = ox.export(g, tmp_path, "net", opts)
    assert path == tmp_path / "net.onnx" and _listing(tmp_path) == ["net.onnx"]
    m = onnx.load(str(path))
    assert (m.ir_version, m.producer_name, m.producer_version) == (8, "mconv", "0.1.0")
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 18)]
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta == {"mconv_version": "0.1.0", "source_sha256": "ab" * 32,
                    "passes": "fold_a,strip_b"}
    assert m.graph.name == "cnn"
    assert [i.name for i in m.graph.input] == ["image"]
    assert [o.name for o in m.graph.output] == ["logits"]
    assert [n.name for n in m.graph.node] == [n.name for n in g.nodes]
    assert {t.name for t in m.graph.initializer} == {"conv1.weight", "conv1.bias",
                                                    "conv2.weight", "fc.weight", "fc.bias"}
    assert not {t.name for t in m.graph.initializer} & {i.name for i in m.graph.input}
    produced = {o for n in m.graph.node for o in n.output} - {"logits"}
    assert {v.name for v in m.graph.value_info} == produced
    assert ox.describe([path]) == {"ops": 6, "op_counts": {
        "Conv": 2, "Flatten": 1, "Gemm": 1, "GlobalAveragePool": 1, "Relu": 1}}


def test_deterministic_bytes(tmp_path):
    opts = ConvertOptions(opset=17, source_sha256="0" * 64, passes=("p",))
    a = ox.export(small_cnn(), tmp_path / "a", "net", opts)[0].read_bytes()
    b = ox.export(small_cnn(), tmp_path / "b", "net", opts)[0].read_bytes()
    assert a == b


@pytest.mark.parametrize("opset", [13, 20])
def test_fp16_weights_behind_casts(tmp_path, opset):
    g = small_cnn()
    m = export_check(g, tmp_path, opset, fp16=True, atol=1e-2)
    half = {t.name for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16}
    # >= 16 elements: the weights and the 16-channel bias; the 10-element fc.bias stays fp32
    assert half == {"conv1.weight_fp16", "conv1.bias_fp16", "conv2.weight_fp16",
                    "fc.weight_fp16"}
    casts = [n for n in m.graph.node if n.op_type == "Cast"]
    assert sorted(n.output[0] for n in casts) == ["conv1.bias", "conv1.weight", "conv2.weight",
                                                  "fc.weight"]
    for v in (*m.graph.input, *m.graph.output):
        assert v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {p.key: p.value for p in m.metadata_props}["weights"] == "float16"
    full = ox.export(g, tmp_path / "fp32", "net", ConvertOptions(opset=opset))[0]
    assert (tmp_path / f"m{opset}h.onnx").stat().st_size < 0.7 * full.stat().st_size


def test_fp16_keeps_out_of_range_constants_fp32(tmp_path):
    g = Graph("t")
    x = g.add_input("x", "float32", (1, 32))
    big = np.full((1, 32), 1e6, np.float32)
    g.outputs = [g.op("Add", x, g.const(big, "big"))]
    m = export_check(g, tmp_path, 17, fp16=True, atol=1e-2)
    assert [t.data_type for t in m.graph.initializer] == [onnx.TensorProto.FLOAT]


def test_external_data_mechanism(tmp_path):
    """With a lowered threshold every initializer of >= 1 KiB goes to ``<stem>.onnx.data``;
    the model loads from its path in onnxruntime and gives the same outputs."""
    g = small_cnn()
    model = lower_graph(g, ConvertOptions(opset=17))
    out = tmp_path / "a"
    files = writer.write(model, out, "big", None, external_threshold=1024)
    assert files == [out / "big.onnx", out / "big.onnx.data"]
    assert _listing(out) == ["big.onnx", "big.onnx.data"]
    m = onnx.load(str(files[0]), load_external_data=False)
    ext = {t.name for t in m.graph.initializer
           if t.data_location == onnx.TensorProto.EXTERNAL}
    assert ext == {"conv1.weight", "conv2.weight"}  # fc.weight is 320 B, biases smaller
    for t in m.graph.initializer:
        if t.name in ext:
            info = {e.key: e.value for e in t.external_data}
            assert info["location"] == "big.onnx.data" and int(info["offset"]) % 4096 == 0
    onnx.checker.check_model(str(files[0]), full_check=True)
    feeds = feeds_for(g)
    got = ox.run(files, feeds)
    np.testing.assert_allclose(got[0], run_onnxruntime(g, feeds)[0], atol=1e-5)
    again = writer.write(model, tmp_path / "b", "big", None, external_threshold=1024)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in files]
    # re-exported with inline weights: the stale data file goes away
    writer.write(model, out, "big", None)
    assert _listing(out) == ["big.onnx"]


@pytest.mark.parametrize("external", [False, True])
def test_failure_leaves_no_files(tmp_path, monkeypatch, external):
    model = lower_graph(small_cnn(), ConvertOptions(opset=17))
    real = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == (2 if external else 1):
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        writer.write(model, tmp_path, "m", None, external_threshold=1024 if external else
                     writer.EXTERNAL_THRESHOLD)
    assert _listing(tmp_path) == []


def test_checker_failure_keeps_previous_file(tmp_path, monkeypatch):
    model = lower_graph(small_cnn(), ConvertOptions(opset=17))
    (path,) = writer.write(model, tmp_path, "m")
    before = path.read_bytes()

    def broken(*a, **k):
        raise onnx.checker.ValidationError("broken")

    monkeypatch.setattr(onnx.checker, "check_model", broken)
    other = lower_graph(small_cnn(), ConvertOptions(opset=20))
    with pytest.raises(onnx.checker.ValidationError):
        writer.write(other, tmp_path, "m")
    assert _listing(tmp_path) == ["m.onnx"] and path.read_bytes() == before
