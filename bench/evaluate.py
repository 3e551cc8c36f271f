"""Figures of a converted model: op counts (and TRANSPOSE count for TFLite), file size, max
abs error against the source framework's outputs, and inference latency in the target's
runtime on 1 and 2 threads, measured interleaved with the other tools' models.

Runtimes: ncnn (fp32 storage and arithmetic), onnxruntime (CPU provider), OpenVINO CPU
(``INFERENCE_PRECISION_HINT`` f32), LiteRT (``ai_edge_litert``, default XNNPACK delegate).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

import benchlib


def describe(target: str, files: list) -> dict:
    """``{"ops", "op_counts", "size"}`` (+ ``"transposes"`` for TFLite) of ``files``, op
    counts as mconv's own exporter counts them (exporters.<target>.describe)."""
    import exporters

    files = sorted((Path(f) for f in files), key=lambda f: f.suffix != ".param")  # ncnn: first
    d = exporters.get(target).describe(files)
    row = {"ops": d["ops"], "op_counts": d["op_counts"],
           "size": sum(Path(f).stat().st_size for f in files)}
    if target == "tflite":
        row["transposes"] = d["op_counts"].get("TRANSPOSE", 0)
    return row


def session(target: str, files: list, threads: int) -> Callable[[list], list]:
    """A function running ``files`` on a list of input arrays (source order) with
    ``threads`` threads, returning the output arrays."""
    return {"ncnn": _ncnn, "onnx": _ort, "openvino": _ov, "tflite": _litert}[target](
        [Path(f) for f in files], threads)


def _fit(x: np.ndarray, shape) -> np.ndarray:
    """``x`` in the runtime's layout: as is, NCHW -> NHWC, NHWC -> NCHW, or reshaped;
    symbolic / unknown dims of ``shape`` match anything."""
    dims = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in shape]

    def fits(s) -> bool:
        return len(s) == len(dims) and all(d is None or d == n for d, n in zip(dims, s))
    if fits(x.shape) or x.ndim != 4:
        if None in dims or fits(x.shape):
            return x
        return x.reshape(dims) if x.size == int(np.prod(dims)) else x
    for perm in ((0, 2, 3, 1), (0, 3, 1, 2)):
        if fits(tuple(x.shape[p] for p in perm)):
            return np.ascontiguousarray(x.transpose(perm))
    return x


def _ncnn(files: list, threads: int):
    import ncnn

    param = next(f for f in files if f.suffix == ".param")
    net = ncnn.Net()
    for k in ("use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed", "use_bf16_storage"):
        setattr(net.opt, k, False)
    net.opt.num_threads = threads
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))

    def run(inputs: list) -> list:
        ex = net.create_extractor()
        for name, x in zip(net.input_names(), inputs):
            # clone: ncnn.Mat(array) wraps the array's memory, which is temporary here
            ex.input(name, ncnn.Mat(np.ascontiguousarray(x[0] if x.shape[0] == 1 else x)
                                    ).clone())
        return [np.array(ex.extract(o)[1]) for o in net.output_names()]
    return run


def _ort(files: list, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    # idle pool threads must not spin: the interleaved other tool's model would lose the CPU
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = next(f for f in files if f.suffix == ".onnx")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    ins = sess.get_inputs()

    def run(inputs: list) -> list:
        return sess.run(None, {i.name: _fit(x, i.shape) for i, x in zip(ins, inputs)})
    return run


def _ov(files: list, threads: int):
    import openvino

    xml = next(f for f in files if f.suffix == ".xml")
    cm = openvino.Core().compile_model(str(xml), "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads})
    req = cm.create_infer_request()
    shapes = [i.get_partial_shape() for i in cm.inputs]

    def run(inputs: list) -> list:
        res = req.infer({k: _fit(x, s.to_shape()) if s.is_static else x
                         for k, (x, s) in enumerate(zip(inputs, shapes))})
        return [np.array(res[o]) for o in cm.outputs]
    return run


def _litert(files: list, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    path = next(f for f in files if f.suffix == ".tflite")
    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    ins, outs = it.get_input_details(), it.get_output_details()

    def run(inputs: list) -> list:
        for d, x in zip(ins, inputs):
            it.set_tensor(d["index"], _fit(x, d["shape"]).astype(d["dtype"]))
        it.invoke()
        return [it.get_tensor(d["index"]) for d in outs]
    return run


def max_abs_error(refs: list, outs: list) -> float:
    """Largest ``|out - ref|`` over all outputs. Outputs are matched to the references by
    size (names and order differ between tools), each in the layout that fits best: as is,
    NHWC -> NCHW, or reshaped (ncnn drops the batch dim); every tool is matched alike.
    Raises ValueError when a reference has no output of its size."""
    left, worst = list(range(len(outs))), 0.0
    for ref in refs:
        best = None
        for k in left:
            for got in _layouts(np.asarray(outs[k], np.float64), ref.shape):
                g, r = _detections(got, ref)
                err = float(np.abs(g - r).max()) if r.size else 0.0
                if best is None or err < best[0]:
                    best = (err, k)
        if best is None:
            raise ValueError(f"no output of shape {list(ref.shape)}")
        left.remove(best[1])
        worst = max(worst, best[0])
    return worst


def _layouts(got: np.ndarray, shape: tuple) -> list:
    if len(shape) == 4 and shape[-1] == 7 and got.shape[-1] in (6, 7):  # detections
        return [got]
    if got.size != int(np.prod(shape)):
        return []
    forms = [got.reshape(shape)]
    if got.ndim == 4 and len(shape) == 4 and got.transpose(0, 3, 1, 2).shape == shape:
        forms.append(got.transpose(0, 3, 1, 2))
    return forms


def _detections(got: np.ndarray, ref: np.ndarray) -> tuple:
    """SSD DetectionOutput rows ``[image_id, label, score, x1, y1, x2, y2]`` without the
    padding, which each runtime writes its own way (OpenCV: zero rows; OpenVINO: a row
    starting with -1; ncnn: only the kept rows, without image_id), sorted by all columns
    (rows of equal score come in any order). Other arrays pass."""
    if not (ref.ndim == 4 and ref.shape[-1] == 7 and got.shape[-1] in (6, 7)):
        return got, ref
    r = ref.reshape(-1, 7)
    g = got.reshape(-1, got.shape[-1])
    if g.shape[1] == 6:
        g = np.concatenate([np.zeros((len(g), 1)), g], axis=1)
    keep = lambda a: a[(a[:, 0] >= 0) & (a[:, 2] > 0)]  # noqa: E731
    r, g = keep(r), keep(g)
    if len(r) != len(g):
        return np.full(1, np.inf), np.zeros(1)  # a different number of detections
    order = lambda a: a[np.lexsort(np.round(a, 4).T[::-1])]  # noqa: E731  ties: any order
    return order(g), order(r)


def paired_latency(runs: dict, inputs: list, iters: int, warmup: int = 3) -> dict:
    """``{tool: [ms per iteration]}``: every tool's function runs once per round, rounds
    alternating the order, so machine drift hits all tools alike (ratios are taken per
    round by the caller)."""
    names = list(runs)
    times: dict = {n: [] for n in names}
    for i in range(warmup + iters):
        for n in (names if i % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            runs[n](inputs)
            if i >= warmup:
                times[n].append((time.perf_counter() - t0) * 1e3)
    return times


def evaluate(case, iters: int) -> None:
    """Fill ``case.results[tool]`` with describe(), max abs error and latency (ms, median,
    1 and 2 threads) for every tool whose conversion succeeded; a failure of one figure is
    recorded as ``<figure>_error``. Each model first runs once in a child process
    (:func:`probe`): one that crashes its runtime is recorded, not loaded here."""
    ok = [t for t in case.tools if case.results[t.name].get("error") is None]
    for t in ok:
        row = case.results[t.name]
        try:
            row.update(describe(case.target, t.files()))
        except Exception as e:  # a broken output file is that tool's result
            row["describe_error"] = _one_line(e)
    ok = [t for t in ok if probe(case, t)]
    for threads in (1, 2):
        fns = {}
        for t in ok:
            try:
                fns[t.name] = session(case.target, t.files(), threads)
            except Exception as e:
                case.results[t.name][f"load_error_{threads}t"] = _one_line(e)
        _errors(case, fns, threads)
        fns = {n: f for n, f in fns.items() if "run_error" not in case.results[n]}
        for n, ms in paired_latency(fns, case.inputs, iters).items():
            case.results[n][f"ms_{threads}t_runs"] = ms
            case.results[n][f"ms_{threads}t"] = benchlib.median(ms)


def _errors(case, fns: dict, threads: int) -> None:
    """Max abs error of each tool's outputs (computed on the 1-thread run); a model that
    does not run gets ``run_error`` (no latency), outputs that do not match the references'
    sizes ``compare_error``."""
    if threads != 1:
        return
    for n, fn in fns.items():
        try:
            outs = fn(case.inputs)
        except Exception as e:
            case.results[n]["run_error"] = _one_line(e)
            continue
        try:
            if case.refs is not None:
                case.results[n]["max_abs_err"] = max_abs_error(case.refs, outs)
        except Exception as e:
            case.results[n]["compare_error"] = _one_line(e)


def probe(case, tool) -> bool:
    """Run ``tool``'s model once on ``case.inputs`` in a child process (this file's
    ``__main__``); False (``run_error`` recorded) when that process dies or fails."""
    import tempfile

    with tempfile.TemporaryDirectory() as td:
        npz = Path(td) / "inputs.npz"
        np.savez(npz, *case.inputs)
        run = benchlib.run_child([benchlib.PY, __file__, case.target, npz, *tool.files()],
                                 timeout=600)
    if run.error:
        case.results[tool.name]["run_error"] = f"runtime: {run.error}"
    return run.error is None


def _one_line(e: Exception) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:200]


if __name__ == "__main__":  # probe(): TARGET INPUTS.npz FILE...
    import sys

    _data = np.load(sys.argv[2])
    session(sys.argv[1], sys.argv[3:], 1)([_data[k] for k in sorted(_data, key=lambda k: int(
        k.split("_")[1]))])
