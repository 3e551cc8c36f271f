"""Converters for upsampling, padding and reductions.

Upsampling facts (shared/docs/formats/onnx.md rule 4): torch ``nearest`` == ONNX Resize
``coordinate_transformation_mode="asymmetric"`` + ``nearest_mode="floor"``; torch bilinear
``align_corners=False`` == ``pytorch_half_pixel`` (== ``half_pixel`` when the output size is
> 1), ``align_corners=True`` == ``align_corners``. The output size is computed with torch's
rule ``floor(in * scale)`` and written as Resize ``sizes``. For non-integer scale factors
torch maps coordinates with the given factor, not out/in; the check restricts scales to
values where the two agree (out == in * scale exactly).
Pad: torch's ``pad`` list is last-dim-first pairs; ONNX wants all begins then all ends.
"""
from __future__ import annotations

import math

from converter.ir import Value
from converter.registry import Check, converter

from .context import Ctx, SourceNode, as_list

FW = "pytorch"


def _out_size(n: SourceNode, nsp: int) -> list:
    x = n["input"] if n["input"] is not None else n["self"]
    sp = list(x.shape[2:])
    if n["output_size"] is not None:
        return [int(s) for s in as_list(n["output_size"], nsp)]
    scales = n["scale_factors"]
    if scales is None:
        scales = [n[k] for k in ("scales_h", "scales_w", "scales") if n[k] is not None] or None
    scales = as_list(scales, nsp)
    return [int(math.floor(s * float(f))) for s, f in zip(sp, scales)]


def _exact_scale(n: SourceNode) -> bool:
    x = n["input"] if n["input"] is not None else n["self"]
    sp = list(x.shape[2:])
    out = _out_size(n, len(sp))
    if n["output_size"] is not None:
        return True
    scales = n["scale_factors"] or [n[k] for k in ("scales_h", "scales_w", "scales")
                                    if n[k] is not None]
    return all(abs(o - s * float(f)) < 1e-6 for o, s, f in zip(out, sp, as_list(scales,
                                                                                   len(sp))))


_exact = Check("output size equals input size x scale factor exactly", _exact_scale,
               "pytorch.resize_fractional")


def _resize(cx: Ctx, n: SourceNode, **attrs):
    x = n["input"] if n["input"] is not None else n["self"]
    sizes = list(x.shape[:2]) + _out_size(n, len(x.shape) - 2)
    return cx.emit("Resize", x, None, None, cx.i64(sizes), **attrs)


@converter(FW, ("aten.upsample_nearest1d", "aten.upsample_nearest2d"), emits=("Resize",),
           checks=(_exact,))
def upsample_nearest(cx: Ctx, n: SourceNode):
    return _resize(cx, n, mode="nearest", coordinate_transformation_mode="asymmetric",
                   nearest_mode="floor")


@converter(FW, ("aten.upsample_bilinear2d", "aten.upsample_linear1d"), emits=("Resize",),
           checks=(_exact,))
def upsample_bilinear(cx: Ctx, n: SourceNode):
    mode = "align_corners" if n["align_corners"] else "pytorch_half_pixel"
    return _resize(cx, n, mode="linear", coordinate_transformation_mode=mode)


def _pad(cx: Ctx, x: Value, pad: list, mode: str, value=None):
    r = len(x.shape)
    begins, ends = [0] * r, [0] * r
    for i in range(len(pad) // 2):
        ax = r - 1 - i
        begins[ax], ends[ax] = int(pad[2 * i]), int(pad[2 * i + 1])
    if not any(begins) and not any(ends):
        return x
    cv = cx.const(float(value or 0.0), x.dtype) if mode == "constant" else None
    return cx.emit("Pad", x, cx.i64(begins + ends), cv, mode=mode)


_modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


@converter(FW, "aten.pad", emits=("Pad",),
           checks=(Check("mode is constant, reflect or replicate",
                         lambda n: n["mode"] in _modes, "pytorch.pad_mode"),))
def pad(cx: Ctx, n: SourceNode):
    return _pad(cx, n["self"], n["pad"], _modes[n["mode"]], n["value"])


@converter(FW, "aten.constant_pad_nd", emits=("Pad",))
def constant_pad(cx: Ctx, n: SourceNode):
    return _pad(cx, n["self"], n["pad"], "constant", n["value"])


@converter(FW, ("aten.reflection_pad1d", "aten.reflection_pad2d"), emits=("Pad",))
def reflection_pad(cx: Ctx, n: SourceNode):
    return _pad(cx, n["self"], n["padding"], "reflect")


@converter(FW, ("aten.replication_pad1d", "aten.replication_pad2d"), emits=("Pad",))
def replication_pad(cx: Ctx, n: SourceNode):
    return _pad(cx, n["self"], n["padding"], "edge")


def _reduce(cx: Ctx, n: SourceNode, op: str):
    x = n["self"]
    r = len(x.shape)
    dims = n["dim"]
    dims = list(range(r)) if dims is None or dims == [] else (
        [dims] if isinstance(dims, int) else list(dims))
    axes = sorted(cx.axis(int(d), r) for d in dims)
    keep = bool(n["keepdim"])
    if op == "ReduceMean" and keep and r == 4 and axes == [2, 3]:
        return cx.emit("GlobalAveragePool", x)
    return cx.emit(op, x, cx.i64(axes), keepdims=int(keep))


@converter(FW, "aten.mean", emits=("ReduceMean", "GlobalAveragePool"))
def mean(cx: Ctx, n: SourceNode):
    return _reduce(cx, n, "ReduceMean")


@converter(FW, "aten.sum", emits=("ReduceSum",))
def sum_(cx: Ctx, n: SourceNode):
    return _reduce(cx, n, "ReduceSum")


@converter(FW, "aten.amax", emits=("ReduceMax",))
def amax(cx: Ctx, n: SourceNode):
    return _reduce(cx, n, "ReduceMax")
