"""Benchmark: mconv's ONNX node count, conversion time and onnxruntime latency vs
``torch.onnx.export`` + onnxslim / onnxsim.

For every fixture this counts the nodes of:

* mconv: ``.pt2`` and ``.pt`` through ``converter.pipeline.run`` (target onnx, opset 17, no
  verification);
* ``torch.onnx.export(model, example, opset_version=17, dynamo=False)`` (TorchScript-based) and
  ``dynamo=True`` (needs ``onnxscript``), each raw, after ``onnxslim.slim`` and after
  ``onnxsim.simplify``.

"best peer" is the smallest slimmed/simplified count; mconv must not exceed it. A peer step
that fails is recorded as ``err`` with its message in the JSON (e.g. the dynamo exporter's
opset 18 -> 17 down-conversion can leave a Split ``num_outputs`` that the simplifiers reject).

Usage::

    python bench/onnx_vs_torch_onnx.py [--fixtures DIR] [--only NAME ...] [--check]

Install the peers with ``pip install -c constraints.txt -e '.[bench]'``. Writes
``bench/results/onnx_vs_torch_onnx-<date>.json`` and ``.md``, prints the Markdown table;
``--check`` exits 1 when mconv has more nodes than the best peer on any fixture.
"""
from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

import benchlib  # bench/ is on sys.path when these run as scripts

ROOT = benchlib.ROOT
OPSET = 17


def mconv_count(path: Path, out: Path, shapes: dict) -> int:
    """Node count of mconv's ``.onnx`` for ``path`` (opset 17, no verification)."""
    from converter.options import ConvertOptions
    from converter.pipeline import run

    res = run(path, ConvertOptions(targets=("onnx",), output_dir=out, verify=False,
                                   input_shapes=shapes, opset=OPSET))
    return res.target_ops["onnx"]["ops"]


def _quiet(fn, *args, **kw):
    """Call ``fn`` with stdout/stderr and warnings silenced (the exporters are chatty)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def peer_counts(fx, out: Path, dynamo: bool) -> dict:
    """``{raw, slim, sim, export_s}`` node counts of ``torch.onnx.export`` (+ simplifiers);
    a failed step gives ``<step>_error``."""
    import onnx
    import torch

    key = "dynamo" if dynamo else "ts"
    row: dict = {}
    path = out / f"{fx.name}_{key}.onnx"
    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            _quiet(torch.onnx.export, fx.model(), fx.example_inputs(), str(path),
                   opset_version=OPSET, dynamo=dynamo, input_names=list(fx.input_shapes),
                   output_names=list(fx.output_names))
        model = onnx.load(str(path))
    except Exception as e:  # a peer failure is a result, not a bench crash
        return {f"{key}_error": f"export: {type(e).__name__}: {e}"[:300]}
    row[f"{key}_export_s"] = round(time.perf_counter() - t0, 2)
    row[f"{key}_raw"] = len(model.graph.node)
    for step, fn in (("slim", _slim), ("sim", _sim)):
        try:
            simplified = _quiet(fn, model)
            row[f"{key}_{step}"] = len(simplified.graph.node)
            if step == "slim":
                onnx.save(simplified, str(out / f"{fx.name}_{key}_slim.onnx"))
        except Exception as e:
            row[f"{key}_{step}_error"] = f"{type(e).__name__}: {e}"[:300]
    return row


def _slim(model):
    import onnxslim

    return onnxslim.slim(model)


def _sim(model):
    import onnxsim

    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise RuntimeError("onnxsim: simplified model failed its check")
    return simplified


def whole_process_s(path: Path, out: Path, shapes: dict, runs: int = 3) -> float:
    """Median wall time of ``mconv convert PATH --to onnx --no-verify`` in a fresh process."""
    import statistics
    import subprocess

    args = [a for k, v in shapes.items() for a in ("--input-shape",
                                                     f"{k}={'x'.join(map(str, v))}")]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "converter", "convert", str(path), "--to", "onnx",
                        "-o", str(out), "--no-verify", *args], cwd=ROOT, check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 2)


def ort_ms(path: Path, shapes: dict, threads: int, iters: int = 20) -> float:
    """Median onnxruntime CPU latency (ms) of ``path`` on seeded inputs."""
    import statistics

    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {i.name: rng.standard_normal(s).astype(np.float32)
            for i, s in zip(sess.get_inputs(), shapes.values())}
    times = []
    for k in range(iters + 3):
        t0 = time.perf_counter()
        sess.run(None, feed)
        if k >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 3)


def _latencies(row: dict, name: str, td: Path, shapes: dict) -> None:
    """ORT latency (1 and 2 threads) of mconv's file and of the TS-export+onnxslim file."""
    files = {"mconv": td / "pt2" / f"{name}.onnx", "peer": td / f"{name}_ts_slim.onnx"}
    for who, f in files.items():
        if f.exists():
            for t in (1, 2):
                row[f"ort_ms_{who}_{t}t"] = ort_ms(f, shapes, t)


def bench_one(name: str, fdir: Path) -> dict:
    """One fixture: mconv on .pt2 / .pt, both torch.onnx exporters with both simplifiers."""
    from fixtures.build import FIXTURES

    fx = FIXTURES[name]
    shapes = {k: tuple(v) for k, v in fx.input_shapes.items()}
    row: dict = {"fixture": name}
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        for fmt in ("pt2", "pt"):
            row[f"mconv_{fmt}"] = mconv_count(fdir / f"{name}.{fmt}", td / fmt, shapes)
        row["mconv_pt2_s"] = whole_process_s(fdir / f"{name}.pt2", td / "cli", shapes)
        for dynamo in (False, True):
            row.update(peer_counts(fx, td, dynamo))
        _latencies(row, name, td, shapes)
    peers = [row[k] for k in ("ts_slim", "ts_sim", "dynamo_slim", "dynamo_sim") if k in row]
    row["best_peer"] = min(peers) if peers else None
    row["ok"] = row["best_peer"] is None or max(row["mconv_pt2"], row["mconv_pt"]) <= \
        row["best_peer"]
    return row


COLUMNS = ("mconv_pt2", "mconv_pt", "ts_raw", "ts_slim", "ts_sim", "dynamo_raw",
           "dynamo_slim", "dynamo_sim", "best_peer", "mconv_pt2_s", "ts_export_s",
           "dynamo_export_s", "ort_ms_mconv_1t", "ort_ms_peer_1t", "ort_ms_mconv_2t",
           "ort_ms_peer_2t")


def markdown(rows: list) -> str:
    """The node-count table (``err``: that peer step failed, see the JSON)."""
    head = ("| fixture | mconv .pt2 | mconv .pt | torch.onnx (TS) raw | TS+onnxslim | "
            "TS+onnxsim | torch.onnx (dynamo) raw | dynamo+onnxslim | dynamo+onnxsim | "
            "best peer | mconv s (whole process) | torch.onnx TS s | dynamo s | "
            "ORT ms 1t mconv | ORT ms 1t TS+slim | ORT ms 2t mconv | ORT ms 2t TS+slim | "
            "mconv <= best |")
    lines = [head, "|---" * 18 + "|"]
    for r in rows:
        cells = [str(r.get(c, "err")) for c in COLUMNS]
        lines.append(f"| {r['fixture']} | " + " | ".join(cells) +
                     f" | {'yes' if r['ok'] else 'NO'} |")
    return "\n".join(lines)


def main() -> int:
    ap = benchlib.parser(__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 if mconv loses anywhere")
    args = ap.parse_args()
    rows = benchlib.each_fixture(args, lambda n: bench_one(n, args.fixtures))
    benchlib.save("onnx_vs_torch_onnx", rows, markdown(rows))
    return 1 if args.check and not all(r["ok"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
