"""``mconv ops MODEL``: the pre-flight support table without converting.

Every fixture (TorchScript, ``.pt2``, and ONNX written from a few of them) is fully supported
on every installed target (exit 0); models with ops the frontend or a target refuses exit 3
and name the op, the reason code and the check text; the markdown / json / html renderings
carry the same rows; usage errors exit 2 and unreadable files 5, with one line, no traceback,
and nothing is ever written (except ``-o FILE``)."""
from __future__ import annotations

import fcntl
import json
import re
from pathlib import Path

import pytest

import exporters
from converter.options import ConvertOptions
from converter.ops_report import render, scan_model
from tests.conftest import run_mconv
from tests.hostile.make_corpus import onnx_model, seed_onnx

ALL = tuple(exporters.TARGETS)


def _opts(targets=ALL, **kw) -> ConvertOptions:
    return ConvertOptions(targets=tuple(targets), verify=False, **kw)


def _fixture(fixture_dir: Path, name: str) -> tuple:
    """(folder, input shapes) of a fixture built under the lock the e2e tests use."""
    from fixtures.build import build

    with open(fixture_dir / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        build(name, fixture_dir)
    meta = json.loads((fixture_dir / f"{name}.json").read_text())
    return fixture_dir, {k: tuple(v) for k, v in meta["inputs"].items()}


def _fixture_names() -> list:
    try:
        from fixtures.build import FIXTURES
    except ImportError:  # no torch: the fixture tests skip
        return []
    return sorted(FIXTURES)


def _assert_supported(rep) -> None:
    bad = [(r.source_op, t, c.issues or c.notes) for r in rep.rows
           for t, c in r.cells.items() if c.status not in ("ok", "note")]
    assert not bad and rep.exit_code == 0, bad


@pytest.mark.parametrize("fmt", ["pt2", "pt"])
@pytest.mark.parametrize("name", _fixture_names())
def test_fixture_fully_supported(fixture_dir, name, fmt):
    import torch  # noqa: F401  (required: the test extra installs it)
    fdir, shapes = _fixture(fixture_dir, name)
    rep = scan_model(fdir / f"{name}.{fmt}", _opts(input_shapes=shapes))
    _assert_supported(rep)
    assert rep.targets == list(ALL) and rep.framework == "pytorch"
    real = [r for r in rep.rows if not r.source_op.startswith("<")]
    assert real and all(r.count > 0 for r in real)
    assert all(r.ir_ops or "computed at load time" in " ".join(r.notes) for r in real)
    assert all(set(r.cells) == set(ALL) for r in rep.rows)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "yolo_small", "unet_small",
                                  "mtcnn_pnet"])
def test_onnx_fixture_fully_supported(fixture_dir, tmp_path, name):
    """The fixtures written as ONNX by mconv, scanned through the ONNX frontend."""
    import torch  # noqa: F401  (required: the test extra installs it)
    from converter.pipeline import run

    fdir, shapes = _fixture(fixture_dir, name)
    run(fdir / f"{name}.pt2", ConvertOptions(targets=("onnx",), output_dir=tmp_path,
                                             verify=False))
    rep = scan_model(tmp_path / f"{name}.onnx", _opts())
    _assert_supported(rep)
    assert rep.framework == "onnx"


def test_cli_table_on_fixture(fixture_dir):
    import torch  # noqa: F401  (required: the test extra installs it)
    fdir, _ = _fixture(fixture_dir, "mobilenet_v3_small")
    proc = run_mconv("ops", str(fdir / "mobilenet_v3_small.pt2"))
    assert proc.returncode == 0, proc.stderr
    assert "aten.hardswish" in proc.stdout and "every op is supported" in proc.stdout
    assert all(t in proc.stdout for t in ALL)


def _custom_onnx(path: Path) -> Path:
    """Relu, then an op of a foreign domain, then a Sigmoid."""
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    path.write_bytes(onnx_model(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Foo", ["r"], ["f"], name="foo", domain="com.example"),
         helper.make_node("Sigmoid", ["f"], ["y"], name="sig")],
        [vi("x", TensorProto.FLOAT, [1, 3, 4, 4])], [vi("y", TensorProto.FLOAT, None)]))
    return path


def test_frontend_refusal_still_gives_the_table(tmp_path):
    rep = scan_model(_custom_onnx(tmp_path / "c.onnx"), _opts(("ncnn", "onnx")))
    assert rep.exit_code == 3 and "com.example.Foo" in rep.frontend_error
    rows = {r.source_op: r for r in rep.rows}
    assert set(rows) == {"Relu", "Sigmoid", "com.example.Foo"}
    foo = rows["com.example.Foo"].cells["ncnn"]
    assert foo.status == "unsupported" and foo.issues[0]["code"] == "onnx.domain"
    assert rows["Relu"].cells["onnx"].status == "unchecked"
    assert rows["Relu"].count == 1


def test_target_refusal_maps_to_source_ops(tmp_path):
    """ncnn has no batch dimension: the Conv / Relu rows and the input row say so; the
    other targets are fine."""
    model = tmp_path / "b2.onnx"
    model.write_bytes(seed_onnx(dims=(2, 3, 8, 8)))
    rep = scan_model(model, _opts(("ncnn", "onnx", "openvino")))
    assert rep.exit_code == 3
    rows = {r.source_op: r for r in rep.rows}
    assert set(rows) == {"Conv", "Relu", "<input>"}
    for op in rows:
        cell = rows[op].cells["ncnn"]
        assert cell.status == "unsupported" and cell.issues[0]["code"] == "ncnn.batch"
        assert "batch" in cell.issues[0]["reason"]
        assert rows[op].cells["onnx"].status == rows[op].cells["openvino"].status == "ok"
    assert rows["Conv"].cells["ncnn"].issues[0]["nodes"] == ["conv (Conv)"]


def test_opset_condition_and_fp16_note(tmp_path):
    """A check of the onnx target's opset reaches the row; --fp16 adds the drift note to ops
    with float weights only."""
    model = tmp_path / "m.onnx"
    model.write_bytes(seed_onnx())
    rep = scan_model(model, _opts(("ncnn", "onnx"), fp16=True, opset=17))
    rows = {r.source_op: r for r in rep.rows}
    assert rows["Conv"].cells["ncnn"].status == "note"
    assert "fp16" in rows["Conv"].cells["ncnn"].notes[0]
    assert rows["Relu"].cells["ncnn"].status == "ok" and rep.exit_code == 0
    assert "Convolution" in rows["Conv"].cells["ncnn"].target_ops


def test_optimizer_notes(fixture_dir):
    """BatchNorm rows say they were fused into Conv; shape arithmetic is computed at load."""
    import torch  # noqa: F401  (required: the test extra installs it)
    fdir, shapes = _fixture(fixture_dir, "resnet18")
    rep = scan_model(fdir / "resnet18.pt2", _opts(("ncnn",), input_shapes=shapes))
    rows = {r.source_op: r for r in rep.rows}
    bn = rows["aten.batch_norm"] if "aten.batch_norm" in rows else \
        rows["aten._native_batch_norm_legit_no_training"]
    assert "fused into Conv" in " ".join(bn.notes) and not bn.ir_ops_optimized


@pytest.mark.parametrize("fmt", ["markdown", "json", "html"])
def test_formats_to_file(tmp_path, fmt):
    model = _custom_onnx(tmp_path / "c.onnx")
    suffix = {"markdown": ".md", "json": ".json", "html": ".html"}[fmt]
    out = tmp_path / "report" / f"ops{suffix}"
    proc = run_mconv("ops", str(model), "--to", "ncnn,onnx", "-o", str(out))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert f"wrote {out}" in proc.stdout
    text = out.read_text()
    assert "com.example.Foo" in text and "onnx.domain" in text
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]
    if fmt == "json":
        d = json.loads(text)
        assert d["exit_code"] == 3 and d["supported"] is False
        assert [r["source_op"] for r in d["rows"]] == ["Relu", "Sigmoid", "com.example.Foo"]
        assert d["rows"][2]["targets"]["ncnn"]["issues"][0]["nodes"] == ["foo"]
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "</html>" in text
        assert not re.search(r"<(script|link|img|iframe)\b", text)
        assert not re.search(r"(src|href)\s*=", text) and "url(" not in text
    if fmt == "markdown":
        assert "| source op | count | IR ops | ncnn | onnx |" in text


def test_render_is_deterministic(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(seed_onnx())
    a = [render(scan_model(model, _opts()), f) for f in ("markdown", "json", "html")]
    b = [render(scan_model(model, _opts()), f) for f in ("markdown", "json", "html")]
    assert a == b


def test_html_escapes_names(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(seed_onnx(node_names=("<script>alert(1)</script>", "r")))
    html = render(scan_model(model, _opts(("ncnn",))), "html")
    assert "<script>" not in html


def test_cli_errors(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(seed_onnx())
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    for args, code in ((("ops",), 2), (("ops", str(model), "--to", "bogus"), 2),
                       (("ops", str(broken)), 5), (("ops", "--matrix", "--format", "html"), 2)):
        proc = run_mconv(*args)
        assert proc.returncode == code, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx", "m.onnx"]
