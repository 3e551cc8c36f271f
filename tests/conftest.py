"""Shared test helpers: the fixture zoo built once per session into a cache folder, and a
runner of the ``mconv`` CLI in a subprocess (real exit codes, real stdout/stderr)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DIR = Path(os.environ.get("MCONV_FIXTURE_OUT", ROOT / "fixtures" / "out"))


def run_mconv(*args: str, cwd=None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m converter ARGS`` and return the completed process (text output)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "converter", *args], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    """Folder holding the built fixtures (``fixtures/build.py`` is idempotent and caches)."""
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    return FIXTURE_DIR


def built_fixture(fixture_dir: Path, name: str) -> Path:
    """Build fixture ``name`` into ``fixture_dir`` once (an fcntl lock serializes the xdist
    workers; ``fixtures.build.build`` skips files that are up to date); returns the folder."""
    import fcntl

    from fixtures.build import build

    with open(fixture_dir / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        build(name, fixture_dir)
    return fixture_dir


def fixture_shapes(fdir: Path, name: str) -> dict:
    """Input name -> NCHW shape of a built fixture, from its ``<name>.json``."""
    import json

    meta = json.loads((fdir / f"{name}.json").read_text())
    return {k: tuple(v) for k, v in meta["inputs"].items()}


def assert_same_graph(ref, ref_counts: dict, got, counts: dict):
    """Two walks of one model agree: identical ``Graph.dump()``, source op counts and
    constant arrays (dtype, shape, values); ``got`` validates. Returns ``got``."""
    import numpy as np

    assert got.dump() == ref.dump()
    assert counts == ref_counts
    a = {v.name: v.const for v in ref.values() if v.is_const}
    b = {v.name: v.const for v in got.values() if v.is_const}
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    got.validate()
    return got


def assert_clean_failure(proc, code: int, out_dir: Path, *needles: str) -> None:
    """A failed ``mconv`` run: exit ``code``, no traceback, exactly one ``error:`` line that
    holds every needle, and nothing left in ``out_dir``."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    err_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(err_lines) == 1, proc.stderr
    for n in needles:
        assert n in err_lines[0], err_lines[0]
    assert not any(out_dir.iterdir()), list(out_dir.iterdir())


@pytest.fixture()
def out_dir(tmp_path: Path) -> Path:
    """An empty output folder (``tmp_path/out``)."""
    d = tmp_path / "out"
    d.mkdir()
    return d
