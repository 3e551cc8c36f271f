"""``mconv ops --matrix``: the operator-support matrix built from the registries.

``docs/operator-support.md`` is this command's output: the test regenerates it in-process and
fails when the committed file is stale (regenerate with the command in its first lines).
"""
from __future__ import annotations

import json

from converter.ops_report import render_matrix, support_matrix
from converter.registry import CONVERTERS, LOWERINGS
from tests.conftest import ROOT, run_mconv

DOC = ROOT / "docs" / "operator-support.md"
REGEN = "python -m converter ops --matrix --format markdown -o docs/operator-support.md"


def test_docs_copy_is_current():
    want = render_matrix("markdown")
    have = DOC.read_text() if DOC.exists() else ""
    assert have == want, f"docs/operator-support.md is stale: run `{REGEN}`"


def test_matrix_is_deterministic_and_sorted():
    assert render_matrix("markdown") == render_matrix("markdown")
    m = support_matrix()
    for section in ("frontends", "targets"):
        for entries in m[section].values():
            ops = [e["op"] for e in entries]
            assert ops == sorted(ops)
    assert [r["op"] for r in m["ir_ops"]] == sorted(r["op"] for r in m["ir_ops"])


def test_every_registry_entry_with_its_checks():
    m = support_matrix()
    for (fw, op), entry in CONVERTERS.items():
        got = next(e for e in m["frontends"][fw] if e["op"] == op)
        assert got["emits"] == list(entry.emits)
        assert [c["code"] for c in got["checks"]] == [c.code for c in entry.checks]
    for (t, op), entry in LOWERINGS.items():
        got = next(e for e in m["targets"][t] if e["op"] == op)
        assert [c["text"] for c in got["checks"]] == [" ".join(c.text.split())
                                                      for c in entry.checks]
    for r in m["ir_ops"]:
        for t, lowered in r["targets"].items():
            assert lowered == ((t, r["op"]) in LOWERINGS)


def test_cli_matrix_json():
    proc = run_mconv("ops", "--matrix", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert {"pytorch", "onnx"} <= set(d["frontends"])
    assert {"ncnn", "onnx", "openvino"} <= set(d["targets"])
    conv = next(e for e in d["targets"]["ncnn"] if e["op"] == "Conv")
    assert "Convolution" in conv["emits"] and any(c["code"] == "ncnn.batch"
                                                  for c in conv["checks"])
