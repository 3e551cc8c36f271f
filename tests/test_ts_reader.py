"""The torch-free TorchScript reader (``frontends/pytorch/ts_reader.py``): for every fixture,
every frontend test case saved as a traced ``.pt`` and models covering nested / shared /
tuple-returning submodules, shape arithmetic and keyword arguments, ``walk_ts_file`` builds
the very graph ``walk_torchscript(torch.jit.load(path), ..., graph=module.inlined_graph)``
builds (same ``Graph.dump()``, op counts and constant arrays); scripted control flow falls
back to torch; a pickle referencing ``os.system`` is refused without running; broken
archives raise ``UnreadableModelError``; ``frontends.load`` works with torch blocked."""
from __future__ import annotations

import fcntl
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import torch
nn = torch.nn
F = torch.nn.functional

import frontends.pytorch as fpt  # noqa: E402
from converter.errors import UnreadableModelError, UnsupportedOpsError, UsageError  # noqa: E402
from converter.options import ConvertOptions  # noqa: E402
from fixtures.build import FIXTURES, build  # noqa: E402
from frontends.pytorch import ts_reader  # noqa: E402
from frontends.pytorch.ts_reader import walk_ts_file  # noqa: E402
from frontends.pytorch.ts_unpickle import NotInterpretable  # noqa: E402
from frontends.pytorch.walk import walk_torchscript  # noqa: E402
from tests.conftest import ROOT, assert_same_graph  # noqa: E402
from tests.test_pytorch_frontend import CASES, _model  # noqa: E402


# ------------------------------------------------------------------ helpers
def _fixture(fixture_dir: Path, name: str) -> Path:
    """Build (once, under a lock shared by xdist workers) and return the fixture's .pt."""
    with open(fixture_dir / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        build(name, fixture_dir)
    return fixture_dir / f"{name}.pt"


def _shapes(pt: Path) -> dict:
    meta = json.loads(pt.with_suffix(".json").read_text())
    return {k: tuple(v) for k, v in meta["inputs"].items()}



def _assert_same(path: Path, overrides: dict):
    """walk_ts_file and walk_torchscript over torch's inlined graph agree."""
    module = torch.jit.load(str(path), map_location="cpu").eval()
    ref, ref_counts = walk_torchscript(module, dict(overrides), "m", module.inlined_graph)
    got, counts = walk_ts_file(path, dict(overrides), "m")
    return assert_same_graph(ref, ref_counts, got, counts)


def _trace(model, shape, path: Path) -> Path:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    torch.jit.save(torch.jit.trace(model.eval(), x), str(path))
    return path


def _opts(**shapes) -> ConvertOptions:
    return ConvertOptions(input_shapes={k: tuple(v) for k, v in shapes.items()})


# ------------------------------------------------------------------ same graph as torch
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_same_graph(fixture_dir, name):
    pt = _fixture(fixture_dir, name)
    _assert_same(pt, _shapes(pt))


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_same_graph(tmp_path, case):
    model, shape = _model(case)
    _assert_same(_trace(model, shape, tmp_path / f"{case}.pt"), {"x": shape})


class TupleSub(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = self.c(x)
        return y, torch.relu(y)


class Mid(nn.Module):
    """A non-root container: its callees are inlined into an optimized graph."""

    def __init__(self):
        super().__init__()
        self.t = TupleSub()
        self.seq = nn.Sequential(nn.Identity(), nn.ReLU(), nn.Dropout(0.1))

    def forward(self, x):
        a, b = self.t(x)
        n, c, h, w = a.shape  # int(NumToTensor(size)) peepholes in a callee
        y = a.view(n, c, h * w).view(n, c, h, w)
        return self.seq(y + b) * 2


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.m, self.m2 = Mid(), Mid()
        self.shared = nn.Conv2d(4, 4, 3, padding=1)
        self.acts = nn.ModuleList([nn.ReLU(), nn.ReLU6(), nn.GELU(approximate="tanh")])

    def forward(self, x):
        y = self.m(x) + self.m2(x) * 2
        for act in self.acts:
            y = act(self.shared(y))
        z = F.interpolate(y, scale_factor=2, mode="nearest")
        return y, z.mean((2, 3), keepdim=True) * 3 + 3


class ShapeMath(nn.Module):
    def forward(self, x):
        n, c, h, w = x.shape
        y = x.reshape(n, c // 3, 3, h * w).transpose(1, 2).reshape(n, -1, h, w)
        return y[:, :, 1:, ::2].flatten(1) + x.sum() + (x * 2).sum() + (x * 2.0).sum()


class DenseBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        y = torch.cat([x, self.c1(x)], 1)
        return torch.cat([y, self.c2(y)], 1)


class Twice(nn.Module):
    def __init__(self, shared):
        super().__init__()
        self.m = shared

    def forward(self, x):
        return self.m(self.m(x))


class Misc(nn.Module):
    """Cat of cats in a callee, a module shared by two parents, ``annotate(List[int], [])``
    (avg_pool2d without stride), split / unbind / negative slices, size-driven resize."""

    def __init__(self):
        super().__init__()
        self.dense = DenseBlock()
        conv = nn.Conv2d(12, 12, 1)
        self.a, self.b = Twice(conv), Twice(conv)
        self.p = nn.PReLU()

    def forward(self, x):
        d = self.dense(x)
        d = self.a(d) - self.b(d)
        lo, hi = torch.split(d, [4, 8], 1)
        parts = torch.unbind(hi, 1)
        y = F.interpolate(F.avg_pool2d(d, 2), size=d.shape[2:], mode="bilinear")
        z = F.pad(d, (1, 1, 2, 2))[:, :, 2:-2, 1:-1]
        return self.p(y + z)[:, :4] * lo + parts[-1].unsqueeze(1)


EXTRA = {"nested": (Nested, (1, 3, 8, 8)), "shape_math": (ShapeMath, (2, 6, 5, 4)),
         "misc": (Misc, (1, 4, 6, 6))}


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_extra_same_graph(tmp_path, name):
    cls, shape = EXTRA[name]
    torch.manual_seed(0)
    _assert_same(_trace(cls(), shape, tmp_path / f"{name}.pt"), {"x": shape})


# ------------------------------------------------------------------ schema table
def _code(t, n=None) -> str:
    s = str(t)
    if s.startswith("Optional[") and s.endswith("]"):
        return _code(s[9:-1], n) + "?"
    if s.startswith("List[") and s.endswith("]"):
        return _code(s[5:-1]) + (f"[{n}]" if n else "[]")
    return {"Tensor": "T", "int": "i", "SymInt": "i", "float": "f", "bool": "b", "str": "s",
            "number": "n", "Scalar": "n", "complex": "c", "t": "t", "Device": "D",
            "Generator": "G", "ScalarType": "i", "Layout": "i",
            "MemoryFormat": "i"}.get(s, "x")


def test_signatures_match_installed_torch():
    """Every overload of every op in SIGNATURES: registration order, argument types,
    keyword-only flags, names (from aten_defaults.json or the table) and returns."""
    table = ts_reader._table()
    json_ops = {k.split(".")[1] for k in ts_reader.schemas()}
    assert {k.split("::")[1] for k in table if k.startswith("aten::")} >= json_ops
    for qual in table:
        ns, op = qual.split("::")
        schemas = torch._C._jit_get_schemas_for_operator(qual)
        ours = ts_reader.overloads_of(ns, op)
        assert [o.name for o in ours] == [s.overload_name or "default" for s in schemas], qual
        for o, s in zip(ours, schemas):
            assert [(f.name, f.code, f.kwarg_only) for f in o.formals] == [
                (a.name, _code(a.type, a.N), a.kwarg_only) for a in s.arguments], (qual, o.name)
            assert o.rets == [_code(r.type) for r in s.returns], (qual, o.name)


def test_upgraded_ops_match_installed_torch():
    bumps: dict = {}
    for key, entries in torch._C._get_operator_version_map().items():
        op = key.split("::")[1].split(".")[0]
        bumps[op] = max([bumps.get(op, 0)] + [e.bumped_at_version for e in entries])
    assert ts_reader.UPGRADED == bumps


# ------------------------------------------------------------------ fallback and modes
class Branchy(nn.Module):
    """Scripted control flow (folded by torch.jit.freeze on the torch path)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.double = True

    def forward(self, x):
        y = self.conv(x)
        if self.double:
            y = y * 2
        for _ in range(2):
            y = y + 1
        return torch.relu(y)


def test_scripted_control_flow_falls_back(tmp_path, monkeypatch):
    p = tmp_path / "branchy.pt"
    torch.jit.save(torch.jit.script(Branchy().eval()), str(p))
    with pytest.raises(NotInterpretable):
        walk_ts_file(p, {"x": (1, 3, 8, 8)}, "m")
    monkeypatch.delenv(ts_reader.ENV_VAR, raising=False)
    loaded = fpt.load(p, _opts(x=(1, 3, 8, 8)))
    assert [n.op for n in loaded.graph.nodes][:1] == ["Conv"]
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        ref = torch.jit.load(str(p))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(loaded.run_source({"x": x})[0], ref, rtol=0, atol=1e-6)
    monkeypatch.setenv(ts_reader.ENV_VAR, "fast")
    with pytest.raises(UnreadableModelError) as e:
        fpt.load(p, _opts(x=(1, 3, 8, 8)))
    assert "without torch" in e.value.message and ts_reader.ENV_VAR in e.value.hint


def test_env_var_modes(fixture_dir, monkeypatch):
    pt = _fixture(fixture_dir, "mtcnn_pnet")
    shapes = _shapes(pt)
    monkeypatch.setenv(ts_reader.ENV_VAR, "bogus")
    with pytest.raises(UsageError, match=ts_reader.ENV_VAR):
        fpt.load(pt, ConvertOptions(input_shapes=shapes))
    dumps, real = {}, ts_reader.walk_ts_file
    for mode in ("torch", "fast", "auto"):
        monkeypatch.setenv(ts_reader.ENV_VAR, mode)
        calls: list = []
        monkeypatch.setattr(ts_reader, "walk_ts_file",
                            lambda *a, calls=calls, **k: calls.append(1) or real(*a, **k))
        dumps[mode] = fpt.load(pt, ConvertOptions(input_shapes=shapes)).graph.dump()
        assert bool(calls) == (mode != "torch")
    assert dumps["torch"] == dumps["fast"] == dumps["auto"]


def test_unsupported_ops_all_listed(tmp_path, monkeypatch):
    class Bad(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 1) + torch.flip(x, [2]) + torch.cumsum(x, 2)

    p = _trace(Bad(), (1, 3, 4, 4), tmp_path / "bad.pt")
    for mode in ("auto", "fast"):
        monkeypatch.setenv(ts_reader.ENV_VAR, mode)
        with pytest.raises(UnsupportedOpsError) as e:
            fpt.load(p, _opts(x=(1, 3, 4, 4)))
        assert {i.op: len(i.nodes) for i in e.value.issues} == {"aten.cumsum": 2,
                                                                 "aten.flip": 1}


def test_missing_input_shape_is_usage_error(tmp_path):
    p = _trace(nn.Conv2d(3, 4, 3), (1, 3, 8, 8), tmp_path / "conv.pt")
    with pytest.raises(UsageError) as e:
        walk_ts_file(p, {}, "m")
    assert "--input-shape" in e.value.one_line()


def test_run_source_loads_torch_lazily(fixture_dir, monkeypatch):
    monkeypatch.delenv(ts_reader.ENV_VAR, raising=False)
    pt = _fixture(fixture_dir, "mtcnn_rnet")
    loaded = fpt.load(pt, ConvertOptions(input_shapes=_shapes(pt)))
    shape = next(iter(_shapes(pt).values()))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        ref = torch.jit.load(str(pt))(torch.from_numpy(x))
    ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    got = loaded.run_source({loaded.graph.inputs[0].name: x})
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r.numpy(), rtol=0, atol=0)


# ------------------------------------------------------------------ hostile / broken files
def _rewrite(src: Path, dst: Path, replace: dict) -> Path:
    """Copy a zip archive, replacing members (by path suffix) with new bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    data = new
            zout.writestr(info, data)
    return dst


class _Evil:
    def __init__(self, cmd: str):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_malicious_pickle_refused_without_running(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    src = _trace(nn.Conv2d(3, 4, 3), (1, 3, 8, 8), tmp_path / "ok.pt")
    evil = pickle.dumps({"weight": _Evil(f"touch {marker}")}, protocol=2)
    assert b"system" in evil
    for member in ("data.pkl", "constants.pkl"):
        p = _rewrite(src, tmp_path / f"evil_{member}.pt", {f"/{member}": evil})
        with pytest.raises(UnreadableModelError, match="system"):
            walk_ts_file(p, {"x": (1, 3, 8, 8)}, "m")
        monkeypatch.setenv(ts_reader.ENV_VAR, "fast")
        with pytest.raises(UnreadableModelError):
            fpt.load(p, _opts(x=(1, 3, 8, 8)))
    assert not marker.exists()
    builtin = pickle.dumps(__builtins__["eval"] if isinstance(__builtins__, dict)
                           else eval, protocol=2)
    p = _rewrite(src, tmp_path / "eval.pt", {"/data.pkl": builtin})
    with pytest.raises(UnreadableModelError, match="eval"):
        walk_ts_file(p, {"x": (1, 3, 8, 8)}, "m")


def test_broken_archives(tmp_path):
    src = _trace(nn.Conv2d(3, 4, 3), (1, 3, 8, 8), tmp_path / "ok.pt")
    data = src.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    bad_crc = bytearray(data)
    with zipfile.ZipFile(src) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("/data/0"))
    head = data[info.header_offset:info.header_offset + 30]  # local header: own extra length
    start = info.header_offset + 30 + int.from_bytes(head[26:28], "little") + \
        int.from_bytes(head[28:30], "little")
    bad_crc[start + 5] ^= 0xFF
    (tmp_path / "bad_crc.pt").write_bytes(bytes(bad_crc))
    _rewrite(src, tmp_path / "short_storage.pt", {"/data/0": b"\0" * 8})
    _rewrite(src, tmp_path / "garbage_pkl.pt", {"/data.pkl": b"\x80\x02garbage"})
    _rewrite(src, tmp_path / "no_class.pt", {".py": b"x = 1\n"})
    for name in ("truncated.pt", "bad_crc.pt", "short_storage.pt", "garbage_pkl.pt"):
        with pytest.raises(UnreadableModelError, match=name):
            walk_ts_file(tmp_path / name, {"x": (1, 3, 8, 8)}, "m")
        with pytest.raises(UnreadableModelError, match=name):  # also through load()
            fpt.load(tmp_path / name, _opts(x=(1, 3, 8, 8)))
    with pytest.raises(NotInterpretable):  # torch decides about sources it would compile
        walk_ts_file(tmp_path / "no_class.pt", {"x": (1, 3, 8, 8)}, "m")


def test_pickle_stand_ins_are_inert():
    from frontends.pytorch.ts_unpickle import RestrictedUnpickler

    class _Ar:
        path = "x.pt"

    for mod, name in (("os", "system"), ("subprocess", "Popen"), ("builtins", "getattr"),
                      ("posix", "system"), ("torch._utils", "os")):
        blob = b"\x80\x02c" + f"{mod}\n{name}\n".encode() + b")R."
        with pytest.raises((UnreadableModelError, NotInterpretable)):
            RestrictedUnpickler(blob, _Ar(), "data").load()


# ------------------------------------------------------------------ no torch at all
def test_load_with_torch_blocked(fixture_dir):
    pt = _fixture(fixture_dir, "resnet18")
    code = f"""
import sys
sys.modules['torch'] = None
from pathlib import Path
import frontends
from converter.options import ConvertOptions
m = frontends.load(Path({str(pt)!r}), ConvertOptions(input_shapes={_shapes(pt)!r}))
assert 'torch' not in [k for k, v in sys.modules.items() if v is not None]
print(len(m.graph.nodes), m.source_ops['aten._convolution'])
"""
    env = {k: v for k, v in os.environ.items() if k != ts_reader.ENV_VAR}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    n_nodes, n_conv = proc.stdout.split()
    assert int(n_conv) == 20 and int(n_nodes) > 20
