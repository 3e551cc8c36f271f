"""``mconv convert --report``: the JSON report of successful and failed runs validates against
converter/report_schema.json (draft 2020-12) and says what happened: per-stage time and peak
memory, op counts per pass, rewrites, issues, verification figures, written files with size
and sha256, the error and the exit code."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from converter.options import ConvertOptions
from converter.pipeline import ConvertResult, run, write_report
from tests.conftest import ROOT, run_mconv
from tests.hostile.make_corpus import onnx_model, seed_onnx

import jsonschema

SCHEMA = json.loads((ROOT / "converter" / "report_schema.json").read_text())


def validate(report: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(report)


def _strict_load(path: Path) -> dict:
    def no_constant(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(path.read_text(), parse_constant=no_constant)


def _convert(tmp_path: Path, model: Path, *args: str) -> tuple:
    rep = tmp_path / "report.json"
    proc = run_mconv("convert", str(model), "-o", str(tmp_path / "out"), "--report", str(rep),
                     *args)
    assert "Traceback" not in proc.stderr
    report = _strict_load(rep)
    validate(report)
    assert report["exit_code"] == proc.returncode
    return proc, report


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_success_report(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(seed_onnx())
    proc, r = _convert(tmp_path, model, "--to", "ncnn,onnx,openvino")
    assert proc.returncode == 0 and r["error"] is None and r["verified"] is True
    assert r["input_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert r["command"][1:3] == ["convert", str(model)]
    assert [p["name"] for p in r["passes"]] == ["frontend", "optimize", "lower:ncnn",
                                               "lower:onnx", "lower:openvino"]
    assert r["passes"][0]["ops_before"] == {"Conv": 1, "Relu": 1}
    names = [s["name"] for s in r["stages"]]
    assert names[:3] == ["load", "optimize", "scan"] and "verify:openvino" in names
    assert all(s["peak_rss_bytes"] > 0 and s["ok"] for s in r["stages"])
    assert {c["target"] for c in r["verification"]} == {"ncnn", "onnx", "openvino"}
    for f in r["files"]:
        data = Path(f["path"]).read_bytes()
        assert f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(r["files"]) == 5


def test_unsupported_op_report(tmp_path):
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    model = tmp_path / "custom.onnx"
    model.write_bytes(onnx_model(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Foo", ["r"], ["y"], name="foo", domain="com.example")],
        [vi("x", TensorProto.FLOAT, [1, 3, 4, 4])], [vi("y", TensorProto.FLOAT, None)]))
    proc, r = _convert(tmp_path, model)
    assert proc.returncode == 3 and r["files"] == []
    assert [(i["op"], i["code"], i["nodes"]) for i in r["issues"]] == [
        ("com.example.Foo", "onnx.domain", ["foo"])]
    assert r["stages"][0]["name"] == "load" and r["stages"][0]["ok"] is False


def test_target_issue_report(tmp_path):
    """A target-level refusal (ncnn has no batch dimension) is exit 3 with the check text."""
    model = tmp_path / "b2.onnx"
    model.write_bytes(seed_onnx(dims=(2, 3, 8, 8)))
    proc, r = _convert(tmp_path, model, "--to", "ncnn,onnx")
    assert proc.returncode == 3 and not (tmp_path / "out").exists()
    assert {i["code"] for i in r["issues"]} == {"ncnn.batch"}
    assert all(i["stage"] == "target:ncnn" for i in r["issues"])


def test_verification_failure_report(tmp_path):
    """fp16 weights checked at 1e-12: exit 4, the figures, and the (kept) files."""
    model = tmp_path / "m.onnx"
    model.write_bytes(seed_onnx())
    proc, r = _convert(tmp_path, model, "--to", "ncnn,onnx", "--fp16", "--atol", "1e-12")
    assert proc.returncode == 4 and r["verified"] is False
    assert any(not c["passed"] for c in r["verification"])
    assert {Path(f["path"]).name for f in r["files"]} == {"m.ncnn.param", "m.ncnn.bin",
                                                          "m.onnx"}
    assert "verification failed" in r["error"] and r["source_ops"] == {"Conv": 1, "Relu": 1}


def test_unreadable_report(tmp_path):
    model = tmp_path / "broken.onnx"
    model.write_bytes(seed_onnx()[:100])
    proc, r = _convert(tmp_path, model)
    assert proc.returncode == 5 and r["files"] == [] and "broken.onnx" in r["error"]
    assert r["framework"] == "" and r["verified"] is None


def test_usage_error_report(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(seed_onnx())
    proc, r = _convert(tmp_path, model, "--to", "bogus")
    assert proc.returncode == 2 and "bogus" in r["error"]


def test_internal_error_report(tmp_path, monkeypatch):
    import optimizers

    def broken(graph, log=None):
        raise RuntimeError("a bug")

    monkeypatch.setattr(optimizers, "optimize", broken)
    model = tmp_path / "m.onnx"
    model.write_bytes(seed_onnx())
    rep = tmp_path / "r.json"
    with pytest.raises(RuntimeError):
        run(model, ConvertOptions(targets=("onnx",), output_dir=tmp_path / "o", report=rep))
    r = _strict_load(rep)
    validate(r)
    assert r["exit_code"] == 1 and "RuntimeError: a bug" in r["traceback"]


def test_non_finite_figures_are_null(tmp_path):
    """A shape mismatch gives an infinite error: the report stays strict JSON (null)."""
    res = ConvertResult(input="m.onnx", exit_code=4, error="verification failed",
                        verified=False,
                        verification=[{"target": "ncnn", "output": "y", "shape": [1],
                                       "max_abs": float("inf"), "max_rel": float("nan"),
                                       "cosine": 0.0, "ref_max": 1.0, "tolerance": 1e-4,
                                       "passed": False}])
    write_report(res, tmp_path / "r.json")
    r = _strict_load(tmp_path / "r.json")
    validate(r)
    assert r["verification"][0]["max_abs"] is None
