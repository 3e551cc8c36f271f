"""``mconv ops``: which source ops of one model each target can run, and the global
operator-support matrix (``mconv ops --matrix``), both built from the registries.

Per-model scan (:func:`scan_model`): the model is loaded by its frontend, optimized, and every
requested target's ``scan()`` runs on the optimized graph; each issue is mapped back to the
source op of the IR node it names (``node.meta["source_op"]``, set by every frontend's
``Ctx.emit``). One :class:`Row` per source op type: its count, the IR ops it became, and per
target a :class:`Cell` with a status:

* ``ok``: supported; ``note``: supported with a note (``fp16 weights may drift``, a
  registry note); ``unsupported``: a reason code and the text of the check that failed;
* ``unchecked``: the frontend stopped at unsupported ops, so no IR exists for this op; the
  cell says which lowerings the registry has for the IR ops it may emit.

When the frontend rejects ops (``UnsupportedOpsError``) those rows are unsupported on every
target and the table is still produced. Exit code: 0 when every cell is ok/note, else 3.

Renderers: :func:`render` (``table`` via rich, ``markdown``, ``json``, ``html``: one
self-contained page). Nothing here imports torch or a runtime at module level.
"""
from __future__ import annotations

import html as _html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import __version__
from .errors import (EXIT_OK, EXIT_UNSUPPORTED, Issue, UnreadableModelError,
                     UnsupportedOpsError, UsageError)

STATUSES = ("ok", "note", "unsupported", "unchecked")
FORMATS = ("table", "markdown", "json", "html")
FP16_NOTE = "fp16 weights may drift (verify at --atol 1e-2)"
FP16_MIN_ELEMENTS = 16
GRAPH_ROW = "<graph>"  # IR nodes mconv added itself (output aliases)


@dataclass
class Cell:
    """Support of one source op type on one target."""

    status: str = "ok"
    notes: list = field(default_factory=list)
    issues: list = field(default_factory=list)  # [{code, reason, nodes, hint}]
    target_ops: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"status": self.status, "notes": list(self.notes), "issues": list(self.issues),
                "target_ops": list(self.target_ops)}


@dataclass
class Row:
    """One source op type: count, IR ops it became (before / after optimization), cells."""

    source_op: str
    count: int = 0
    ir_ops: dict = field(default_factory=dict)
    ir_ops_optimized: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    cells: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"source_op": self.source_op, "count": self.count, "ir_ops": dict(self.ir_ops),
                "ir_ops_optimized": dict(self.ir_ops_optimized), "notes": list(self.notes),
                "targets": {t: c.as_dict() for t, c in self.cells.items()}}


@dataclass
class OpsReport:
    """The result of :func:`scan_model`; ``as_dict()`` is the ``--format json`` output."""

    model: str
    framework: str
    targets: list
    rows: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    frontend_error: Optional[str] = None

    @property
    def supported(self) -> bool:
        return all(c.status in ("ok", "note") for r in self.rows for c in r.cells.values())

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.supported else EXIT_UNSUPPORTED

    def summary(self) -> dict:
        """Per target: number of source op types per status."""
        out = {t: {s: 0 for s in STATUSES} for t in self.targets}
        for r in self.rows:
            for t, c in r.cells.items():
                out[t][c.status] += 1
        return out

    def as_dict(self) -> dict:
        return {"mconv_version": __version__, "model": self.model, "framework": self.framework,
                "targets": list(self.targets), "options": dict(self.options),
                "supported": self.supported, "exit_code": self.exit_code,
                "frontend_error": self.frontend_error, "summary": self.summary(),
                "rows": [r.as_dict() for r in self.rows]}


# ------------------------------------------------------------------ scanning one model
def target_modules(targets) -> list:
    """``[(name, exporter module)]`` for the requested target names.

    Raises:
        UsageError: an unknown target, or a target whose exporter cannot be imported.
    """
    import exporters

    mods = []
    for t in targets:
        if t not in exporters.TARGETS:
            raise UsageError(f"unknown target {t!r}", f"choose from {sorted(exporters.TARGETS)}")
        try:
            mods.append((t, exporters.get(t)))
        except ImportError as e:
            raise UsageError(f"target {t}: exporter not available ({e})") from None
    return mods


def scan_model(path: Path, options) -> OpsReport:
    """Load ``path``, optimize, scan every target of ``options.targets``; nothing is written.

    Raises:
        UsageError, UnreadableModelError: as ``mconv convert`` (exit 2 / 5). Unsupported ops
        are *not* raised: they are rows of the report.
    """
    import frontends

    mods = target_modules(options.targets)
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    rep = OpsReport(str(path), frontends.detect(path), list(options.targets),
                    options={"opset": options.opset, "fp16": options.fp16,
                             "input_shapes": {k: list(v) for k, v in
                                              options.input_shapes.items()}})
    try:
        loaded = frontends.load(path, options)
    except UnsupportedOpsError as e:
        rep.frontend_error = e.message
        rep.rows = frontend_failure_rows(rep.framework, e, mods)
        return rep
    except MemoryError as e:
        raise UnreadableModelError(f"{path}: out of memory while reading the model ({e})",
                                   "check the model's declared shapes") from None
    from .pipeline import check_sizes

    check_sizes(loaded.graph, path)
    rep.rows = graph_rows(loaded, mods, options)
    return rep


def graph_rows(loaded, mods: list, options) -> list[Row]:
    """Rows of a model the frontend translated: IR ops per source op before and after the
    optimizer, and each target's scan issues mapped back to source ops."""
    import optimizers

    g = loaded.graph
    before = _by_source(g.nodes)
    optimizers.optimize(g)
    after = _by_source(g.nodes)
    src_of = {n.name: n.meta.get("source_op") or GRAPH_ROW for n in g.nodes}
    rows = {_text(op): Row(_text(op), int(n)) for op, n in loaded.source_ops.items()}
    for op in list(before) + list(after):
        rows.setdefault(op, Row(op, 0))
    for op, row in rows.items():
        row.ir_ops = _counts(n.op for n in before.get(op, []))
        row.ir_ops_optimized = _counts(n.op for n in after.get(op, []))
        row.notes = _row_notes(row, after.get(op, []), g.nodes)
    for target, mod in mods:
        issues = mod.scan(g, options)
        for op, row in rows.items():
            row.cells[target] = _cell(target, after.get(op, []), options)
        for issue in issues:
            for op, nodes in _issue_rows(issue, src_of).items():
                row = rows.setdefault(op, Row(op, 0))
                if op.startswith("<"):
                    row.count = max(row.count, len(nodes))
                _add_issue(row.cells.setdefault(target, Cell()), issue, nodes)
    for row in rows.values():  # rows added by an issue of a later target only
        for target, _ in mods:
            row.cells.setdefault(target, Cell())
    return sort_rows(list(rows.values()))


def _text(op) -> str:
    """An op name as text (a corrupt file can carry non-UTF-8 op types as bytes)."""
    return op.decode("utf-8", "replace") if isinstance(op, bytes) else str(op)


def _by_source(nodes) -> dict:
    out: dict = {}
    for n in nodes:
        out.setdefault(n.meta.get("source_op") or GRAPH_ROW, []).append(n)
    return out


def _counts(ops) -> dict:
    out: dict = {}
    for op in ops:
        out[op] = out.get(op, 0) + 1
    return dict(sorted(out.items()))


def _row_notes(row: Row, survivors: list, all_nodes: list) -> list[str]:
    """Target-independent notes: computed at load time, removed / fused by the optimizer,
    several IR ops per source op."""
    notes = []
    if row.count and not row.ir_ops:
        notes.append("computed at load time (no IR node)")
    elif row.ir_ops and not survivors:
        into = sorted({n.op for n in all_nodes for f in n.meta.get("fused_from", ())
                       if f in row.ir_ops})
        notes.append(f"fused into {', '.join(into)} by the optimizer" if into
                     else "removed by the optimizer")
    per = sum(row.ir_ops_optimized.values()) / row.count if row.count else 0
    if per > 1:
        notes.append(f"lowered to {per:g} IR ops each")
    return notes


def _cell(target: str, nodes: list, options) -> Cell:
    """The cell of one source op on one target before issues are added: target ops from the
    lowering entries' ``emits``, registry notes, the fp16 note."""
    from .registry import find_lowering

    cell = Cell()
    ops: set = set()
    for n in nodes:
        entry = find_lowering(target, n.op)
        if entry is not None:
            ops.update(entry.emits)
            if entry.note and entry.note not in cell.notes:
                cell.notes.append(entry.note)
    cell.target_ops = sorted(ops)
    if getattr(options, "fp16", False) and any(_big_float_const(n) for n in nodes):
        cell.notes.append(FP16_NOTE)
    if cell.notes:
        cell.status = "note"
    return cell


def _big_float_const(node) -> bool:
    return any(v is not None and v.is_const and v.dtype == "float32" and
               v.const.size >= FP16_MIN_ELEMENTS for v in node.inputs)


def _issue_rows(issue: Issue, src_of: dict) -> dict:
    """Source op -> node labels of ``issue``: a node label ``name (source op)`` maps through
    the node's meta; graph-level issues (``<input>``, ``<opset>``) are rows of their own."""
    if issue.op.startswith("<"):  # graph inputs / outputs / opset / dtypes
        return {issue.op: list(issue.nodes)}
    out: dict = {}
    for label in issue.nodes:
        name, _, rest = label.partition(" (")
        op = src_of.get(name) or (rest[:-1] if rest.endswith(")") else "") or issue.op
        out.setdefault(op, []).append(label)
    return out


def _add_issue(cell: Cell, issue: Issue, nodes: list) -> None:
    cell.status = "unsupported"
    for d in cell.issues:
        if d["code"] == issue.code and d["reason"] == issue.reason and d["ir_op"] == issue.op:
            d["nodes"] += [n for n in nodes if n not in d["nodes"]]
            return
    cell.issues.append({"stage": issue.stage, "ir_op": issue.op, "code": issue.code,
                        "reason": issue.reason, "nodes": list(nodes), "hint": issue.hint})


def frontend_failure_rows(framework: str, err: UnsupportedOpsError, mods: list) -> list[Row]:
    """Rows when the frontend rejected ops: those ops unsupported on every target (the
    frontend's reason); the others ``unchecked``, described from the registries."""
    from .registry import find_converter

    counts = dict(getattr(err, "source_ops", None) or {})
    rows: dict = {_text(op): Row(_text(op), int(n)) for op, n in counts.items()}
    for issue in err.issues:
        row = rows.setdefault(_text(issue.op), Row(_text(issue.op), 0))
        row.count = max(row.count, len(issue.nodes))
        for target, _ in mods:
            _add_issue(row.cells.setdefault(target, Cell()), issue, list(issue.nodes))
    for op, row in rows.items():
        entry = find_converter(framework, op)
        emits = list(entry.emits) if entry else []
        row.ir_ops = {e: 0 for e in emits}
        for target, _ in mods:
            if target not in row.cells:
                row.cells[target] = _unchecked(target, emits)
    return sort_rows(list(rows.values()))


def _unchecked(target: str, emits: list) -> Cell:
    from .registry import find_lowering

    missing = [e for e in emits if find_lowering(target, e) is None]
    notes = ["not scanned"]
    if missing:
        notes.append(f"no {target} lowering for {', '.join(missing)}")
    return Cell("unchecked", notes)


def sort_rows(rows: list) -> list:
    """Source ops by name; pseudo rows (``<input>``, ``<graph>``) last."""
    return sorted(rows, key=lambda r: (r.source_op.startswith("<"), r.source_op))


# ------------------------------------------------------------------ rendering one model
def cell_text(cell: Cell, rich: bool = False) -> str:
    """Short text of a cell: ``yes``, ``yes (note)``, ``NO code: check text``, ``?``."""
    if cell.status == "ok":
        return "yes"
    if cell.status == "note":
        return "yes (" + "; ".join(cell.notes) + ")"
    if cell.status == "unchecked":
        return "? " + "; ".join(cell.notes)
    return "NO " + "; ".join(f"{d['code']}: {d['reason']}" for d in cell.issues)


def ir_text(row: Row) -> str:
    """The IR column: IR ops after optimization (before, when the optimizer removed them),
    with the row notes."""
    ops = row.ir_ops_optimized or row.ir_ops
    text = ", ".join(f"{k}" + (f" x{v}" if v > 1 else "") for k, v in ops.items()) or "-"
    if ops and not any(ops.values()):  # from the registry: no IR was built
        text = "may emit " + text
    return text + (f" [{'; '.join(row.notes)}]" if row.notes else "")


def render(rep: OpsReport, fmt: str) -> str:
    """``rep`` as ``markdown``, ``json`` or ``html`` text (``table`` -> :func:`print_table`).

    Raises:
        UsageError: an unknown format.
    """
    if fmt == "json":
        return json.dumps(rep.as_dict(), indent=2, sort_keys=True) + "\n"
    if fmt == "markdown":
        return render_markdown(rep)
    if fmt == "html":
        return render_html(rep)
    raise UsageError(f"unknown format {fmt!r}", f"choose from {', '.join(FORMATS)}")


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict(rep: OpsReport) -> str:
    if rep.supported:
        return f"every op is supported on {', '.join(rep.targets)} (exit 0)"
    bad = [t for t, s in rep.summary().items() if s["unsupported"] or s["unchecked"]]
    return f"not supported on {', '.join(bad)} (exit 3)"


def _footer(rep: OpsReport) -> list[str]:
    lines = []
    if rep.frontend_error:
        lines += [f"frontend: {rep.frontend_error}",
                  "?: not scanned (the frontend stopped at unsupported ops, so no IR was "
                  "built; the IR ops are what the registry says the converter may emit)"]
    return lines + [_verdict(rep)]


def render_markdown(rep: OpsReport) -> str:
    """A markdown page: summary line, one table row per source op, the failing nodes."""
    lines = [f"# mconv ops: {_md(Path(rep.model).name)}", "",
             f"Model `{_md(rep.model)}` ({rep.framework}); targets: {', '.join(rep.targets)}; "
             f"{_verdict(rep)}.", ""]
    if rep.frontend_error:
        lines += [_md(line) + "  " for line in _footer(rep)[:-1]] + [""]
    lines.append("| source op | count | IR ops | " + " | ".join(rep.targets) + " |")
    lines.append("|---|---:|---|" + "---|" * len(rep.targets))
    for r in rep.rows:
        cells = " | ".join(_md(cell_text(r.cells[t])) for t in rep.targets)
        lines.append(f"| `{_md(r.source_op)}` | {r.count} | {_md(ir_text(r))} | {cells} |")
    details: dict = {}  # one line per issue, naming every target it applies to
    for r in rep.rows:
        for t in rep.targets:
            for d in r.cells[t].issues:
                key = (r.source_op, d["ir_op"], d["code"], d["reason"], tuple(d["nodes"]),
                       d.get("hint", ""))
                details.setdefault(key, []).append(t)
    if details:
        lines += ["", "## Unsupported nodes", ""]
        for (op, ir_op, code, reason, nodes, hint), targets in details.items():
            shown = ", ".join(nodes[:20]) + (" ..." if len(nodes) > 20 else "")
            hint = f" Hint: {_md(hint)}." if hint else ""
            lines.append(f"- **{', '.join(targets)}** `{_md(op)}` ({_md(ir_op)}) [{code}] "
                         f"{_md(reason)}: {_md(shown)}.{hint}")
    return "\n".join(lines) + "\n"


_CSS = ("body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;"
        "vertical-align:top;text-align:left}th{background:#f3f3f3}"
        "td.ok{background:#e6f4ea}td.note{background:#fff8e1}td.unsupported{background:#fde7e9}"
        "td.unchecked{background:#eeeeee}code{font-size:13px}small{color:#555}")


def _html_cell(cell: Cell) -> str:
    e = _html.escape
    body = e(cell_text(cell))
    if cell.target_ops:
        body += f"<br><small>{e(', '.join(cell.target_ops))}</small>"
    for d in cell.issues:
        nodes = ", ".join(d["nodes"])
        body += f"<details><summary>{len(d['nodes'])} node(s)</summary>{e(nodes)}</details>"
    return f'<td class="{cell.status}">{body}</td>'


def render_html(rep: OpsReport) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external assets)."""
    e = _html.escape
    head = "".join(f"<th>{e(t)}</th>" for t in rep.targets)
    rows = []
    for r in rep.rows:
        cells = "".join(_html_cell(r.cells[t]) for t in rep.targets)
        rows.append(f"<tr><td><code>{e(r.source_op)}</code></td><td>{r.count}</td>"
                    f"<td>{e(ir_text(r))}</td>{cells}</tr>")
    err = "".join(f"<p>{e(line)}</p>" for line in _footer(rep)[:-1])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>mconv ops: {e(Path(rep.model).name)}</title><style>{_CSS}</style>"
            f"</head><body><h1>mconv ops: {e(Path(rep.model).name)}</h1>"
            f"<p>Model <code>{e(rep.model)}</code> ({e(rep.framework)}); "
            f"{e(_verdict(rep))}. mconv {e(__version__)}.</p>{err}"
            f"<table><thead><tr><th>source op</th><th>count</th><th>IR ops</th>{head}</tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></body></html>\n")


def print_table(rep: OpsReport, console) -> None:
    """The rich table on ``console`` (colored statuses on a terminal)."""
    from rich.table import Table
    from rich.text import Text

    styles = {"ok": "green", "note": "yellow", "unsupported": "bold red", "unchecked": "dim"}
    t = Table(title=f"mconv ops: {rep.model} ({rep.framework})", show_lines=False)
    for col in ("source op", "count", "IR ops", *rep.targets):
        t.add_column(col, overflow="fold", justify="right" if col == "count" else "left",
                     no_wrap=col == "source op")
    for r in rep.rows:
        cells = [Text(cell_text(r.cells[x]), style=styles[r.cells[x].status])
                 for x in rep.targets]
        t.add_row(Text(r.source_op), str(r.count), Text(ir_text(r)), *cells)
    console.print(t)
    for line in _footer(rep):
        console.print(line, markup=False)


# ------------------------------------------------------------------ the support matrix
def load_registries() -> tuple[list, list]:
    """Import every frontend and exporter package (registering their converters and
    lowerings); returns (frontend names, target names) that imported."""
    import importlib

    import exporters
    import frontends

    fws = [fw for fw, mod in sorted(frontends.FRONTENDS.items()) if _imports(importlib, mod)]
    tgs = [t for t, mod in sorted(exporters.TARGETS.items()) if _imports(importlib, mod)]
    return fws, tgs


def _imports(importlib, mod: str) -> bool:
    try:
        importlib.import_module(mod)
        return True
    except ImportError:
        return False


def _entry_dict(entry) -> dict:
    return {"op": entry.op, "emits": list(entry.emits), "note": entry.note,
            "checks": [{"text": " ".join(c.text.split()), "code": c.code}
                       for c in entry.checks]}


def support_matrix() -> dict:
    """The operator-support matrix from the registries, sorted (deterministic):
    ``{"frontends": {fw: [entry]}, "targets": {t: [entry]}, "ir_ops": [...]}`` where an entry
    is ``{op, emits, note, checks: [{text, code}]}`` and each ``ir_ops`` row names the source
    ops emitting the IR op per frontend and whether each target lowers it."""
    from .ops import SCHEMAS
    from .registry import CONVERTERS, LOWERINGS

    fws, tgs = load_registries()
    fronts = {fw: [_entry_dict(CONVERTERS[k]) for k in sorted(CONVERTERS) if k[0] == fw]
              for fw in fws}
    targets = {t: [_entry_dict(LOWERINGS[k]) for k in sorted(LOWERINGS) if k[0] == t]
               for t in tgs}
    ir_rows = []
    for op in sorted(SCHEMAS):
        srcs = {fw: sorted(e["op"] for e in fronts[fw] if op in e["emits"]) for fw in fws}
        lowered = {t: any(e["op"] == op for e in targets[t]) for t in tgs}
        ir_rows.append({"op": op, "sources": srcs, "targets": lowered})
    return {"frontends": fronts, "targets": targets, "ir_ops": ir_rows}


COMMON_MIN = 5  # a check used by this many entries of a section gets a legend label


def _legend(entries: list, prefix: str) -> dict:
    """``(text, code) -> label`` for checks shared by many entries of one section, labelled
    in order of first use (``[ncnn-1]``)."""
    counts: dict = {}
    for e in entries:
        for c in e["checks"]:
            counts[(c["text"], c["code"])] = counts.get((c["text"], c["code"]), 0) + 1
    labels: dict = {}
    for e in entries:
        for c in e["checks"]:
            key = (c["text"], c["code"])
            if counts[key] >= COMMON_MIN and key not in labels:
                labels[key] = f"{prefix}-{len(labels) + 1}"
    return labels


def _checks_md(entry: dict, labels: dict) -> str:
    parts = [f"[{labels[(c['text'], c['code'])]}]" if (c["text"], c["code"]) in labels
             else f"{c['text']} (`{c['code']}`)" for c in entry["checks"]]
    if entry["note"]:
        parts.append(f"note: {entry['note']}")
    return _md("; ".join(parts)) or "-"


def _section_md(title: str, head: tuple, entries: list, prefix: str) -> list[str]:
    """One registry section: a legend of shared checks, then op -> emitted ops, checks."""
    labels = _legend(entries, prefix)
    out = ["", f"## {title}", ""]
    if labels:
        out += ["Shared checks:", ""]
        out += [f"- [{lab}] {_md(text)} (`{code}`)" for (text, code), lab in labels.items()]
        out.append("")
    out += [f"| {head[0]} | {head[1]} | checks |", "|---|---|---|"]
    out += [f"| `{_md(e['op'])}` | {_md(', '.join(e['emits'])) or '-'} | "
            f"{_checks_md(e, labels)} |" for e in entries]
    return out


def render_matrix_markdown(m: dict) -> str:
    """``docs/operator-support.md``: IR op x frontends x targets, then one table per frontend
    (source op -> IR ops it may emit, checks) and per target (IR op -> target ops, checks)."""
    fws, tgs = list(m["frontends"]), list(m["targets"])
    out = ["# Operator support", "",
           "Generated from the converter and lowering registries by "
           "`mconv ops --matrix --format markdown -o docs/operator-support.md`; do not edit "
           "by hand (`tests/test_ops_matrix.py` fails when this file is stale). "
           "`mconv ops MODEL --to ...` runs the same checks on one model's nodes.", "",
           "## IR ops", "",
           "A frontend column says whether any of its converters may emit the IR op; a "
           "target column whether the target has a lowering for it (its checks are below).",
           "", "| IR op | " + " | ".join(f"from {f}" for f in fws) + " | " +
           " | ".join(tgs) + " |", "|---|" + "---|" * (len(fws) + len(tgs))]
    for r in m["ir_ops"]:
        cells = ["yes" if r["sources"][f] else "-" for f in fws]
        cells += ["yes" if r["targets"][t] else "-" for t in tgs]
        out.append(f"| `{r['op']}` | " + " | ".join(cells) + " |")
    for fw in fws:
        out += _section_md(f"Frontend {fw}: source op -> IR ops", ("source op", "IR ops"),
                           m["frontends"][fw], fw)
    for t in tgs:
        out += _section_md(f"Target {t}: IR op -> {t} ops", ("IR op", f"{t} ops"),
                           m["targets"][t], t)
    return "\n".join(out) + "\n"


def render_matrix(fmt: str) -> str:
    """The matrix as ``markdown`` or ``json`` text.

    Raises:
        UsageError: another format.
    """
    m = support_matrix()
    if fmt == "json":
        return json.dumps(m, indent=2, sort_keys=True) + "\n"
    if fmt in ("markdown", "table"):
        return render_matrix_markdown(m)
    raise UsageError(f"--matrix supports --format markdown or json, not {fmt!r}")


# ------------------------------------------------------------------ the `mconv ops` command
SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".json": "json", ".html": "html",
                  ".htm": "html", ".txt": "table"}


def pick_format(fmt: Optional[str], output: Optional[Path]) -> str:
    """``fmt``, else the output file's suffix (``.md``/``.json``/``.html``; markdown for any
    other file), else ``table`` for the terminal."""
    if fmt:
        return fmt
    if output is not None:
        return SUFFIX_FORMATS.get(Path(output).suffix.lower(), "markdown")
    return "table"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (temporary name in the same folder, then rename)."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def table_text(rep: OpsReport, width: int = 200) -> str:
    """The rich table as plain text (for ``--format table -o FILE``)."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    print_table(rep, Console(file=buf, width=width, color_system=None, highlight=False))
    return buf.getvalue()


def run_ops(model: Optional[Path], options, matrix: bool, fmt: Optional[str],
            output: Optional[Path]) -> int:
    """The ``mconv ops`` command body: scan ``model`` (or build the matrix), print or write
    the report; returns the exit code (matrix: 0). Errors propagate (the CLI prints them)."""
    from rich.console import Console

    fmt = pick_format(fmt, output)
    if matrix:
        text = render_matrix(fmt)
        code = EXIT_OK
    else:
        if model is None:
            raise UsageError("mconv ops needs MODEL or --matrix", "mconv ops model.pt2 --to ncnn")
        rep = scan_model(model, options)
        code = rep.exit_code
        if fmt == "table" and output is None:
            print_table(rep, Console(highlight=False, soft_wrap=False))
            return code
        text = table_text(rep) if fmt == "table" else render(rep, fmt)
    if output is None:
        import sys

        sys.stdout.write(text)
    else:
        write_text(Path(output), text)
        verdict = "" if matrix else f"; {_verdict(rep)}"
        Console(highlight=False, soft_wrap=True).print(f"wrote {output}{verdict}", markup=False)
    return code
