"""The seed models of the hostile corpus, the determinism and the fuzz tests, built once per
fixture folder under a lock shared by xdist workers (rebuilt when torch or the builder
changes)."""
from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path

from . import make_corpus


def _stamp() -> str:
    import torch

    src = Path(make_corpus.__file__).read_bytes()
    return f"{torch.__version__} {hashlib.sha256(src).hexdigest()[:16]}"


def seed_files(fixture_dir: Path) -> dict:
    """``{"pt": path, "pt2": path, "onnx": path}`` in ``fixture_dir/hostile-seeds/``.
    Needs torch the first time (the ``.pt`` / ``.pt2`` seeds are saved with it)."""
    out = Path(fixture_dir) / "hostile-seeds"
    out.mkdir(parents=True, exist_ok=True)
    stamp_file = out / "STAMP"
    with open(out / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        stamp = _stamp()
        names = {k: out / f"seed.{k}" for k in ("pt", "pt2", "onnx")}
        fresh = stamp_file.exists() and stamp_file.read_text() == stamp
        if not (fresh and all(p.exists() for p in names.values())):
            make_corpus.build_seeds(out)
            stamp_file.write_text(stamp)
    return names
