"""The conversion pipeline: load -> optimize -> pre-flight scan -> lower & write -> verify.

Every stage is timed and counted into a :class:`ConvertResult`, which is also the content of
the JSON report (``--report``). Nothing is written before the pre-flight scan has passed for
every requested target, and each exporter writes atomically (temporary name, then rename).
"""
from __future__ import annotations

import hashlib
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from . import __version__
from .errors import (EXIT_OK, MconvError, UnsupportedOpsError, UsageError,
                     VerificationError)
from .options import ConvertOptions

Progress = Callable[[str], None]


@dataclass
class ConvertResult:
    """Everything a run did; ``as_dict()`` is the JSON report."""

    input: str = ""
    input_sha256: str = ""
    framework: str = ""
    targets: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    source_ops: dict = field(default_factory=dict)
    ops_before: dict = field(default_factory=dict)
    ops_after: dict = field(default_factory=dict)
    rewrites: dict = field(default_factory=dict)
    declines: list = field(default_factory=list)
    times: dict = field(default_factory=dict)
    verification: list = field(default_factory=list)
    verified: Optional[bool] = None
    files: list = field(default_factory=list)
    target_ops: dict = field(default_factory=dict)
    issues: list = field(default_factory=list)
    error: Optional[str] = None
    traceback: Optional[str] = None
    exit_code: int = EXIT_OK

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["mconv_version"] = __version__
        d["command"] = list(sys.argv)
        return d


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Timer:
    def __init__(self, result: ConvertResult, stage: str, progress: Optional[Progress]):
        self.result, self.stage, self.progress = result, stage, progress

    def __enter__(self):
        if self.progress:
            self.progress(self.stage)
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.result.times[self.stage] = round(time.perf_counter() - self.t0, 4)


def _exporters(targets) -> list:
    import exporters

    mods = []
    for t in targets:
        if t not in exporters.TARGETS:
            raise UsageError(f"unknown target {t!r}", f"choose from {sorted(exporters.TARGETS)}")
        mods.append((t, exporters.get(t)))
    return mods


def run(path: Path, options: ConvertOptions, progress: Optional[Progress] = None,
        loaded=None) -> ConvertResult:
    """Convert ``path`` (or an already ``loaded`` model) for every target in ``options``.

    Returns the result; errors are recorded in it (``error``, ``exit_code``) *and* raised.
    Raises:
        MconvError subclasses for user-facing failures (exit codes 2-5); anything else is a
        bug (exit 1).
    """
    res = ConvertResult(input=str(path), targets=list(options.targets),
                        options={k: str(v) if isinstance(v, Path) else v
                                 for k, v in options.__dict__.items()})
    try:
        _run(path, options, progress, loaded, res)
    except MconvError as e:
        res.error, res.exit_code = e.one_line(), e.exit_code
        if isinstance(e, UnsupportedOpsError):
            res.issues = [i.as_dict() for i in e.issues]
        e.result = res
        raise
    except BaseException as e:
        res.error, res.exit_code = f"internal error: {type(e).__name__}: {e}", 1
        res.traceback = traceback.format_exc()
        raise
    finally:
        if options.report:
            write_report(res, Path(options.report))
    return res


def _run(path, options, progress, loaded, res: ConvertResult) -> None:
    mods = _exporters(options.targets)
    if loaded is None:
        import frontends

        if not path.exists():
            raise UsageError(f"{path}: no such file")
        res.input_sha256 = sha256(path) if path.is_file() else ""
        options = replace(options, source_sha256=res.input_sha256)
        with _Timer(res, "load", progress):
            loaded = frontends.load(path, options)
    g = loaded.graph
    res.framework, res.source_ops = loaded.framework, loaded.source_ops
    res.inputs = [{"name": v.name, "shape": list(v.shape), "dtype": v.dtype} for v in g.inputs]
    g.validate()
    res.ops_before = g.op_counts()
    with _Timer(res, "optimize", progress):
        import optimizers

        log = optimizers.optimize(g)
    res.rewrites, res.declines = dict(sorted(log.counts.items())), [list(d) for d in
                                                                     log.declines]
    res.ops_after = g.op_counts()
    options = replace(options, passes=tuple(res.rewrites))
    res.outputs = [{"name": v.name, "shape": list(v.shape), "dtype": v.dtype} for v in g.outputs]
    with _Timer(res, "scan", progress):
        issues = [i for _, mod in mods for i in mod.scan(g, options)]
    if issues:
        raise UnsupportedOpsError(issues)
    written = _export_all(g, mods, path, options, progress, res)
    _verify(g, loaded, mods, written, options, progress, res)


def _export_all(g, mods, path, options, progress, res: ConvertResult) -> dict:
    """Lower and write every target (``OUTDIR/<target>/`` when there are several)."""
    out_dir = Path(options.output_dir)
    stem = options.stem or (path.stem if path is not None else g.name)
    written: dict = {}
    for target, mod in mods:
        tdir = out_dir / target if len(mods) > 1 else out_dir
        with _Timer(res, f"export:{target}", progress):
            files = mod.export(g, tdir, stem, options)
        written[target] = files
        res.files += [{"target": target, "path": str(f), "size": f.stat().st_size,
                       "sha256": sha256(f)} for f in files]
        if hasattr(mod, "describe"):
            res.target_ops[target] = mod.describe(files)
    return written


def _verify(g, loaded, mods, written, options, progress, res: ConvertResult) -> None:
    from .verify import make_inputs, verify_target

    wanted = [(t, m) for t, m in mods if options.verify is not False]
    missing = [t for t, m in wanted if not m.runtime_available()]
    if missing and options.verify:
        raise UsageError(f"--verify: the runtime of {', '.join(missing)} is not installed",
                         "pip install 'mconv[runtimes]' or pass --no-verify")
    wanted = [(t, m) for t, m in wanted if t not in missing]
    if not wanted:
        return
    inputs = make_inputs(g, options.seed, options.inputs_npz)
    with _Timer(res, "verify:source", progress):
        refs = loaded.run_source(inputs)
    checks = []
    for target, mod in wanted:
        with _Timer(res, f"verify:{target}", progress):
            got = mod.run(written[target], inputs, options)
        checks += verify_target(target, g, refs, got, options.tolerance(), options.rtol)
    res.verification = [c.as_dict() for c in checks]
    res.verified = all(c.passed for c in checks)
    if not res.verified:
        bad = [c for c in checks if not c.passed]
        worst = max(bad, key=lambda c: c.max_abs / max(c.tolerance, 1e-30))
        raise VerificationError(
            f"verification failed: {len(bad)} output(s) beyond tolerance; worst "
            f"{worst.target}:{worst.output} max abs error {worst.max_abs:.3g} > "
            f"{worst.tolerance:.3g}", "see the table above; loosen --atol only if expected")


def write_report(res: ConvertResult, path: Path) -> None:
    """Write the JSON report atomically (sorted keys, 2-space indent)."""
    import json
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(res.as_dict(), indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
