"""Converters for convolution, batch norm and linear algebra ATen ops (NCHW).

torch semantics: pytorch/pytorch ``aten/src/ATen/native/native_functions.yaml`` (schemas),
``torch/nn/functional.py``. ONNX targets: onnx/onnx ``docs/Operators.md`` (Conv, ConvTranspose,
BatchNormalization, Gemm, MatMul).
"""
from __future__ import annotations

import numpy as np

from converter.registry import Check, converter

from .context import Ctx, SourceNode, as_list

FW = "pytorch"


def _same_pads(k, d):
    """torch ``padding='same'``: total d*(k-1), the odd extra on the end side."""
    tot = [di * (ki - 1) for ki, di in zip(k, d)]
    return [t // 2 for t in tot] + [t - t // 2 for t in tot]


def _conv(cx: Ctx, x, w, b, stride, padding, dilation, groups, transposed=False,
          output_padding=None):
    nsp = len(w.shape) - 2
    k = list(w.shape[2:])
    d = as_list(dilation, nsp)
    if isinstance(padding, str):
        pads = [0] * (2 * nsp) if padding == "valid" else _same_pads(k, d)
    else:
        p = as_list(padding, nsp)
        pads = p + p
    attrs = dict(kernel_shape=k, strides=as_list(stride, nsp), pads=pads, dilations=d,
                 group=int(groups))
    if transposed:
        op_ = as_list(output_padding or 0, nsp)
        if any(op_):
            attrs["output_padding"] = op_
        return cx.emit("ConvTranspose", x, w, b, **attrs)
    return cx.emit("Conv", x, w, b, **attrs)


_rank_ok = Check("input is 3-D or 4-D (conv1d / conv2d)", lambda n: len(n["input"].shape) in
                 (3, 4), "pytorch.conv_rank")
_const_w = Check("weight is a constant", lambda n: n["weight"].is_const, "pytorch.dynamic_weight")


@converter(FW, ("aten.conv1d", "aten.conv2d"), emits=("Conv",), checks=(_rank_ok, _const_w))
def conv(cx: Ctx, n: SourceNode):
    return _conv(cx, n["input"], n["weight"], n["bias"], n["stride"], n["padding"],
                 n["dilation"], n["groups"])


@converter(FW, ("aten.conv_transpose1d", "aten.conv_transpose2d"), emits=("ConvTranspose",),
           checks=(_rank_ok, _const_w))
def conv_transpose(cx: Ctx, n: SourceNode):
    return _conv(cx, n["input"], n["weight"], n["bias"], n["stride"], n["padding"],
                 n["dilation"], n["groups"], True, n["output_padding"])


@converter(FW, "aten._convolution_mode", emits=("Conv",), checks=(_rank_ok, _const_w))
def convolution_mode(cx: Ctx, n: SourceNode):
    return _conv(cx, n["input"], n["weight"], n["bias"], n["stride"], n["padding"],
                 n["dilation"], n["groups"])


@converter(FW, ("aten._convolution", "aten.convolution"), emits=("Conv", "ConvTranspose"),
           checks=(_rank_ok, _const_w))
def convolution(cx: Ctx, n: SourceNode):
    return _conv(cx, n["input"], n["weight"], n["bias"], n["stride"], n["padding"],
                 n["dilation"], n["groups"], bool(n["transposed"]), n["output_padding"])


def _bn(cx: Ctx, x, weight, bias, mean, var, eps):
    c = x.shape[1]
    w = weight if weight is not None else cx.const(np.ones(c, np.float32))
    b = bias if bias is not None else cx.const(np.zeros(c, np.float32))
    return cx.emit("BatchNormalization", x, w, b, mean, var, epsilon=float(eps))


_bn_stats = Check("running statistics are constants (eval mode)",
                  lambda n: n["running_mean"] is not None and n["running_mean"].is_const,
                  "pytorch.bn_training")


@converter(FW, "aten.batch_norm", emits=("BatchNormalization",), checks=(_bn_stats,))
def batch_norm(cx: Ctx, n: SourceNode):
    return _bn(cx, n["input"], n["weight"], n["bias"], n["running_mean"], n["running_var"],
               n["eps"])


@converter(FW, "aten._native_batch_norm_legit_no_training", emits=("BatchNormalization",),
           checks=(_bn_stats,))
def native_batch_norm(cx: Ctx, n: SourceNode):
    y = _bn(cx, n["input"], n["weight"], n["bias"], n["running_mean"], n["running_var"],
            n["eps"])
    return [y, None, None]


@converter(FW, "aten.linear", emits=("Gemm", "MatMul", "Add"))
def linear(cx: Ctx, n: SourceNode):
    x, w, b = n["input"], n["weight"], n["bias"]
    if len(x.shape) == 2:
        return cx.emit("Gemm", x, w, b, transB=1)
    wt = cx.const(np.ascontiguousarray(w.const.T)) if w.is_const else cx.emit(
        "Transpose", w, perm=[1, 0])
    y = cx.emit("MatMul", x, wt)
    return cx.emit("Add", y, b) if b is not None else y


@converter(FW, "aten.addmm", emits=("Gemm",))
def addmm(cx: Ctx, n: SourceNode):
    return cx.emit("Gemm", n["mat1"], n["mat2"], n["self"], alpha=float(n["alpha"]),
                   beta=float(n["beta"]))


@converter(FW, ("aten.matmul", "aten.mm", "aten.bmm"), emits=("MatMul",))
def matmul(cx: Ctx, n: SourceNode):
    a = n["self"] if n["self"] is not None else n["input"]
    return cx.emit("MatMul", a, n["other"] if n["other"] is not None else n["mat2"])
