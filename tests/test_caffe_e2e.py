"""Caffe fixtures end to end: every fixture converts to ncnn, OpenVINO, ONNX and TFLite and is
verified against OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``) on seeded inputs at
max abs error <= 1e-4 x max(1, max|ref|) (the pipeline's ``--verify``).

* classifiers whose Softmax saturates with random weights are also verified on their
  ``logits`` variant (the blob before the Softmax);
* SSD detectors: the ``head`` variant (no DetectionOutput / PriorBox) is verified on all four
  targets; the full net converts to ncnn and OpenVINO, whose detections are compared with
  OpenCV's as kept rows sorted by score (``converter.ops_detection.canonical_detections``),
  and ONNX / TFLite refuse it with exit 3 naming DetectionOutput;
* the output files are byte-identical between two runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cv2  # noqa: F401  (required: the test extra installs it)

from converter.errors import UnsupportedOpsError  # noqa: E402
from converter.ops_detection import canonical_detections  # noqa: E402
from converter.options import ConvertOptions  # noqa: E402
from converter.pipeline import run  # noqa: E402
from fixtures.caffe_models import build_caffe, variant  # noqa: E402
from tests.conftest import FIXTURE_DIR, run_mconv  # noqa: E402

ALL = ("ncnn", "onnx", "openvino", "tflite")
CLASSIFIERS = ("lenet", "squeezenet_v1_1", "googlenet", "mobilenet_v1", "resnet_eltwise",
               "unet")
SSD = ("mobilenet_ssd", "res10_ssd_face")
CAFFE_DIR = FIXTURE_DIR / "caffe"


def _verified(proto: Path, weights: Path, out: Path, targets=ALL):
    res = run(proto, ConvertOptions(targets=targets, output_dir=out, verify=True,
                                    weights=weights))
    assert res.verified is True
    assert {c["target"] for c in res.verification} == set(targets)
    for c in res.verification:
        assert c["passed"] and c["max_abs"] <= 1e-4 * max(1.0, c["ref_max"]), c
    return res


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_verifies_on_every_target(tmp_path, name):
    proto, weights = build_caffe(name, CAFFE_DIR)
    res = _verified(proto, weights, tmp_path)
    assert res.framework == "caffe"
    if name != "unet":
        logits, _ = variant(name, CAFFE_DIR, "logits")
        _verified(logits, weights, tmp_path / "logits")


def test_bn_scale_fold_into_convs(tmp_path):
    """MobileNet's BatchNorm + Scale pairs leave no BatchNorm / Mul / Add behind."""
    proto, weights = build_caffe("mobilenet_v1", CAFFE_DIR)
    res = run(proto, ConvertOptions(targets=("onnx",), output_dir=tmp_path, verify=False,
                                    weights=weights))
    assert res.source_ops["BatchNorm"] == res.source_ops["Scale"] == 27
    assert not {"BatchNormalization", "Mul", "Add"} & set(res.ops_after)


@pytest.mark.parametrize("name", SSD)
def test_ssd_head_verifies_on_every_target(tmp_path, name):
    head, weights = variant(name, CAFFE_DIR, "head")
    _verified(head, weights, tmp_path)


def _input(name: str, shape, seed=0):
    """A mean-subtracted image range for the real face detector; standard normal for the
    random-weight detector (its scores would saturate to exact ties on image ranges)."""
    rng = np.random.default_rng(seed)
    if name == "res10_ssd_face":
        return {"data": rng.uniform(-110, 145, shape).astype(np.float32)}
    return {"data": rng.standard_normal(shape).astype(np.float32)}


@pytest.mark.parametrize("name", SSD)
def test_ssd_detections_match_opencv(tmp_path, name):
    import exporters.ncnn
    import exporters.openvino
    import frontends

    proto, weights = build_caffe(name, CAFFE_DIR)
    res = run(proto, ConvertOptions(targets=("ncnn", "openvino"), output_dir=tmp_path,
                                    verify=False, weights=weights))
    files = {t: [Path(f["path"]) for f in res.files if f["target"] == t]
             for t in ("ncnn", "openvino")}
    loaded = frontends.load(proto, ConvertOptions(weights=weights))
    rows = loaded.graph.outputs[0].shape[2]
    x = _input(name, loaded.graph.inputs[0].shape)
    ref = canonical_detections(loaded.run_source(x)[0], rows)
    kept = int((ref[:, 1] > 0).sum())
    assert kept >= 3, "the fixture input must give detections to compare"
    for target, mod in (("ncnn", exporters.ncnn), ("openvino", exporters.openvino)):
        got = canonical_detections(mod.run(files[target], x)[0], rows)
        assert int((got[:, 1] > 0).sum()) == kept, target
        np.testing.assert_allclose(got, ref, atol=1e-4, err_msg=target)


@pytest.mark.parametrize("name", SSD)
def test_full_ssd_verifies_from_the_command_line(tmp_path, name):
    """The whole detector, DetectionOutput included, through ``mconv convert --verify``:
    ncnn and OpenVINO detection lists (canonical row order) match OpenCV's at 1e-4."""
    import json

    proto, weights = build_caffe(name, CAFFE_DIR)
    rep = tmp_path / "r.json"
    p = run_mconv("convert", str(proto), "--weights", str(weights), "--to", "ncnn,openvino",
                  "-o", str(tmp_path / "o"), "--verify", "--report", str(rep))
    assert p.returncode == 0, p.stderr + p.stdout
    rows = json.loads(rep.read_text())["verification"]
    assert sorted(r["target"] for r in rows) == ["ncnn", "openvino"]
    assert all(r["passed"] and r["max_abs"] < 1e-4 for r in rows), rows


@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_ssd_tail_is_refused_where_unsupported(tmp_path, target):
    proto, weights = build_caffe("mobilenet_ssd", CAFFE_DIR)
    with pytest.raises(UnsupportedOpsError) as ei:
        run(proto, ConvertOptions(targets=(target,), output_dir=tmp_path / "o",
                                  weights=weights))
    assert ei.value.exit_code == 3
    assert [i.op for i in ei.value.issues] == ["DetectionOutput"]
    assert "detection_out" in ei.value.issues[0].nodes[0]
    assert not (tmp_path / "o").exists()


def test_deterministic_output(tmp_path):
    proto, weights = build_caffe("googlenet", CAFFE_DIR)
    digests = []
    for k in range(2):
        res = run(proto, ConvertOptions(targets=ALL, output_dir=tmp_path / str(k),
                                        verify=False, weights=weights))
        digests.append(sorted((Path(f["path"]).name, f["sha256"]) for f in res.files))
    assert digests[0] == digests[1] and len(digests[0]) == 6
