"""Converters for activation and softmax ATen ops (elementwise, shape-preserving).

torch formulas: ``torch/nn/modules/activation.py`` docs (hardswish = x*relu6(x+3)/6,
hardsigmoid = relu6(x+3)/6, silu = x*sigmoid(x), mish = x*tanh(softplus(x))).
"""
from __future__ import annotations

import numpy as np

from converter.registry import Check, converter

from .context import Ctx, SourceNode

FW = "pytorch"


def _x(n: SourceNode):
    return n["self"] if n["self"] is not None else n["input"]


def _simple(src: str, ir: str):
    @converter(FW, src, emits=(ir,))
    def conv(cx: Ctx, n: SourceNode):
        return cx.emit(ir, _x(n))
    return conv


for _src, _ir in {"aten.relu": "Relu", "aten.sigmoid": "Sigmoid", "aten.tanh": "Tanh",
                  "aten.hardswish": "HardSwish", "aten.mish": "Mish", "aten.exp": "Exp",
                  "aten.log": "Log", "aten.sqrt": "Sqrt", "aten.neg": "Neg", "aten.abs": "Abs",
                  "aten.reciprocal": "Reciprocal", "aten.floor": "Floor", "aten.ceil": "Ceil",
                  "aten.erf": "Erf", "aten.selu": "Selu"}.items():
    _simple(_src, _ir)


def _clip(cx: Ctx, x, lo, hi):
    dt = x.dtype
    lo_v = cx.const(np.asarray(lo, dtype=dt)) if lo is not None else None
    hi_v = cx.const(np.asarray(hi, dtype=dt)) if hi is not None else None
    return cx.emit("Clip", x, lo_v, hi_v)


@converter(FW, "aten.relu6", emits=("Clip",))
def relu6(cx: Ctx, n: SourceNode):
    return _clip(cx, _x(n), 0.0, 6.0)


@converter(FW, "aten.hardtanh", emits=("Clip",))
def hardtanh(cx: Ctx, n: SourceNode):
    return _clip(cx, _x(n), float(n["min_val"]), float(n["max_val"]))


_scalar_bounds = Check("clamp bounds are numbers, not tensors",
                       lambda n: not any(hasattr(n[k], "producer") and not n[k].is_const
                                         for k in ("min", "max") if n[k] is not None),
                       "pytorch.clamp_tensor")


def _num(v):
    if v is None:
        return None
    return float(v.const) if hasattr(v, "const") else float(v)


@converter(FW, ("aten.clamp", "aten.clip"), emits=("Clip",), checks=(_scalar_bounds,))
def clamp(cx: Ctx, n: SourceNode):
    return _clip(cx, _x(n), _num(n["min"]), _num(n["max"]))


@converter(FW, "aten.clamp_min", emits=("Clip",))
def clamp_min(cx: Ctx, n: SourceNode):
    return _clip(cx, _x(n), _num(n["min"]), None)


@converter(FW, "aten.clamp_max", emits=("Clip",))
def clamp_max(cx: Ctx, n: SourceNode):
    return _clip(cx, _x(n), None, _num(n["max"]))


@converter(FW, "aten.leaky_relu", emits=("LeakyRelu",))
def leaky_relu(cx: Ctx, n: SourceNode):
    return cx.emit("LeakyRelu", _x(n), alpha=float(n["negative_slope"]))


@converter(FW, "aten.prelu", emits=("PRelu",),
           checks=(Check("slope is a constant", lambda n: n["weight"].is_const,
                         "pytorch.dynamic_weight"),))
def prelu(cx: Ctx, n: SourceNode):
    x, w = _x(n), n["weight"].const
    rank = len(x.shape)
    slope = w.reshape((-1,) + (1,) * (rank - 2)) if rank > 2 and w.size > 1 else w.reshape(-1)
    return cx.emit("PRelu", x, cx.const(np.ascontiguousarray(slope, dtype=x.dtype)))


@converter(FW, "aten.elu", emits=("Elu",),
           checks=(Check("scale and input_scale are 1", lambda n: float(n["scale"]) == 1.0 and
                         float(n["input_scale"]) == 1.0, "pytorch.elu_scale"),))
def elu(cx: Ctx, n: SourceNode):
    return cx.emit("Elu", _x(n), alpha=float(n["alpha"]))


@converter(FW, "aten.gelu", emits=("Gelu",))
def gelu(cx: Ctx, n: SourceNode):
    return cx.emit("Gelu", _x(n), approximate=str(n["approximate"] or "none"))


@converter(FW, "aten.silu", emits=("Sigmoid", "Mul"))
def silu(cx: Ctx, n: SourceNode):
    x = _x(n)
    return cx.emit("Mul", x, cx.emit("Sigmoid", x))


@converter(FW, "aten.hardsigmoid", emits=("HardSigmoid",))
def hardsigmoid(cx: Ctx, n: SourceNode):
    return cx.emit("HardSigmoid", _x(n), alpha=1.0 / 6.0, beta=0.5)


@converter(FW, "aten.softplus", emits=("Softplus",),
           checks=(Check("beta is 1 (threshold ignored: exact beyond it in fp32)",
                         lambda n: float(n["beta"]) == 1.0, "pytorch.softplus_beta"),))
def softplus(cx: Ctx, n: SourceNode):
    return cx.emit("Softplus", _x(n))


@converter(FW, ("aten.softmax", "aten._softmax"), emits=("Softmax",))
def softmax(cx: Ctx, n: SourceNode):
    return cx.emit("Softmax", _x(n), axis=int(n["dim"]))


@converter(FW, ("aten.log_softmax", "aten._log_softmax"), emits=("LogSoftmax",))
def log_softmax(cx: Ctx, n: SourceNode):
    return cx.emit("LogSoftmax", _x(n), axis=int(n["dim"]))


@converter(FW, ("aten.dropout", "aten.feature_dropout", "aten.alpha_dropout",
                "aten.feature_alpha_dropout"), emits=("Dropout",))
def dropout(cx: Ctx, n: SourceNode):
    return cx.emit("Dropout", _x(n))


@converter(FW, ("aten.clone", "aten.contiguous", "aten.detach", "aten.alias",
                "aten.lift_fresh_copy", "aten.identity", "aten.to", "aten.type_as",
                "aten.native_dropout"), emits=())
def alias(cx: Ctx, n: SourceNode):
    x = _x(n)
    return [x, None] if n.op == "aten.native_dropout" else x
