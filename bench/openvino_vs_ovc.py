"""Benchmark: mconv vs OpenVINO's own converter (``openvino.convert_model``, what ``ovc`` runs),
PyTorch -> OpenVINO IR, on every fixture.

For each fixture's ``torch.export`` ``.pt2`` this measures:

* the op count of both IRs, counted the same way (:func:`exporters.openvino.describe`: every
  layer except Parameter / Result / Const and fp16 decompression Converts); the ovc model is
  saved with ``openvino.save_model(..., compress_to_fp16=False)`` like ours;
* conversion wall time, in process (mconv: load + optimize + export with ``verify=False``;
  ovc: ``torch.export.load`` + ``convert_model`` + ``save_model``), median of ``--runs``;
* CPU inference latency of both IRs in f32 (median of ``--iters``, 2 threads);
* max abs difference between the two IRs' outputs on the same seeded input.

Usage::

    python bench/openvino_vs_ovc.py [--fixtures DIR] [--only NAME ...] [--runs 1] [--iters 20]

Writes ``bench/results/openvino_vs_ovc-<date>.json`` and prints a Markdown table.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import benchlib  # bench/ is on sys.path when these run as scripts

ROOT = benchlib.ROOT


def convert_mconv(pt2: Path, out: Path) -> list:
    """mconv .pt2 -> OpenVINO IR in ``out``; returns the written files."""
    from converter.options import ConvertOptions
    from converter.pipeline import run

    res = run(pt2, ConvertOptions(targets=("openvino",), output_dir=out, verify=False))
    return [Path(f["path"]) for f in res.files]


def convert_ovc(pt2: Path, out: Path) -> list:
    """``openvino.convert_model`` on the loaded ExportedProgram, saved uncompressed."""
    import openvino
    import torch

    model = openvino.convert_model(torch.export.load(str(pt2)))
    xml = out / f"{pt2.stem}.xml"
    openvino.save_model(model, str(xml), compress_to_fp16=False)
    return [xml, xml.with_suffix(".bin")]


def latency(xml: Path, x: np.ndarray, iters: int) -> tuple:
    """(median ms, outputs) of f32 CPU inference with 2 threads."""
    from exporters.openvino.runtime import core

    cm = core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                "INFERENCE_NUM_THREADS": 2})
    req = cm.create_infer_request()
    times = []
    for i in range(iters + 3):
        t0 = time.perf_counter()
        res = req.infer({0: x})
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), [np.array(res[o]) for o in cm.outputs]


def _timed(fn, *args, runs: int):
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_one(name: str, fdir: Path, runs: int, iters: int) -> dict:
    from exporters.openvino import describe

    meta = json.loads((fdir / f"{name}.json").read_text())
    (shape,) = meta["inputs"].values()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    row: dict = {"fixture": name, "input": "x".join(map(str, shape))}
    with tempfile.TemporaryDirectory() as td:
        outs = {}
        for who, fn in (("mconv", convert_mconv), ("ovc", convert_ovc)):
            d = Path(td) / who
            d.mkdir()
            try:
                row[f"{who}_s"], files = _timed(fn, fdir / f"{name}.pt2", d, runs=runs)
            except Exception as e:  # a bench row records the failure and goes on
                row[f"{who}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                continue
            desc = describe(files)
            row[f"{who}_ops"], row[f"{who}_op_counts"] = desc["ops"], desc["op_counts"]
            row[f"{who}_ms"], outs[who] = latency(files[0], x, iters)
        if len(outs) == 2:
            row["max_abs_diff"] = max(float(np.abs(a - b).max())
                                      for a, b in zip(outs["mconv"], outs["ovc"]))
    return row


def markdown(rows: list) -> str:
    f = benchlib.cell
    lines = ["| fixture | ops mconv / ovc | convert s mconv / ovc | latency ms mconv / ovc | "
             "max abs diff |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['fixture']} | {f(r, 'mconv_ops', '{}')} / {f(r, 'ovc_ops', '{}')} | "
                     f"{f(r, 'mconv_s')} / {f(r, 'ovc_s')} | {f(r, 'mconv_ms')} / "
                     f"{f(r, 'ovc_ms')} | {f(r, 'max_abs_diff', '{:.2g}')} |")
    return "\n".join(lines)


def main() -> None:
    ap = benchlib.parser(__doc__)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    rows = benchlib.each_fixture(args, lambda n: bench_one(n, args.fixtures, args.runs,
                                                           args.iters))
    benchlib.save("openvino_vs_ovc", rows, markdown(rows))


if __name__ == "__main__":
    main()
