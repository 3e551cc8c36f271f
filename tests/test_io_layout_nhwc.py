"""--io-layout for the ONNX and OpenVINO exporters: a graph of an NHWC source gets NHWC rank-4
inputs/outputs behind one Transpose each (default "nhwc"), none with "nchw"; graphs of NCHW
sources never change. Every model is run in its real runtime (onnxruntime, OpenVINO CPU f32)
and compared with the IR reference (onnxruntime on the IR graph) within 1e-5 x output scale,
both through the exporters' run() (IR-layout arrays) and fed NHWC arrays directly.
"""
from __future__ import annotations

import numpy as np
import pytest

from converter.ir import Graph
from converter.options import ConvertOptions
from exporters.onnx.build import run_onnxruntime
from tests.test_opt_util import assert_close, feeds

import onnx
import openvino as ov

import exporters.onnx as onnx_exp  # noqa: E402
import exporters.openvino as ov_exp  # noqa: E402

NHWC = (0, 2, 3, 1)


def _graph(source_layout: str = "nhwc") -> Graph:
    """image [1,3,6,5] + vec [1,4] -> feat [1,4,6,5] (rank 4), logits [1,4] (rank 2)."""
    rng = np.random.default_rng(0)
    g = Graph("io")
    g.source_layout = source_layout
    x = g.add_input("image", "float32", (1, 3, 6, 5))
    v = g.add_input("vec", "float32", (1, 4))
    w = g.const(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    feat = g.op("Relu", g.op("Conv", x, w, pads=(1, 1, 1, 1)), name="feat")
    pooled = g.op("ReduceMean", feat, g.const(np.array([2, 3], np.int64)), keepdims=0)
    g.outputs = [feat, g.op("Add", pooled, v, name="logits")]
    g.validate()
    return g


def _export(mod, g, tmp_path, io: str, **kw):
    out = tmp_path / f"{mod.__name__.split('.')[-1]}_{io}_{g.source_layout}"
    return mod.export(g, out, "m", ConvertOptions(io_layout=io, **kw))


def _onnx_io(files):
    m = onnx.load(str(files[0]))
    dims = {t.name: tuple(d.dim_value for d in t.type.tensor_type.shape.dim)
            for t in list(m.graph.input) + list(m.graph.output)}
    return m, dims


@pytest.mark.parametrize("io", ["nhwc", "nchw"])
@pytest.mark.parametrize("mod", [onnx_exp, ov_exp], ids=["onnx", "openvino"])
def test_run_returns_ir_layout(tmp_path, mod, io):
    g = _graph()
    x = feeds(g)
    files = _export(mod, g, tmp_path, io)
    assert_close(run_onnxruntime(g, x), mod.run(files, x, None))


@pytest.mark.parametrize("fp16", [False, True])
def test_onnx_nhwc_boundary(tmp_path, fp16):
    g = _graph()
    files = _export(onnx_exp, g, tmp_path, "nhwc", fp16=fp16)
    m, dims = _onnx_io(files)
    assert dims == {"image": (1, 6, 5, 3), "vec": (1, 4), "feat": (1, 6, 5, 4), "logits": (1, 4)}
    transposes = [n for n in m.graph.node if n.op_type == "Transpose"]
    assert [list(n.input) for n in transposes if "image" in n.input] == [["image"]]
    assert len(transposes) == 2  # one per rank-4 input, one per rank-4 output
    assert {p.key for p in m.metadata_props} >= {"mconv.io_layout"}
    # what a Keras user does: feed NHWC, read NHWC
    import onnxruntime as ort

    x = feeds(g)
    ref = run_onnxruntime(g, x)
    sess = ort.InferenceSession(str(files[0]), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x["image"].transpose(NHWC), "vec": x["vec"]})
    tol = 1e-2 if fp16 else 1e-5
    assert_close([ref[0].transpose(NHWC), ref[1]], got, rtol=tol)


def test_onnx_nchw_has_no_transpose(tmp_path):
    g = _graph()
    m, dims = _onnx_io(_export(onnx_exp, g, tmp_path, "nchw"))
    assert dims["image"] == (1, 3, 6, 5) and dims["feat"] == (1, 4, 6, 5)
    assert not [n for n in m.graph.node if n.op_type == "Transpose"]
    assert "mconv.io_layout" not in {p.key for p in m.metadata_props}


def test_openvino_nhwc_boundary(tmp_path):
    g = _graph()
    files = _export(ov_exp, g, tmp_path, "nhwc")
    model = ov.Core().read_model(str(files[0]))
    shapes = {next(iter(p.get_names())): tuple(p.get_shape()) for p in model.inputs}
    assert shapes == {"image": (1, 6, 5, 3), "vec": (1, 4)}
    assert [tuple(o.get_shape()) for o in model.outputs] == [(1, 6, 5, 4), (1, 4)]
    assert ov_exp.describe(files)["op_counts"].get("Transpose") == 2
    x = feeds(g)
    ref = run_onnxruntime(g, x)
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    res = compiled({"image": x["image"].transpose(NHWC), "vec": x["vec"]})
    assert_close([ref[0].transpose(NHWC), ref[1]], [res[o] for o in compiled.outputs])


def test_openvino_nchw_has_no_transpose(tmp_path):
    files = _export(ov_exp, _graph(), tmp_path, "nchw")
    assert "Transpose" not in ov_exp.describe(files)["op_counts"]
    model = ov.Core().read_model(str(files[0]))
    assert tuple(model.inputs[0].get_shape()) == (1, 3, 6, 5)


@pytest.mark.parametrize("mod", [onnx_exp, ov_exp], ids=["onnx", "openvino"])
def test_nchw_source_ignores_io_layout(tmp_path, mod):
    g = _graph("nchw")
    a = _export(mod, g, tmp_path / "a", "nhwc")
    b = _export(mod, g, tmp_path / "b", "nchw")
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]
    assert "Transpose" not in mod.describe(a)["op_counts"]


@pytest.mark.parametrize("mod", [onnx_exp, ov_exp], ids=["onnx", "openvino"])
def test_nhwc_export_is_deterministic(tmp_path, mod):
    g = _graph()
    a = _export(mod, g, tmp_path / "a", "nhwc")
    b = _export(mod, _graph(), tmp_path / "b", "nhwc")
    assert [f.read_bytes() for f in a] == [f.read_bytes() for f in b]


def test_no_options_mean_nhwc(tmp_path):
    m, dims = _onnx_io(onnx_exp.export(_graph(), tmp_path, "m", None))
    assert dims["image"] == (1, 6, 5, 3)


@pytest.mark.parametrize("mod", [onnx_exp, ov_exp], ids=["onnx", "openvino"])
def test_unknown_io_layout_is_refused_before_writing(tmp_path, mod):
    from converter.errors import UnsupportedOpsError

    issues = mod.scan(_graph(), ConvertOptions(io_layout="nwhc"))
    assert [i.code for i in issues] == [f"{mod.__name__.split('.')[-1]}.option"]
    with pytest.raises(UnsupportedOpsError):
        mod.export(_graph(), tmp_path / "x", "m", ConvertOptions(io_layout="nwhc"))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("mod", [onnx_exp, ov_exp], ids=["onnx", "openvino"])
def test_output_listed_twice_and_input_passthrough(tmp_path, mod):
    g = _graph()
    g.outputs = [g.outputs[0], g.outputs[0], g.inputs[0]]
    x = feeds(g)
    files = _export(mod, g, tmp_path, "nhwc")
    assert_close(run_onnxruntime(g, x), mod.run(files, x, None))
