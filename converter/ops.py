"""The IR op set: ONNX ops (opset 18+ operand form) with dtype/shape inference and, where
constant folding needs it, a numpy evaluator.

Semantics and attribute defaults follow onnx/onnx ``docs/Operators.md``. Shapes are NCHW.
A shape dim is an int, a symbolic str or None; inference keeps unknown dims as None.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .ir import GraphError, Node

REQUIRED = object()


@dataclass(frozen=True)
class OpSchema:
    """Declaration of one IR op.

    ``inputs`` is (min, max) input count; ``outputs`` the output count (None: variadic, set by
    the node); ``attrs`` maps attribute name to its default (``REQUIRED`` when mandatory);
    ``infer(node) -> [(dtype, shape)]``; ``evaluate(node, arrays) -> [arrays]`` for folding.
    """

    name: str
    inputs: tuple
    outputs: Optional[int]
    attrs: dict = field(default_factory=dict)
    infer: Optional[Callable] = None
    evaluate: Optional[Callable] = None


SCHEMAS: dict[str, OpSchema] = {}


def op(name, inputs=(1, 1), outputs=1, attrs=None, infer=None, evaluate=None):
    SCHEMAS[name] = OpSchema(name, inputs, outputs, dict(attrs or {}), infer, evaluate)


def attr(node: Node, key: str):
    """Attribute value of ``node`` with the schema default applied."""
    if key in node.attrs:
        return node.attrs[key]
    d = SCHEMAS[node.op].attrs.get(key)
    return None if d is REQUIRED else d


# ------------------------------------------------------------------ inference helpers
def _in(node, i=0):
    v = node.input(i)
    return (v.dtype, v.shape) if v is not None else (None, None)


def same(node):
    return [_in(node)]


def bcast_shape(a, b):
    if a is None or b is None:
        return None
    r = max(len(a), len(b))
    a = (1,) * (r - len(a)) + tuple(a)
    b = (1,) * (r - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        elif x is None or y is None or isinstance(x, str) or isinstance(y, str):
            out.append(x if isinstance(x, int) else y)
        else:
            raise GraphError(f"cannot broadcast {a} and {b}")
    return tuple(out)


def binary(node):
    dt, a = _in(node, 0)
    return [(dt, bcast_shape(a, node.input(1).shape))]


def compare(node):
    return [("bool", binary(node)[0][1])]


def _norm_axis(axis, rank):
    return axis + rank if axis < 0 else axis


def _spatial(size, k, s, d, pb, pe, ceil=False):
    if not isinstance(size, int):
        return None
    eff = d * (k - 1) + 1
    num = size + pb + pe - eff
    out = (math.ceil(num / s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + pb:  # last window must start inside input+left pad
        out -= 1
    return out


def conv(node):
    dt, x = _in(node)
    w = node.input(1).shape
    if x is None or w is None:
        return [(dt, None)]
    nsp = len(x) - 2
    k = attr(node, "kernel_shape") or tuple(w[2:])
    s = attr(node, "strides") or (1,) * nsp
    d = attr(node, "dilations") or (1,) * nsp
    p = attr(node, "pads") or (0,) * (2 * nsp)
    sp = tuple(_spatial(x[2 + i], k[i], s[i], d[i], p[i], p[i + nsp]) for i in range(nsp))
    return [(dt, (x[0], w[0]) + sp)]


def conv_transpose(node):
    dt, x = _in(node)
    w = node.input(1).shape
    nsp = len(x) - 2
    k = attr(node, "kernel_shape") or tuple(w[2:])
    s = attr(node, "strides") or (1,) * nsp
    d = attr(node, "dilations") or (1,) * nsp
    p = attr(node, "pads") or (0,) * (2 * nsp)
    op_ = attr(node, "output_padding") or (0,) * nsp
    sp = tuple((x[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 + op_[i] - p[i] - p[i + nsp]
               if isinstance(x[2 + i], int) else None for i in range(nsp))
    return [(dt, (x[0], w[1] * attr(node, "group")) + sp)]


def pool(node):
    dt, x = _in(node)
    nsp = len(x) - 2
    k = attr(node, "kernel_shape")
    s = attr(node, "strides") or (1,) * nsp
    d = attr(node, "dilations") or (1,) * nsp
    p = attr(node, "pads") or (0,) * (2 * nsp)
    ceil = bool(attr(node, "ceil_mode"))
    sp = tuple(_spatial(x[2 + i], k[i], s[i], d[i], p[i], p[i + nsp], ceil) for i in range(nsp))
    return [(dt, tuple(x[:2]) + sp)]


def global_pool(node):
    dt, x = _in(node)
    return [(dt, tuple(x[:2]) + (1,) * (len(x) - 2))]


def gemm(node):
    dt, a = _in(node)
    b = node.input(1).shape
    m = a[1] if attr(node, "transA") else a[0]
    n = b[0] if attr(node, "transB") else b[1]
    return [(dt, (m, n))]


def matmul(node):
    dt, a = _in(node)
    b = node.input(1).shape
    if len(b) == 1:
        return [(dt, tuple(a[:-1]))]
    if len(a) == 1:
        return [(dt, tuple(b[:-2]) + (b[-1],))]
    batch = bcast_shape(a[:-2], b[:-2])
    return [(dt, tuple(batch) + (a[-2], b[-1]))]


def _prod(dims):
    out = 1
    for d in dims:
        if not isinstance(d, int):
            return None
        out *= d
    return out


def flatten(node):
    dt, x = _in(node)
    ax = _norm_axis(attr(node, "axis"), len(x))
    return [(dt, (_prod(x[:ax]), _prod(x[ax:])))]


def reshape_shape(x, target, allowzero=0):
    """Resolve an ONNX Reshape target (0 = copy, -1 = infer) against input shape ``x``."""
    t = [int(v) for v in target]
    out = [x[i] if (v == 0 and not allowzero) else v for i, v in enumerate(t)]
    if -1 in out:
        known = _prod([d for d in out if d != -1])
        total = _prod(x)
        out[out.index(-1)] = total // known if known and total is not None else None
    return tuple(out)


def reshape(node):
    dt, x = _in(node)
    return [(dt, reshape_shape(x, node.const_input(1), attr(node, "allowzero")))]


def transpose(node):
    dt, x = _in(node)
    perm = attr(node, "perm") or tuple(reversed(range(len(x))))
    return [(dt, tuple(x[p] for p in perm))]


def concat(node):
    dt, x = _in(node)
    ax = _norm_axis(attr(node, "axis"), len(x))
    dims = [v.shape[ax] for v in node.inputs]
    total = sum(dims) if all(isinstance(d, int) for d in dims) else None
    return [(dt, tuple(x[:ax]) + (total,) + tuple(x[ax + 1:]))]


def slice_params(node, shape):
    """Normalized (axes, starts, ends, steps) of a Slice node on ``shape``, clamped like ONNX."""
    starts = [int(v) for v in node.const_input(1)]
    ends = [int(v) for v in node.const_input(2)]
    axes = node.const_input(3)
    axes = [_norm_axis(int(a), len(shape)) for a in axes] if axes is not None else list(
        range(len(starts)))
    steps = node.const_input(4)
    steps = [int(s) for s in steps] if steps is not None else [1] * len(starts)
    out = []
    for a, s, e, st in zip(axes, starts, ends, steps):
        dim = shape[a]
        s, e, _ = slice(s, e, st).indices(dim)
        out.append((a, s, e, st))
    return out


def slice_infer(node):
    dt, x = _in(node)
    shape = list(x)
    for a, s, e, st in slice_params(node, x):
        shape[a] = len(range(s, e, st))
    return [(dt, tuple(shape))]


def split_sizes(node):
    """Sizes of each Split output along the split axis."""
    x = node.input(0).shape
    ax = _norm_axis(attr(node, "axis"), len(x))
    s = node.const_input(1)
    if s is not None:
        return [int(v) for v in s]
    n = len(node.outputs)
    chunk = -(-x[ax] // n)
    return [min(chunk, x[ax] - i * chunk) for i in range(n)]


def split(node):
    dt, x = _in(node)
    ax = _norm_axis(attr(node, "axis"), len(x))
    return [(dt, tuple(x[:ax]) + (s,) + tuple(x[ax + 1:])) for s in split_sizes(node)]


def squeeze(node):
    dt, x = _in(node)
    axes = node.const_input(1)
    axes = {_norm_axis(int(a), len(x)) for a in axes} if axes is not None else {
        i for i, d in enumerate(x) if d == 1}
    return [(dt, tuple(d for i, d in enumerate(x) if i not in axes))]


def unsqueeze(node):
    dt, x = _in(node)
    r = len(x) + len(node.const_input(1))
    axes = sorted(_norm_axis(int(a), r) for a in node.const_input(1))
    out, it = [], iter(x)
    for i in range(r):
        out.append(1 if i in axes else next(it))
    return [(dt, tuple(out))]


def reduce(node):
    dt, x = _in(node)
    axes = node.const_input(1)
    if axes is None or len(axes) == 0:
        axes = range(len(x)) if not attr(node, "noop_with_empty_axes") else []
    axes = {_norm_axis(int(a), len(x)) for a in axes}
    keep = attr(node, "keepdims")
    return [(dt, tuple((1 if i in axes else d) for i, d in enumerate(x) if keep or i not in axes))]


def resize(node):
    dt, x = _in(node)
    sizes = node.const_input(3)
    if sizes is not None:
        return [(dt, tuple(int(s) for s in sizes))]
    scales = node.const_input(2)
    return [(dt, tuple(int(math.floor(d * float(s))) for d, s in zip(x, scales)))]


def pad(node):
    dt, x = _in(node)
    p = [int(v) for v in node.const_input(1)]
    r = len(x)
    return [(dt, tuple(d + p[i] + p[i + r] for i, d in enumerate(x)))]


def gather(node):
    dt, x = _in(node)
    ax = _norm_axis(attr(node, "axis"), len(x))
    idx = node.input(1).shape
    return [(dt, tuple(x[:ax]) + tuple(idx) + tuple(x[ax + 1:]))]


def cast(node):
    return [(_ONNX_DT[attr(node, "to")], _in(node)[1])]


def dropout(node):
    dt, x = _in(node)
    return [(dt, x), ("bool", x)][: len(node.outputs)]


# ONNX TensorProto data type codes (onnx/onnx onnx/onnx.proto, TensorProto.DataType)
_ONNX_DT = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
            10: "float16", 11: "float64"}
ONNX_DTYPE_CODE = {v: k for k, v in _ONNX_DT.items()}


# ------------------------------------------------------------------ numpy evaluators
def _np_unary(f):
    return lambda node, a: [np.asarray(f(a[0])).astype(a[0].dtype)]


def _np_binary(f):
    return lambda node, a: [np.asarray(f(a[0], a[1])).astype(np.result_type(a[0], a[1]))]


def _np_reshape(node, a):
    return [a[0].reshape(reshape_shape(a[0].shape, a[1], attr(node, "allowzero")))]


def _np_slice(node, a):
    idx = [slice(None)] * a[0].ndim
    for ax, s, e, st in slice_params(node, a[0].shape):
        idx[ax] = slice(s, e if e >= 0 else None, st)
    return [a[0][tuple(idx)]]


def _np_split(node, a):
    ax = attr(node, "axis")
    cuts = np.cumsum(split_sizes(node))[:-1]
    return np.split(a[0], cuts, axis=ax)


def _np_reduce(f):
    def ev(node, a):
        axes = a[1] if len(a) > 1 and a[1] is not None else None
        axes = tuple(int(x) for x in axes) if axes is not None and len(axes) else None
        return [f(a[0], axis=axes, keepdims=bool(attr(node, "keepdims"))).astype(a[0].dtype)]
    return ev


def _np_flatten(node, a):
    ax = _norm_axis(attr(node, "axis"), a[0].ndim)
    return [a[0].reshape(int(np.prod(a[0].shape[:ax])), -1)]


# ------------------------------------------------------------------ the op set
for _n, _f in {"Relu": lambda x: np.maximum(x, 0), "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
               "Tanh": np.tanh, "Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt,
               "Neg": np.negative, "Abs": np.abs, "Reciprocal": np.reciprocal,
               "Floor": np.floor, "Ceil": np.ceil, "Softplus": lambda x: np.log1p(np.exp(x)),
               "Mish": lambda x: x * np.tanh(np.log1p(np.exp(x))), "Erf": None,
               "HardSwish": lambda x: x * np.clip(x / 6 + 0.5, 0, 1), "Identity": lambda x: x,
               }.items():
    op(_n, infer=same, evaluate=_np_unary(_f) if _f else None)
op("LeakyRelu", attrs={"alpha": 0.01}, infer=same)
op("Elu", attrs={"alpha": 1.0}, infer=same)
op("Selu", attrs={"alpha": 1.6732632423543772, "gamma": 1.0507009873554805}, infer=same)
op("HardSigmoid", attrs={"alpha": 0.2, "beta": 0.5}, infer=same)
op("Gelu", attrs={"approximate": "none"}, infer=same)
op("Clip", inputs=(1, 3), infer=same,
   evaluate=lambda n, a: [np.clip(a[0], a[1] if len(a) > 1 else None,
                                  a[2] if len(a) > 2 else None)])
op("PRelu", inputs=(2, 2), infer=same)
op("Softmax", attrs={"axis": -1}, infer=same)
op("LogSoftmax", attrs={"axis": -1}, infer=same)
for _n, _f in {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": None,
               "Pow": np.power, "Max": np.maximum, "Min": np.minimum}.items():
    op(_n, inputs=(2, 2), infer=binary, evaluate=_np_binary(_f) if _f else None)
SCHEMAS["Div"] = OpSchema("Div", (2, 2), 1, {}, binary, lambda n, a: [
    (np.sign(a[0]) * np.sign(a[1]) * (np.abs(a[0]) // np.abs(a[1]))  # ONNX: toward zero
     if np.issubdtype(a[0].dtype, np.integer) else a[0] / a[1]).astype(a[0].dtype)])
op("Equal", inputs=(2, 2), infer=compare, evaluate=lambda n, a: [np.equal(a[0], a[1])])
op("Where", inputs=(3, 3), infer=lambda n: [(n.input(1).dtype, bcast_shape(
    bcast_shape(n.input(0).shape, n.input(1).shape), n.input(2).shape))],
   evaluate=lambda n, a: [np.where(a[0], a[1], a[2])])
_conv_attrs = {"kernel_shape": None, "strides": None, "pads": None, "dilations": None, "group": 1}
op("Conv", inputs=(2, 3), attrs=_conv_attrs, infer=conv)
op("ConvTranspose", inputs=(2, 3), attrs={**_conv_attrs, "output_padding": None},
   infer=conv_transpose)
op("BatchNormalization", inputs=(5, 5), attrs={"epsilon": 1e-5}, infer=same)
op("Gemm", inputs=(2, 3), attrs={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
   infer=gemm)
op("MatMul", inputs=(2, 2), infer=matmul, evaluate=lambda n, a: [np.matmul(a[0], a[1])])
_pool_attrs = {"kernel_shape": REQUIRED, "strides": None, "pads": None, "dilations": None,
               "ceil_mode": 0}
op("MaxPool", attrs=_pool_attrs, infer=pool)
op("AveragePool", attrs={**_pool_attrs, "count_include_pad": 0}, infer=pool)
op("GlobalAveragePool", infer=global_pool)
op("GlobalMaxPool", infer=global_pool)
op("Concat", inputs=(1, 1 << 16), attrs={"axis": REQUIRED}, infer=concat,
   evaluate=lambda n, a: [np.concatenate(a, axis=attr(n, "axis"))])
op("Flatten", attrs={"axis": 1}, infer=flatten, evaluate=_np_flatten)
op("Reshape", inputs=(2, 2), attrs={"allowzero": 0}, infer=reshape, evaluate=_np_reshape)
op("Transpose", attrs={"perm": None}, infer=transpose,
   evaluate=lambda n, a: [np.transpose(a[0], attr(n, "perm"))])
op("Slice", inputs=(3, 5), infer=slice_infer, evaluate=_np_slice)
op("Split", inputs=(1, 2), outputs=None, attrs={"axis": 0, "num_outputs": None}, infer=split,
   evaluate=_np_split)
op("Squeeze", inputs=(1, 2), infer=squeeze,
   evaluate=lambda n, a: [a[0].reshape(squeeze(n)[0][1])])
op("Unsqueeze", inputs=(2, 2), infer=unsqueeze,
   evaluate=lambda n, a: [a[0].reshape(unsqueeze(n)[0][1])])
op("Resize", inputs=(1, 4), attrs={"mode": "nearest", "coordinate_transformation_mode":
                                   "half_pixel", "nearest_mode": "round_prefer_floor",
                                   "cubic_coeff_a": -0.75}, infer=resize)
op("Pad", inputs=(2, 4), attrs={"mode": "constant"}, infer=pad)
_red = {"keepdims": 1, "noop_with_empty_axes": 0}
op("ReduceMean", inputs=(1, 2), attrs=_red, infer=reduce, evaluate=_np_reduce(np.mean))
op("ReduceSum", inputs=(1, 2), attrs=_red, infer=reduce, evaluate=_np_reduce(np.sum))
op("ReduceMax", inputs=(1, 2), attrs=_red, infer=reduce, evaluate=_np_reduce(np.max))
op("Dropout", inputs=(1, 3), outputs=None, attrs={"seed": None}, infer=dropout)
op("Cast", attrs={"to": REQUIRED}, infer=cast,
   evaluate=lambda n, a: [a[0].astype(_ONNX_DT[attr(n, "to")])])
op("Gather", inputs=(2, 2), attrs={"axis": 0}, infer=gather,
   evaluate=lambda n, a: [np.take(a[0], a[1], axis=attr(n, "axis"))])
op("Shape", infer=lambda n: [("int64", (len(n.input(0).shape),))])


# ------------------------------------------------------------------ entry points
def infer_node(node: Node) -> None:
    """Set dtype and shape of ``node.outputs`` from its inputs and attributes.

    Raises:
        KeyError: the op is not in the IR op set.
        GraphError: the inputs cannot be combined (e.g. shapes that do not broadcast).
    """
    schema = SCHEMAS[node.op]
    if schema.infer is None or any(v is not None and v.shape is None for v in node.inputs[:1]):
        return
    try:
        results = schema.infer(node)
    except GraphError:
        raise
    except Exception as e:  # a malformed attribute or operand
        raise GraphError(f"{node.name} ({node.op}): shape inference failed: {e}") from e
    for out, (dt, shape) in zip(node.outputs, results):
        out.dtype = dt or out.dtype
        out.shape = tuple(shape) if shape is not None else None


def check_node(node: Node) -> None:
    """Check ``node`` against its schema: known op, input count, required attributes.

    Raises:
        GraphError: naming the node and what is wrong.
    """
    schema = SCHEMAS.get(node.op)
    if schema is None:
        raise GraphError(f"{node.name}: op {node.op!r} is not in the IR op set")
    lo, hi = schema.inputs
    if not lo <= len(node.inputs) <= hi:
        raise GraphError(f"{node.name} ({node.op}): {len(node.inputs)} inputs, expected {lo}..{hi}")
    for k, d in schema.attrs.items():
        if d is REQUIRED and k not in node.attrs:
            raise GraphError(f"{node.name} ({node.op}): required attribute {k!r} missing")
    for k in node.attrs:
        if k not in schema.attrs:
            raise GraphError(f"{node.name} ({node.op}): unknown attribute {k!r}")


def evaluate(node: Node) -> Optional[list[np.ndarray]]:
    """Compute a node whose inputs are all constant with numpy; None when no evaluator exists."""
    ev = SCHEMAS[node.op].evaluate
    if ev is None:
        return None
    arrays = [v.const if v is not None else None for v in node.inputs]
    return [np.asarray(a) for a in ev(node, arrays)]


from . import ops_detection  # noqa: E402,F401  (non-ONNX ops of SSD detectors)
