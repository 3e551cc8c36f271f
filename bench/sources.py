"""The bench's source models and what runs on each: fixtures (PyTorch, Keras, Caffe), their
seeded inputs and source-framework reference outputs, and per target the mconv command and
the peers' commands (:class:`Tool`) on the same input file.

Pairs (issue 8): PyTorch -> ncnn: pnnx (TorchScript ``.pt``, like mconv here; ``fp16=0``:
pnnx stores float16 weights by default, mconv float32 unless ``--fp16``); PyTorch ->
ONNX: ``torch.onnx.export`` + onnxsim, + onnxslim; PyTorch / Keras -> OpenVINO:
``openvino.convert_model``; ONNX -> TFLite: onnx2tf, on the raw ``torch.onnx.export`` file of
the PyTorch fixture (the ONNX a user of that model has); Keras -> TFLite:
``tf.lite.TFLiteConverter``; Keras -> ONNX: tf2onnx; Caffe: mconv alone (no peer installs).
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

import benchlib
from benchlib import PY, ROOT

FIXTURE_DIR = ROOT / "fixtures" / "out"
WORK = ROOT / "bench" / "out"
PEER = ROOT / "bench" / "peer_convert.py"
CALIB = "calibration_image_sample_data_20x128x128x3_float32.npy"


@dataclass
class Tool:
    """One converter on one case: its command, where it writes, which files are the model,
    and ``error`` when it cannot run at all (not installed)."""

    name: str
    cmd: list
    out: Path
    patterns: tuple
    cwd: Path = ROOT
    env: Optional[dict] = None
    prepare: Optional[Callable[[Path], None]] = None
    error: Optional[str] = None

    def files(self) -> list:
        """The model files written (sorted by name), empty when none is."""
        return sorted(f for p in self.patterns for f in self.out.glob(p))

    def reset(self) -> None:
        """Empty the output folder before a run (stale files must not count)."""
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)
        if self.prepare:
            self.prepare(self.out)


@dataclass
class Case:
    """One fixture on one target: the source file, tools (``tools[0]`` is mconv), seeded
    inputs (source layout, in input order), the source framework's outputs, ``error`` when
    the source itself could not be made, and ``results`` (tool name -> figures, filled by
    bench/run.py and :func:`evaluate.evaluate`)."""

    fixture: str
    kind: str
    target: str
    source: Path
    tools: list
    inputs: list = field(default_factory=list)
    refs: Optional[list] = None
    error: Optional[str] = None
    results: dict = field(default_factory=dict)


def seeded(shapes: list) -> list:
    """Standard-normal float32 inputs from ``default_rng(0)``, one per shape (as mconv's
    verification draws them)."""
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def mconv(src: Path, target: str, out: Path, extra: tuple = ()) -> Tool:
    """``mconv convert SRC --to TARGET -o OUT --no-verify`` (peers do not verify either)."""
    return Tool("mconv", [PY, "-m", "converter", "convert", src, "--to", target, "-o", out,
                          "--no-verify", *extra], out, ("*",))


def peer(name: str, tool: str, src: Path, out_file: Path, patterns: tuple) -> Tool:
    """A peer run through bench/peer_convert.py in the project's venv."""
    return Tool(name, [PY, PEER, tool, src, out_file], out_file.parent, patterns)


# --- PyTorch -------------------------------------------------------------------------------

def torch_cases(name: str, targets: list) -> list:
    """The cases of PyTorch fixture ``name`` (built on demand by fixtures/build.py)."""
    from fixtures.build import build

    paths = build(name, FIXTURE_DIR)
    meta = json.loads(paths["json"].read_text())
    shapes = [tuple(s) for s in meta["inputs"].values()]
    inputs = seeded(shapes)
    refs = torch_refs(paths["pt2"], inputs)
    make = {"ncnn": _torch_ncnn, "onnx": _torch_onnx, "openvino": _torch_ov,
            "tflite": _onnx_tflite}
    cases = []
    for t in targets:
        case = make[t](name, paths, meta)
        case.inputs, case.refs = inputs, refs
        cases.append(case)
    return cases


def torch_refs(pt2: Path, inputs: list) -> list:
    """Outputs of the ``.pt2``'s module in PyTorch on ``inputs``."""
    import torch

    with torch.no_grad():
        out = torch.export.load(str(pt2)).module()(*[torch.from_numpy(x) for x in inputs])
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.numpy() for o in out]


def _torch_ncnn(name: str, paths: dict, meta: dict) -> Case:
    work = WORK / name / "ncnn"
    dims = [("x".join(map(str, s)), s) for s in meta["inputs"].values()]
    shape_args = [a for n, (d, _) in zip(meta["inputs"], dims) for a in ("--input-shape",
                                                                        f"{n}={d}")]
    pt = paths["pt"]
    exe = shutil.which("pnnx") or str(Path(PY).parent / "pnnx")
    shapes = ",".join("[" + ",".join(map(str, s)) + "]" for _, s in dims)
    pnnx = Tool("pnnx", [exe, pt.name, f"inputshape={shapes}", "fp16=0"], work / "pnnx",
                (f"{name}.ncnn.param", f"{name}.ncnn.bin"), cwd=work / "pnnx",
                prepare=lambda d: shutil.copy(pt, d / pt.name))
    if not Path(exe).exists():
        pnnx.error = "pnnx not installed (pip install -e '.[bench]')"
    return Case(name, "pytorch", "ncnn", pt,
                [mconv(pt, "ncnn", work / "mconv", tuple(shape_args)), pnnx])


def _torch_onnx(name: str, paths: dict, meta: dict) -> Case:
    work, pt2 = WORK / name / "onnx", paths["pt2"]
    peers = [peer(f"torch.onnx+{s}", f"torch_onnx_{s}", pt2, work / s / f"{name}.onnx",
                  ("*.onnx",)) for s in ("onnxsim", "onnxslim")]
    return Case(name, "pytorch", "onnx", pt2, [mconv(pt2, "onnx", work / "mconv"), *peers])


def _torch_ov(name: str, paths: dict, meta: dict) -> Case:
    work, pt2 = WORK / name / "openvino", paths["pt2"]
    ovc = peer("openvino.convert_model", "ovc", pt2, work / "ovc" / f"{name}.xml",
               ("*.xml", "*.bin"))
    return Case(name, "pytorch", "openvino", pt2, [mconv(pt2, "openvino", work / "mconv"), ovc])


def onnx_source(name: str, pt2: Path) -> tuple:
    """(path, error) of the raw ``torch.onnx.export`` file of fixture ``name``, made once
    (cached in bench/out/NAME/source/ while newer than the ``.pt2``)."""
    out = WORK / name / "source" / f"{name}.onnx"
    if out.exists() and out.stat().st_mtime > pt2.stat().st_mtime:
        return out, None
    out.parent.mkdir(parents=True, exist_ok=True)
    run = benchlib.run_child([PY, PEER, "torch_onnx", pt2, out])
    return (out, None) if run.error is None else (out, f"torch.onnx.export: {run.error}")


def _onnx_tflite(name: str, paths: dict, meta: dict) -> Case:
    work = WORK / name / "tflite"
    src, err = onnx_source(name, paths["pt2"])
    o2t = onnx2tf_tool(src, work / "onnx2tf")
    return Case(name, "onnx", "tflite", src, [mconv(src, "tflite", work / "mconv"), o2t],
                error=err)


def onnx2tf_tool(src: Path, out: Path) -> Tool:
    """The onnx2tf CLI from its own venv (bench/setup_peers.sh), float32 output. Offline
    workaround: onnx2tf downloads dummy calibration images for 4-D 3-channel inputs from
    GitHub unless the file is in its cwd, so a seeded random one is written there first."""
    py = benchlib.venv_python("onnx2tf", "MCONV_ONNX2TF_PYTHON")

    def prepare(d: Path) -> None:
        np.save(d / CALIB, np.random.default_rng(0).random((20, 128, 128, 3), np.float32))

    tool = Tool("onnx2tf", [py, "-m", "onnx2tf", "-i", src, "-o", "o2t"], out,
                (f"o2t/{src.stem}_float32.tflite",), cwd=out, prepare=prepare,
                env=benchlib.child_env(py.parent if py else None))
    if py is None:
        tool.error = "no onnx2tf venv: run bash bench/setup_peers.sh"
    return tool


# --- Keras ---------------------------------------------------------------------------------

def keras_cases(name: str, targets: list) -> list:
    """The cases of Keras fixture ``name`` (fixtures/keras_models.py builds the ``.keras``)."""
    from fixtures.keras_models import build_keras

    src = Path(build_keras(name, "keras", FIXTURE_DIR / "keras"))
    inputs, refs = keras_refs(src)
    peers = {"tflite": ("tflite_converter", "tf.lite.TFLiteConverter", ".tflite"),
             "onnx": ("tf2onnx", "tf2onnx", ".onnx"), "openvino": ("ovc",
                                                                   "openvino.convert_model",
                                                                   ".xml")}
    cases = []
    for t in (t for t in targets if t in peers):
        tool, label, suffix = peers[t]
        work = WORK / f"keras_{name}" / t
        pt = peer(label, tool, src, work / "peer" / f"{name}{suffix}",
                  (f"*{suffix}", "*.bin") if suffix == ".xml" else (f"*{suffix}",))
        cases.append(Case(name, "keras", t, src, [mconv(src, t, work / "mconv"), pt],
                          inputs, refs))
    return cases


def keras_refs(src: Path) -> tuple:
    """(seeded inputs, outputs) of the Keras model in Keras (batch dims of 1)."""
    import keras

    model = keras.models.load_model(str(src), compile=False)
    shapes = [tuple(d or 1 for d in i.shape) for i in model.inputs]
    inputs = seeded(shapes)
    out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return inputs, [np.asarray(o) for o in out]


# --- Caffe ---------------------------------------------------------------------------------

def caffe_cases(name: str, targets: list) -> list:
    """mconv alone on Caffe fixture ``name`` (no peer installs here); reference: OpenCV's
    ``cv2.dnn.readNetFromCaffe`` when the input shape can be read from the prototxt."""
    from fixtures.caffe_models import build_caffe

    proto, weights = (Path(p) for p in build_caffe(name, FIXTURE_DIR / "caffe"))
    inputs, refs = caffe_refs(proto, weights)
    return [Case(name, "caffe", t, proto,
                 [mconv(proto, t, WORK / f"caffe_{name}" / t / "mconv",
                        ("--weights", weights))], inputs, refs)
            for t in targets if t in ("ncnn", "onnx", "openvino")]


def caffe_refs(proto: Path, weights: Path) -> tuple:
    """(inputs, cv2.dnn outputs), or ([], None) when the prototxt's input shape (the first
    four ``dim`` / ``input_dim`` numbers) cannot be read."""
    dims = [int(d) for d in re.findall(r"\b(?:input_)?dim:\s*(\d+)", proto.read_text())[:4]]
    if len(dims) != 4:
        return [], None
    import cv2

    net = cv2.dnn.readNetFromCaffe(str(proto), str(weights))
    inputs = seeded([tuple(dims)])
    net.setInput(inputs[0])
    outs = net.forward(net.getUnconnectedOutLayersNames())
    return inputs, [np.asarray(o) for o in outs]
