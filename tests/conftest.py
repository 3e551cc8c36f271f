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
