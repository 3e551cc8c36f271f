"""Helper of bench/tflite_vs_onnx2tf.py, run under a Python that has TensorFlow (not the
project's venv): build a Keras model equivalent to a fixture and convert it with
TensorFlow's own ``tf.lite.TFLiteConverter.from_keras_model``.

Equivalents: the MTCNN P/R/O-Nets layer for layer (Conv2D + PReLU(shared_axes=[1, 2]) +
MaxPool2D(padding="same" for torch's ceil_mode, exact for these sizes) + Softmax; R/O-Net
flatten after Permute((2, 1, 3)) like the torch models' ``permute(0, 3, 2, 1)``), and
``keras.applications`` ResNet50 / MobileNetV2 (same layer structure as the torchvision-style
fixtures; weights random, op counts and latency do not depend on them).

Usage (prints one JSON line ``{"name", "seconds", "path"}`` or ``{"name", "error"}``)::

    TF_PYTHON bench/tflite_keras_ref.py NAME OUT_DIR
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _mtcnn(keras, name: str):
    L = keras.layers
    prelu = dict(shared_axes=[1, 2])
    if name == "mtcnn_pnet":
        x = inp = keras.Input((48, 64, 3), batch_size=1)
        x = L.PReLU(**prelu)(L.Conv2D(10, 3)(x))
        x = L.MaxPool2D(2, 2, padding="same")(x)
        x = L.PReLU(**prelu)(L.Conv2D(16, 3)(x))
        x = L.PReLU(**prelu)(L.Conv2D(32, 3)(x))
        prob = L.Softmax(axis=-1)(L.Conv2D(2, 1)(x))
        return keras.Model(inp, [L.Conv2D(4, 1)(x), prob])
    size, convs, dense = ((24, [(28, 3, 3, 2), (48, 3, 3, 2), (64, 2, 0, 0)], 128)
                          if name == "mtcnn_rnet" else
                          (48, [(32, 3, 3, 2), (64, 3, 3, 2), (64, 3, 2, 2), (128, 2, 0, 0)],
                           256))
    x = inp = keras.Input((size, size, 3), batch_size=1)
    for c, k, pk, ps in convs:
        x = L.PReLU(**prelu)(L.Conv2D(c, k)(x))
        if pk:
            x = L.MaxPool2D(pk, ps, padding="same")(x)
    x = L.Flatten()(L.Permute((2, 1, 3))(x))
    x = L.PReLU()(L.Dense(dense)(x))
    outs = [L.Dense(4)(x)] + ([L.Dense(10)(x)] if name == "mtcnn_onet" else [])
    return keras.Model(inp, outs + [L.Softmax()(L.Dense(2)(x))])


def build(name: str):
    """The Keras model for fixture ``name`` (KeyError: no equivalent)."""
    import tensorflow as tf

    keras = tf.keras
    base = name.replace("_pretrained", "")
    if base.startswith("mtcnn_"):
        return _mtcnn(keras, base)
    apps = {"resnet50": keras.applications.ResNet50,
            "mobilenet_v2": keras.applications.MobileNetV2}
    return apps[name](weights=None, input_shape=(224, 224, 3))


def main() -> int:
    """Convert one fixture's Keras equivalent; print the JSON line."""
    name, out = sys.argv[1], Path(sys.argv[2])
    import tensorflow as tf

    try:
        t0 = time.perf_counter()
        model = build(name)
        data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        path = out / f"{name}_keras.tflite"
        path.write_bytes(data)
        print(json.dumps({"name": name, "seconds": time.perf_counter() - t0,
                          "path": str(path)}))
    except KeyError:
        print(json.dumps({"name": name, "error": "no Keras equivalent"}))
    except Exception as e:  # reported in the table, not fatal for the bench
        print(json.dumps({"name": name, "error": f"{type(e).__name__}: {e}"[:300]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
