"""The torch-free ``.pt2`` reader (``frontends/pytorch/pt2_reader.py``): for every fixture and
for tiny models covering multi-output ops, scalar / keyword-only / None arguments, lifted
constants, weights that are views of a shared storage and symbolic dims, ``walk_pt2`` builds
the very graph ``walk_exported(torch.export.load(path))`` builds (same ``Graph.dump()``, same
source op counts, same constant arrays); it never imports torch; broken archives raise
``UnreadableModelError`` naming the file and the member; ``aten_defaults.json`` matches the
registered converters."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import torch
nn = torch.nn
F = torch.nn.functional

from converter.errors import UnreadableModelError, UnsupportedOpsError, UsageError  # noqa: E402
from converter.options import ConvertOptions  # noqa: E402
from fixtures.build import FIXTURES, build  # noqa: E402
from frontends.pytorch import gen_aten_defaults, pt2_reader  # noqa: E402
from frontends.pytorch.pt2_reader import walk_pt2  # noqa: E402
from frontends.pytorch.walk import walk_exported  # noqa: E402
from tests.conftest import ROOT, assert_same_graph  # noqa: E402
from tests.test_pytorch_frontend import CASES, Fn, _model  # noqa: E402

LOCAL = sorted(n for n, f in FIXTURES.items() if "pretrained" not in f.tags)


# ------------------------------------------------------------------ helpers
def _fixture(fixture_dir: Path, name: str) -> Path:
    """Build (once, under a lock shared by xdist workers) and return the fixture's .pt2."""
    with open(fixture_dir / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        build(name, fixture_dir)
    return fixture_dir / f"{name}.pt2"


def _save(model, example, folder: Path, name: str = "m", dynamic_shapes=None) -> Path:
    ep = torch.export.export(model.eval(), example, dynamic_shapes=dynamic_shapes)
    path = folder / f"{name}.pt2"
    torch.export.save(ep, str(path))
    return path



def _assert_same(path: Path, overrides: dict | None = None):
    """walk_pt2 and walk_exported(torch.export.load) agree; returns the reader's graph."""
    ref, ref_counts = walk_exported(torch.export.load(str(path)), dict(overrides or {}), "m")
    got, counts = walk_pt2(path, dict(overrides or {}), "m")
    return assert_same_graph(ref, ref_counts, got, counts)



class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)

    def forward(self, x, y):
        return self.conv(x) + y, F.relu(y)


# ------------------------------------------------------------------ defaults table
def test_aten_defaults_json_is_up_to_date():
    on_disk = json.loads(gen_aten_defaults.OUT.read_text())
    fresh = gen_aten_defaults.generate()
    assert on_disk["ops"] == fresh["ops"], "regenerate: python -m frontends.pytorch.gen_aten_defaults"
    assert on_disk["overloads"] == fresh["overloads"], \
        "regenerate: python -m frontends.pytorch.gen_aten_defaults"


def test_defaults_decode_like_torch():
    for key, args in pt2_reader.schemas().items():
        ns, name, ov = key.split(".")
        schema = getattr(getattr(getattr(torch.ops, ns), name), ov)._schema
        for rec, arg in zip(args, schema.arguments):
            if arg.has_default_value() and not isinstance(arg.default_value, torch.dtype):
                assert pt2_reader.decode_default(rec["default"]) == arg.default_value, key


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("name", LOCAL)
def test_fixture_same_graph(fixture_dir, name):
    _assert_same(_fixture(fixture_dir, name))


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_family_same_graph(tmp_path, case):
    model, shape = _model(case)
    _assert_same(_save(model, (torch.randn(shape),), tmp_path))


TINY = {
    "multi_output": (lambda x: torch.cat([*x.chunk(2, 1), *x.split(1, 1), *x.split([3, 1], 1),
                                          x.unbind(1)[3].unsqueeze(1)], 1), (1, 4, 3, 3)),
    "max_pool_indices": (lambda x: F.max_pool2d(x, 2, return_indices=True)[0], (1, 2, 4, 4)),
    "scalar_args": (lambda x: F.leaky_relu(x * 2.5 + 1, 0.2).clamp(-0.5, 0.75) - 3 +
                    F.hardtanh(x, -2.0, 2.0) + x.pow(2) / 7, (1, 3, 4, 4)),
    "kwarg_only": (lambda x: F.gelu(x, approximate="tanh") + F.gelu(x) +
                   F.softplus(x, beta=1, threshold=10), (1, 3, 4, 4)),
    "none_args": (lambda x: torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"),
                                       F.interpolate(x, size=(8, 8), mode="bilinear")], 1) +
                  F.avg_pool2d(F.pad(torch.cat([x, x], 1), (2, 2, 2, 2)), 1), (1, 3, 4, 4)),
    "infinite_bound": (lambda x: x.clamp(min=float("-inf"), max=0.5), (1, 3, 2, 2)),
}


@pytest.mark.parametrize("case", sorted(TINY))
def test_tiny_same_graph(tmp_path, case):
    fn, shape = TINY[case]
    _assert_same(_save(Fn(fn), (torch.randn(shape),), tmp_path))


def test_conv_without_bias_and_two_named_outputs(tmp_path):
    g = _assert_same(_save(Two(), (torch.randn(1, 3, 5, 5), torch.randn(1, 4, 5, 5)), tmp_path))
    assert [v.name for v in g.inputs] == ["x", "y"]
    assert len(g.outputs) == 2


class Consts(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.linspace(-1, 1, 5), persistent=False)

    def forward(self, x):
        return x * self.scale + torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])


def test_lifted_constants_and_non_persistent_buffers(tmp_path):
    path = _save(Consts(), (torch.randn(2, 5),), tmp_path)
    with zipfile.ZipFile(path) as zf:
        cfg = next(n for n in zf.namelist() if n.endswith("model_constants_config.json"))
        assert len(json.loads(zf.read(cfg))["config"]) == 2
    _assert_same(path)


class Views(nn.Module):
    """Buffers that are views of one storage: an offset row, a strided slice, a transpose."""

    def __init__(self):
        super().__init__()
        base = torch.arange(48, dtype=torch.float32).reshape(4, 12)
        self.register_buffer("row", base[1])
        self.register_buffer("every3", base[:, ::3])
        self.register_buffer("tr", base.t())

    def forward(self, x):
        return x + self.row, x[:, :4] * self.every3, x.t() - self.tr


@pytest.mark.filterwarnings("ignore:No complete tensor found")
def test_weights_are_views_of_a_shared_storage(tmp_path):
    path = _save(Views(), (torch.randn(4, 12),), tmp_path)
    with zipfile.ZipFile(path) as zf:
        cfg = next(n for n in zf.namelist() if n.endswith("model_weights_config.json"))
        entries = json.loads(zf.read(cfg))["config"]
    assert len({e["path_name"] for e in entries.values()}) == 1
    assert entries["row"]["tensor_meta"]["storage_offset"] == {"as_int": 12}
    g = _assert_same(path)
    every3 = next(v.const for v in g.values() if v.is_const and v.name == "every3")
    np.testing.assert_array_equal(every3, np.arange(48.).reshape(4, 12)[:, ::3])


def test_symbolic_batch_needs_an_override(tmp_path):
    model = Fn(lambda x, c: F.relu(c(x)).view(x.size(0), -1), nn.Conv2d(3, 2, 3))
    batch = torch.export.Dim("batch", min=2, max=64)
    path = _save(model, (torch.randn(2, 3, 6, 6),), tmp_path, dynamic_shapes=({0: batch},))
    with pytest.raises(UsageError, match="'x' has no static shape"):
        walk_pt2(path, {}, "m")
    g = _assert_same(path, {"x": (3, 3, 6, 6)})
    assert g.outputs[0].shape == (3, 32)


def test_unsupported_ops_all_listed(tmp_path):
    model = Fn(lambda x: torch.cumsum(x, 1) + torch.flip(x, [2]) + torch.cumsum(x, 2))
    path = _save(model, (torch.randn(1, 3, 4, 4),), tmp_path)
    with pytest.raises(UnsupportedOpsError) as e:
        walk_pt2(path, {}, "m")
    assert {i.op: len(i.nodes) for i in e.value.issues} == {"aten.cumsum": 2, "aten.flip": 1}


def test_overload_missing_from_defaults(tmp_path, monkeypatch):
    path = _save(Fn(lambda x: F.relu(x) + 1), (torch.randn(1, 3),), tmp_path)
    table = {k: v for k, v in pt2_reader.schemas().items() if k != "aten.relu.default"}
    monkeypatch.setattr(pt2_reader, "_SCHEMAS", table)
    with pytest.raises(UnsupportedOpsError) as e:
        walk_pt2(path, {}, "m")
    assert [i.code for i in e.value.issues] == ["pytorch.unknown_overload"]


def test_bfloat16_and_big_endian_storage():
    t = torch.randn(3, 4).bfloat16()
    raw = t.view(torch.int16).numpy().tobytes()
    got = pt2_reader._view(raw, "bfloat16", [3, 4], [4, 1], 0, "little")
    np.testing.assert_array_equal(got, t.float().numpy())
    big = np.arange(6, dtype=">f4").tobytes()
    got = pt2_reader._view(big, "float32", [3], [2], 1, "big")
    np.testing.assert_array_equal(got, np.array([1.0, 3.0, 5.0], np.float32))


# ------------------------------------------------------------------ torch-free loading
def test_load_never_imports_torch(fixture_dir, tmp_path):
    path = _fixture(fixture_dir, "mtcnn_onet")
    code = (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nsys.modules['torch'] = None\n"
            "from pathlib import Path\nfrom converter.options import ConvertOptions\n"
            "import frontends\n"
            f"m = frontends.load(Path({str(path)!r}), ConvertOptions())\n"
            "assert m.graph.nodes and len(m.graph.outputs) == 3\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'torch'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['torch']"  # only the None entry that blocks the import


def test_source_runner_loads_torch_lazily(tmp_path):
    import frontends

    model = Fn(lambda x, c: F.relu(c(x)), nn.Conv2d(3, 4, 3))
    x = torch.randn(1, 3, 6, 6)
    loaded = frontends.load(_save(model, (x,), tmp_path), ConvertOptions())
    (out,) = loaded.run_source({"x": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=0, atol=1e-6)


# ------------------------------------------------------------------ broken archives
@pytest.fixture(scope="module")
def good_pt2(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pt2")
    return _save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()),
                 (torch.randn(1, 3, 6, 6),), folder, "good")


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy a zip, passing each member through ``edit(rel, data) -> bytes | None`` (None
    drops it); ``rel`` is the name below the archive's top folder."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            rel = info.filename.split("/", 1)[1]
            data = edit(rel, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


def _weight_file(src: Path, fqn: str) -> str:
    with zipfile.ZipFile(src) as zf:
        cfg = next(n for n in zf.namelist() if n.endswith("model_weights_config.json"))
        return "data/weights/" + json.loads(zf.read(cfg))["config"][fqn]["path_name"]


def _json_edit(rel_name: str, fn):
    def edit(rel, data):
        if rel != rel_name:
            return data
        doc = json.loads(data)
        fn(doc)
        return json.dumps(doc).encode()
    return edit


def _pickled(doc):
    doc["config"]["0.weight"]["use_pickle"] = True


def _bad_ref(doc):
    doc["graph_module"]["graph"]["nodes"][0]["inputs"][0]["arg"] = {"as_tensor": {"name": "nope"}}


def _bad_dtype(doc):
    doc["config"]["0.bias"]["tensor_meta"]["dtype"] = 99


def _no_signature(doc):
    del doc["graph_module"]["signature"]


MODEL = "models/model.json"
WCFG = "data/weights/model_weights_config.json"
BROKEN = {
    "truncated_json": (lambda w: lambda rel, d: d[: len(d) // 2] if rel == MODEL else d,
                       MODEL, "malformed JSON"),
    "missing_member": (lambda w: lambda rel, d: None if rel == w else d, "{w}", "missing"),
    "short_weight": (lambda w: lambda rel, d: d[:-8] if rel == w else d, "{w}", "needs"),
    "odd_weight_bytes": (lambda w: lambda rel, d: d + b"\0" if rel == w else d, "{w}",
                         "not a multiple"),
    "missing_weights_config": (lambda w: lambda rel, d: None if rel == WCFG else d, WCFG,
                               "missing"),
    "pickled_weight": (lambda w: _json_edit(WCFG, _pickled), WCFG, "never unpickles"),
    "unknown_dtype": (lambda w: _json_edit(WCFG, _bad_dtype), WCFG, "unknown dtype code 99"),
    "undefined_tensor": (lambda w: _json_edit(MODEL, _bad_ref), MODEL,
                         "used before it is defined"),
    "missing_field": (lambda w: _json_edit(MODEL, _no_signature), MODEL,
                      "missing field graph_module.signature"),
    "no_model": (lambda w: lambda rel, d: None if rel == MODEL else d, MODEL, "missing"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_archive(good_pt2, tmp_path, case):
    make, member, text = BROKEN[case]
    weight = _weight_file(good_pt2, "0.weight")
    bad = _rewrite(good_pt2, tmp_path / "bad.pt2", make(weight))
    with pytest.raises(UnreadableModelError) as e:
        walk_pt2(bad, {}, "m")
    msg = e.value.message
    assert str(bad) in msg and f"good/{member.format(w=weight)}" in msg and text in msg, msg


def test_truncated_zip_and_legacy_archive(good_pt2, tmp_path):
    cut = tmp_path / "cut.pt2"
    cut.write_bytes(good_pt2.read_bytes()[:2000])
    with pytest.raises(UnreadableModelError, match="cut.pt2"):
        walk_pt2(cut, {}, "m")
    legacy = tmp_path / "legacy.pt2"
    with zipfile.ZipFile(legacy, "w") as zf:
        zf.writestr("legacy/serialized_exported_program.json", "{}")
        zf.writestr("legacy/serialized_state_dict.pt", b"\x80\x02}q\x00.")
    with pytest.raises(UnreadableModelError, match="never unpickles"):
        walk_pt2(legacy, {}, "m")
