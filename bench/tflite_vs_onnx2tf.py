"""Benchmark: mconv PyTorch -> TFLite vs onnx2tf (ONNX -> TFLite) and, where a Keras
equivalent exists, TensorFlow's own ``TFLiteConverter`` (bench/tflite_keras_ref.py).

For every fixture's ``torch.export`` ``.pt2``:

* mconv: ``.pt2`` -> ``.tflite`` in process (load + optimize + export, ``verify=False``);
* onnx2tf: the same model exported to ONNX by mconv (``--to onnx``, opset 17: BatchNorm
  already folded, the cleanest input onnx2tf can get), converted with the ``onnx2tf`` CLI
  (its float32 output). onnx2tf pins numpy 1.26 / onnx 1.19 / TensorFlow 2.19 / protobuf 4,
  which would break the project venv, so it runs from a separate Python given by
  ``--tf-python`` (default ``$MCONV_TF_PYTHON``). It needs two workarounds offline: its
  ``onnxsim`` subprocess must be on PATH, and it downloads dummy calibration images from
  GitHub for 4-D 3-channel inputs, so a seeded random
  ``calibration_image_sample_data_20x128x128x3_float32.npy`` is written into its cwd;
* TFLiteConverter: Keras equivalents (MTCNN layer for layer, keras.applications ResNet50 /
  MobileNetV2), same Python.

Measured: operator count and TRANSPOSE count (:func:`exporters.tflite.op_counts`, DEQUANTIZE
of constants excluded), conversion wall time (onnx2tf: the subprocess, including the TensorFlow import, which
is reported separately as ``tf_import_s``; Keras: measured after the import), and LiteRT latency
(``ai_edge_litert`` 2.3.0, default XNNPACK delegate, 1 and 2 threads, median of ``--iters``
after 3 warm-up runs) of every file in the project venv's LiteRT.

Two phases: conversions (resumable, kept under ``--work``; several ``--convert-only`` runs
may go in parallel), then op counts and latency measured one file at a time.

Usage::

    python bench/tflite_vs_onnx2tf.py [--fixtures DIR] [--only NAME ...] [--iters 30]
        [--tf-python /path/to/python] [--work DIR] [--convert-only]

Writes ``bench/results/tflite_vs_onnx2tf-<date>.json`` and ``.md`` and prints the table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CALIB = "calibration_image_sample_data_20x128x128x3_float32.npy"


def convert_mconv(pt2: Path, out: Path, target: str) -> tuple[float, Path]:
    """(seconds, written file) of mconv ``pt2`` -> ``target``."""
    from converter.options import ConvertOptions
    from converter.pipeline import run

    t0 = time.perf_counter()
    res = run(pt2, ConvertOptions(targets=(target,), output_dir=out, verify=False))
    return time.perf_counter() - t0, Path(res.files[0]["path"])


def _tf_env(tf_python: str) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(tf_python).parent) + os.pathsep + env.get("PATH", "")
    env["CUDA_VISIBLE_DEVICES"] = "-1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def convert_onnx2tf(onnx: Path, out: Path, tf_python: str) -> tuple[float, Path]:
    """(seconds, float32 .tflite) of the onnx2tf CLI on ``onnx``.

    Raises:
        RuntimeError: onnx2tf failed (the last lines of its log).
    """
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.save(out / CALIB, rng.random((20, 128, 128, 3), dtype=np.float32))
    t0 = time.perf_counter()
    proc = subprocess.run([tf_python, "-m", "onnx2tf", "-i", str(onnx), "-o", "o2t"], cwd=out,
                          env=_tf_env(tf_python), capture_output=True, text=True, timeout=1800)
    secs = time.perf_counter() - t0
    path = out / "o2t" / f"{onnx.stem}_float32.tflite"
    if proc.returncode != 0 or not path.exists():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise RuntimeError(" | ".join(tail)[:300])
    return secs, path


def convert_keras(name: str, out: Path, tf_python: str) -> dict:
    """Run bench/tflite_keras_ref.py for ``name``: ``{"seconds", "path"}`` or ``{"error"}``."""
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([tf_python, str(ROOT / "bench" / "tflite_keras_ref.py"), name,
                           str(out)], env=_tf_env(tf_python), capture_output=True, text=True,
                          timeout=1800)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": proc.stderr.strip()[-300:]}


def tf_import_seconds(tf_python: str) -> float:
    """Wall time of ``import onnx2tf, tensorflow`` in the TF Python (part of every
    onnx2tf conversion time)."""
    t0 = time.perf_counter()
    subprocess.run([tf_python, "-c", "import onnx2tf, tensorflow"], env=_tf_env(tf_python),
                   capture_output=True, timeout=600)
    return time.perf_counter() - t0


def latency(path: Path, threads: int, iters: int) -> float:
    """Median ms of one invoke (XNNPACK default delegate, ``threads`` threads)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        it.set_tensor(d["index"], rng.standard_normal(d["shape"]).astype(d["dtype"]))
    times = []
    for i in range(iters + 3):
        t0 = time.perf_counter()
        it.invoke()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 3)


def describe(path: Path, iters: int) -> dict:
    """Op counts, TRANSPOSE count, size and 1/2-thread latency of a ``.tflite``."""
    from exporters.tflite import op_counts

    counts = op_counts(path.read_bytes())
    return {"ops": sum(counts.values()), "transposes": counts.get("TRANSPOSE", 0),
            "op_counts": counts, "size": path.stat().st_size,
            "ms_1t": latency(path, 1, iters), "ms_2t": latency(path, 2, iters)}


def _files(name: str, fixtures: Path, work: Path, tf_python: str) -> dict:
    """Phase 1 (resumable: kept in ``work/NAME/row.json``): convert with all three tools;
    ``{tool: {"seconds", "path"} or {"error"}}``."""
    done = work / name / "row.json"
    if done.exists():
        return json.loads(done.read_text())
    pt2, tmp = fixtures / f"{name}.pt2", work / name
    row: dict = {}
    secs, path = convert_mconv(pt2, tmp / "mconv", "tflite")
    row["mconv"] = {"seconds": round(secs, 3), "path": str(path)}
    _, onnx = convert_mconv(pt2, tmp / "onnx", "onnx")
    try:
        secs, path = convert_onnx2tf(onnx, tmp / "onnx2tf", tf_python)
        row["onnx2tf"] = {"seconds": round(secs, 3), "path": str(path)}
    except Exception as e:
        row["onnx2tf"] = {"error": str(e)}
    k = convert_keras(name, tmp / "keras", tf_python)
    row["keras"] = ({"seconds": round(k["seconds"], 3), "path": k["path"]} if "path" in k
                    else {"error": k.get("error", "?")})
    done.write_text(json.dumps(row))
    return row


def bench_one(name: str, files: dict, iters: int) -> dict:
    """Phase 2 (sequential, on a quiet machine): one table row with op counts and latency
    of every converted file."""
    row: dict = {"fixture": name}
    for tool, f in files.items():
        row[tool] = dict(f) if "error" in f else {"seconds": f["seconds"],
                                                   **describe(Path(f["path"]), iters)}
    return row


def _cell(d: dict, key: str) -> str:
    """A table cell: the value, ``-`` for "no Keras equivalent", ``err`` for a failure."""
    if "error" in d:
        return "-" if "equivalent" in d["error"] else "err"
    return str(d[key])


def table(rows: list) -> str:
    """The Markdown table of the rows."""
    cols = [("ops", "ops"), ("transposes", "TRANSPOSE"), ("seconds", "convert s"),
            ("ms_1t", "ms 1 thread"), ("ms_2t", "ms 2 threads")]
    head = "| fixture | " + " | ".join(f"{t} mconv / onnx2tf / Keras" for _, t in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for r in rows:
        cells = [" / ".join(_cell(r[k], key) for k in ("mconv", "onnx2tf", "keras"))
                 for key, _ in cols]
        lines.append(f"| {r['fixture']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run the bench on the chosen fixtures and write the results."""
    from fixtures.build import FIXTURES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", type=Path, default=ROOT / "fixtures" / "out")
    ap.add_argument("--only", nargs="+", choices=sorted(FIXTURES))
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--tf-python", default=os.environ.get("MCONV_TF_PYTHON", ""))
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) /
                    "mconv_tflite_bench", help="converted files (phase 1 resumes from here)")
    ap.add_argument("--convert-only", action="store_true",
                    help="only phase 1 (conversions); run again without it to measure")
    args = ap.parse_args(argv)
    if not args.tf_python:
        ap.error("--tf-python (or MCONV_TF_PYTHON): a Python with onnx2tf and tensorflow")
    names = args.only or list(FIXTURES)
    files = {n: _files(n, args.fixtures, args.work, args.tf_python) for n in names}
    if args.convert_only:
        return 0
    rows = [bench_one(n, files[n], args.iters) for n in names]
    result = {"date": dt.date.today().isoformat(), "tf_import_s": round(
        tf_import_seconds(args.tf_python), 2), "rows": rows}
    out = ROOT / "bench" / "results" / f"tflite_vs_onnx2tf-{result['date']}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = table(rows)
    out.with_suffix(".md").write_text(md + f"\n\nTF import (in every onnx2tf time): "
                                      f"{result['tf_import_s']} s\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
