"""End to end: the Keras / TensorFlow fixtures (fixtures/keras_models.py) converted to every
target and verified in each target's runtime against TensorFlow on seeded inputs (fp32,
default tolerance 1e-4 x max(1, max|reference|)), plus the Transpose counts the NHWC source
layout must leave behind, the TF1 dropout / dynamic-batch graphs, and byte-identical output.

Most runs call ``converter.convert`` in-process (TensorFlow is imported once per worker);
the TF1 keep_prob graph goes through the real CLI.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import FIXTURE_DIR, run_mconv

import tensorflow as tf

from fixtures.keras_models import (FORMATS, KERAS_FIXTURES, build_keras,  # noqa: E402
                                   build_tf1)

TARGETS = ("ncnn", "onnx", "openvino", "tflite")
#: The layer / op type of a transpose in each target's own vocabulary.
TRANSPOSE = {"ncnn": "Permute", "onnx": "Transpose", "openvino": "Transpose",
             "tflite": "TRANSPOSE"}


def _locked(name: str, build):
    """Run ``build()`` under a per-fixture fcntl lock (xdist workers share FIXTURE_DIR)."""
    import fcntl

    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    with open(FIXTURE_DIR / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        return build()


def keras_fixture(name: str, fmt: str) -> Path:
    return _locked(f"keras_{name}", lambda: build_keras(name, fmt, FIXTURE_DIR))


def tf1_fixture(name: str) -> Path:
    return _locked(name, lambda: build_tf1(name, FIXTURE_DIR))


def convert_all(path: Path, out: Path, **options):
    from converter import convert

    options.setdefault("verify", True)
    return convert(path, to=",".join(TARGETS), output_dir=out, raise_on_error=False,
                   **options)


def assert_verified(res) -> None:
    """Exit 0 and, for every target, one passing verification row per graph output."""
    assert res.exit_code == 0, res.error
    rows = res.verification
    assert sorted({r["target"] for r in rows}) == sorted(TARGETS)
    assert len(rows) == len(TARGETS) * len(res.outputs)
    for r in rows:
        assert r["passed"] and r["max_abs"] <= r["tolerance"], r
        assert r["tolerance"] == pytest.approx(1e-4 * max(1.0, r["ref_max"]))


def transposes(res) -> dict:
    """Target -> number of transpose layers in the written model (from the report)."""
    return {t: res.target_ops[t]["op_counts"].get(TRANSPOSE[t], 0) for t in TARGETS}


def rank4_io(res) -> int:
    return sum(len(v["shape"]) == 4 for v in res.inputs + res.outputs)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(KERAS_FIXTURES))
def test_keras_fixture_all_targets(name, fmt, tmp_path):
    """Every fixture in every format verifies on all four targets.

    Transposes: with NHWC I/O (the default; the ``keras``, ``h5`` and ``savedmodel`` runs)
    no Permute in ncnn, no TRANSPOSE in TFLite, and in ONNX / OpenVINO only the one boundary
    Transpose per rank-4 input / output that NHWC I/O declares. With ``--io-layout nchw``
    (the ``pb`` runs) zero Transpose / Permute in ncnn, ONNX and OpenVINO; TFLite computes in
    NHWC, so an NCHW input is necessarily one boundary TRANSPOSE there.
    """
    nchw = fmt == "pb"
    res = convert_all(keras_fixture(name, fmt), tmp_path, io_layout="nchw" if nchw else "nhwc")
    assert_verified(res)
    assert res.framework == "tensorflow"
    assert [v["shape"] for v in res.inputs] == [[1, 3, 96, 96]]  # IR layout
    n = transposes(res)
    assert rank4_io(res) == 1
    if nchw:
        assert n == {"ncnn": 0, "onnx": 0, "openvino": 0, "tflite": 1}, n
    else:
        assert n == {"ncnn": 0, "onnx": 1, "openvino": 1, "tflite": 0}, n


def _no_dropout(res) -> None:
    assert "RandomUniform" in res.source_ops  # the dropout subgraph was in the source
    assert "Dropout" not in res.ops_after
    for t in TARGETS:
        ops = {k.lower() for k in res.target_ops[t]["op_counts"]}
        assert not ops & {"dropout", "randomuniform", "random_uniform"}, (t, ops)


def test_tf1_keep_prob_graph_cli(tmp_path):
    """A TF1 frozen graph whose dropout is driven by a ``keep_prob`` placeholder converts
    through the CLI with keep_prob bound to 1.0 and the dropout subgraph gone."""
    out, rep = tmp_path / "out", tmp_path / "r.json"
    proc = run_mconv("convert", str(tf1_fixture("tf1_dropout")), "--to", ",".join(TARGETS),
                     "-o", str(out), "--verify", "--report", str(rep))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = SimpleNamespace(**json.loads(rep.read_text()))
    assert_verified(res)
    assert [v["name"] for v in res.inputs] == ["input"]  # keep_prob is no input
    assert res.ops_after.get("Softmax") == 1
    _no_dropout(res)


def test_tf1_dynamic_batch_graph(tmp_path):
    """A TF1 graph with input ``[?, 32, 32, 3]`` (batch from tf.shape) and a
    PlaceholderWithDefault keep_prob converts at batch 1."""
    res = convert_all(tf1_fixture("tf1_dynamic_batch"), tmp_path)
    assert_verified(res)
    assert [v["shape"] for v in res.inputs] == [[1, 3, 32, 32]]
    assert "Shape" in res.source_ops and "Shape" not in res.ops_after
    _no_dropout(res)


def test_tf1_dynamic_batch_input_shape(tmp_path):
    """``--input-shape`` (NHWC, the source layout) picks another batch size."""
    from converter import convert

    res = convert(tf1_fixture("tf1_dynamic_batch"), to="onnx,tflite", output_dir=tmp_path,
                  verify=True, raise_on_error=False, input_shapes={"input": (3, 32, 32, 3)})
    assert res.exit_code == 0, res.error
    assert [v["shape"] for v in res.inputs] == [[3, 3, 32, 32]]
    assert res.outputs[0]["shape"] == [3, 10]
    assert all(r["passed"] for r in res.verification) and len(res.verification) == 2


def test_keras_conversion_is_deterministic(tmp_path):
    """Two conversions of one fixture give byte-identical files for all four targets."""
    path = keras_fixture("mobilenet_v3_small", "keras")
    runs = []
    for k in range(2):
        res = convert_all(path, tmp_path / f"run{k}", verify=False)
        assert res.exit_code == 0, res.error
        runs.append({Path(f["path"]).relative_to(tmp_path / f"run{k}"): Path(f["path"])
                     .read_bytes() for f in res.files})
    assert sorted({p.parts[0] for p in runs[0]}) == sorted(TARGETS)
    assert runs[0].keys() == runs[1].keys()
    for p in runs[0]:
        assert runs[0][p] == runs[1][p], p
