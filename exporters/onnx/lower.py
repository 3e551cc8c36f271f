"""IR graph -> ONNX nodes for the chosen opset (13..26).

The IR *is* ONNX in its opset-18+ operand form, so most ops are emitted unchanged. What
depends on the opset (onnx/onnx ``docs/Operators.md`` and ``docs/Changelog.md``; verified in
shared/docs/formats/onnx.md section 3):

* attribute -> input moves (:data:`OPERANDS`): Clip ``min``/``max`` (inputs since 11),
  Squeeze/Unsqueeze ``axes``, Split ``split``, ReduceSum ``axes`` (13), ReduceMean/ReduceMax
  ``axes`` (18), Pad ``pads``/``value`` (11); below the version the constant operand becomes
  an attribute;
* new attributes / inputs: Split ``num_outputs`` (18), Pad ``axes`` input (18) and ``wrap``
  mode (19), AveragePool ``dilations`` (19), Reshape ``allowzero`` (14), ReduceMean/Max
  ``noop_with_empty_axes`` (18), Resize ``half_pixel_symmetric`` (19);
* new ops, decomposed below their opset: Gelu (20), HardSwish (14), Mish (18);
* Softmax / LogSoftmax are single-axis (== the IR) only from opset 13, the lowest supported.

A lowering is ``fn(node, ctx)`` with a :class:`~exporters.onnx.context.OnnxCtx`, registered
with ``@lowering("onnx", op, emits=..., checks=...)``. Conditions on the opset are
:class:`OpsetCheck` objects: the generic registry scan shows their text (it cannot know the
opset), :func:`scan` evaluates them against the target opset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from converter.errors import Issue
from converter.ir import Graph, Node
from converter.ops import ONNX_DTYPE_CODE, split_sizes
from converter.registry import Check, find_lowering, lowering, scan_lowering

from .context import LoweredModel, OnnxCtx

TARGET = "onnx"
MIN_OPSET, MAX_OPSET, DEFAULT_OPSET = 13, 26, 17


@dataclass(frozen=True)
class OpsetCheck(Check):
    """A condition on the target opset: ``need(node)`` is the lowest opset that can express
    ``node`` (0: any). ``fn`` always passes, since a registry scan does not know the opset."""

    need: Callable[[Node], int] = lambda node: 0

    def required(self, node: Node) -> int:
        """``need(node)``; a node it cannot evaluate needs an opset beyond any."""
        try:
            return int(self.need(node))
        except Exception:
            return 1 << 30


def needs_opset(text: str, need: Callable[[Node], int], code: str) -> OpsetCheck:
    """An :class:`OpsetCheck` with its report text and reason code."""
    return OpsetCheck(text, lambda node: True, code, need)


def opset_of(options: Any) -> int:
    """The target opset of ``options`` (``ConvertOptions.opset``), default 17."""
    return int(getattr(options, "opset", None) or DEFAULT_OPSET)


# ------------------------------------------------------------------ operands and attributes
#: op -> ((input index, attribute name, opset from which it is an input), ...)
OPERANDS = {
    "Clip": ((1, "min", 11), (2, "max", 11)),
    "Pad": ((1, "pads", 11), (2, "value", 11)),
    "Squeeze": ((1, "axes", 13),),
    "Unsqueeze": ((1, "axes", 13),),
    "Split": ((1, "split", 13),),
    "ReduceSum": ((1, "axes", 13),),
    "ReduceMean": ((1, "axes", 18),),
    "ReduceMax": ((1, "axes", 18),),
}


def _as_attr(arr: np.ndarray, scalar: bool) -> Any:
    a = np.asarray(arr)
    if scalar:
        return float(a.reshape(()))
    return [int(v) for v in a.reshape(-1)]


def operands(node: Node, ctx: OnnxCtx) -> tuple[list, dict]:
    """Input names and extra attributes of ``node`` at ``ctx.opset``: operands listed in
    :data:`OPERANDS` whose input form is newer than the opset become attributes.

    Raises:
        ValueError: such an operand is not constant (:func:`_operand_need` rejects it).
    """
    moved = {i: (name, since) for i, name, since in OPERANDS.get(node.op, ())}
    names, attrs = [], {}
    for i, v in enumerate(node.inputs):
        if i in moved and ctx.opset < moved[i][1]:
            if v is not None:
                if not v.is_const:
                    raise ValueError(f"{node.name}: input {i} must be constant")
                attrs[moved[i][0]] = _as_attr(v.const, moved[i][0] in ("min", "max", "value"))
            names.append("")
        else:
            names.append(ctx.name(v))
    return names, attrs


def _operand_need(node: Node) -> int:
    """A non-constant operand can only be an input: it needs the opset of the input form."""
    return max([since for i, _, since in OPERANDS.get(node.op, ())
                if node.input(i) is not None and not node.input(i).is_const], default=0)


OPERAND_CHECK = needs_opset("operands that are attributes below the target opset (Reduce* axes "
                            "before 18) are constant", _operand_need, "onnx.operand")


def _emit_operands(node: Node, ctx: OnnxCtx, drop: tuple = ()) -> None:
    """Emit ``node`` with :func:`operands`, without the attributes ``drop``."""
    names, attrs = operands(node, ctx)
    ctx.emit_ir(node, inputs=names, attrs={**{k: v for k, v in node.attrs.items()
                                              if k not in drop}, **attrs})


# ------------------------------------------------------------------ unchanged ops
SAME_OPS = ("Abs", "Add", "BatchNormalization", "Cast", "Ceil", "Concat", "Conv",
            "ConvTranspose", "Div", "Dropout", "Elu", "Equal", "Erf", "Exp", "Flatten",
            "Floor", "Gather", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "HardSigmoid",
            "Identity", "LeakyRelu", "Log", "MatMul", "Max", "MaxPool", "Min", "Mul", "Neg",
            "PRelu", "Pow", "Reciprocal", "Relu", "Selu", "Shape", "Sigmoid", "Slice",
            "Softplus", "Sqrt", "Sub", "Tanh", "Transpose", "Where")


def lower_same(node: Node, ctx: OnnxCtx) -> None:
    """An op whose ONNX form is the IR form at every opset 13..26: emitted unchanged."""
    ctx.emit_ir(node)


for _op in SAME_OPS:
    lowering(TARGET, _op, emits=(_op,))(lower_same)

SOFTMAX_CHECK = needs_opset("single-axis softmax semantics (opset >= 13; opset <= 12 "
                            "flattens from the axis)", lambda n: 13, "onnx.opset")


@lowering(TARGET, ("Softmax", "LogSoftmax"), emits=("Softmax", "LogSoftmax"),
          checks=(SOFTMAX_CHECK,))
def lower_softmax(node: Node, ctx: OnnxCtx) -> None:
    """Softmax / LogSoftmax(axis): unchanged; opset 13 made them single-axis like the IR."""
    ctx.emit_ir(node)


@lowering(TARGET, ("Clip", "Squeeze", "Unsqueeze", "ReduceSum"),
          emits=("Clip", "Squeeze", "Unsqueeze", "ReduceSum"), checks=(OPERAND_CHECK,))
def lower_operand_ops(node: Node, ctx: OnnxCtx) -> None:
    """Clip(min, max) / Squeeze(axes) / Unsqueeze(axes) / ReduceSum(axes): operands as inputs
    from their opset (11 / 13 / 13 / 13), attributes below."""
    _emit_operands(node, ctx)


def _empty_axes(node: Node) -> bool:
    axes = node.input(1)
    return axes is None or (axes.is_const and axes.const.size == 0)


@lowering(TARGET, ("ReduceMean", "ReduceMax"), emits=("ReduceMean", "ReduceMax", "Identity"),
          checks=(OPERAND_CHECK,))
def lower_reduce(node: Node, ctx: OnnxCtx) -> None:
    """ReduceMean / ReduceMax(data[, axes]; keepdims, noop_with_empty_axes): axes input and
    ``noop_with_empty_axes`` from opset 18; below, ``axes`` attribute, and an empty-axes no-op
    becomes Identity."""
    if ctx.opset >= 18:
        ctx.emit_ir(node)
    elif node.attrs.get("noop_with_empty_axes", 0) and _empty_axes(node):
        ctx.emit_ir(node, "Identity", [ctx.name(node.inputs[0])], {})
    else:
        _emit_operands(node, ctx, drop=("noop_with_empty_axes",))


# ------------------------------------------------------------------ attributes added later
def _split_need(node: Node) -> int:
    """Below 18 an uneven split must be written as sizes: the split dim must be static."""
    if node.input(1) is not None:
        return _operand_need(node)
    x = node.inputs[0].shape
    axis = int(node.attrs.get("axis", 0))
    return 0 if isinstance(x[axis], int) else 18


@lowering(TARGET, "Split", emits=("Split",), checks=(
    needs_opset("a split without sizes has a static split dim (opset < 18)", _split_need,
                "onnx.operand"),))
def lower_split(node: Node, ctx: OnnxCtx) -> None:
    """Split(input[, split]; axis): without sizes, opset >= 18 writes ``num_outputs`` (last
    chunk may be smaller, like the IR); below 18 equal chunks are implied and uneven ones are
    written as a ``split`` operand."""
    n = len(node.outputs)
    if node.input(1) is not None:
        _emit_operands(node, ctx, drop=("num_outputs",))
    elif ctx.opset >= 18:
        ctx.emit_ir(node, attrs={**node.attrs, "num_outputs": n})
    else:
        sizes = split_sizes(node)
        attrs = {k: v for k, v in node.attrs.items() if k != "num_outputs"}
        if len(set(sizes)) == 1:
            ctx.emit_ir(node, attrs=attrs)
        elif ctx.opset >= 13:
            split = ctx.const(np.array(sizes, np.int64), ctx.sub(node, "split"), "int64")
            ctx.emit_ir(node, inputs=[ctx.name(node.inputs[0]), split], attrs=attrs)
        else:
            ctx.emit_ir(node, attrs={**attrs, "split": sizes})


def _dilated(node: Node) -> bool:
    return any(int(d) != 1 for d in (node.attrs.get("dilations") or ()))


@lowering(TARGET, "AveragePool", emits=("AveragePool",), checks=(
    needs_opset("dilations other than 1 (AveragePool dilations since opset 19)",
                lambda n: 19 if _dilated(n) else 0, "onnx.attr"),))
def lower_average_pool(node: Node, ctx: OnnxCtx) -> None:
    """AveragePool: ``dilations`` exists from opset 19 (all-1 dilations are dropped below)."""
    if ctx.opset >= 19:
        ctx.emit_ir(node)
    else:
        ctx.emit_ir(node, attrs={k: v for k, v in node.attrs.items() if k != "dilations"})


def _reshape_need(node: Node) -> int:
    if not node.attrs.get("allowzero", 0):
        return 0
    shape = node.input(1)
    return 14 if shape is None or not shape.is_const or 0 in shape.const else 0


@lowering(TARGET, "Reshape", emits=("Reshape",), checks=(
    needs_opset("allowzero=1 with a 0 in the shape (Reshape allowzero since opset 14)",
                _reshape_need, "onnx.attr"),))
def lower_reshape(node: Node, ctx: OnnxCtx) -> None:
    """Reshape(data, shape; allowzero): ``allowzero`` exists from opset 14; below it is
    dropped (without a 0 in the shape it changes nothing)."""
    if ctx.opset >= 14:
        ctx.emit_ir(node)
    else:
        ctx.emit_ir(node, attrs={k: v for k, v in node.attrs.items() if k != "allowzero"})


def _resize_need(node: Node) -> int:
    mode = node.attrs.get("coordinate_transformation_mode", "half_pixel")
    return 19 if mode == "half_pixel_symmetric" else 0


@lowering(TARGET, "Resize", emits=("Resize",), checks=(
    needs_opset("coordinate_transformation_mode half_pixel_symmetric (opset 19)",
                _resize_need, "onnx.attr"),))
def lower_resize(node: Node, ctx: OnnxCtx) -> None:
    """Resize(X, roi?, scales?, sizes?; mode, coordinate_transformation_mode, nearest_mode,
    cubic_coeff_a): the same inputs and attributes at 13..26 (18 only adds attributes the IR
    does not use; omitted inputs are ``""``)."""
    ctx.emit_ir(node)


def _pad_need(node: Node) -> int:
    need = 19 if node.attrs.get("mode", "constant") == "wrap" else 0
    axes = node.input(3)
    if axes is not None and (not axes.is_const or not node.input(1).is_const
                             or node.inputs[0].shape is None):
        need = max(need, 18)
    return max(need, _operand_need(node))


@lowering(TARGET, "Pad", emits=("Pad",), checks=(
    needs_opset("mode wrap needs opset 19; a non-constant axes input needs 18", _pad_need,
                "onnx.attr"),))
def lower_pad(node: Node, ctx: OnnxCtx) -> None:
    """Pad(data, pads, constant_value?, axes?; mode): the ``axes`` input exists from opset
    18; below, constant pads over ``axes`` are expanded to every axis (order: all begins, then
    all ends)."""
    axes = node.input(3)
    if axes is None or ctx.opset >= 18:
        _emit_operands(node, ctx)
        return
    rank = len(node.inputs[0].shape)
    p = [int(v) for v in node.inputs[1].const.reshape(-1)]
    full = [0] * (2 * rank)
    for k, a in enumerate(int(a) for a in axes.const.reshape(-1)):
        a = a + rank if a < 0 else a
        full[a], full[a + rank] = p[k], p[k + len(p) // 2]
    pads = ctx.const(np.array(full, np.int64), ctx.sub(node, "pads"), "int64")
    ctx.emit_ir(node, inputs=[ctx.name(node.inputs[0]), pads, ctx.name(node.input(2))])


# ------------------------------------------------------------------ decompositions
def _chain(node: Node, ctx: OnnxCtx, steps: list) -> None:
    """Emit ``steps`` ``[(op_type, [inputs], attrs, role)]`` where an input is a tensor name
    or ``"$k"`` = the output of step k; the last step writes the node's IR output."""
    x = node.inputs[0]
    outs: list[str] = []
    for k, (op_type, ins, attrs, role) in enumerate(steps):
        names = [outs[int(i[1:])] if i.startswith("$") else i for i in ins]
        last = k == len(steps) - 1
        out = ctx.out(node.outputs[0]) if last else ctx.tensor(ctx.sub(node, role), x)
        ctx.emit(op_type, names, [out], attrs, ctx.sub(node, role), node if last else None)
        outs.append(out)


@lowering(TARGET, "Gelu", emits=("Gelu", "Mul", "Erf", "Add", "Tanh"))
def lower_gelu(node: Node, ctx: OnnxCtx) -> None:
    """Gelu(approximate): the op from opset 20; below, ``none`` ->
    ``0.5 * x * (1 + erf(x / sqrt 2))`` and ``tanh`` ->
    ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))`` (docs/Operators.md#Gelu)."""
    if ctx.opset >= 20:
        ctx.emit_ir(node)
        return
    x = node.inputs[0]
    xn = ctx.name(x)

    def c(role: str, value: float) -> str:
        return ctx.const(value, f"gelu/{role}", x.dtype)

    if node.attrs.get("approximate", "none") == "tanh":
        # sqrt(2/pi) * (x + 0.044715 x^3) == x * (k + k3 x^2), k = sqrt(2/pi), k3 = 0.044715 k
        k = math.sqrt(2.0 / math.pi)
        inner = [("Mul", [xn, xn], {}, "x2"), ("Mul", ["$0", c("k3", 0.044715 * k)], {}, "k3x2"),
                 ("Add", ["$1", c("k", k)], {}, "poly"), ("Mul", [xn, "$2"], {}, "inner"),
                 ("Tanh", ["$3"], {}, "tanh")]
    else:
        inner = [("Mul", [xn, c("rsqrt2", 1 / math.sqrt(2.0))], {}, "scaled"),
                 ("Erf", ["$0"], {}, "erf")]
    n = len(inner)
    tail = [("Add", [f"${n - 1}", c("one", 1.0)], {}, "plus1"),
            ("Mul", [xn, f"${n}"], {}, "xmul"), ("Mul", [f"${n + 1}", c("half", 0.5)], {}, "half")]
    _chain(node, ctx, inner + tail)


@lowering(TARGET, "HardSwish", emits=("HardSwish", "HardSigmoid", "Mul"))
def lower_hardswish(node: Node, ctx: OnnxCtx) -> None:
    """HardSwish: the op from opset 14; below, ``x * HardSigmoid(x; alpha=1/6, beta=0.5)``
    (== ``x * clip(x/6 + 1/2, 0, 1)``, docs/Operators.md#HardSwish)."""
    if ctx.opset >= 14:
        ctx.emit_ir(node)
        return
    xn = ctx.name(node.inputs[0])
    _chain(node, ctx, [("HardSigmoid", [xn], {"alpha": 1.0 / 6.0, "beta": 0.5}, "gate"),
                       ("Mul", [xn, "$0"], {}, "mul")])


@lowering(TARGET, "Mish", emits=("Mish", "Softplus", "Tanh", "Mul"))
def lower_mish(node: Node, ctx: OnnxCtx) -> None:
    """Mish: the op from opset 18; below, ``x * tanh(softplus(x))`` (docs/Operators.md#Mish)."""
    if ctx.opset >= 18:
        ctx.emit_ir(node)
        return
    xn = ctx.name(node.inputs[0])
    _chain(node, ctx, [("Softplus", [xn], {}, "softplus"), ("Tanh", ["$0"], {}, "tanh"),
                       ("Mul", [xn, "$1"], {}, "mul")])


# ------------------------------------------------------------------ driver
def graph_issues(graph: Graph, opset: int) -> list[Issue]:
    """Graph-level problems: an opset outside 13..26 (onnxruntime 1.31 loads <= 26; below 13
    Softmax differs) and tensors of a dtype ONNX has no code for in the IR."""
    issues = []
    if not MIN_OPSET <= opset <= MAX_OPSET:
        issues.append(Issue(f"target:{TARGET}", "<opset>", "onnx.opset",
                            f"opset {opset} is outside {MIN_OPSET}..{MAX_OPSET}", [str(opset)],
                            f"use --opset {MIN_OPSET}..{MAX_OPSET}"))
    bad = [v.name for v in graph.values() if v.dtype not in ONNX_DTYPE_CODE]
    if bad:
        issues.append(Issue(f"target:{TARGET}", "<dtype>", "onnx.dtype",
                            "tensor dtype without an ONNX type code", bad))
    return issues


def opset_issues(graph: Graph, opset: int) -> list[Issue]:
    """Every node an :class:`OpsetCheck` of its lowering rejects at ``opset``."""
    issues = []
    for node in graph.nodes:
        entry = find_lowering(TARGET, node.op)
        for check in (entry.checks if entry else ()):
            if isinstance(check, OpsetCheck):
                need = check.required(node)
                if need > opset:
                    src = node.meta.get("source_op", "")
                    hint = f"use --opset {need}" if need <= MAX_OPSET else ""
                    issues.append(Issue(f"target:{TARGET}", node.op, check.code, check.text,
                                        [node.name + (f" ({src})" if src else "")], hint))
    return issues


def scan(graph: Graph, options: Any = None) -> list[Issue]:
    """Pre-flight scan at the target opset: graph-level issues, nodes without a lowering or
    failing a check, and opset conditions; all collected, nothing lowered."""
    opset = opset_of(options)
    return graph_issues(graph, opset) + scan_lowering(graph, TARGET) + opset_issues(graph,
                                                                                   opset)


def lower_graph(graph: Graph, options: Any = None) -> LoweredModel:
    """Lower a scanned ``graph`` for ``options.opset``; the graph is not modified.

    Raises:
        KeyError: a node has no lowering (the graph was not scanned).
        ValueError: a lowering met a case its checks should have rejected.
    """
    ctx = OnnxCtx(graph, opset_of(options))
    for node in graph.nodes:
        entry = find_lowering(TARGET, node.op)
        if entry is None:
            raise KeyError(f"{node.name}: no onnx lowering for {node.op}")
        entry.fn(node, ctx)
    return ctx.finish()
