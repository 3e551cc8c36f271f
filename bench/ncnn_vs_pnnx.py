"""Benchmark: mconv vs pnnx, PyTorch -> ncnn, on every fixture.

For each fixture's TorchScript ``.pt`` (and mconv on the ``.pt2`` too) this measures:

* whole-process conversion wall time (median of ``--runs`` runs; mconv with ``--no-verify``,
  because pnnx does not verify; pnnx with ``inputshape=[...]``);
* the ncnn layer count of both outputs (second line of the ``.param``);
* ncnn inference latency of both outputs (median over ``--iters`` runs, 1 and 2 threads,
  fp32 storage/arithmetic so both are measured the same way; the two nets run interleaved
  so machine drift hits both alike).

Usage::

    python bench/ncnn_vs_pnnx.py [--fixtures DIR] [--only NAME ...] [--runs 3] [--iters 20]

Writes ``bench/results/ncnn_vs_pnnx-<date>.json`` and prints a Markdown table.
"""
from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import benchlib  # bench/ is on sys.path when these run as scripts

ROOT = benchlib.ROOT


def _timed(cmd: list, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def layer_count(param: Path) -> int:
    return int(param.read_text().splitlines()[1].split()[0])


def _net(param: Path, threads: int):
    import ncnn

    net = ncnn.Net()
    for k in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed",
              "use_bf16_storage"):
        setattr(net.opt, k, False)
    net.opt.num_threads = threads
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    return net


def _once(net, x) -> float:
    import ncnn

    t0 = time.perf_counter()
    ex = net.create_extractor()
    ex.input(net.input_names()[0], ncnn.Mat(x).clone())
    for o in net.output_names():
        ex.extract(o)
    return (time.perf_counter() - t0) * 1e3


def paired_latency(params: dict, shape: tuple, threads: int, iters: int) -> dict:
    """Median ncnn inference time (ms) of each ``.param`` in ``params`` (name -> path), fp32
    storage and arithmetic, runs interleaved A, B, A, B, ... so machine drift hits both."""
    nets = {k: _net(p, threads) for k, p in params.items() if p.exists()}
    x = np.random.default_rng(0).standard_normal(shape[1:]).astype(np.float32)
    times: dict = {k: [] for k in nets}
    for i in range(iters + 3):
        for k, net in nets.items():
            t = _once(net, x)
            if i >= 3:
                times[k].append(t)
    return {k: statistics.median(v) for k, v in times.items()}


def _median_run(cmd: list, cwd: Path, runs: int) -> tuple[float | None, list]:
    """Median wall time of ``runs`` runs, or (None, last stderr lines) on failure."""
    times = []
    for _ in range(runs):
        t, proc = _timed(cmd, cwd)
        if proc.returncode != 0:
            return None, (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        times.append(t)
    return statistics.median(times), []


def _measure(row: dict, params: dict, shape: tuple, iters: int) -> None:
    for who, param in params.items():
        if param.exists():
            row[f"{who}_layers"] = layer_count(param)
    for t in (1, 2):
        for who, ms in paired_latency(params, shape, t, iters).items():
            row[f"{who}_ms_{t}t"] = ms


def bench_one(name: str, fdir: Path, runs: int, iters: int) -> dict:
    """One fixture: mconv on .pt and .pt2, pnnx on .pt; times, layer counts, latencies."""
    meta = json.loads((fdir / f"{name}.json").read_text())
    (in_name, shape), = meta["inputs"].items()
    shape = tuple(shape)
    dims = "x".join(map(str, shape))
    row: dict = {"fixture": name, "input": dims}
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        for fmt in ("pt", "pt2"):
            cmd = [sys.executable, "-m", "converter", "convert", str(fdir / f"{name}.{fmt}"),
                   "--to", "ncnn", "-o", str(td / f"mconv_{fmt}"), "--no-verify",
                   "--input-shape", f"{in_name}={dims}"]
            row[f"mconv_{fmt}_s"], err = _median_run(cmd, ROOT, runs)
            if err:
                row[f"mconv_{fmt}_error"] = err
        pdir = td / "pnnx"
        pdir.mkdir()
        shutil.copy(fdir / f"{name}.pt", pdir / f"{name}.pt")
        pnnx = shutil.which("pnnx") or str(Path(sys.executable).parent / "pnnx")
        cmd = [pnnx, f"{name}.pt", f"inputshape=[{','.join(map(str, shape))}]"]
        row["pnnx_s"], err = _median_run(cmd, pdir, runs)
        if err:
            row["pnnx_error"] = err
        _measure(row, {"mconv": td / "mconv_pt" / f"{name}.ncnn.param",
                       "pnnx": pdir / f"{name}.ncnn.param"}, shape, iters)
    return {k: v for k, v in row.items() if v is not None}


def markdown(rows: list) -> str:
    f = benchlib.cell
    lines = ["| fixture | mconv .pt s | mconv .pt2 s | pnnx s | layers mconv / pnnx | "
             "latency 1t ms mconv / pnnx | latency 2t ms mconv / pnnx |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['fixture']} | {f(r, 'mconv_pt_s')} | {f(r, 'mconv_pt2_s')} | "
                     f"{f(r, 'pnnx_s')} | {f(r, 'mconv_layers', '{}')} / "
                     f"{f(r, 'pnnx_layers', '{}')} | {f(r, 'mconv_ms_1t')} / "
                     f"{f(r, 'pnnx_ms_1t')} | {f(r, 'mconv_ms_2t')} / {f(r, 'pnnx_ms_2t')} |")
    return "\n".join(lines)


def main() -> None:
    ap = benchlib.parser(__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    rows = benchlib.each_fixture(args, lambda n: bench_one(n, args.fixtures, args.runs,
                                                           args.iters))
    benchlib.save("ncnn_vs_pnnx", rows, markdown(rows))


if __name__ == "__main__":
    main()
