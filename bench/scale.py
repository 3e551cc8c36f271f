"""Scale check: a synthetic wide MLP with more than 2 GB of float32 weights, built as ONNX
with external data (weights streamed to disk one matrix at a time), converted by mconv to
ONNX (external data again) and to ncnn in whole processes, with each run's wall time and peak
RSS relative to the weight size, and the outputs of both converted models compared with
onnxruntime on the source model on a seeded input. Every multi-GB file is deleted after.

Model: ``x[1, W] -> (MatMul W x W -> Relu) x L`` with He-scaled normal weights (seed 0),
default W = 8192, L = 9: 9 x 256 MiB = 2.25 GiB of weights.

External data layout (``TensorProto.data_location = EXTERNAL``, ``external_data`` keys
``location`` / ``offset`` / ``length``): onnx/onnx ``docs/ExternalData.md``.
"""
from __future__ import annotations

import gc
import shutil
from pathlib import Path

import numpy as np

import benchlib
from benchlib import PY, ROOT

WORK = ROOT / "bench" / "out" / "scale"


def build(path: Path, width: int, layers: int) -> int:
    """Write the MLP to ``path`` + ``path.data``; returns the weight bytes."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    inits, nodes, offset, x = [], [], 0, "x"
    data = path.with_name(path.name + ".data")
    with open(data, "wb") as f:
        for i in range(layers):
            w = rng.standard_normal((width, width), dtype=np.float32)
            w *= np.float32(np.sqrt(2.0 / width))
            w.tofile(f)
            t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[width, width],
                            data_location=TensorProto.EXTERNAL)
            for k, v in (("location", data.name), ("offset", str(offset)),
                         ("length", str(w.nbytes))):
                t.external_data.add(key=k, value=v)
            offset += w.nbytes
            inits.append(t)
            del w
            nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
                      helper.make_node("Relu", [f"m{i}"], [f"y{i}" if i < layers - 1 else "y"])]
            x = f"y{i}"
    graph = helper.make_graph(nodes, "wide_mlp", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, width])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))  # the initializers already point into the .data file
    return offset


def ort_output(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime CPU output of ``path`` on ``x`` (the session is freed after)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    del sess
    gc.collect()
    return y


def ncnn_output(param: Path, x: np.ndarray) -> np.ndarray:
    """ncnn (fp32) output of ``param`` on ``x``."""
    from evaluate import session

    run = session("ncnn", [param, param.with_suffix(".bin")], 2)
    y = np.asarray(run([x])[0]).reshape(x.shape[0], -1)
    del run
    gc.collect()
    return y


def convert(src: Path, target: str, weights: int, ref: np.ndarray, x: np.ndarray,
            timeout: float) -> dict:
    """One whole-process ``mconv convert`` of ``src`` to ``target``: seconds, peak RSS
    (bytes, and over the weight bytes), output bytes, max abs error against ``ref``."""
    out = WORK / target
    shutil.rmtree(out, ignore_errors=True)
    run = benchlib.run_child([PY, "-m", "converter", "convert", src, "--to", target, "-o", out,
                              "--no-verify"], timeout=timeout)
    row = {"seconds": round(run.seconds, 2), "peak_rss": run.peak_rss,
           "peak_rss_over_weights": round(run.peak_rss / weights, 2)}
    if run.error:
        return {**row, "error": run.error}
    files = sorted(p for p in out.iterdir() if p.is_file())
    row["files"] = {p.name: p.stat().st_size for p in files}
    try:
        if target == "onnx":
            y = ort_output(out / "wide_mlp.onnx", x)
        else:
            y = ncnn_output(out / "wide_mlp.ncnn.param", x)
        row["max_abs_err"] = float(np.abs(y - ref).max())
    except Exception as e:  # a converted model that does not load is the result
        row["check_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    shutil.rmtree(out, ignore_errors=True)
    return row


def run(width: int = 8192, layers: int = 9, timeout: float = 1800) -> dict:
    """The scale check's figures (``error`` when the disk is too small); files removed."""
    need = 4 * width * width * 4 * layers
    WORK.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(WORK).free
    res = {"model": f"MatMul+Relu x{layers}, width {width}", "free_disk": free}
    if free < need * 1.2:
        return {**res, "error": f"needs about {need / 2**30:.1f} GiB free disk, "
                                f"{free / 2**30:.1f} GiB free"}
    src = WORK / "wide_mlp.onnx"
    try:
        res["weights"] = build(src, width, layers)
        x = np.random.default_rng(0).standard_normal((1, width)).astype(np.float32)
        ref = ort_output(src, x)
        res["ref_max_abs"] = float(np.abs(ref).max())
        for target in ("onnx", "ncnn"):
            res[target] = convert(src, target, res["weights"], ref, x, timeout)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    return res
