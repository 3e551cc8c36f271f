"""The hostile-input corpus (tests/hostile/make_corpus.py) through the real CLI: each broken
file gives its documented exit code, one ``error:`` line naming the file, no traceback and
nothing written; no pickle in any of them ever runs (the marker file never appears); zip
bombs are refused from the central directory, quickly and without inflating; names in a
model can never place a file outside OUTDIR."""
from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import run_mconv
from tests.hostile import make_corpus as mc

import torch  # noqa: F401  (required: the test extra installs it)

TARGETS = "ncnn,onnx,openvino"


@pytest.fixture(scope="module")
def corpus(fixture_dir, tmp_path_factory):
    from tests.hostile.seeds import seed_files

    root = tmp_path_factory.mktemp("hostile")
    return root, mc.build_corpus(seed_files(fixture_dir), root / mc.MARKER_NAME)


def _case_ids(group: str) -> list:
    names = {"pytorch": [
        "empty.pt", "empty.pt2", "truncated.pt", "truncated.pt2", "header-only.pt2",
        "random.pt", "random.pt2", "onnx-named.pt", "text-named.pt2", "bomb.pt", "bomb.pt2",
        "declared-bomb.pt", "many-members.pt", "evil.pt", "evil-save.pt", "evil-constants.pt",
        "evil-data.pt", "evil-weight.pt2", "evil-extra.pt2", "huge-weight.pt2",
        "huge-broadcast.pt2", "huge-input.pt2", "bad-json.pt2"],
        "onnx": ["empty.onnx", "truncated.onnx", "random.onnx", "pt2-named.onnx",
                 "text-named.onnx", "huge-input.onnx", "huge-const.onnx", "huge-init.onnx",
                 "escape-data.onnx", "cycle.onnx", "no-opset.onnx"],
        "accepted": ["evil-sample.pt2", "pt-named.pt2", "names.onnx", "slashes.onnx",
                     "..onnx"]}
    return names[group]


def _case(corpus, group: str, name: str) -> mc.Case:
    return next(c for c in corpus[1][group] if c.name == name)


#: Cases also run in a real process (the rest run in-process through click's CliRunner,
#: which sees the same exit code and stderr; a process start costs ~0.5 s each).
SUBPROCESS = {"truncated.pt", "evil.pt", "bomb.pt2", "huge-weight.pt2", "random.onnx",
              "huge-const.onnx", "names.onnx"}


class Proc:
    """What a CLI run produced: ``returncode``, ``stdout``, ``stderr``."""

    def __init__(self, code: int, out: str, err: str):
        self.returncode, self.stdout, self.stderr = code, out, err


def invoke(*args: str) -> Proc:
    """``mconv ARGS`` in-process; an exception escaping the CLI shows as a traceback."""
    import traceback

    from click.testing import CliRunner

    from converter.cli import main

    r = CliRunner().invoke(main, list(args))
    err = r.stderr
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        err += "Traceback\n" + "".join(traceback.format_exception(r.exception))
    return Proc(r.exit_code, r.stdout, err)


def _run_case(root: Path, case: mc.Case, tmp_path: Path):
    """Write the case into a fresh folder, convert it into an empty OUTDIR."""
    src = tmp_path / "in"
    src.mkdir()
    model = case.write(src)
    out = tmp_path / "out"
    out.mkdir()
    args = ("convert", str(model), "--to", TARGETS, "-o", str(out), *case.args)
    t0 = time.monotonic()
    proc = run_mconv(*args, timeout=300) if case.name in SUBPROCESS else invoke(*args)
    return proc, model, out, time.monotonic() - t0


def test_corpus_is_complete(corpus):
    """The corpus holds what the ids below list (so no case is silently skipped)."""
    for group in ("pytorch", "onnx", "accepted"):
        assert sorted(c.name for c in corpus[1][group]) == sorted(_case_ids(group))


@pytest.mark.parametrize("name", _case_ids("pytorch") + _case_ids("onnx"))
def test_refused_cleanly(corpus, tmp_path, name):
    group = "onnx" if name.endswith(".onnx") else "pytorch"
    case = _case(corpus, group, name)
    root = corpus[0]
    proc, model, out, _ = _run_case(root, case, tmp_path)
    assert proc.returncode == case.code, (case.why, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert case.needle in errors[0], errors[0]
    assert not any(out.iterdir()), list(out.iterdir())
    assert sorted(p.name for p in model.parent.iterdir()) == [model.name]
    assert not (root / mc.MARKER_NAME).exists(), "a pickle from the corpus ran code"


@pytest.mark.parametrize("name", _case_ids("accepted"))
def test_converted_safely(corpus, tmp_path, name):
    """Converts (exit 0), every file inside OUTDIR named after the stem mconv chose, no
    pickle run, nothing written next to the model or above OUTDIR."""
    case = _case(corpus, "accepted", name)
    proc, model, out, _ = _run_case(corpus[0], case, tmp_path)
    assert proc.returncode == 0, (case.why, proc.stderr)
    assert "Traceback" not in proc.stderr
    stem = Path(name).stem.strip(" .") or "model"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files and all(f.split("/")[0] in TARGETS.split(",") for f in files), files
    assert all(Path(f).name.startswith(stem + ".") for f in files), files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
    assert sorted(p.name for p in model.parent.iterdir()) == [model.name]
    assert not (corpus[0] / mc.MARKER_NAME).exists(), "a pickle from the corpus ran code"


@pytest.mark.parametrize("name", ["bomb.pt", "bomb.pt2", "declared-bomb.pt",
                                  "many-members.pt"])
def test_zip_bombs_refused_without_inflating(corpus, tmp_path, monkeypatch, name):
    """In-process: no member is ever read (ZipExtFile.read fails the test), and fast."""
    from converter.errors import UnreadableModelError
    from frontends.pytorch.sniff import sniff

    case = _case(corpus, "pytorch", name)
    path = case.write(tmp_path)

    def no_read(self, *a, **k):
        raise AssertionError("a member was inflated")

    monkeypatch.setattr(zipfile.ZipExtFile, "read", no_read)
    t0 = time.monotonic()
    with pytest.raises(UnreadableModelError):
        sniff(path)
    assert time.monotonic() - t0 < 2.0


def test_ops_refuses_the_same(corpus, tmp_path):
    """``mconv ops`` applies the same contract (exit 5, one line, no traceback)."""
    for name in ("huge-input.onnx", "evil-constants.pt", "bomb.pt2"):
        case = _case(corpus, "onnx" if name.endswith(".onnx") else "pytorch", name)
        model = case.write(tmp_path)
        proc = invoke("ops", str(model), "--to", TARGETS, *case.args)
        assert proc.returncode == 5, proc.stderr
        assert "Traceback" not in proc.stderr
        assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert not (corpus[0] / mc.MARKER_NAME).exists()
