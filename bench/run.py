"""Benchmark mconv against the converter users would pick instead, on every fixture and
target, in one run (issue 8).

For each case (fixture x target; pairs in bench/sources.py) every tool converts the same
input file in whole processes, interleaved mconv / peer / mconv / ... (order alternating per
round): wall time and peak RSS (``os.wait4``) are medians of ``--runs`` runs and the ratio
mconv / peer is the median of the per-round ratios, so machine drift cancels. Then each
output: op count (TRANSPOSE count for TFLite), size, max abs error against the source
framework on seeded inputs, and inference latency in its runtime on 1 and 2 threads
(bench/evaluate.py; ratios per interleaved iteration). A tool that fails is a result: its
one-line error goes into the table. Also ``mconv --help`` start-up time, and (full run or
``--scale``) the > 2 GB scale check (bench/scale.py).

A tool whose first run takes longer than ``--slow`` seconds (onnx2tf on big models) is run
once for that case; a run over ``--timeout`` is killed and recorded as a timeout.

Usage::

    python bench/run.py [--fixtures a,b] [--targets ncnn,onnx,openvino,tflite] [--runs 3]
                        [--iters 20] [--quick] [--scale]

Peers: ``pip install -e '.[bench]'`` and ``bash bench/setup_peers.sh`` (onnx2tf's venv).
Writes ``bench/results/<date>.json`` and ``.md`` (``<date>-partial`` for a subset) and prints
the Markdown table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import traceback
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import benchlib  # noqa: E402
import report  # noqa: E402
from benchlib import PY, ROOT  # noqa: E402

TARGETS = ("ncnn", "onnx", "openvino", "tflite")
QUICK = ("mtcnn_pnet", "mobilenet_v2")


def fixtures() -> list:
    """``[(kind, name, error)]`` of every fixture; a fixture module that does not import
    gives one row with its error."""
    out = []
    for kind, mod, attr in (("pytorch", "fixtures.build", "FIXTURES"),
                            ("keras", "fixtures.keras_models", "KERAS_FIXTURES"),
                            ("caffe", "fixtures.caffe_models", "CAFFE_FIXTURES")):
        try:
            names = list(getattr(__import__(mod, fromlist=[attr]), attr))
            out += [(kind, n, None) for n in names]
        except Exception as e:  # another helper's module not there (yet) or broken
            out.append((kind, f"({kind} fixtures)", f"{mod}: {type(e).__name__}: {e}"[:200]))
    return out


def choose(args) -> list:
    """The fixtures to run: ``--fixtures`` (names, ``kind:name`` or a whole ``kind``:
    pytorch, keras, caffe), else with ``--quick`` the QUICK ones plus the first Keras and
    Caffe fixture, else all."""
    every = fixtures()
    if args.fixtures:
        want = set(args.fixtures.split(","))
        return [f for f in every if want & {f[0], f[1], f"{f[0]}:{f[1]}"}]
    if args.quick:
        firsts = {}
        for f in every:
            firsts.setdefault(f[0], f)
        return [f for f in every if f[0] == "pytorch" and f[1] in QUICK] + \
            [firsts[k] for k in ("keras", "caffe") if k in firsts]
    return every


def make_cases(kind: str, name: str, targets: list) -> list:
    """The cases of one fixture (sources.py builds its files and references)."""
    import sources

    make = {"pytorch": sources.torch_cases, "keras": sources.keras_cases,
            "caffe": sources.caffe_cases}[kind]
    return make(name, targets)


def convert_rounds(case, runs: int, timeout: float, slow: float) -> dict:
    """``{tool: [Run]}``: up to ``runs`` rounds of whole-process conversions; a tool that
    fails is dropped from later rounds; one round only when a run is slower than ``slow``."""
    active = [t for t in case.tools if t.error is None and case.error is None]
    done: dict = {t.name: [] for t in case.tools}
    for i in range(runs):
        for t in (active if i % 2 == 0 else active[::-1]):
            t.reset()
            r = benchlib.run_child(t.cmd, cwd=t.cwd, env=t.env, timeout=timeout)
            if r.error is None and not t.files():
                r.error = f"no output file ({', '.join(t.patterns)}): {benchlib.error_line(r.log)}"
            done[t.name].append(r)
            if r.error:
                t.error = r.error
        active = [t for t in active if t.error is None]
        if any(r.seconds > slow for rs in done.values() for r in rs):
            break
    return done


def summarize(case, done: dict) -> None:
    """Conversion figures per tool into ``case.results`` and the per-peer ratios."""
    for t in case.tools:
        ok = [r for r in done[t.name] if r.error is None]
        row: dict = {"runs": [[round(r.seconds, 3), r.peak_rss] for r in done[t.name]]}
        if case.error or t.error:
            row["error"] = case.error or t.error
        if ok:
            row["convert_s"] = benchlib.median([r.seconds for r in ok])
            row["peak_rss"] = benchlib.median([r.peak_rss for r in ok])
        case.results[t.name] = row


def peer_ratios(case, done: dict) -> dict:
    """``{peer: {figure: mconv / peer}}``: conversion figures and latency pair by pair, op
    count and size as plain ratios."""
    m = case.results["mconv"]
    out = {}
    for t in case.tools[1:]:
        p = case.results[t.name]
        if m.get("error") or p.get("error"):
            out[t.name] = {}
            continue
        a, b = done["mconv"], done[t.name]
        r = {"convert_s": benchlib.ratios([x.seconds for x in a], [y.seconds for y in b]),
             "peak_rss": benchlib.ratios([x.peak_rss for x in a], [y.peak_rss for y in b])}
        for k in ("ms_1t", "ms_2t"):
            r[k] = benchlib.ratios(m.get(k + "_runs", []), p.get(k + "_runs", []))
        for k in ("ops", "size", "transposes"):
            if m.get(k) is not None and p.get(k):
                r[k] = m[k] / p[k]
        out[t.name] = r
    return out


def bench_case(case, args) -> dict:
    """Convert, evaluate and summarize one case; the JSON row."""
    import evaluate

    done = convert_rounds(case, args.runs, args.timeout, args.slow)
    summarize(case, done)
    if case.error is None:
        evaluate.evaluate(case, args.iters)
    ratios = peer_ratios(case, done)
    for row in case.results.values():
        for k in ("ms_1t_runs", "ms_2t_runs"):
            row.pop(k, None)
    return {"fixture": case.fixture, "kind": case.kind, "target": case.target,
            "source": _rel(case.source),
            "tools": case.results, "ratios": ratios}


def _rel(p) -> str:
    p = Path(p)
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def error_case(kind: str, name: str, targets: list, err: str) -> list:
    """Rows for a fixture whose source could not be made (mconv and peers not run)."""
    return [{"fixture": name, "kind": kind, "target": t, "source": "",
             "tools": {"mconv": {"error": err}}, "ratios": {}} for t in targets]


def startup(runs: int) -> dict:
    """Median wall time of ``mconv --help`` and of a bare ``python -c pass``, interleaved."""
    exe = Path(PY).parent / "mconv"
    cmd = [exe, "--help"] if exe.exists() else [PY, "-m", "converter", "--help"]
    a, b = [], []
    for _ in range(max(runs, 5)):
        a.append(benchlib.run_child(cmd))
        b.append(benchlib.run_child([PY, "-c", "pass"]))
    return {"mconv_help_s": benchlib.median([r.seconds for r in a if r.error is None]),
            "python_s": benchlib.median([r.seconds for r in b]),
            "error": next((r.error for r in a if r.error), None)}


def peers() -> dict:
    """Versions of the peers that live outside the project's venv."""
    py = benchlib.venv_python("onnx2tf", "MCONV_ONNX2TF_PYTHON")
    if py is None:
        return {"onnx2tf": "not installed (bash bench/setup_peers.sh)"}
    return {"onnx2tf": benchlib.venv_version(py, "onnx2tf"),
            "onnx2tf venv tensorflow": benchlib.venv_version(py, "tensorflow")}


def run_all(args, chosen: list, targets: list, save) -> list:
    """Every chosen fixture's cases, in order; progress on stderr; ``save(rows)`` after
    every fixture, so an interrupted run keeps what it measured."""
    rows = []
    for kind, name, err in chosen:
        if err is None:
            try:
                cases = make_cases(kind, name, targets)
            except Exception as e:  # the fixture could not be built / referenced
                err = f"source: {type(e).__name__}: {str(e).strip()[:200]}"
                if args.debug:
                    traceback.print_exc()
        if err is not None:
            rows += error_case(kind, name, targets, err)
            continue
        for case in cases:
            try:
                rows.append(bench_case(case, args))
            except Exception as e:  # a bug in the bench must not lose the other rows
                traceback.print_exc()
                rows += error_case(kind, name, [case.target], f"bench: {type(e).__name__}: {e}")
                continue
            print(f"[bench] {name} {kind}->{case.target}: " + ", ".join(
                f"{n} {'err' if r.get('error') else round(r.get('convert_s') or 0, 2)}"
                for n, r in case.results.items()), file=sys.stderr, flush=True)
        save(rows)
    return rows


def parse(argv) -> argparse.Namespace:
    """The command line (``--quick``: 1 run, 5 latency iterations, QUICK fixtures).

    Raises:
        SystemExit(2): an unknown target.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixtures", help="comma-separated fixture names, kind:name or kinds "
                    "(pytorch, keras, caffe); default: all")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    ap.add_argument("--runs", type=int, default=3, help="whole-process runs per tool")
    ap.add_argument("--iters", type=int, default=20, help="latency iterations per tool")
    ap.add_argument("--quick", action="store_true", help="1 run, 5 iterations, few fixtures")
    ap.add_argument("--scale", action="store_true", help="only the > 2 GB scale check")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per conversion run")
    ap.add_argument("--slow", type=float, default=60, help="a run slower than this: 1 round")
    ap.add_argument("--debug", action="store_true", help="print tracebacks of source errors")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.iters = 1, 5
    bad = set(args.targets.split(",")) - set(TARGETS)
    if bad:
        ap.error(f"unknown targets {sorted(bad)}; choose from {','.join(TARGETS)}")
    return args


def main(argv=None) -> int:
    """Run the bench; write bench/results/<date>[-partial].json and .md; print the table."""
    args = parse(argv)
    targets = [t for t in TARGETS if t in args.targets.split(",")]
    full = not (args.fixtures or args.quick or args.scale) and len(targets) == len(TARGETS)
    res = {"date": dt.date.today().isoformat(), "command": "python bench/run.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "machine": benchlib.machine(), "peers": peers(),
        "options": {"runs": args.runs, "iters": args.iters, "targets": targets,
                    "timeout": args.timeout, "slow": args.slow}, "cases": []}
    stem = res["date"] + ("" if full else "-scale" if args.scale else "-partial")
    out = ROOT / "bench" / "results" / stem
    if full or args.scale:
        import scale

        res["scale"] = scale.run(timeout=args.timeout)
    if not args.scale:
        res["startup"] = startup(args.runs)
        res["cases"] = run_all(args, choose(args), targets,
                               lambda rows: write(out, {**res, "cases": rows}))
    print(write(out, res))
    return 0


def write(out: Path, res: dict) -> str:
    """Write ``out``.json and ``out``.md; returns the Markdown."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    md = report.markdown(res)
    out.with_suffix(".md").write_text(md)
    return md


if __name__ == "__main__":
    sys.exit(main())
