"""The CLI contract on bad input: documented exit code, one-line message naming the file,
no traceback, nothing written."""
from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT, assert_clean_failure, run_mconv

import torch




class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.relu(self.conv(x))


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    m = Tiny().eval()
    x = torch.randn(1, 3, 8, 8)
    torch.jit.save(torch.jit.trace(m, x), d / "tiny.pt")
    torch.export.save(torch.export.export(m, (x,)), d / "tiny.pt2")
    return d


def test_empty_file(tmp_path, out_dir):
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    assert_clean_failure(run_mconv("convert", str(p), "-o", str(out_dir)), 5, out_dir,
                          "empty.pt", "empty")


def test_random_bytes(tmp_path, out_dir):
    p = tmp_path / "noise.pt2"
    p.write_bytes(bytes(range(256)) * 40)
    assert_clean_failure(run_mconv("convert", str(p), "-o", str(out_dir)), 5, out_dir,
                          "noise.pt2")


@pytest.mark.parametrize("name", ["tiny.pt", "tiny.pt2"])
def test_truncated(tiny_pt, tmp_path, out_dir, name):
    data = (tiny_pt / name).read_bytes()
    p = tmp_path / name
    p.write_bytes(data[: len(data) // 2])
    assert_clean_failure(run_mconv("convert", str(p), "-o", str(out_dir),
                                    "--input-shape", "x=1x3x8x8"), 5, out_dir, name)


def test_pickled_module_refused_without_unpickling(tmp_path, out_dir):
    marker = tmp_path / "pwned"
    p = tmp_path / "model.pt"
    torch.save(Tiny(), p)
    proc = run_mconv("convert", str(p), "-o", str(out_dir))
    assert_clean_failure(proc, 5, out_dir, "model.pt", "torch.jit.save", "torch.export.save")
    assert "Tiny" in proc.stderr
    # a legacy (non-zip) pickle whose unpickling would create a file: never executed
    evil = tmp_path / "evil.pth"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil.write_bytes(pickle.dumps(Boom(), protocol=2))
    assert_clean_failure(run_mconv("convert", str(evil), "-o", str(out_dir)), 5, out_dir,
                          "evil.pth")
    assert not marker.exists()


def test_state_dict_refused(tmp_path, out_dir):
    p = tmp_path / "weights.pth"
    torch.save(Tiny().state_dict(), p)
    assert_clean_failure(run_mconv("convert", str(p), "-o", str(out_dir)), 5, out_dir,
                          "weights.pth", "state dict")


def test_not_a_zip_member_layout(tmp_path, out_dir):
    p = tmp_path / "other.pt"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("hello.txt", "hi")
    assert_clean_failure(run_mconv("convert", str(p), "-o", str(out_dir)), 5, out_dir,
                          "other.pt")


def test_missing_input_shape(tiny_pt, out_dir):
    proc = run_mconv("convert", str(tiny_pt / "tiny.pt"), "-o", str(out_dir))
    assert_clean_failure(proc, 2, out_dir, "--input-shape")


def test_bad_flag_and_missing_file(tmp_path):
    proc = run_mconv("convert", str(tmp_path / "nope.pt"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run_mconv("convert", "--input-shape", "x=1xfoo", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_unknown_suffix(tmp_path, out_dir):
    p = tmp_path / "model.xyz"
    p.write_bytes(b"abc")
    assert_clean_failure(run_mconv("convert", str(p), "-o", str(out_dir)), 2, out_dir,
                          "model.xyz")


def test_unsupported_ops_listed_nothing_written(tmp_path, out_dir):
    class Bad(torch.nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 1) + torch.flip(x, [2]) + torch.cumsum(x, 3)

    p = tmp_path / "bad.pt2"
    torch.export.save(torch.export.export(Bad(), (torch.randn(1, 3, 4, 4),)), p)
    proc = run_mconv("convert", str(p), "-o", str(out_dir))
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "aten.cumsum x2" in proc.stderr and "aten.flip x1" in proc.stderr
    assert not any(out_dir.iterdir())


def test_help_does_not_import_torch():
    code = ("import sys; from converter.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "heavy = [m for m in ('torch', 'tensorflow', 'ncnn', 'onnxruntime') "
            "if m in sys.modules]\nassert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "convert" in proc.stdout
