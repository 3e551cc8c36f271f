"""Non-ONNX IR op of SSD detectors: ``DetectionOutput`` (Caffe SSD, weiliu89/caffe ssd branch
``src/caffe/layers/detection_output_layer.cpp``), and the canonical form its outputs are
compared in.

``DetectionOutput(loc, conf, priors)``:

* ``loc``: ``[1, P*4]`` box offsets per prior (share_location), ``conf``: ``[1, P*C]``
  per-prior class probabilities (already softmaxed), ``priors``: ``[1, 2, P*4]`` prior boxes
  (row 0, normalized corners) and their variances (row 1), a constant in practice (PriorBox
  folds at load time).
* attributes: ``num_classes``, ``background_label_id``, ``nms_threshold``, ``top_k`` (per
  class before NMS, -1 = all), ``keep_top_k`` (-1 = all), ``confidence_threshold``,
  ``code_type`` (1 CORNER, 2 CENTER_SIZE, 3 CORNER_SIZE), ``share_location``,
  ``variance_encoded_in_target``.
* output: ``[1, 1, N, 7]`` rows ``(image_id, label, score, xmin, ymin, xmax, ymax)``. N is
  data-dependent; the IR declares N = ``keep_top_k`` (the upper bound) and every runtime's
  output is brought to the same ``[K, 6]`` form by :func:`canonical_detections` before it is
  compared (OpenCV / Caffe: ``[1,1,N,7]``; OpenVINO: ``[1,1,K,7]`` ended by an image_id -1
  row; ncnn: ``[N,6]`` ``(label, score, x1, y1, x2, y2)``, Tencent/ncnn
  src/layer/detectionoutput.cpp).

Not an ONNX op: the ONNX and TFLite exporters have no lowering, so the pre-flight scan
reports it (exit 3) for those targets.
"""
from __future__ import annotations

import numpy as np

from .ir import Node
from .ops import REQUIRED, op

DETECTION_ATTRS = {"num_classes": REQUIRED, "background_label_id": 0, "nms_threshold": 0.3,
                   "top_k": -1, "keep_top_k": -1, "confidence_threshold": 0.0,
                   "code_type": 1, "share_location": 1, "variance_encoded_in_target": 0}


def num_priors(node: Node) -> int:
    """P, the number of prior boxes: the last dim of the priors input over 4."""
    return int(node.input(2).shape[-1]) // 4


def detection_rows(node: Node) -> int:
    """The declared row count N of the output: ``keep_top_k``, else ``top_k`` times the
    foreground classes, else every prior for every foreground class."""
    keep = int(node.attrs.get("keep_top_k", -1))
    if keep > 0:
        return keep
    per_class = int(node.attrs.get("top_k", -1))
    per_class = per_class if per_class > 0 else num_priors(node)
    return per_class * max(1, int(node.attrs["num_classes"]) - 1)


def _infer(node: Node) -> list:
    return [("float32", (1, 1, detection_rows(node), 7))]


#: IR ops that are not ONNX ops: the ONNX and TFLite exporters have no lowering for them.
NON_ONNX_OPS = ("DetectionOutput",)

op("DetectionOutput", inputs=(3, 3), attrs=DETECTION_ATTRS, infer=_infer)


def canonical_detections(arr: np.ndarray, rows: int) -> np.ndarray:
    """Detections of any runtime as a ``[rows, 6]`` float64 array, comparable elementwise.

    Input forms: ``[..., N, 7]`` (Caffe / OpenCV / OpenVINO: image_id first; rows from an
    image_id of -1 on are dropped, as OpenVINO ends its list with one) or ``[..., N, 6]``
    (ncnn, no image_id). Rows are sorted by score (descending), then label and box, and
    padded with zero rows to ``rows`` (extra rows are cut).
    """
    a = np.asarray(arr, dtype=np.float64)
    if a.size == 0:
        return np.zeros((rows, 6))
    width = a.shape[-1]
    a = a.reshape(-1, width)
    if width == 7:
        ends = np.nonzero(a[:, 0] < 0)[0]
        a = a[: ends[0]] if len(ends) else a
        a = a[:, 1:]
    a = a[a[:, 1] > 0] if len(a) else a
    order = np.lexsort(tuple(a[:, k] for k in (5, 4, 3, 2, 0)) + (-a[:, 1],))
    a = a[order][:rows]
    out = np.zeros((rows, 6))
    out[: len(a)] = a
    return out


def comparable(value, ref: np.ndarray, got: np.ndarray) -> tuple:
    """``(ref, got)`` ready for an elementwise comparison of graph output ``value``: both in
    :func:`canonical_detections` form when a DetectionOutput produces it (each runtime lays
    its detections out differently), else unchanged."""
    node = getattr(value, "producer", None)
    if node is None or node.op != "DetectionOutput":
        return ref, got
    rows = int(value.shape[2])
    return canonical_detections(ref, rows), canonical_detections(got, rows)
