"""Caffe frontend: the three input forms, the legacy V1 ``layers`` form, layer variants
verified against OpenCV, and bad input (exit codes, the layer named, nothing written), plus a
hypothesis property test: mutated prototxt text and caffemodel bytes only ever raise clean
``MconvError`` subclasses."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cv2  # noqa: F401  (required: the test extra installs it)

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from converter.errors import MconvError  # noqa: E402
from converter.options import ConvertOptions  # noqa: E402
from converter.pipeline import run  # noqa: E402
from fixtures.caffe_models import Net, training_net  # noqa: E402
from tests.conftest import run_mconv  # noqa: E402

ALL = ("ncnn", "onnx", "openvino", "tflite")


def _write(tmp: Path, net: Net, name: str = "m") -> tuple[Path, Path]:
    proto, model = tmp / f"{name}.prototxt", tmp / f"{name}.caffemodel"
    proto.write_text(net.prototxt())
    model.write_bytes(training_net(net).SerializeToString())
    return proto, model


def _verify(proto: Path, out: Path, targets=ALL, **kw):
    res = run(proto, ConvertOptions(targets=targets, output_dir=out, verify=True, **kw))
    assert res.verified is True and len(res.verification) == len(targets) * len(res.outputs)
    for c in res.verification:
        assert c["passed"] and c["max_abs"] <= 1e-4 * max(1.0, c["ref_max"]), c
    return res


def _small(form: str) -> Net:
    n = Net("small", (1, 3, 12, 12), 11, input_form=form)
    y = n.conv("conv1", "data", 8, 3, p=1, relu=False)
    n.simple("relu1", "ReLU", y, "relu_param { negative_slope: 0.1 }", top=y)
    y = n.pool("pool1", y, 3, 2, p=1, ave=True)
    n.fc("fc", y, 5)
    return n


@pytest.mark.parametrize("form", ["layer", "shape", "dim"])
def test_input_forms(tmp_path, form):
    proto, _ = _write(tmp_path, _small(form))
    res = _verify(proto, tmp_path / "o")
    assert res.inputs == [{"name": "data", "shape": [1, 3, 12, 12], "dtype": "float32"}]


V1 = """name: "v1net"
input: "data"
input_dim: 1 input_dim: 2 input_dim: 9 input_dim: 9
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "ip1" type: INNER_PRODUCT bottom: "pool1" top: "ip1"
  inner_product_param { num_output: 3 } }
"""


def test_v1_layers_form(tmp_path):
    from frontends.caffe import caffe_pb2 as pb

    rng = np.random.default_rng(3)
    wn = pb.NetParameter()
    for name, shapes in (("conv1", [(4, 2, 3, 3), (4,)]), ("ip1", [(3, 64), (3,)])):
        lp = wn.layers.add(name=name)
        for s in shapes:
            b = lp.blobs.add()
            b.shape.dim.extend(s)
            b.data.extend(rng.standard_normal(s).astype(np.float32).ravel().tolist())
    (tmp_path / "v1.prototxt").write_text(V1)
    (tmp_path / "v1.caffemodel").write_bytes(wn.SerializeToString())
    res = _verify(tmp_path / "v1.prototxt", tmp_path / "o")
    assert res.source_ops == {"Convolution": 1, "InnerProduct": 1, "Pooling": 1, "ReLU": 1}


def test_layer_variants(tmp_path):
    """Dilated / grouped conv, Deconvolution with pad, PReLU, ELU, Power, Exp, Log,
    AbsVal, Sigmoid, TanH, Scale without bias, Slice, Permute, Reshape, Flatten,
    Interp, ShuffleChannel, LRN WITHIN_CHANNEL, MAX pool with ceil rounding."""
    n = Net("variants", (1, 4, 15, 15), 12)
    y = n.conv("c1", "data", 8, 3, p=2, dil=2, group=2, relu=False)
    n.layer("pr", "PReLU", y, y, "", [n.rng.uniform(0, 0.5, 8)])
    n.layer("sl", "Slice", y, ["a", "b"], "slice_param { axis: 1 slice_point: 3 }")
    n.shapes["a"], n.shapes["b"] = (1, 3, 15, 15), (1, 5, 15, 15)
    a = n.simple("elu", "ELU", "a", "elu_param { alpha: 0.5 }")
    a = n.simple("pw", "Power", a, "power_param { power: 2 scale: 0.5 shift: 2 }")
    a = n.simple("lg", "Log", a)  # OpenCV ignores log_param: only the default is compared
    bb = n.simple("ab", "AbsVal", "b")
    bb = n.simple("ex", "Exp", n.simple("sg", "Sigmoid", bb), "exp_param { base: 2 }")
    bb = n.simple("th", "TanH", bb)
    y = n.concat("cat", [a, bb])
    n.layer("scl", "Scale", y, y, "", [n.rng.uniform(0.5, 2, 8)])
    y = n.simple("lrn", "LRN", y, "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 "
                 "norm_region: WITHIN_CHANNEL }")
    y = n.simple("shuf", "ShuffleChannel", y, "shuffle_channel_param { group: 2 }")
    y = n.pool("mp", y, 3, 2)
    n.shapes["up"] = (1, 8, 13, 13)
    y = n.simple("up", "Interp", y, "interp_param { zoom_factor: 2 }", shape=(1, 8, 13, 13))
    y = n.layer("dc", "Deconvolution", y, "dc", "convolution_param { num_output: 4 "
                "kernel_size: 3 stride: 2 pad: 1 }",
                [n.w(8, 4, 3, 3), n.w(4, scale=0.1)], (1, 4, 25, 25))
    y = n.simple("perm", "Permute", y, "permute_param { order: 0 order: 2 order: 3 order: 1 }",
                 shape=(1, 25, 25, 4))
    y = n.simple("rs", "Reshape", y, "reshape_param { shape { dim: 0 dim: -1 dim: 4 } }",
                 shape=(1, 625, 4))
    n.simple("fl", "Flatten", y, "flatten_param { axis: 1 }", shape=(1, 2500))
    proto, _ = _write(tmp_path, n)
    res = _verify(proto, tmp_path / "o")
    assert res.source_ops["Interp"] == 1 and res.source_ops["Deconvolution"] == 1


def test_ssd_style_variants(tmp_path):
    """Normalize across C, H, W with one shared scale, Scale by a second bottom (axis 0),
    ReLU6."""
    n = Net("variants2", (1, 6, 10, 10), 21)
    y = n.conv("c1", "data", 6, 3, p=1, relu=False)
    y = n.layer("nrm", "Normalize", y, "nrm", "norm_param { across_spatial: true "
                "channel_shared: true }", [[3.0]], n.shapes[y])
    g = n.conv("c2", "data", 6, 1, relu=False)
    y = n.layer("s2", "Scale", [y, g], "s2", "scale_param { axis: 0 }", shape=n.shapes[y])
    n.simple("r6", "ReLU6", y)
    proto, _ = _write(tmp_path, n)
    res = _verify(proto, tmp_path / "o")
    assert res.source_ops["Normalize"] == 1 and res.source_ops["ReLU6"] == 1


def test_bias_and_log_params_against_numpy(tmp_path):
    """OpenCV has no Bias layer and ignores log_param, so these two are checked against
    their Caffe formulas in numpy: ``log10(1 + 0.5 * |x|) + b[c]`` (the ONNX file run in
    onnxruntime)."""
    import onnxruntime as ort

    n = Net("numpy", (1, 3, 4, 5), 22)
    y = n.simple("ab", "AbsVal", "data")
    y = n.simple("lg", "Log", y, "log_param { base: 10 scale: 0.5 shift: 1 }")
    b = n.rng.standard_normal(3)
    n.layer("bias", "Bias", y, "bias", "", [b], n.shapes[y])
    proto, _ = _write(tmp_path, n)
    res = run(proto, ConvertOptions(targets=("onnx",), output_dir=tmp_path / "o",
                                    verify=False))
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 5)).astype(np.float32)
    sess = ort.InferenceSession(res.files[0]["path"], providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"data": x})
    want = np.log10(1 + 0.5 * np.abs(x)) + b.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ bad input
def _lenet_files(tmp_path) -> tuple[Path, Path]:
    return _write(tmp_path, _small("layer"), "net")


def _cli(proto: Path, out: Path, *extra: str):
    return run_mconv("convert", str(proto), "--to", "ncnn,onnx", "-o", str(out), *extra)


def test_prototxt_typo_exit5(tmp_path):
    proto, _ = _lenet_files(tmp_path)
    proto.write_text(proto.read_text().replace("num_output: 8", "num_ouptut: 8"))
    p = _cli(proto, tmp_path / "o")
    assert p.returncode == 5, p.stderr
    assert "conv1" in p.stderr and "num_ouptut" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()


def test_mismatched_caffemodel_exit5(tmp_path):
    proto, model = _lenet_files(tmp_path)
    proto.write_text(proto.read_text().replace("num_output: 8", "num_output: 6"))
    p = _cli(proto, tmp_path / "o")
    assert p.returncode == 5, p.stderr
    assert "'conv1'" in p.stderr and "8x3x3x3" in p.stderr and "6x3x3x3" in p.stderr
    assert not (tmp_path / "o").exists()


def test_missing_weights_exit5(tmp_path):
    proto, model = _lenet_files(tmp_path)
    proto.write_text(proto.read_text().replace('name: "fc"', 'name: "fc_renamed"'))
    p = _cli(proto, tmp_path / "o")
    assert p.returncode == 5 and "'fc_renamed'" in p.stderr and "0 weight blob" in p.stderr


def test_truncated_caffemodel_exit5(tmp_path):
    proto, model = _lenet_files(tmp_path)
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    p = _cli(proto, tmp_path / "o")
    assert p.returncode == 5 and "net.caffemodel" in p.stderr, p.stderr
    assert not (tmp_path / "o").exists()


def test_fork_only_layers_exit3_listing_all(tmp_path):
    proto, _ = _lenet_files(tmp_path)
    text = proto.read_text().replace('type: "Convolution"', 'type: "ConvolutionDepthwise"')
    text = text.replace('type: "Pooling"', 'type: "Upsample"')
    proto.write_text(text)
    p = _cli(proto, tmp_path / "o")
    assert p.returncode == 3, p.stderr
    assert "ConvolutionDepthwise" in p.stderr and "conv1" in p.stderr
    assert "Upsample" in p.stderr and "pool1" in p.stderr
    assert not (tmp_path / "o").exists()


def test_weights_flag_and_usage_error(tmp_path):
    proto, model = _lenet_files(tmp_path)
    moved = tmp_path / "elsewhere.caffemodel"
    model.rename(moved)
    p = _cli(proto, tmp_path / "o")
    assert p.returncode == 2 and "--weights" in p.stderr
    p = _cli(proto, tmp_path / "o", "--weights", str(moved), "--verify")
    assert p.returncode == 0, p.stderr


# ------------------------------------------------------------------ property test
_NET = _small("layer")
_TEXT = _NET.prototxt()
_MODEL = training_net(_NET).SerializeToString()


def _load(tmp: Path, text: bytes, model: bytes) -> None:
    import frontends

    (tmp / "f.prototxt").write_bytes(text)
    (tmp / "f.caffemodel").write_bytes(model)
    try:
        frontends.load(tmp / "f.prototxt", ConvertOptions())
    except MconvError:
        pass


def _mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for pos, val, kind in edits:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            b[i] = val
        elif kind == 1:
            del b[i]
        else:
            b.insert(i, val)
    return bytes(b)


NUMBERS = ["-1", "0", "1", "2", "3", "7", "1000", "4294967295", "99999999999", "0.5"]


def _renumber(text: str, k: int, value: str) -> str:
    """``text`` with its k-th number (mod the count) replaced by ``value``: well-formed
    text with hostile sizes, strides, axes and dims."""
    import re

    spans = [m.span() for m in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?", text)]
    a, b = spans[k % len(spans)]
    return text[:a] + value + text[b:]


EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255), st.integers(0, 2)),
                 max_size=6)
TOKENS = st.sampled_from(["0", "-1", "99999", "1e9", "}", "{", '"', "dim: 0", "top: \"x\"",
                          "kernel_size: 0", "group: 3", "stride: 0", "pad: 7", "axis: 9"])


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=EDITS, token=TOKENS, where=st.integers(0, 1 << 16), cut=st.integers(0, 1 << 20),
       number=st.integers(0, 1 << 10), value=st.sampled_from(NUMBERS))
def test_mutated_inputs_raise_only_clean_errors(tmp_path_factory, edits, token, where, cut,
                                                number, value):
    tmp = tmp_path_factory.mktemp("fuzz")
    _load(tmp, _renumber(_TEXT, number, value).encode(), _MODEL)
    text = _TEXT.encode()
    i = where % len(text)
    _load(tmp, _mutate(text[:i] + token.encode() + b" " + text[i:], edits), _MODEL)
    _load(tmp, text, _mutate(_MODEL, edits))
    _load(tmp, text, _MODEL[: cut % (len(_MODEL) + 1)])


def test_canonical_detections_of_every_layout():
    """The same two detections as OpenCV ([1,1,N,7]), OpenVINO ([1,1,K,7] ended by an
    image_id -1 row, then garbage) and ncnn ([N,6], another order) canonicalize equally."""
    from converter.ops_detection import canonical_detections

    a = [1, 0.9, 0.1, 0.1, 0.5, 0.5]
    b = [2, 0.7, 0.2, 0.3, 0.4, 0.9]
    cv = np.array([[[[0] + a, [0] + b]]])
    ov = np.array([[[[0] + a, [0] + b, [-1] + [0] * 6, [0, 3, 0.99, 0, 0, 1, 1]]]])
    nc = np.array([b, a])
    want = np.array([a, b, [0] * 6])
    for arr in (cv, ov, nc):
        np.testing.assert_array_equal(canonical_detections(arr, 3), want)
    assert canonical_detections(np.zeros((0, 6)), 2).tolist() == [[0] * 6] * 2


@pytest.mark.parametrize("dims,axis,num_axes,want", [
    ([2, 2, 4], 0, -1, [2, 2, 4]), ([0, 2, 4], 0, -1, [2, 2, 4]),
    ([0, 2, -1], 0, -1, [2, 2, 4]), ([0, -1, 4], 0, -1, [2, 2, 4]),
    ([2, 4], 1, -1, [2, 2, 4]), ([2, 4], -2, -1, [2, 2, 4]),
    ([1, 2, 8], 0, -1, [1, 2, 8]), ([1, 2], 0, 1, [1, 2, 8]), ([1], 0, 0, [1, 2, 8]),
    ([1], 1, 0, [2, 1, 8])])
def test_caffe_reshape_examples(dims, axis, num_axes, want):
    """The worked examples of ReshapeParameter in BVLC caffe.proto on a 2x8 bottom (its
    ``axis: -3`` example contradicts reshape_layer.cpp, where a negative axis starts at
    ``num_axes + axis + 1``; the code's -2 is used)."""
    from frontends.caffe.ops_shape import caffe_reshape

    assert caffe_reshape([2, 8], dims, axis, num_axes) == want
