"""One peer conversion in its own process, the way a user of that tool would write it
(bench/run.py times this whole process, imports included, like ``mconv convert``).

Usage::

    python bench/peer_convert.py TOOL SRC OUT

TOOL is one of:

* ``torch_onnx`` / ``torch_onnx_onnxsim`` / ``torch_onnx_onnxslim``: ``torch.onnx.export`` of
  the ``.pt2``'s module (torch's default exporter and opset) on seeded example inputs of the
  shapes in ``SRC``'s ``.json`` beside it, raw or then ``onnxsim.simplify`` /
  ``onnxslim.slim``; OUT is the ``.onnx``, saved as one file (torch writes its weights as
  external data);
* ``ovc``: ``openvino.convert_model`` of the loaded ``.pt2`` ExportedProgram or ``.keras``
  model, ``openvino.save_model(..., compress_to_fp16=False)`` to OUT (``.xml``);
* ``tflite_converter``: ``tf.lite.TFLiteConverter.from_keras_model`` of a ``.keras`` model;
* ``tf2onnx``: ``tf2onnx.convert.from_keras`` of a ``.keras`` model (its default opset).

Exit 1 with the exception on the last line when the tool fails.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path


def _torch_module(pt2: Path):
    """(module, example inputs, input names, output names) of a fixture ``.pt2``."""
    import torch

    meta = json.loads(pt2.with_suffix(".json").read_text())
    torch.manual_seed(0)
    example = tuple(torch.randn(*s) for s in meta["inputs"].values())
    return (torch.export.load(str(pt2)).module(), example, list(meta["inputs"]),
            list(meta["outputs"]))


def torch_onnx(src: Path, out: Path, simplifier: str = "") -> None:
    """``torch.onnx.export`` (then ``simplifier``: "", "onnxsim" or "onnxslim") to ``out``."""
    import onnx
    import torch

    module, example, ins, outs = _torch_module(src)
    raw = out.with_name(out.stem + ".raw.onnx")
    with torch.no_grad():
        torch.onnx.export(module, example, str(raw), input_names=ins, output_names=outs)
    model = onnx.load(str(raw))
    if simplifier == "onnxsim":
        import onnxsim

        model, ok = onnxsim.simplify(model)
        if not ok:
            raise RuntimeError("onnxsim: the simplified model failed its check")
    elif simplifier == "onnxslim":
        import onnxslim

        model = onnxslim.slim(model)
    onnx.save(model, str(out))
    for f in out.parent.glob(raw.name + "*"):
        f.unlink()


def _keras(src: Path):
    import keras

    return keras.models.load_model(str(src), compile=False)


def ovc(src: Path, out: Path) -> None:
    """``openvino.convert_model`` of a ``.pt2`` or ``.keras`` model, saved uncompressed."""
    import openvino

    if src.suffix == ".pt2":
        import torch

        model = openvino.convert_model(torch.export.load(str(src)))
    else:
        model = openvino.convert_model(_keras(src))
    openvino.save_model(model, str(out), compress_to_fp16=False)


def tflite_converter(src: Path, out: Path) -> None:
    """TensorFlow's own Keras -> TFLite converter (float32, default options)."""
    import tensorflow as tf

    out.write_bytes(tf.lite.TFLiteConverter.from_keras_model(_keras(src)).convert())


def tf2onnx(src: Path, out: Path) -> None:
    """``tf2onnx.convert.from_keras`` with the model's own input signature."""
    import tensorflow as tf
    import tf2onnx as t2o

    model = _keras(src)
    spec = tuple(tf.TensorSpec(i.shape, i.dtype, name=i.name.split(":")[0])
                 for i in model.inputs)
    t2o.convert.from_keras(model, input_signature=spec, output_path=str(out))


TOOLS = {"torch_onnx": torch_onnx,
         "torch_onnx_onnxsim": lambda s, o: torch_onnx(s, o, "onnxsim"),
         "torch_onnx_onnxslim": lambda s, o: torch_onnx(s, o, "onnxslim"),
         "ovc": ovc, "tflite_converter": tflite_converter, "tf2onnx": tf2onnx}


def main(argv: list) -> int:
    """Run one tool; the exception's one line goes to stderr as the last line (exit 1)."""
    tool, src, out = argv
    warnings.simplefilter("ignore")
    try:
        TOOLS[tool](Path(src), Path(out))
    except Exception as e:  # reported by bench/run.py as this peer's result
        msg = str(e).strip().splitlines()
        print(f"\nError: {type(e).__name__}: {msg[0] if msg else ''}"[:300], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
