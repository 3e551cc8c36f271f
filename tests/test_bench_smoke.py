"""Smoke test of bench/run.py's code path (issue 8) on one small fixture, one target, mconv
alone, one run: the whole-process conversion is measured (wall time, peak RSS of the child),
the output is described and run in onnxruntime against PyTorch on seeded inputs, and the
Markdown table renders the row. Keeps the bench from rotting when the CLI changes; the
bench itself (peers, timings) stays out of the test suite."""
from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import built_fixture

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_bench_case_mconv_onnx(fixture_dir, tmp_path, monkeypatch):
    """mtcnn_pnet -> ONNX: figures present and the converted model matches PyTorch
    within 1e-4 (max abs error, computed by the bench in onnxruntime)."""
    monkeypatch.syspath_prepend(str(BENCH))
    import report
    import run
    import sources

    built_fixture(fixture_dir, "mtcnn_pnet")
    monkeypatch.setattr(sources, "FIXTURE_DIR", fixture_dir)
    monkeypatch.setattr(sources, "WORK", tmp_path)
    (case,) = sources.torch_cases("mtcnn_pnet", ["onnx"])
    assert [t.name for t in case.tools][0] == "mconv"
    case.tools = case.tools[:1]
    row = run.bench_case(case, run.parse(["--runs", "1", "--iters", "2"]))
    m = row["tools"]["mconv"]
    assert not [k for k in m if k.endswith("error")], m
    assert m["convert_s"] > 0 and m["peak_rss"] > 20 * 2 ** 20  # a Python process, not 0
    assert m["ops"] == sum(m["op_counts"].values()) > 0
    assert m["size"] == sum(f.stat().st_size for f in (tmp_path / "mtcnn_pnet" / "onnx" /
                                                       "mconv").glob("*"))
    assert m["max_abs_err"] < 1e-4
    assert m["ms_1t"] > 0 and m["ms_2t"] > 0
    md = report.markdown({"date": "d", "command": "c", "machine": {
        "cpu": "x", "cores": 2, "ram_gib": 1, "os": "o", "python": sys.version.split()[0],
        "packages": {}}, "peers": {}, "options": {"runs": 1, "iters": 2}, "cases": [row]})
    assert "| mtcnn_pnet | pytorch → onnx | – |" in md
