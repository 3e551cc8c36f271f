"""What the bench scripts share: the command line over fixtures, table cells, and writing
``bench/results/<stem>-<date>.json`` (+ ``.md``)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[1]


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with ``--fixtures DIR`` and ``--only NAME ...``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--fixtures", type=Path, default=ROOT / "fixtures" / "out")
    ap.add_argument("--only", nargs="*")
    return ap


def each_fixture(args: argparse.Namespace, bench_one: Callable[[str], dict]) -> list[dict]:
    """Build every chosen fixture (all of them without ``--only``) and bench it; each row is
    also echoed to stderr as JSON as soon as it is measured."""
    sys.path.insert(0, str(ROOT))
    from fixtures.build import FIXTURES, build

    rows = []
    for name in args.only or list(FIXTURES):
        build(name, args.fixtures)
        rows.append(bench_one(name))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def cell(row: dict, key: str, fmt: str = "{:.2f}") -> str:
    """``row[key]`` formatted, or ``err`` when that measurement failed (see the JSON)."""
    return fmt.format(row[key]) if key in row else "err"


def save(stem: str, rows: list, table: Optional[str] = None) -> None:
    """Write ``bench/results/<stem>-<date>.json`` (and ``.md`` with ``table``); print it."""
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"{stem}-{dt.date.today().isoformat()}"
    base.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    if table is not None:
        base.with_suffix(".md").write_text(table + "\n")
        print(table)
