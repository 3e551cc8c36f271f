"""What bench/run.py's parts share: whole-process runs with their peak RSS, medians and
pair-by-pair ratios, one-line errors, and the machine / package versions of a result."""
from __future__ import annotations

import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / "bench" / ".venvs"
PY = sys.executable


@dataclass
class Run:
    """One whole-process run: wall seconds, peak RSS in bytes (the child's own high-water
    mark with its waited-for descendants, from ``os.wait4``), and a one-line error or None."""

    seconds: float
    peak_rss: int
    error: Optional[str] = None
    log: str = field(default="", repr=False)


def child_env(extra_path: Optional[Path] = None) -> dict:
    """The environment of every converter process: quiet TensorFlow, CPU only, this
    checkout importable; ``extra_path`` (a venv's bin/) first on PATH."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    if extra_path is not None:
        env["PATH"] = f"{extra_path}{os.pathsep}{env.get('PATH', '')}"
    return env


#: Runs one command and writes "<seconds> <ru_maxrss KiB>" to argv[1]. Peak RSS has to be
#: taken this way: Linux carries the high-water mark of the process image replaced by
#: ``execve`` into the new one, and a child forked straight from the bench (hundreds of MB,
#: torch and TensorFlow loaded) would start at the bench's RSS. This launcher (``python -S``,
#: about 10 MB) is that floor instead.
LAUNCHER = """import os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, st, ru = os.wait4(pid, 0)
dt = time.perf_counter() - t
with open(sys.argv[1], "w") as f:
    f.write("%r %d" % (dt, ru.ru_maxrss))
code = os.waitstatus_to_exitcode(st)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_child(cmd: list, cwd: Path = ROOT, env: Optional[dict] = None,
              timeout: float = 600.0) -> Run:
    """Run ``cmd`` to completion through :data:`LAUNCHER` in its own process group; a
    non-zero exit or the timeout (the whole group is killed) gives ``Run.error``. stdout and
    stderr go to a temporary file (pipes could fill up while nobody reads them), kept in
    ``Run.log`` (last 4 kB). Seconds: fork to exit of ``cmd``, measured in the launcher."""
    with tempfile.TemporaryDirectory() as td, open(Path(td) / "log", "w+b") as out:
        stats = Path(td) / "stats"
        t0 = time.perf_counter()
        p = subprocess.Popen([PY, "-S", "-c", LAUNCHER, stats, *map(str, cmd)], cwd=cwd,
                             env=env or child_env(), stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        killed = threading.Event()
        timer = threading.Timer(timeout, _kill_group, (p.pid, killed))
        timer.start()
        p.wait()
        timer.cancel()
        secs, rss = time.perf_counter() - t0, 0
        if stats.exists():
            s, kib = stats.read_text().split()
            secs, rss = float(s), int(kib) * 1024
        out.seek(max(0, out.seek(0, 2) - 4096))
        log = out.read().decode("utf-8", "replace")
    err = None
    if killed.is_set():
        err = f"timeout: still running after {timeout:.0f} s"
    elif p.returncode == 127 and not log.strip():
        err = f"cannot start {cmd[0]}"
    elif p.returncode != 0:
        err = f"exit {p.returncode}: {error_line(log)}"
    return Run(secs, rss, err, log)


def _kill_group(pid: int, killed: threading.Event) -> None:
    killed.set()
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def error_line(log: str, limit: int = 200) -> str:
    """The most telling line of a failed tool's output: the last line that looks like an
    error (``...Error:``, ``error``, ``failed``), else the last non-empty line; cut to
    ``limit`` characters."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    if not lines:
        return "no output"
    keys = ("error", "exception", "failed", "unsupported", "not supported")
    errs = [ln for ln in lines if any(k in ln.lower() for k in keys)]
    return (errs[-1] if errs else lines[-1])[:limit]


def median(xs: list) -> Optional[float]:
    """Median of the numbers in ``xs`` (None entries dropped), or None when none is left."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratios(a: list, b: list) -> Optional[float]:
    """Median of the pair-by-pair ratios ``a[i] / b[i]`` (pairs with a missing or zero
    figure dropped): machine drift between pairs cancels out of each ratio."""
    return median([x / y for x, y in zip(a, b) if x is not None and y])


def machine() -> dict:
    """CPU model, logical cores, RAM (GiB), OS, Python and the versions of the packages the
    bench uses (from package metadata; peers in their own venvs are added by run.py)."""
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    ram = 0.0
    try:
        kb = next(int(ln.split()[1]) for ln in open("/proc/meminfo")
                  if ln.startswith("MemTotal:"))
        ram = round(kb / 2 ** 20, 1)
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram,
            "os": platform.platform(), "python": platform.python_version(),
            "packages": versions(PACKAGES)}


PACKAGES = ("mconv", "numpy", "torch", "tensorflow", "keras", "onnx", "onnxruntime", "ncnn",
            "openvino", "ai-edge-litert", "pnnx", "onnxsim", "onnxslim", "onnxscript",
            "tf2onnx", "opencv-python-headless", "protobuf")


def versions(names) -> dict:
    """``{package: version}`` of the installed ``names`` (missing ones left out)."""
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def venv_python(name: str, env_var: str) -> Optional[Path]:
    """The Python of peer venv ``name``: ``$env_var`` when set, else
    ``bench/.venvs/<name>/bin/python`` (made by bench/setup_peers.sh), None when absent."""
    p = Path(os.environ.get(env_var) or VENVS / name / "bin" / "python")
    return p if p.exists() else None


def venv_version(python: Path, package: str) -> Optional[str]:
    """``package``'s version in another Python's environment (None when unknown)."""
    proc = subprocess.run([str(python), "-c", "import importlib.metadata as m, sys; "
                           f"print(m.version({package!r}))"], capture_output=True, text=True)
    return proc.stdout.strip() or None if proc.returncode == 0 else None
