"""The source model for verification: OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``,
opencv-python-headless 4.x; 5.0 removed it), run on the OpenCV backend and CPU target."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np


def source_runner(prototxt: Path, caffemodel: Path, input_blobs: dict,
                  output_layers: list) -> Callable:
    """``f(inputs) -> [arrays]``: feeds ``inputs`` (IR input name -> NCHW array) to the Caffe
    input blobs ``input_blobs`` (IR name -> blob name) and returns the outputs of
    ``output_layers`` ((layer name, top index) pairs, in graph output order).

    Raises (when called):
        RuntimeError: OpenCV is missing or cannot read / run the net.
    """
    def run(inputs: dict) -> list:
        try:
            import cv2
        except ImportError as e:
            raise RuntimeError("verifying a Caffe model needs OpenCV: pip install "
                               "'opencv-python-headless<5'") from e
        net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        for ir_name, arr in inputs.items():
            net.setInput(np.ascontiguousarray(arr, dtype=np.float32),
                         input_blobs.get(ir_name, ir_name))
        names = [name if k == 0 else f"{name}.{k}" for name, k in output_layers]
        outs = net.forward(names)
        return [np.array(o, dtype=np.float32, copy=True) for o in outs]

    return run
