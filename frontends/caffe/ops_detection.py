"""SSD layers: Normalize, PriorBox, DetectionOutput (weiliu89/caffe ssd branch,
``src/caffe/layers/{normalize,prior_box,detection_output}_layer.cpp``).

* Normalize -> primitives every target has: ``x / sqrt(sum(x^2) + eps) * scale``, the sum over
  the channels (``across_spatial: false``) or over C, H, W; scale ``[C]`` or ``[1]``
  (``channel_shared``).
* PriorBox depends only on the shapes of its bottoms, so it is computed here and becomes a
  constant ``[1, 2, H*W*P*4]`` (row 0 the normalized corner boxes, row 1 their variances).
* DetectionOutput -> the IR op of :mod:`converter.ops_detection` (ncnn and OpenVINO have it;
  ONNX and TFLite report it unsupported).
"""
from __future__ import annotations

import math

import numpy as np

from converter.registry import Check, converter

from .context import Ctx
from .reader import CaffeLayer


@converter("caffe", "Normalize", emits=("Mul", "ReduceSum", "Add", "Sqrt", "Div"), checks=(
        Check("the input is 4-D", lambda lay: len(lay.x.shape) == 4, "caffe.rank"),))
def normalize(cx: Ctx, lay: CaffeLayer):
    """Normalize(across_spatial, channel_shared, eps) -> L2 normalization then the scale."""
    p = lay.param("norm_param")
    c = int(lay.x.shape[1])
    (scale,) = cx.blobs((1,) if p.channel_shared else (c,))
    sq = cx.emit("Mul", lay.x, lay.x, suffix="sq")
    axes = [1, 2, 3] if p.across_spatial else [1]
    total = cx.emit("ReduceSum", sq, cx.i64(axes), keepdims=1, suffix="sum")
    total = cx.emit("Add", total, cx.const(np.float32(p.eps), "eps"), suffix="eps")
    y = cx.emit("Div", lay.x, cx.emit("Sqrt", total, suffix="norm"), suffix="div")
    s = cx.const(scale.reshape(1), "scale") if p.channel_shared else \
        cx.channel_const(scale, 4, 1, "scale")
    return cx.emit("Mul", y, s)


def prior_ratios(p) -> list[float]:
    """Aspect ratios: 1, then each new ratio (and its inverse with ``flip``)."""
    ratios = [1.0]
    for ar in p.aspect_ratio:
        ar = float(ar)
        if ar <= 0:
            raise ValueError(f"aspect ratio {ar}")
        if any(abs(ar - r) < 1e-6 for r in ratios):
            continue
        ratios.append(ar)
        if p.flip:
            ratios.append(1.0 / ar)
    return ratios


def _prior_geometry(lay: CaffeLayer) -> tuple:
    p = lay.param("prior_box_param")
    fh, fw = int(lay.x.shape[2]), int(lay.x.shape[3])
    img = lay.inputs[1].shape
    ih = int(p.img_h or p.img_size or img[2])
    iw = int(p.img_w or p.img_size or img[3])
    sh = float(p.step_h or p.step or ih / fh)
    sw = float(p.step_w or p.step or iw / fw)
    if min(fh, fw, ih, iw) <= 0 or sh <= 0 or sw <= 0:
        raise ValueError("empty feature map, image or step")
    return p, fh, fw, ih, iw, sh, sw


def prior_sizes(p, ratios: list) -> list:
    """The (w, h) of the boxes around each center, in Caffe's order: per min_size, the min
    box, the sqrt(min * max) box, then one box per aspect ratio other than 1."""
    out = []
    maxs = [float(m) for m in p.max_size]
    for i, mn in enumerate(float(m) for m in p.min_size):
        out.append((mn, mn))
        if i < len(maxs):
            s = math.sqrt(mn * maxs[i])
            out.append((s, s))
        out += [(mn * math.sqrt(r), mn / math.sqrt(r)) for r in ratios if abs(r - 1) >= 1e-6]
    return out


def prior_boxes(lay: CaffeLayer) -> np.ndarray:
    """The PriorBox output ``[1, 2, fh*fw*P*4]`` for the current bottoms."""
    p, fh, fw, ih, iw, sh, sw = _prior_geometry(lay)
    if not len(p.min_size) or len(p.max_size) > len(p.min_size):
        raise ValueError("min_size is required (and at most one max_size per min_size)")
    ratios = prior_ratios(p)
    off = float(p.offset)
    ys, xs = np.meshgrid((np.arange(fh) + off) * sh, (np.arange(fw) + off) * sw, indexing="ij")
    sizes = np.asarray(prior_sizes(p, ratios), dtype=np.float64)  # [P, 2]
    cxs, cys = xs.reshape(-1, 1), ys.reshape(-1, 1)
    half_w, half_h = sizes[None, :, 0] / 2, sizes[None, :, 1] / 2
    boxes = np.stack([(cxs - half_w) / iw, (cys - half_h) / ih,
                      (cxs + half_w) / iw, (cys + half_h) / ih], axis=-1).reshape(-1)
    if p.clip:
        boxes = np.clip(boxes, 0.0, 1.0)
    var = [float(v) for v in p.variance] or [0.1]
    if len(var) not in (1, 4):
        raise ValueError(f"{len(var)} variances (1 or 4 expected)")
    variances = np.tile(np.asarray(var * (4 // len(var)), dtype=np.float64), boxes.size // 4)
    return np.stack([boxes, variances]).reshape(1, 2, -1).astype(np.float32)


@converter("caffe", "PriorBox", emits=(), checks=(
        Check("two 4-D bottoms (feature map, image)", lambda lay: len(lay.inputs) == 2 and
              len(lay.x.shape) == 4 and len(lay.inputs[1].shape) == 4, "caffe.priorbox"),))
def prior_box(cx: Ctx, lay: CaffeLayer):
    """PriorBox -> a constant (it reads only its bottoms' shapes)."""
    return cx.const(prior_boxes(lay), "priors")


_DO = "detection_output_param"


@converter("caffe", "DetectionOutput", emits=("DetectionOutput",), checks=(
        Check("three bottoms (loc, conf, priors)", lambda lay: len(lay.bottoms) == 3,
              "caffe.detection_inputs"),))
def detection_output(cx: Ctx, lay: CaffeLayer):
    """DetectionOutput -> the IR DetectionOutput (attributes as in the layer)."""
    p = lay.param(_DO)
    nms = p.nms_param
    if p.num_classes < 1:
        raise ValueError("num_classes must be >= 1")
    return cx.emit("DetectionOutput", *lay.inputs, num_classes=int(p.num_classes),
                   background_label_id=int(p.background_label_id),
                   nms_threshold=float(nms.nms_threshold),
                   top_k=int(nms.top_k) if nms.HasField("top_k") else -1,
                   keep_top_k=int(p.keep_top_k),
                   confidence_threshold=float(p.confidence_threshold),
                   code_type=int(p.code_type), share_location=int(p.share_location),
                   variance_encoded_in_target=int(p.variance_encoded_in_target))
