"""No partial output: a failure (or Ctrl-C) in any exporter's writer, with one target or
several, leaves OUTDIR exactly as it was: pre-existing files (also ones with the names of the
outputs) untouched, no new files or folders, no temporary leftovers. Files of a run whose
verification *failed* (exit 4) are kept for inspection (converter/pipeline.py docstring)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import exporters
from converter.errors import VerificationError
from converter.options import ConvertOptions
from converter.pipeline import run
from tests.hostile.make_corpus import seed_onnx

BASE = ["ncnn", "onnx", "openvino"]


def _tflite_ok() -> bool:
    if "tflite" not in exporters.TARGETS:
        return False
    try:
        importlib.import_module("exporters.tflite.writer")
        return exporters.get("tflite")._writer_available()
    except Exception:
        return False


TARGETS = BASE + (["tflite"] if _tflite_ok() else [])
TARGET_PARAMS = BASE + [pytest.param("tflite", marks=pytest.mark.skipif(
    not _tflite_ok(), reason="exporters.tflite (or its tflite/flatbuffers packages) is not "
    "importable here"))]


@pytest.fixture()
def model(tmp_path) -> Path:
    p = tmp_path / "src" / "m.onnx"
    p.parent.mkdir()
    p.write_bytes(seed_onnx())
    return p


@pytest.fixture()
def outdir(tmp_path) -> Path:
    """OUTDIR with files a run must not touch: an unrelated file, files named like outputs
    (top level and in a target folder)."""
    out = tmp_path / "out"
    (out / "ncnn").mkdir(parents=True)
    (out / "keep.txt").write_text("mine")
    (out / "m.ncnn.param").write_text("old param")
    (out / "ncnn" / "m.ncnn.param").write_text("old nested param")
    return out


def snapshot(root: Path) -> dict:
    """Every file and folder under ``root`` (hidden ones too) with file contents."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


class Boom(OSError):
    """The injected writer failure."""


def fail_writer(monkeypatch, target: str, exc: BaseException) -> None:
    """Make ``exporters.<target>.writer.write`` write a partial file under its final name
    into the folder it was given, then raise ``exc``."""
    mod = importlib.import_module(f"exporters.{target}.writer")

    def write(model, out_dir, stem, *a, **k):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / f"{stem}.partial").write_bytes(b"half a model")
        raise exc

    monkeypatch.setattr(mod, "write", write)


def _opts(out: Path, targets, **kw) -> ConvertOptions:
    return ConvertOptions(targets=tuple(targets), output_dir=out, verify=kw.pop("verify", False),
                          **kw)


@pytest.mark.parametrize("target", TARGET_PARAMS)
def test_single_target_writer_failure(model, outdir, monkeypatch, target):
    before = snapshot(outdir)
    fail_writer(monkeypatch, target, Boom("disk full"))
    with pytest.raises(Boom):
        run(model, _opts(outdir, [target]))
    assert snapshot(outdir) == before


@pytest.mark.parametrize("target", TARGET_PARAMS)
def test_later_target_failure_discards_earlier_targets(model, outdir, monkeypatch, target):
    """Several targets: the failing one goes last, so the others were fully written first."""
    order = [t for t in TARGETS if t != target] + [target]
    before = snapshot(outdir)
    fail_writer(monkeypatch, target, Boom("disk full"))
    with pytest.raises(Boom):
        run(model, _opts(outdir, order))
    assert snapshot(outdir) == before


@pytest.mark.parametrize("target", TARGET_PARAMS)
def test_ctrl_c_in_writer(model, outdir, monkeypatch, target):
    before = snapshot(outdir)
    fail_writer(monkeypatch, target, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run(model, _opts(outdir, TARGETS))
    assert snapshot(outdir) == before


def test_real_writer_internals_fail(model, outdir, monkeypatch):
    """Failures deep inside the real ncnn / onnx / openvino writers (after they wrote part
    of their files): still nothing in OUTDIR."""
    import exporters.ncnn.writer as nw
    import exporters.onnx.writer as ow
    import exporters.openvino.writer as vw

    before = snapshot(outdir)
    orig = nw._write_atomic

    def ncnn_half(payloads):
        orig(payloads[:1])  # .param renamed into place, then the .bin fails
        raise Boom("no space for .bin")

    def ov_half(m, path, fp16):
        Path(path).write_text("<net>")
        raise RuntimeError("save_model failed")

    def onnx_half(tmp, model_name, *a):
        (Path(tmp) / model_name).write_bytes(b"\x08")
        raise Boom("checker crashed")

    for patch, exc in ((lambda: monkeypatch.setattr(nw, "_write_atomic", ncnn_half), Boom),
                       (lambda: monkeypatch.setattr(vw, "save", ov_half), RuntimeError),
                       (lambda: monkeypatch.setattr(ow, "_stage", onnx_half), Boom)):
        monkeypatch.undo()
        patch()
        with pytest.raises(exc):
            run(model, _opts(outdir, BASE))
        assert snapshot(outdir) == before


def test_missing_outdir_is_not_created_on_failure(model, tmp_path, monkeypatch):
    out = tmp_path / "new" / "deeper"
    fail_writer(monkeypatch, "openvino", Boom("x"))
    with pytest.raises(Boom):
        run(model, _opts(out, BASE))
    assert not (tmp_path / "new").exists()


def test_failed_commit_rolls_back(model, outdir, monkeypatch):
    """The final moves are undone (and replaced files restored) if one of them fails."""
    import converter.pipeline as pl

    before = snapshot(outdir)
    real = pl.os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Boom("rename failed")
        return real(src, dst)

    monkeypatch.setattr(pl.os, "replace", flaky)
    with pytest.raises(Boom):
        run(model, _opts(outdir, BASE))
    monkeypatch.undo()
    assert calls["n"] >= 4
    assert snapshot(outdir) == before


def test_success_replaces_and_leaves_no_temporaries(model, outdir):
    res = run(model, _opts(outdir, ["ncnn"]))
    snap = snapshot(outdir)
    assert snap["keep.txt"] == b"mine"
    assert snap["m.ncnn.param"].startswith(b"7767517")
    assert not [k for k in snap if Path(k).name.startswith(".")], snap.keys()
    assert [Path(f["path"]) for f in res.files] == [outdir / "m.ncnn.param",
                                                   outdir / "m.ncnn.bin"]


def test_verification_failure_keeps_files(model, outdir):
    """Exit 4: the files are moved into place (documented), the error says why."""
    import onnxruntime  # noqa: F401  (required: the test extra installs it)
    import ncnn  # noqa: F401  (required: the test extra installs it)
    with pytest.raises(VerificationError) as e:
        run(model, _opts(outdir, ["ncnn", "onnx"], verify=True, fp16=True, atol=1e-12))
    res = e.value.result
    assert res.exit_code == 4 and res.verified is False
    snap = snapshot(outdir)
    assert snap["ncnn/m.ncnn.param"].startswith(b"7767517")
    assert "onnx/m.onnx" in snap and snap["keep.txt"] == b"mine"
    assert not [k for k in snap if Path(k).name.startswith(".")]
    assert {Path(f["path"]).name for f in res.files} == {"m.ncnn.param", "m.ncnn.bin",
                                                         "m.onnx"}
