"""OpenVINO lowerings of pooling, reductions, Resize and Pad.

Specs (openvinotoolkit/openvino docs/articles_en/documentation/openvino-ir-format/
operation-sets/operation-specs/...):

* ``pooling/max-pool-14.rst`` and ``pooling/avg-pool-16.rst``: ``kernel``, ``strides``,
  ``pads_begin``/``pads_end``, ``dilations``, ``rounding_type`` floor / ceil / ceil_torch,
  AvgPool ``exclude-pad``. ``ceil_torch`` never starts a window in the right padding, which is
  the IR's (ONNX / torch) ``ceil_mode`` rule (openvino-ir.md rule 6); MaxPool-14 has a second
  (indices) output that is left unused.
* ``reduction/reduce-mean-1.rst`` / ``reduce-sum-1`` / ``reduce-max-1``: axes input, ``keep_dims``.
  Global pooling = ReduceMean / ReduceMax over axes 2.. with keep_dims.
* ``image/interpolate-11.rst``: one ``scales_or_sizes`` input plus ``axes``; ONNX Resize modes
  map as the OpenVINO ONNX frontend maps them (src/frontends/onnx/frontend/src/op/resize.cpp):
  nearest -> nearest, linear -> linear_onnx, cubic -> cubic, with the same
  ``coordinate_transformation_mode`` and ``nearest_mode`` names; ``linear_onnx`` takes only
  axes {2, 3} / {2, 3, 4} (or all axes of a rank-2/3 tensor), other linear cases use ``linear``.
* ``movement/pad-12.rst``: per-axis ``pads_begin``/``pads_end`` (negative crops), modes
  constant / edge / reflect / symmetric; ONNX ``wrap`` has no counterpart.
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node
from converter.ops import attr
from converter.registry import Check, lowering

from .checks import checks, const_inputs, rank_in
from .context import LowerCtx


def _pool_geometry(node: Node) -> tuple:
    nsp = len(node.inputs[0].shape) - 2
    k = list(attr(node, "kernel_shape"))
    s = list(attr(node, "strides") or (1,) * nsp)
    d = list(attr(node, "dilations") or (1,) * nsp)
    p = list(attr(node, "pads") or (0,) * (2 * nsp))
    rounding = "ceil_torch" if attr(node, "ceil_mode") else "floor"
    return k, s, d, p[:nsp], p[nsp:], rounding


POOL_CHECKS = checks(rank_in((3, 4, 5), "1-D, 2-D or 3-D pooling (input rank 3..5)"))


@lowering("openvino", "MaxPool", emits=("MaxPool",), checks=POOL_CHECKS + (
    Check("only the values output is read (no indices)", lambda n: len(n.outputs) == 1 or
          not n.outputs[1].uses, "openvino.attr"),))
def lower_maxpool(node: Node, ctx: LowerCtx) -> None:
    """MaxPool -> MaxPool-14 (``ceil_mode`` -> rounding_type ceil_torch); output 0 only."""
    k, s, d, pb, pe, rounding = _pool_geometry(node)
    y = ctx.ops.max_pool(ctx.input(node, 0), s, d, pb, pe, k, rounding, "explicit", "i64", 0,
                         name=ctx.name(node.name))
    ctx.bind_node(node, y.output(0))


def _overflows(node: Node) -> bool:
    """A ceil-mode window that runs past the padded input (ONNX / torch clip such a window to
    the padded input before dividing; AvgPool-16 with ``exclude-pad="false"`` divides by the
    whole kernel, verified against onnxruntime and torch)."""
    k, s, d, pb, pe, _ = _pool_geometry(node)
    x, y = node.inputs[0].shape, node.outputs[0].shape
    return any((y[2 + i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 > x[2 + i] + pb[i] + pe[i]
               for i in range(len(k)))


@lowering("openvino", "AveragePool", emits=("AvgPool", "Pad"), checks=POOL_CHECKS)
def lower_avgpool(node: Node, ctx: LowerCtx) -> None:
    """AveragePool -> AvgPool-16 (``exclude-pad`` = not ``count_include_pad``, dilations).
    ``count_include_pad`` with a ceil-mode window past the padded input: explicit zero ``Pad``,
    then AvgPool without pads and ``exclude-pad="true"`` (divisor = window inside the padded
    input, as ONNX and torch count it)."""
    k, s, d, pb, pe, rounding = _pool_geometry(node)
    exclude = not bool(attr(node, "count_include_pad"))
    x = ctx.input(node, 0)
    if not exclude and any(pb + pe) and _overflows(node):
        zeros = [0, 0]
        x = ctx.ops.pad(x, ctx.i64(zeros + pb, node.name, "pads_begin"),
                        ctx.i64(zeros + pe, node.name, "pads_end"), "constant",
                        ctx.const(np.zeros((), node.inputs[0].dtype), f"{node.name}/zero"),
                        name=ctx.name(node.name, "pad")).output(0)
        pb, pe, exclude = [0] * len(pb), [0] * len(pe), True
    y = ctx.ops.avg_pool(x, s, pb, pe, k, exclude, rounding, "explicit", d,
                         name=ctx.name(node.name))
    ctx.bind_node(node, y)


def _spatial_axes(node: Node, ctx: LowerCtx):
    return ctx.i64(list(range(2, len(node.inputs[0].shape))), node.name, "axes")


@lowering("openvino", "GlobalAveragePool", emits=("ReduceMean",), checks=checks())
def lower_global_avg(node: Node, ctx: LowerCtx) -> None:
    """GlobalAveragePool -> ReduceMean over axes 2.. (keep_dims)."""
    y = ctx.ops.reduce_mean(ctx.input(node, 0), _spatial_axes(node, ctx), True,
                            name=ctx.name(node.name))
    ctx.bind_node(node, y)


@lowering("openvino", "GlobalMaxPool", emits=("ReduceMax",), checks=checks())
def lower_global_max(node: Node, ctx: LowerCtx) -> None:
    """GlobalMaxPool -> ReduceMax over axes 2.. (keep_dims)."""
    y = ctx.ops.reduce_max(ctx.input(node, 0), _spatial_axes(node, ctx), True,
                           name=ctx.name(node.name))
    ctx.bind_node(node, y)


REDUCE = {"ReduceMean": ("reduce_mean", "ReduceMean"), "ReduceSum": ("reduce_sum", "ReduceSum"),
          "ReduceMax": ("reduce_max", "ReduceMax")}


def _reduce(factory: str):
    def fn(node: Node, ctx: LowerCtx) -> None:
        rank = len(node.inputs[0].shape)
        axes = node.const_input(1)
        x = ctx.input(node, 0)
        if axes is None or axes.size == 0:
            if attr(node, "noop_with_empty_axes"):
                ctx.bind_node(node, x)
                return
            axes = np.arange(rank)
        axes = sorted(int(a) % rank for a in np.asarray(axes).reshape(-1))
        y = getattr(ctx.ops, factory)(x, ctx.i64(axes, node.name, "axes"),
                                      bool(attr(node, "keepdims")), name=ctx.name(node.name))
        ctx.bind_node(node, y)
    fn.__doc__ = (f"IR reduction -> ``{factory}`` with constant axes (empty: all axes, or the "
                  "identity with noop_with_empty_axes).")
    return fn


for _op, (_factory, _xml) in REDUCE.items():
    lowering("openvino", _op, emits=(_xml,), checks=checks(const_inputs(
        1, text="axes are a constant")))(_reduce(_factory))


RESIZE_MODES = {"nearest": "nearest", "linear": "linear_onnx", "cubic": "cubic"}
RESIZE_CTM = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
              "tf_half_pixel_for_nn")


def _resize_axes(node: Node) -> list:
    """Axes the Interpolate works on: 2.. for rank >= 4 (N and C must be unchanged for
    linear_onnx, checked), every axis for rank <= 3 (linear_onnx's rank-2/3 form)."""
    rank = len(node.inputs[0].shape)
    return list(range(2, rank)) if rank >= 4 else list(range(rank))


def _nc_kept(node: Node) -> bool:
    x, y = node.inputs[0].shape, node.outputs[0].shape
    if len(x) <= 3:
        return True
    sizes, scales = node.const_input(3), node.const_input(2)
    if sizes is not None:
        return [int(v) for v in sizes[:2]] == [int(d) for d in x[:2]]
    return [float(v) for v in scales[:2]] == [1.0, 1.0] and tuple(y[:2]) == tuple(x[:2])


RESIZE_CHECKS = checks(
    Check("mode is nearest, linear or cubic", lambda n: attr(n, "mode") in RESIZE_MODES,
          "openvino.attr"),
    Check(f"coordinate_transformation_mode is one of {', '.join(RESIZE_CTM)}",
          lambda n: attr(n, "coordinate_transformation_mode") in RESIZE_CTM, "openvino.attr"),
    Check("scales or sizes is a constant", lambda n: n.const_input(3) is not None or (
        n.input(3) is None and n.const_input(2) is not None and n.const_input(2).size > 0),
          "openvino.const"),
    Check("batch and channel dims are not resized (rank >= 4)", _nc_kept, "openvino.attr"))


@lowering("openvino", "Resize", emits=("Interpolate",), checks=RESIZE_CHECKS)
def lower_resize(node: Node, ctx: LowerCtx) -> None:
    """Resize -> Interpolate-11: ``sizes`` mode when the IR gives sizes, else ``scales`` mode
    with the IR's scales (f32), so coordinates map with the given factor as ONNX does."""
    axes = _resize_axes(node)
    sizes = node.const_input(3)
    if sizes is not None:
        operand = ctx.i64([int(sizes[a]) for a in axes], node.name, "sizes")
        calc = "sizes"
    else:
        scales = np.asarray(node.const_input(2), dtype=np.float32)
        operand = ctx.const(scales[axes], f"{node.name}/scales")
        calc = "scales"
    rank = len(node.inputs[0].shape)
    y = ctx.ops.interpolate(
        ctx.input(node, 0), operand, RESIZE_MODES[attr(node, "mode")], calc, [0] * rank,
        [0] * rank, attr(node, "coordinate_transformation_mode"), attr(node, "nearest_mode"),
        False, float(attr(node, "cubic_coeff_a")), ctx.i64(axes, node.name, "axes"),
        name=ctx.name(node.name))
    ctx.bind_node(node, y)


PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge"}


@lowering("openvino", "Pad", emits=("Pad",), checks=checks(
    Check("mode is constant, reflect or edge", lambda n: attr(n, "mode") in PAD_MODES,
          "openvino.attr"),
    const_inputs(1, 2, 3, text="pads, constant_value and axes are constants")))
def lower_pad(node: Node, ctx: LowerCtx) -> None:
    """Pad(data, pads, [constant_value], [axes]) -> Pad-12 with full-rank ``pads_begin`` /
    ``pads_end`` (ONNX pads are all begins then all ends, over ``axes`` when given)."""
    rank = len(node.inputs[0].shape)
    pads = [int(v) for v in node.const_input(1)]
    axes = node.const_input(3)
    axes = [int(a) % rank for a in axes] if axes is not None else list(range(rank))
    begin, end = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        begin[a], end[a] = pads[i], pads[i + len(axes)]
    args = [ctx.input(node, 0), ctx.i64(begin, node.name, "pads_begin"),
            ctx.i64(end, node.name, "pads_end"), PAD_MODES[attr(node, "mode")]]
    if attr(node, "mode") == "constant":
        cv = node.const_input(2)  # Pad-12 wants a rank-0 pad_value of the data's type
        cv = np.zeros(()) if cv is None else np.asarray(cv).reshape(())
        args.append(ctx.const(cv.astype(node.inputs[0].dtype), f"{node.name}/value"))
    ctx.bind_node(node, ctx.ops.pad(*args, name=ctx.name(node.name)))
