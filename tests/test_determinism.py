"""Determinism: the same input converted twice, in two separate ``mconv`` processes, gives
byte-identical files for every target (ncnn, onnx, openvino, tflite), from a ``.pt2`` and from
an ``.onnx`` source (with ``--fp16``: float16 weight conversion is deterministic too)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import exporters
from tests.conftest import run_mconv

pytest.importorskip("torch")  # the .pt2 seed is saved with torch


def _tflite_reason() -> str:
    """Why the tflite target cannot run here ("" when it can)."""
    if "tflite" not in exporters.TARGETS:
        return "the tflite target is not registered in exporters.TARGETS"
    try:
        mod = importlib.import_module("exporters.tflite")
    except Exception as e:  # being written: not importable yet
        return f"exporters.tflite does not import ({type(e).__name__}: {e})"
    if hasattr(mod, "_writer_available") and not mod._writer_available():
        return "the tflite / flatbuffers packages are not installed"
    return ""


TARGETS = ["ncnn", "onnx", "openvino", pytest.param("tflite", marks=pytest.mark.skipif(
    bool(_tflite_reason()), reason=_tflite_reason() or "-"))]


@pytest.fixture(scope="module")
def seeds(fixture_dir):
    from tests.hostile.seeds import seed_files

    return seed_files(fixture_dir)


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("src,extra", [("pt2", ()), ("onnx", ("--fp16",))],
                         ids=["pt2", "onnx-fp16"])
@pytest.mark.parametrize("target", TARGETS)
def test_two_processes_byte_identical(seeds, tmp_path, target, src, extra):
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        proc = run_mconv("convert", str(seeds[src]), "--to", target, "-o", str(out),
                         "--no-verify", *extra)
        assert proc.returncode == 0, proc.stderr
        outs.append(_files(out))
    assert outs[0], "nothing written"
    assert outs[0].keys() == outs[1].keys()
    for name in outs[0]:
        assert outs[0][name] == outs[1][name], f"{target}: {name} differs between processes"
