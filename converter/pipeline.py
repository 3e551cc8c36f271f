"""The conversion pipeline: load -> optimize -> pre-flight scan -> lower & write -> verify.

Every stage is timed (wall time and peak RSS) and counted into a :class:`ConvertResult`, which
is also the content of the JSON report (``--report``, schema ``converter/report_schema.json``).

Nothing is written before the pre-flight scan has passed for every requested target. Output
is transactional (:class:`Staging`): every target writes into one hidden staging folder inside
OUTDIR (``OUTDIR/.mconv-XXXX.tmp/``, each exporter itself writing atomically), and the files
are moved into place only after *every* target was written and verified. Any failure, or
Ctrl-C, removes the staging folder (and OUTDIR itself when this run created it), so OUTDIR is
left as it was: with several targets, an earlier target's files are not kept when a later
target fails. One exception: when verification *fails* (exit 4) the files are still moved into
place so they can be inspected; the report and the exit code say they did not verify.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from . import __version__
from .errors import (EXIT_OK, MconvError, UnreadableModelError, UnsupportedOpsError,
                     UsageError, VerificationError)
from .options import ConvertOptions

Progress = Callable[[str], None]

#: Elements of one non-constant tensor: beyond int32 indexing no target runtime can hold it;
#: a model declaring more is refused before anything is allocated (exit 5).
MAX_ELEMENTS = 2 ** 31 - 1
EXIT_INTERRUPTED = 130


@dataclass
class ConvertResult:
    """Everything a run did; ``as_dict()`` is the JSON report (see report_schema.json).

    ``times`` maps stage -> seconds (kept for the summary); ``stages`` holds the same stages
    with peak memory; ``passes`` the op counts before and after each pass (frontend,
    optimize with per-rule ``rewrites``, one lowering per target).
    """

    input: str = ""
    input_sha256: str = ""
    framework: str = ""
    targets: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    command: list = field(default_factory=lambda: list(sys.argv))
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    source_ops: dict = field(default_factory=dict)
    ops_before: dict = field(default_factory=dict)
    ops_after: dict = field(default_factory=dict)
    rewrites: dict = field(default_factory=dict)
    declines: list = field(default_factory=list)
    passes: list = field(default_factory=list)
    times: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)
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
        d["environment"] = environment()
        return d


def environment() -> dict:
    """Python, platform and the versions of the packages a conversion may use (from package
    metadata: nothing is imported)."""
    import platform
    from importlib import metadata

    pkgs = {}
    for name in ("numpy", "onnx", "onnxruntime", "ncnn", "openvino", "torch", "ai-edge-litert"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"python": platform.python_version(), "platform": platform.platform(),
            "packages": pkgs}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def peak_rss() -> int:
    """The process's peak resident set size so far, in bytes (0 where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def current_rss() -> int:
    """The process's resident set size now, in bytes (Linux ``/proc``; else 0)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


class _Timer:
    """Times a stage and records its memory: ``peak_rss_bytes`` (the process high-water mark
    at the end of the stage), ``peak_rss_growth_bytes`` (how much this stage raised it) and
    ``rss_bytes`` (resident memory at its end)."""

    def __init__(self, result: ConvertResult, stage: str, progress: Optional[Progress]):
        self.result, self.stage, self.progress = result, stage, progress

    def __enter__(self):
        if self.progress:
            self.progress(self.stage)
        self.peak0 = peak_rss()
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        dt = time.perf_counter() - self.t0
        peak = peak_rss()
        self.result.times[self.stage] = round(dt, 4)
        self.result.stages.append({"name": self.stage, "seconds": round(dt, 4),
                                   "peak_rss_bytes": peak,
                                   "peak_rss_growth_bytes": max(0, peak - self.peak0),
                                   "rss_bytes": current_rss(), "ok": exc[0] is None})


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

    Returns the result; errors are recorded in it (``error``, ``exit_code``) *and* raised
    (the exception carries it as ``.result``).
    Raises:
        MconvError subclasses for user-facing failures (exit codes 2-5); KeyboardInterrupt
        (recorded as exit 130); anything else is a bug (exit 1).
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
    except KeyboardInterrupt:
        res.error, res.exit_code = "interrupted", EXIT_INTERRUPTED
        raise
    except BaseException as e:
        res.error, res.exit_code = f"internal error: {type(e).__name__}: {e}", 1
        res.traceback = traceback.format_exc()
        e.result = res
        raise
    finally:
        if options.report:
            write_report(res, Path(options.report))
    return res


def _run(path, options, progress, loaded, res: ConvertResult) -> None:
    mods = _exporters(options.targets)
    loaded, options = _load(path, options, progress, loaded, res)
    g = loaded.graph
    _optimize(g, progress, res)
    options = replace(options, passes=tuple(res.rewrites))
    with _Timer(res, "scan", progress):
        issues = [i for _, mod in mods for i in mod.scan(g, options)]
    if issues:
        raise UnsupportedOpsError(issues)
    staging = Staging(Path(options.output_dir))
    try:
        written = _export_all(g, mods, path, options, progress, res, staging.root)
        try:
            _verify(g, loaded, mods, written, options, progress, res)
        except VerificationError:
            _commit(staging, written, res)  # kept for inspection (module docstring)
            raise
        _commit(staging, written, res)
    finally:
        staging.discard()


def _load(path, options, progress, loaded, res: ConvertResult) -> tuple:
    """Load with the frontend (unless ``loaded``), record inputs and the frontend pass, and
    refuse absurd tensor sizes before anything is allocated for them."""
    if loaded is None:
        import frontends

        if not path.exists():
            raise UsageError(f"{path}: no such file")
        res.input_sha256 = sha256(path) if path.is_file() else ""
        options = replace(options, source_sha256=res.input_sha256)
        with _Timer(res, "load", progress):
            try:
                loaded = frontends.load(path, options)
            except MemoryError as e:  # a file declaring absurd sizes the frontend missed
                raise UnreadableModelError(f"{path}: out of memory while reading the model "
                                           f"({e})", "check the model's declared shapes") from None
    g = loaded.graph
    res.framework, res.source_ops = loaded.framework, dict(loaded.source_ops)
    res.inputs = [{"name": v.name, "shape": list(v.shape), "dtype": v.dtype} for v in g.inputs]
    check_sizes(g, path)
    g.validate()
    res.ops_before = g.op_counts()
    res.passes.append({"name": "frontend", "ops_before": dict(res.source_ops),
                       "ops_after": dict(res.ops_before), "rewrites": {}})
    return loaded, options


def check_sizes(g, path) -> None:
    """Refuse a graph whose non-constant tensors exceed :data:`MAX_ELEMENTS` (a file declaring
    absurd dims, e.g. an input of 1x3x100000x100000): exit 5, nothing allocated.

    Raises:
        UnreadableModelError: naming the first such tensor and its shape.
    """
    for v in g.values():
        if v.is_const or v.shape is None or not all(isinstance(d, int) for d in v.shape):
            continue
        n = math.prod(v.shape)
        if n > MAX_ELEMENTS or min(v.shape, default=0) < 0:
            dims = "x".join(str(d) for d in v.shape)
            raise UnreadableModelError(
                f"{path}: tensor {v.name!r} has shape {dims} ({n:,} elements, over the "
                f"{MAX_ELEMENTS:,} any target can hold)",
                "check the model's declared shapes or pass --input-shape")


def _optimize(g, progress, res: ConvertResult) -> None:
    with _Timer(res, "optimize", progress):
        import optimizers

        log = optimizers.optimize(g)
    res.rewrites = dict(sorted(log.counts.items()))
    res.declines = [list(d) for d in log.declines]
    res.ops_after = g.op_counts()
    res.passes.append({"name": "optimize", "ops_before": dict(res.ops_before),
                       "ops_after": dict(res.ops_after), "rewrites": dict(res.rewrites)})
    res.outputs = [{"name": v.name, "shape": list(v.shape), "dtype": v.dtype} for v in g.outputs]


def safe_stem(stem: str) -> str:
    """An output file stem that stays inside OUTDIR: no path separators, drive or shell
    metacharacters, no leading / trailing dots or spaces; ``model`` when nothing is left."""
    s = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", str(stem)).strip(" .")
    return s[:120] or "model"


def _export_all(g, mods, path, options, progress, res: ConvertResult, root: Path) -> dict:
    """Lower and write every target into the staging folder ``root``
    (``root/<target>/`` when there are several)."""
    stem = safe_stem(options.stem or (path.stem if path is not None else g.name))
    written: dict = {}
    for target, mod in mods:
        tdir = root / target if len(mods) > 1 else root
        with _Timer(res, f"export:{target}", progress):
            files = [Path(f) for f in mod.export(g, tdir, stem, options)]
        written[target] = files
        if hasattr(mod, "describe"):
            res.target_ops[target] = mod.describe(files)
            res.passes.append({"name": f"lower:{target}", "ops_before": dict(res.ops_after),
                               "ops_after": dict(res.target_ops[target].get("op_counts", {})),
                               "rewrites": {}})
    return written


def _commit(staging: "Staging", written: dict, res: ConvertResult) -> None:
    """Move every staged file into place and record it (final path, size, sha256)."""
    final = staging.commit(written)
    for target, files in final.items():
        res.files += [{"target": target, "path": str(f), "size": f.stat().st_size,
                       "sha256": sha256(f)} for f in files]


class Staging:
    """A hidden folder inside OUTDIR holding a run's files until :meth:`commit`.

    :meth:`discard` (always called) removes it, and when nothing was committed also every
    folder this run created (OUTDIR itself when it did not exist), so a failed or interrupted
    run leaves OUTDIR as it was.
    """

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.created: list[Path] = []
        self.committed = False
        try:
            self.created = _make_dirs(self.out_dir)
            self.root = Path(tempfile.mkdtemp(prefix=".mconv-", suffix=".tmp",
                                              dir=self.out_dir))
        except OSError as e:
            _remove_empty(self.created)
            raise UsageError(f"{self.out_dir}: cannot write the output folder "
                             f"({e.strerror or e})", "pass a writable -o OUTDIR") from None

    def commit(self, written: dict) -> dict:
        """Move the staged files to the same relative paths in OUTDIR, replacing files of
        the same name; on any error (or Ctrl-C) every move is undone and the replaced files
        restored. Returns ``{target: [final paths]}``."""
        backup = self.root / ".replaced"
        moved, saved, made = [], [], []
        try:
            for files in written.values():
                for src in files:
                    dst = self.out_dir / src.relative_to(self.root)
                    made += _make_dirs(dst.parent)
                    if dst.exists() or dst.is_symlink():
                        bak = backup / src.relative_to(self.root)
                        bak.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(dst, bak)
                        saved.append((bak, dst))
                    os.replace(src, dst)
                    moved.append(dst)
        except BaseException:
            _undo(moved, saved, made)
            raise
        self.committed = True
        return {t: [self.out_dir / f.relative_to(self.root) for f in files]
                for t, files in written.items()}

    def discard(self) -> None:
        """Remove the staging folder (and, unless committed, the folders this run made)."""
        shutil.rmtree(self.root, ignore_errors=True)
        if not self.committed:
            _remove_empty(self.created)


def _make_dirs(d: Path) -> list[Path]:
    """Create ``d`` and its missing parents; returns the created folders, outermost first."""
    missing = []
    p = Path(d)
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for m in reversed(missing):
        m.mkdir(exist_ok=True)
    return list(reversed(missing))


def _remove_empty(dirs: list) -> None:
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:
            pass


def _undo(moved: list, saved: list, made: list) -> None:
    for dst in reversed(moved):
        dst.unlink(missing_ok=True)
    for bak, dst in reversed(saved):
        os.replace(bak, dst)
    _remove_empty(made)


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
    check_memory(g)
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


def available_memory() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (0 where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def check_memory(g) -> None:
    """Refuse to verify when the inputs and outputs alone (x3: float64 draws, copies, one
    set per runtime) would not fit in the available memory.

    Raises:
        UsageError: with the estimate and the hint to pass --no-verify.
    """
    import numpy as np

    need = 3 * sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize
                   for v in list(g.inputs) + list(g.outputs)
                   if v.shape is not None and all(isinstance(d, int) for d in v.shape))
    avail = available_memory()
    if avail and need > avail:
        raise UsageError(f"verification needs about {need / 2**30:.1f} GiB for inputs and "
                         f"outputs, {avail / 2**30:.1f} GiB are available",
                         "pass --no-verify or a smaller --input-shape")


def _json_safe(x):
    """Non-finite floats (an infinite error after a shape mismatch, NaN outputs) as null:
    strict JSON has no Infinity / NaN."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def write_report(res: ConvertResult, path: Path) -> None:
    """Write the JSON report atomically (sorted keys, 2-space indent, strict JSON)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(_json_safe(res.as_dict()), indent=2, sort_keys=True,
                               default=str, allow_nan=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
