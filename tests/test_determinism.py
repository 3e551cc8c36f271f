"""Determinism: the same input converted twice, in two separate ``mconv`` processes, gives
byte-identical files for every target (ncnn, onnx, openvino, tflite), from a ``.pt2`` and from
an ``.onnx`` source (with ``--fp16``: float16 weight conversion is deterministic too)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_mconv

import torch  # noqa: F401  (required: the test extra installs it)


TARGETS = ["ncnn", "onnx", "openvino", "tflite"]


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
