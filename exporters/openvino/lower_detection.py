"""OpenVINO lowering of the SSD op ``DetectionOutput`` (:mod:`converter.ops_detection`).

DetectionOutput-8 (OpenVINO opset8 spec ``DetectionOutput_8``): inputs box_logits
``[N, P*4]``, class_preds ``[N, P*C]``, proposals ``[N, 2, P*4]`` (boxes, then variances);
attributes as Caffe's, ``code_type`` spelled ``caffe.PriorBoxParameter.<TYPE>``, ``keep_top_k``
a list, ``normalized`` true (Caffe priors are normalized). Output ``[1, 1, N*keep_top_k, 7]``
rows ``image_id, label, conf, x_min, y_min, x_max, y_max``, the list ended by a row whose
image_id is -1; compared through :func:`converter.ops_detection.canonical_detections`.
"""
from __future__ import annotations

from converter.ir import Node
from converter.registry import Check, lowering

from .checks import checks
from .context import LowerCtx

CODE_TYPES = {1: "caffe.PriorBoxParameter.CORNER", 2: "caffe.PriorBoxParameter.CENTER_SIZE"}


def _attrs(node: Node) -> dict:
    a = node.attrs
    return {"background_label_id": int(a.get("background_label_id", 0)),
            "top_k": int(a.get("top_k", -1)),
            "variance_encoded_in_target": bool(a.get("variance_encoded_in_target", 0)),
            "keep_top_k": [int(a.get("keep_top_k", -1))],
            "code_type": CODE_TYPES[int(a.get("code_type", 1))],
            "share_location": bool(a.get("share_location", 1)),
            "nms_threshold": float(a.get("nms_threshold", 0.3)),
            "confidence_threshold": float(a.get("confidence_threshold", 0.0)),
            "clip_after_nms": False, "clip_before_nms": False, "decrease_label_id": False,
            "normalized": True}


@lowering("openvino", "DetectionOutput", emits=("DetectionOutput",), checks=checks(
        Check("code_type is CORNER or CENTER_SIZE",
              lambda n: int(n.attrs.get("code_type", 1)) in CODE_TYPES,
              "openvino.detection_code")))
def lower_detection_output(node: Node, ctx: LowerCtx) -> None:
    """DetectionOutput -> DetectionOutput-8 (batch 1)."""
    y = ctx.ops.detection_output(ctx.input(node, 0), ctx.input(node, 1), ctx.input(node, 2),
                                 _attrs(node), name=ctx.name(node.name))
    ctx.bind_node(node, y)
