"""ncnn lowering of the SSD op ``DetectionOutput`` (:mod:`converter.ops_detection`).

ncnn ``DetectionOutput`` (Tencent/ncnn src/layer/detectionoutput.cpp; param ids in
docs/developer-guide/operation-param-weight-table.md): ``0=num_class 1=nms_threshold
2=nms_top_k 3=keep_top_k 4=confidence_threshold 5..8=variances``; bottoms loc ``(P*4)``,
conf ``(P*C)`` and priors ``(2, P*4)`` (row 1 = variances, which then override 5..8). It
decodes CENTER_SIZE boxes with shared locations, skips class 0 (the background) and writes
``(N, 6)`` rows ``label, score, x1, y1, x2, y2`` with N data-dependent (no image_id column, no
padding): the verification compares it through
:func:`converter.ops_detection.canonical_detections`.
"""
from __future__ import annotations

from converter.ir import Node
from converter.registry import Check, lowering

from .checks import checks
from .context import LowerCtx


def _attr(name: str, default):
    return lambda n: n.attrs.get(name, default)


DETECTION_CHECKS = checks(
    Check("code_type is CENTER_SIZE (2)", lambda n: _attr("code_type", 1)(n) == 2,
          "ncnn.detection_code"),
    Check("share_location is true", lambda n: _attr("share_location", 1)(n) == 1,
          "ncnn.detection_share"),
    Check("background_label_id is 0", lambda n: _attr("background_label_id", 0)(n) == 0,
          "ncnn.detection_background"),
    Check("variance_encoded_in_target is false",
          lambda n: _attr("variance_encoded_in_target", 0)(n) == 0, "ncnn.detection_var"),
    Check("the priors are a constant [1, 2, P*4] (boxes and variances)",
          lambda n: n.inputs[2].is_const and tuple(n.inputs[2].shape)[:2] == (1, 2),
          "ncnn.detection_priors"),
    Check("the detections are only a graph output (no layer reads them)",
          lambda n: not n.outputs[0].uses, "ncnn.detection_consumer"))


@lowering("ncnn", "DetectionOutput", emits=("DetectionOutput", "MemoryData"),
          checks=DETECTION_CHECKS)
def lower_detection_output(node: Node, ctx: LowerCtx) -> None:
    """DetectionOutput -> ncnn ``DetectionOutput`` over the flat loc / conf blobs and the
    priors as ``MemoryData (2, P*4)``. The output blob keeps the IR's declared shape in the
    bookkeeping (so no Reshape is added after it); the check below keeps it a graph output
    that no layer reads, since its real shape ``(N, 6)`` differs."""
    loc, conf, priors = node.inputs
    p4 = int(priors.shape[-1])
    c = int(node.attrs["num_classes"])
    top_k = int(node.attrs.get("top_k", -1))
    params = {0: c, 1: float(node.attrs.get("nms_threshold", 0.3)),
              2: top_k if top_k > 0 else p4 // 4, 3: int(node.outputs[0].shape[2]),
              4: float(node.attrs.get("confidence_threshold", 0.0))}
    ins = [ctx.inp(loc, (p4,)), ctx.inp(conf, (p4 // 4 * c,)), ctx.inp(priors, (2, p4))]
    out = ctx.out(node.outputs[0])  # declared canonical; ncnn really writes (N, 6)
    ctx.emit("DetectionOutput", node.name, ins, [out], params)
