"""End to end on the fixture zoo: every fixture, as TorchScript ``.pt`` and ``torch.export``
``.pt2``, converts to ncnn and is verified in the real ncnn runtime against torch on a seeded
input: fp32 at max abs error <= 1e-4 x max(1, max|ref|), fp16 weights at 1e-2.
Also: the ncnn graph is tight (no BatchNorm / Dropout / fusable standalone activation, no
more layers than pnnx makes from the same TorchScript file) and output is byte-identical
between two runs."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import torch
import ncnn  # noqa: F401  (required: the test extra installs it)

from converter.options import ConvertOptions  # noqa: E402
from converter.pipeline import run  # noqa: E402
from fixtures.build import FIXTURES  # noqa: E402
from tests.conftest import run_mconv  # noqa: E402
from tests.conftest import fixture_shapes as _shape_args  # noqa: E402
from tests.conftest import built_fixture as _fixture  # noqa: E402

NAMES = sorted(FIXTURES)






def _layers(param: Path) -> list[str]:
    return [ln.split()[0] for ln in param.read_text().splitlines()[2:] if ln.strip()]


TARGETS = ("ncnn", "onnx", "openvino")


@pytest.mark.parametrize("fmt", ["pt", "pt2"])
@pytest.mark.parametrize("name", NAMES)
def test_convert_verify_fp32(fixture_dir, tmp_path, name, fmt):
    """One multi-target run per fixture and format: ncnn, ONNX and OpenVINO, each verified in
    its own runtime against torch (converted and optimized once, lowered three times)."""
    import onnx

    fdir = _fixture(fixture_dir, name)
    opts = ConvertOptions(targets=TARGETS, output_dir=tmp_path,
                          input_shapes=_shape_args(fdir, name), verify=True)
    res = run(fdir / f"{name}.{fmt}", opts)
    assert res.verified is True
    assert {c["target"] for c in res.verification} == set(TARGETS)
    assert len(res.verification) == len(TARGETS) * len(res.outputs)
    for c in res.verification:
        assert c["passed"] and c["max_abs"] <= 1e-4 * max(1.0, c["ref_max"]), c
        assert c["cosine"] > 0.99999
    layers = _layers(tmp_path / "ncnn" / f"{name}.ncnn.param")
    assert "BatchNorm" not in layers and "Dropout" not in layers
    assert _relu_justified(tmp_path / "ncnn" / f"{name}.ncnn.param")
    onnx_ops = res.target_ops["onnx"]["op_counts"]
    assert "BatchNormalization" not in onnx_ops and "Dropout" not in onnx_ops
    assert res.target_ops["onnx"]["ops"] == sum(res.ops_after.values())  # 1:1 at opset 17
    m = onnx.load(str(tmp_path / "onnx" / f"{name}.onnx"))
    assert [o.name for o in m.graph.output] == [o["name"] for o in res.outputs]
    assert m.opset_import[0].version == 17 and m.ir_version == 8
    assert "BatchNormInference" not in res.target_ops["openvino"]["op_counts"]
    assert {Path(f["path"]).name for f in res.files} == {
        f"{name}.ncnn.param", f"{name}.ncnn.bin", f"{name}.onnx", f"{name}.xml", f"{name}.bin"}


def _relu_justified(param: Path) -> bool:
    """True when no standalone ReLU reads a Convolution/InnerProduct output (those must be
    fused via ``activation_type``); a ReLU after a residual BinaryOp add is fine."""
    producers = {}
    lines = [ln.split() for ln in param.read_text().splitlines()[2:] if ln.strip()]
    for parts in lines:
        n_in, n_out = int(parts[2]), int(parts[3])
        for b in parts[4 + n_in:4 + n_in + n_out]:
            producers[b] = parts[0]
    for parts in lines:
        if parts[0] == "ReLU":
            src = producers.get(parts[4])
            if src in ("Convolution", "ConvolutionDepthWise", "InnerProduct", "Deconvolution"):
                return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_convert_verify_fp16(fixture_dir, tmp_path, name):
    fdir = _fixture(fixture_dir, name)
    opts = ConvertOptions(targets=("ncnn",), output_dir=tmp_path, fp16=True, verify=True)
    res = run(fdir / f"{name}.pt2", opts)
    assert res.verified is True
    for c in res.verification:
        assert c["max_abs"] <= 1e-2 * max(1.0, c["ref_max"])
    opts32 = ConvertOptions(targets=("ncnn",), output_dir=tmp_path / "fp32", verify=False)
    run(fdir / f"{name}.pt2", opts32)
    assert (tmp_path / f"{name}.ncnn.bin").stat().st_size < 0.6 * (
        tmp_path / "fp32" / f"{name}.ncnn.bin").stat().st_size


@pytest.mark.parametrize("name", ["resnet18", "shufflenet_v2", "yolo_small", "unet_small",
                                  "mobilenet_v3_small", "mtcnn_onet_pretrained"])
def test_layer_count_not_above_pnnx(fixture_dir, tmp_path, name):
    fdir = _fixture(fixture_dir, name)
    shapes = _shape_args(fdir, name)
    (shape,) = shapes.values()
    opts = ConvertOptions(targets=("ncnn",), output_dir=tmp_path, input_shapes=shapes,
                          verify=False)
    run(fdir / f"{name}.pt", opts)
    ours = len(_layers(tmp_path / f"{name}.ncnn.param"))
    pdir = tmp_path / "pnnx"
    pdir.mkdir()
    shutil.copy(fdir / f"{name}.pt", pdir)
    pnnx = shutil.which("pnnx") or str(Path(sys.executable).parent / "pnnx")
    subprocess.run([pnnx, f"{name}.pt", f"inputshape=[{','.join(map(str, shape))}]"],
                   cwd=pdir, capture_output=True, check=True, timeout=300)
    theirs = len(_layers(pdir / f"{name}.ncnn.param"))
    assert ours <= theirs, (ours, theirs)


def test_cli_byte_identical_and_report(fixture_dir, tmp_path):
    fdir = _fixture(fixture_dir, "mobilenet_v2")
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        proc = run_mconv("convert", str(fdir / "mobilenet_v2.pt2"), "--to", "ncnn", "-o",
                         str(out), "--report", str(out / "report.json"))
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        outs.append(out)
    for suffix in (".ncnn.param", ".ncnn.bin"):
        a = (outs[0] / f"mobilenet_v2{suffix}").read_bytes()
        b = (outs[1] / f"mobilenet_v2{suffix}").read_bytes()
        assert a == b
    rep = json.loads((outs[0] / "report.json").read_text())
    assert rep["exit_code"] == 0 and rep["verified"] is True
    assert rep["ops_before"].get("BatchNormalization", 0) > 0
    assert "BatchNormalization" not in rep["ops_after"]
    assert rep["rewrites"]["fold_batchnorm_conv"] > 0
    assert {f["path"].split("/")[-1] for f in rep["files"]} == {"mobilenet_v2.ncnn.param",
                                                                "mobilenet_v2.ncnn.bin"}
    assert all(len(f["sha256"]) == 64 for f in rep["files"])
    assert "verification" in proc.stdout and "wrote" in proc.stdout


def test_verification_failure_exit_4(fixture_dir, tmp_path):
    fdir = _fixture(fixture_dir, "resnet18")
    proc = run_mconv("convert", str(fdir / "resnet18.pt2"), "-o", str(tmp_path), "--fp16",
                     "--atol", "1e-9", "--report", str(tmp_path / "r.json"))
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["exit_code"] == 4 and rep["verified"] is False
