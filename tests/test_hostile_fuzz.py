"""Hypothesis mutates small valid model files (TorchScript ``.pt``, ``torch.export`` ``.pt2``,
``.onnx``) and the CLI must keep its contract on every mutant: an exit code in {0, 2, 3, 4,
5} (never 1, an internal error), no traceback, at most one ``error:`` line, and nothing in
OUTDIR unless the conversion succeeded or verification failed (exit 4 keeps the files).

Mutations: bit flips, truncation, overwritten byte runs, and (zip formats) a mutation of one
archive member's *content* with the archive rebuilt around it, so CRCs are valid and the
readers, not zipfile, meet the damage. 30 examples per format (``MCONV_FUZZ_EXAMPLES``);
run in-process through click's CliRunner with verification on (runtimes installed).
"""
from __future__ import annotations

import os
import shutil
import traceback

import pytest

import hypothesis
import torch  # noqa: F401  (required: the test extra installs it)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.hostile import make_corpus as mc  # noqa: E402

EXAMPLES = int(os.environ.get("MCONV_FUZZ_EXAMPLES", "30"))
ALLOWED = {0, 2, 3, 4, 5}
RAN: dict = {}


def mutate(data: bytes, draw, zipped: bool) -> bytes:
    """One mutation of ``data`` chosen by hypothesis' ``draw``."""
    kind = draw(st.sampled_from(["flip", "truncate", "overwrite"] +
                                (["member", "member"] if zipped else [])))
    b = bytearray(data)
    if kind == "truncate":
        return bytes(b[: draw(st.integers(0, len(b) - 1))])
    if kind == "member":
        return _mutate_member(data, draw)
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(b) - 1))
        if kind == "flip":
            b[i] ^= 1 << draw(st.integers(0, 7))
        else:
            run = draw(st.binary(min_size=1, max_size=16))
            b[i:i + len(run)] = run
    return bytes(b)


def _mutate_member(data: bytes, draw) -> bytes:
    items = mc.members(data)
    k = draw(st.integers(0, len(items) - 1))
    name, body, ctype = items[k]
    body = bytearray(body)
    if body:
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(body) - 1))
            body[i] = draw(st.integers(0, 255))
    items[k] = (name, bytes(body), ctype)
    return mc.rezip(items)


@pytest.fixture(scope="module")
def seeds(fixture_dir):
    from tests.hostile.seeds import seed_files

    return seed_files(fixture_dir)


def _invoke(*args: str):
    from click.testing import CliRunner

    from converter.cli import main

    r = CliRunner().invoke(main, list(args))
    tb = ""
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        tb = "".join(traceback.format_exception(r.exception))
    return r.exit_code, r.stdout, r.stderr, tb


def _check(fmt: str, data: bytes, work) -> None:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    model, out = work / f"m.{fmt}", work / "out"
    model.write_bytes(data)
    code, stdout, stderr, tb = _invoke("convert", str(model), "--to", "ncnn,onnx,openvino",
                                       "-o", str(out), "--input-shape", "x=1x3x8x8")
    RAN[fmt] = RAN.get(fmt, 0) + 1
    assert not tb, tb
    assert code in ALLOWED, (code, stderr)
    assert "Traceback" not in stdout + stderr
    assert len([ln for ln in stderr.splitlines() if ln.startswith("error:")]) <= 1, stderr
    if code not in (0, 4):
        assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    assert sorted(p.name for p in work.iterdir()) in (["m." + fmt], ["m." + fmt, "out"])


@pytest.mark.parametrize("fmt", ["pt", "pt2", "onnx"])
def test_mutated_models_keep_the_contract(seeds, tmp_path, fmt):
    data = seeds[fmt].read_bytes()
    zipped = fmt != "onnx"

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(d):
        _check(fmt, mutate(data, d.draw, zipped), tmp_path / "w")

    run()
    print(f"\nhypothesis: {RAN.get(fmt, 0)} {fmt} examples ran")
    assert RAN.get(fmt, 0) >= min(EXAMPLES, 10)
