"""Terminal output of ``mconv convert``: rich progress and tables on a terminal, plain lines
otherwise (CI logs); errors as one line on stderr, tracebacks only with ``--debug``."""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

from .errors import EXIT_INTERNAL, MconvError, UnsupportedOpsError


class Ui:
    """Runs a conversion and renders its progress, summary and errors."""

    def __init__(self, debug: bool = False):
        from rich.console import Console

        self.debug = debug
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.tty = self.out.is_terminal

    def run_convert(self, model: Path, opts) -> int:
        """Run the pipeline on ``model``; returns the process exit code."""
        from .pipeline import run

        result = None
        try:
            if self.tty:
                with self.out.status("converting") as status:
                    result = run(model, opts, progress=lambda s: status.update(f"[bold]{s}"))
            else:
                result = run(model, opts, progress=lambda s: print(f"mconv: {s}", flush=True))
        except UnsupportedOpsError as e:
            for line in e.details():
                self.err.print(f"  {line}", markup=False)
            self.err.print(f"error: {e.one_line()}", markup=False)
            return e.exit_code
        except MconvError as e:
            self._maybe_table(e)
            if self.debug:
                self.err.print(traceback.format_exc(), markup=False)
            self.err.print(f"error: {e.one_line()}", markup=False)
            return e.exit_code
        except Exception as e:  # a bug: short message, traceback with --debug / in report
            if self.debug:
                self.err.print(traceback.format_exc(), markup=False)
            where = f"; traceback saved in {opts.report}" if opts.report else ""
            self.err.print(f"internal error: {type(e).__name__}: {e} (a bug in mconv; rerun "
                           f"with --debug for the traceback{where})", markup=False)
            return EXIT_INTERNAL
        self.summary(result)
        return 0

    def _maybe_table(self, e: MconvError) -> None:
        res = getattr(e, "result", None)
        if res is not None:
            self.summary(res)

    def summary(self, res) -> None:
        """The closing summary: ops before/after, rewrites, times, verification, files."""
        from rich.table import Table

        before, after = sum(res.ops_before.values()), sum(res.ops_after.values())
        self.out.print(f"model: {res.input} ({res.framework}); IR ops {before} -> {after} "
                       f"after optimization", markup=False)
        if res.rewrites:
            rw = ", ".join(f"{k} x{v}" for k, v in res.rewrites.items())
            self.out.print(f"rewrites: {rw}", markup=False)
        for target, d in res.target_ops.items():
            self.out.print(f"{target}: {d['ops']} ops", markup=False)
        times = ", ".join(f"{k} {v:.2f}s" for k, v in res.times.items())
        self.out.print(f"time: {times}", markup=False)
        if res.verification:
            t = Table(title="verification", show_edge=self.tty)
            for col in ("target", "output", "max abs", "max rel", "cosine", "tolerance", "ok"):
                t.add_column(col)
            for c in res.verification:
                t.add_row(c["target"], c["output"], f"{c['max_abs']:.3g}", f"{c['max_rel']:.3g}",
                          f"{c['cosine']:.6f}", f"{c['tolerance']:.3g}",
                          "yes" if c["passed"] else "NO")
            self.out.print(t)
        elif res.verified is None:
            self.out.print("verification: not run", markup=False)
        for f in res.files:
            self.out.print(f"wrote {f['path']} ({f['size']} bytes)", markup=False)
        if self.debug and res.declines:
            for rule, node, reason in res.declines:
                self.out.print(f"declined {rule} at {node}: {reason}", markup=False)
