"""ncnn lowerings of activations, unary math and softmax.

Layer params are from Tencent/ncnn ``src/layer/<layer>.cpp`` ``load_param`` (ids and defaults)
and ``docs/developer-guide/operators.md``. Activations keep the input blob's shape (they also
run on a compact 1-D blob). Fusion into the producing Convolution*/Deconvolution*/InnerProduct
(``9=activation_type``, src/layer/fused_activation.h): Relu 1, LeakyRelu 2 ``[slope]``,
Clip 3 ``[min,max]``, Sigmoid 4, Mish 5, HardSwish 6 ``[alpha,beta]``.
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node
from converter.registry import Check, lowering

from .checks import axis_of, checks, const_inputs, scalar_of
from .context import LowerCtx

FLT_MAX = float(np.finfo(np.float32).max)
TORCH_HARDSWISH = (1.0 / 6.0, 0.5)  # ONNX HardSwish == x * clip(x/6 + 1/2, 0, 1)


@lowering("ncnn", "Relu", emits=("ReLU",), checks=checks())
def lower_relu(node: Node, ctx: LowerCtx) -> None:
    """Relu -> fused type 1 or ``ReLU`` (src/layer/relu.cpp, 0=slope 0.0)."""
    if not ctx.try_fuse(node, 1):
        ctx.unary(node, "ReLU")


@lowering("ncnn", "LeakyRelu", emits=("ReLU",), checks=checks())
def lower_leaky_relu(node: Node, ctx: LowerCtx) -> None:
    """LeakyRelu(alpha) -> fused type 2 ``[alpha]`` or ``ReLU 0=alpha``."""
    alpha = float(node.attrs.get("alpha", 0.01))
    if not ctx.try_fuse(node, 2, [alpha]):
        ctx.unary(node, "ReLU", {0: alpha})


def _clip_bounds(node: Node) -> tuple:
    lo, hi = scalar_of(node, 1), scalar_of(node, 2)
    lo = -FLT_MAX if lo is None else max(lo, -FLT_MAX)
    hi = FLT_MAX if hi is None else min(hi, FLT_MAX)
    return lo, hi


@lowering("ncnn", "Clip", emits=("Clip", "ReLU"),
          checks=checks(const_inputs(1, 2, text="min and max are constant scalars"),
                        Check("min and max are scalars", lambda n: _clip_bounds(n) is not None,
                              "ncnn.attr")))
def lower_clip(node: Node, ctx: LowerCtx) -> None:
    """Clip(min, max) -> fused ReLU (min 0, no max) / fused type 3 ``[min,max]``, or a ``Clip``
    layer ``0=min 1=max`` (src/layer/clip.cpp; defaults -FLT_MAX / FLT_MAX)."""
    lo, hi = _clip_bounds(node)
    if lo == 0.0 and hi == FLT_MAX:
        if not ctx.try_fuse(node, 1):
            ctx.unary(node, "ReLU")
        return
    if not ctx.try_fuse(node, 3, [lo, hi]):
        ctx.unary(node, "Clip", {0: lo, 1: hi})


def _gate_pattern(node: Node, ctx: LowerCtx):
    """``Mul(x, g(x))`` where ``g`` is ``node``: returns the Mul node or None."""
    x, y = node.inputs[0], node.outputs[0]
    mul = ctx.sole_user(y)
    if x is None or x.is_const or mul is None or mul.op != "Mul":
        return None
    other = mul.inputs[1] if mul.inputs[0] is y else mul.inputs[0]
    return mul if other is x and mul.inputs[0] is not mul.inputs[1] else None


@lowering("ncnn", "Sigmoid", emits=("Sigmoid", "Swish"), checks=checks())
def lower_sigmoid(node: Node, ctx: LowerCtx) -> None:
    """Sigmoid -> ``Swish`` when it gates its own input (``x * sigmoid(x)``, the Mul is
    absorbed; src/layer/swish.cpp), else fused type 4, else ``Sigmoid``."""
    mul = _gate_pattern(node, ctx)
    if mul is not None:
        ctx.skip(mul)
        x = ctx.blob(node.inputs[0])
        ctx.emit("Swish", mul.name, [x], [ctx.out(mul.outputs[0], ctx.shape[x])])
        return
    if not ctx.try_fuse(node, 4):
        ctx.unary(node, "Sigmoid")


@lowering("ncnn", "HardSigmoid", emits=("HardSigmoid", "HardSwish"), checks=checks())
def lower_hard_sigmoid(node: Node, ctx: LowerCtx) -> None:
    """HardSigmoid(alpha, beta) -> ``HardSigmoid 0=alpha 1=beta`` (defaults 0.2/0.5,
    src/layer/hardsigmoid.cpp); ``x * hardsigmoid(x)`` -> HardSwish (fused type 6 when possible,
    src/layer/hardswish.cpp computes ``x * clip(alpha*x + beta, 0, 1)``)."""
    ab = [float(node.attrs.get("alpha", 0.2)), float(node.attrs.get("beta", 0.5))]
    mul = _gate_pattern(node, ctx)
    if mul is None:
        ctx.unary(node, "HardSigmoid", {0: ab[0], 1: ab[1]})
        return
    ctx.skip(mul)
    if not ctx.try_fuse(node, 6, ab, out=mul.outputs[0], users=(node, mul)):
        x = ctx.blob(node.inputs[0])
        ctx.emit("HardSwish", mul.name, [x], [ctx.out(mul.outputs[0], ctx.shape[x])],
                 {0: ab[0], 1: ab[1]})


@lowering("ncnn", "HardSwish", emits=("HardSwish",), checks=checks())
def lower_hard_swish(node: Node, ctx: LowerCtx) -> None:
    """HardSwish -> fused type 6 ``[1/6, 0.5]`` or ``HardSwish 0=1/6 1=0.5`` (ncnn defaults
    are 0.2/0.5, so the params are always written; shared/docs/formats/ncnn.md §3.3)."""
    a, b = TORCH_HARDSWISH
    if not ctx.try_fuse(node, 6, [a, b]):
        ctx.unary(node, "HardSwish", {0: a, 1: b})


@lowering("ncnn", "Mish", emits=("Mish",), checks=checks())
def lower_mish(node: Node, ctx: LowerCtx) -> None:
    """Mish -> fused type 5 or ``Mish`` (src/layer/mish.cpp)."""
    if not ctx.try_fuse(node, 5):
        ctx.unary(node, "Mish")


def _simple(op: str, layer: str, params_fn=None, doc: str = "") -> None:
    def fn(node: Node, ctx: LowerCtx) -> None:
        ctx.unary(node, layer, params_fn(node) if params_fn else None)
    fn.__name__ = f"lower_{op.lower()}"
    fn.__doc__ = doc or f"{op} -> ncnn ``{layer}`` (Tencent/ncnn src/layer/{layer.lower()}.cpp)."
    lowering("ncnn", op, emits=(layer,), checks=checks())(fn)


_simple("Tanh", "TanH")
_simple("Softplus", "Softplus")
_simple("Erf", "Erf")
_simple("Elu", "ELU", lambda n: {0: float(n.attrs.get("alpha", 1.0))},
        "Elu(alpha) -> ``ELU 0=alpha`` (ncnn default alpha is 0.1, so it is always written; "
        "src/layer/elu.cpp).")
_simple("Selu", "SELU", lambda n: {0: float(n.attrs.get("alpha", 1.6732632423543772)),
                                   1: float(n.attrs.get("gamma", 1.0507009873554805))},
        "Selu(alpha, gamma) -> ``SELU 0=alpha 1=lambda`` (src/layer/selu.cpp).")
_simple("Gelu", "GELU", lambda n: {0: 1} if n.attrs.get("approximate", "none") == "tanh" else {},
        "Gelu -> ``GELU``; ``0=1`` (fast_gelu) is the tanh approximation "
        "(src/layer/gelu.cpp).")

#: UnaryOp ``0=op_type`` (Tencent/ncnn src/layer/unaryop.h, ``Operation_*``)
UNARY_OPS = {"Abs": 0, "Neg": 1, "Floor": 2, "Ceil": 3, "Sqrt": 5, "Exp": 7, "Log": 8,
             "Reciprocal": 15}
for _op, _code in UNARY_OPS.items():
    _simple(_op, "UnaryOp", (lambda c: lambda n: {0: c})(_code),
            f"{_op} -> ``UnaryOp 0={_code}`` (src/layer/unaryop.h).")


def _prelu_slope(node: Node) -> np.ndarray:
    """The PRelu slope as a per-channel vector (or one value).

    Raises:
        ValueError: the slope broadcasts along another axis than the channel axis 1.
    """
    x, slope = node.inputs[0].shape, np.asarray(node.const_input(1), dtype=np.float32)
    if slope.size == 1:
        return slope.reshape(1)
    al = (1,) * (len(x) - slope.ndim) + slope.shape
    if len(x) < 2 or al[1] != x[1] or any(d != 1 for i, d in enumerate(al) if i != 1):
        raise ValueError(f"{node.name}: slope {slope.shape} is not per-channel")
    return slope.reshape(-1)


@lowering("ncnn", "PRelu", emits=("PReLU",),
          checks=checks(const_inputs(1, text="the slope is a constant"),
                        Check("the slope is one value or one per channel (axis 1)",
                              lambda n: _prelu_slope(n) is not None, "ncnn.broadcast")))
def lower_prelu(node: Node, ctx: LowerCtx) -> None:
    """PRelu -> ``PReLU 0=num_slope`` + raw slope (src/layer/prelu.cpp: per channel on 3-D/4-D,
    per row on 2-D, per element on 1-D blobs; all equal the IR channel axis)."""
    slope = _prelu_slope(node)
    layer = ctx.unary(node, "PReLU", {0: int(slope.size)})
    layer.weights.append((slope, False))


AXIS_CHECK = checks(Check("the axis is not the batch axis 0",
                          lambda n: axis_of(n, "axis", -1) != 0, "ncnn.batch_axis"))


@lowering("ncnn", "Softmax", emits=("Softmax",), checks=AXIS_CHECK)
def lower_softmax(node: Node, ctx: LowerCtx) -> None:
    """Softmax(axis) -> ``Softmax 0=axis-1 1=1`` (fixbug0 must be 1 or load fails;
    src/layer/softmax.cpp, shared/docs/formats/ncnn.md §3.1). Input: canonical blob."""
    ctx.emit("Softmax", node.name, [ctx.inp(node.inputs[0])], [ctx.out(node.outputs[0])],
             {0: axis_of(node, "axis", -1) - 1, 1: 1})


@lowering("ncnn", "LogSoftmax", emits=("Softmax", "UnaryOp"), checks=AXIS_CHECK)
def lower_log_softmax(node: Node, ctx: LowerCtx) -> None:
    """LogSoftmax -> ``Softmax`` then ``UnaryOp 0=8`` (log), as pnnx does
    (tools/pnnx/src/pass_ncnn/F_log_softmax.cpp)."""
    y = node.outputs[0]
    sm = ctx.new_blob(y.name + "_softmax", ctx.shape[ctx.inp(node.inputs[0])])
    ctx.emit("Softmax", node.name + "_softmax", [ctx.inp(node.inputs[0])], [sm],
             {0: axis_of(node, "axis", -1) - 1, 1: 1})
    ctx.emit("UnaryOp", node.name, [sm], [ctx.out(y)], {0: 8})
