"""Converters for pooling ATen ops (NCHW / NCL).

torch semantics: ``torch/nn/modules/pooling.py`` (stride defaults to kernel_size;
adaptive pooling bins ``[floor(i*in/out), ceil((i+1)*in/out))``, which are equal windows
exactly when ``in % out == 0``). ONNX: MaxPool / AveragePool / GlobalAveragePool.
"""
from __future__ import annotations

from converter.registry import Check, converter

from .context import Ctx, SourceNode, as_list

FW = "pytorch"


def _pool_attrs(n: SourceNode, nsp: int) -> dict:
    k = as_list(n["kernel_size"], nsp)
    s = as_list(n["stride"], nsp) if n["stride"] else k
    p = as_list(n["padding"], nsp)
    return dict(kernel_shape=k, strides=s, pads=p + p, ceil_mode=int(bool(n["ceil_mode"])))


@converter(FW, ("aten.max_pool1d", "aten.max_pool2d", "aten.max_pool2d_with_indices"),
           emits=("MaxPool",))
def max_pool(cx: Ctx, n: SourceNode):
    x = n["self"]
    nsp = len(x.shape) - 2
    attrs = _pool_attrs(n, nsp)
    d = as_list(n["dilation"], nsp)
    if any(v != 1 for v in d):
        attrs["dilations"] = d
    y = cx.emit("MaxPool", x, **attrs)
    return [y, None] if n.op.endswith("with_indices") else y


@converter(FW, ("aten.avg_pool1d", "aten.avg_pool2d"), emits=("AveragePool",),
           checks=(Check("no divisor_override", lambda n: n["divisor_override"] is None,
                         "pytorch.divisor_override"),))
def avg_pool(cx: Ctx, n: SourceNode):
    x = n["self"]
    attrs = _pool_attrs(n, len(x.shape) - 2)
    attrs["count_include_pad"] = int(bool(n["count_include_pad"]))
    return cx.emit("AveragePool", x, **attrs)


def _exact(n: SourceNode) -> bool:
    x, out = n["self"], n["output_size"]
    sp = x.shape[2:]
    out = as_list(out, len(sp))
    return all(o is None or (s % o == 0) for s, o in zip(sp, out))


_divisible = Check("each input size is a multiple of the output size (global or exact-divisor "
                   "adaptive pooling)", _exact, "pytorch.adaptive_uneven")


def _adaptive(cx: Ctx, n: SourceNode, kind: str):
    x = n["self"]
    sp = list(x.shape[2:])
    out = [s if o is None else o for s, o in zip(sp, as_list(n["output_size"], len(sp)))]
    if all(o == 1 for o in out):
        return cx.emit(f"Global{kind}Pool", x)
    if out == sp:
        return x
    k = [s // o for s, o in zip(sp, out)]
    return cx.emit(f"{kind}Pool", x, kernel_shape=k, strides=k, pads=[0] * (2 * len(k)))


@converter(FW, ("aten.adaptive_avg_pool1d", "aten.adaptive_avg_pool2d",
                "aten._adaptive_avg_pool2d"), emits=("GlobalAveragePool", "AveragePool"),
           checks=(_divisible,))
def adaptive_avg_pool(cx: Ctx, n: SourceNode):
    return _adaptive(cx, n, "Average")


@converter(FW, ("aten.adaptive_max_pool1d", "aten.adaptive_max_pool2d"),
           emits=("GlobalMaxPool", "MaxPool"), checks=(_divisible,))
def adaptive_max_pool(cx: Ctx, n: SourceNode):
    return [_adaptive(cx, n, "Max"), None]
