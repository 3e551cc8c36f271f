"""ncnn lowerings of convolution, transposed convolution, Gemm/MatMul and BatchNormalization.

Param ids and weight order are from Tencent/ncnn ``src/layer/<layer>.cpp`` (``load_param`` /
``load_model``) and shared/docs/formats/ncnn.md §4:

* Convolution / ConvolutionDepthWise: ``0=num_output 1=kernel_w 11=kernel_h 2/12=dilation
  3/13=stride 4=pad_left 15=pad_right 14=pad_top 16=pad_bottom 5=bias_term 6=weight_data_size
  7=group``; weights: tagged ``(out, in/g, kh, kw)`` (== ONNX), raw bias.
* Convolution1D / ConvolutionDepthWise1D: ``0 1 2 3 4=pad_left 15=pad_right 5 6 (7)``.
* Deconvolution*: as above plus ``18/19=output_pad_right/bottom``; weight ``(g, out/g, in/g,
  k...)``, i.e. ONNX ConvTranspose ``(in, out/g, k...)`` with the in/out axes swapped per group
  (tools/pnnx/src/pass_ncnn/nn_ConvTranspose2d.cpp).
* InnerProduct: ``0=num_output 1=bias_term 2=weight_data_size``; tagged ``(out, in)``, raw bias;
  a 2-D ``(M, K)`` input is multiplied row by row (src/layer/innerproduct.cpp).
* MatMul: ``0=transB``; numpy matmul semantics on batch-less blobs (src/layer/matmul.cpp).
"""
from __future__ import annotations

import numpy as np

from converter.ir import Node
from converter.registry import Check, lowering

from .checks import checks, const_inputs, rank_in
from .context import LowerCtx, aligned

_F32 = np.float32


def _conv_geometry(node: Node, nsp: int) -> tuple:
    w = node.inputs[1].shape
    k = tuple(node.attrs.get("kernel_shape") or w[2:])
    s = tuple(node.attrs.get("strides") or (1,) * nsp)
    d = tuple(node.attrs.get("dilations") or (1,) * nsp)
    p = tuple(node.attrs.get("pads") or (0,) * (2 * nsp))
    return k, s, d, p


def _geometry_params(k, s, d, p) -> dict:
    """Kernel/stride/dilation/pad params: 2-D uses ``w`` and ``h`` keys, 1-D the ``w`` keys."""
    if len(k) == 1:
        return {1: k[0], 2: d[0], 3: s[0], 4: p[0], 15: p[1]}
    return {1: k[1], 11: k[0], 2: d[1], 12: d[0], 3: s[1], 13: s[0],
            4: p[1], 15: p[3], 14: p[0], 16: p[2]}


def _weights(weight: np.ndarray, bias) -> list:
    # a view stays a view (e.g. MatMul's transposed B): the writer streams it in C order
    out = [(np.asarray(weight, dtype=_F32), True)]
    if bias is not None:
        out.append((np.asarray(bias, dtype=_F32).reshape(-1), False))
    return out


def _compact_1x1(node: Node, ctx: LowerCtx) -> bool:
    """A 1x1 group-1 unpadded Conv reading a compact ``(C,)`` blob (global pooling output)."""
    x = node.inputs[0]
    k, _, _, p = _conv_geometry(node, len(x.shape) - 2)
    return (not x.is_const and len(ctx.shape[ctx.blob(x)]) == 1 and len(x.shape) > 2
            and all(v == 1 for v in k) and not any(p) and int(node.attrs.get("group", 1)) == 1)


CONV_CHECKS = checks(
    rank_in((3, 4), "1-D or 2-D convolution (input rank 3 or 4)"),
    const_inputs(1, 2, text="weight and bias are constants"))


@lowering("ncnn", "Conv", emits=("Convolution", "ConvolutionDepthWise", "Convolution1D",
                                  "ConvolutionDepthWise1D", "InnerProduct"), checks=CONV_CHECKS)
def lower_conv(node: Node, ctx: LowerCtx) -> None:
    """Conv -> Convolution (group 1) / ConvolutionDepthWise (group > 1, any group count),
    1-D variants for rank-3 inputs; on a compact global-pooling blob a 1x1 Conv becomes
    InnerProduct (as tools/pnnx/src/pass_ncnn/legalize_global_pooling_layout.cpp does)."""
    w, b = node.const_input(1), node.const_input(2)
    y = node.outputs[0]
    if _compact_1x1(node, ctx):
        x = ctx.blob(node.inputs[0])
        ctx.emit("InnerProduct", node.name, [x], [ctx.out(y, (w.shape[0],))],
                 {0: w.shape[0], 1: int(b is not None), 2: w.size},
                 _weights(w.reshape(w.shape[0], -1), b))
        return
    nsp = len(node.inputs[0].shape) - 2
    group = int(node.attrs.get("group", 1))
    params = {0: w.shape[0], **_geometry_params(*_conv_geometry(node, nsp)),
              5: int(b is not None), 6: w.size}
    kind = "Convolution" if group == 1 else "ConvolutionDepthWise"
    if group != 1:
        params[7] = group
    kind += "1D" if nsp == 1 else ""
    ctx.emit(kind, node.name, [ctx.inp(node.inputs[0])], [ctx.out(y)], params, _weights(w, b))


def _deconv_weight(w: np.ndarray, group: int) -> np.ndarray:
    """ONNX ``(in, out/g, k...)`` -> ncnn ``(g, out/g, in/g, k...)``."""
    cin, cout_g = w.shape[:2]
    g = w.reshape((group, cin // group, cout_g) + w.shape[2:])
    return np.ascontiguousarray(np.swapaxes(g, 1, 2))


@lowering("ncnn", "ConvTranspose", emits=("Deconvolution", "DeconvolutionDepthWise",
                                           "Deconvolution1D", "DeconvolutionDepthWise1D"),
          checks=CONV_CHECKS + (Check("output_padding is smaller than the stride",
                                      lambda n: _out_pad_ok(n), "ncnn.attr"),))
def lower_conv_transpose(node: Node, ctx: LowerCtx) -> None:
    """ConvTranspose -> Deconvolution (group 1) / DeconvolutionDepthWise (group > 1), 1-D
    variants for rank-3 inputs; ``output_padding`` -> ``18``/``19`` (ncnn adds it before
    cutting the pads, src/layer/deconvolution.cpp ``forward``/``cut_padding``)."""
    w, b = node.const_input(1), node.const_input(2)
    nsp = len(node.inputs[0].shape) - 2
    group = int(node.attrs.get("group", 1))
    k, s, d, p = _conv_geometry(node, nsp)
    op_ = tuple(node.attrs.get("output_padding") or (0,) * nsp)
    cout = w.shape[1] * group
    params = {0: cout, **_geometry_params(k, s, d, p), 5: int(b is not None), 6: w.size}
    params.update({18: op_[0]} if nsp == 1 else {18: op_[1], 19: op_[0]})
    kind = "Deconvolution" if group == 1 else "DeconvolutionDepthWise"
    if group != 1:
        params[7] = group
    kind += "1D" if nsp == 1 else ""
    ctx.emit(kind, node.name, [ctx.inp(node.inputs[0])], [ctx.out(node.outputs[0])], params,
             _weights(_deconv_weight(w, group), b))


def _out_pad_ok(node: Node) -> bool:
    nsp = len(node.inputs[0].shape) - 2
    _, s, d, _ = _conv_geometry(node, nsp)
    op_ = node.attrs.get("output_padding") or (0,) * nsp
    return all(o < max(si, di) for o, si, di in zip(op_, s, d))


def _inner_product(node: Node, ctx: LowerCtx, x: int, weight: np.ndarray, bias) -> None:
    """InnerProduct with weight ``(N, K)``; the output keeps the input's row count."""
    n = weight.shape[0]
    shape = (n,) if len(ctx.shape[x]) != 2 else (ctx.shape[x][0], n)
    ctx.emit("InnerProduct", node.name, [x], [ctx.out(node.outputs[0], shape)],
             {0: n, 1: int(bias is not None), 2: weight.size}, _weights(weight, bias))


def _gemm_bias(node: Node, n: int):
    c = node.const_input(2)
    if c is None:
        return None
    beta = float(node.attrs.get("beta", 1.0))
    return np.broadcast_to(np.asarray(c, dtype=_F32).reshape(-1) * beta, (n,)).copy()


@lowering("ncnn", "Gemm", emits=("InnerProduct",), checks=checks(
    const_inputs(1, 2, text="B and C are constants"),
    Check("transA == 0 and A is [1, K]", lambda n: not n.attrs.get("transA", 0)
          and len(n.inputs[0].shape) == 2, "ncnn.attr"),
    Check("C broadcasts to [N]", lambda n: _gemm_bias(n, n.outputs[0].shape[1]) is not None
          or n.input(2) is None, "ncnn.broadcast")))
def lower_gemm(node: Node, ctx: LowerCtx) -> None:
    """Gemm(A [1,K], B const, C const) -> InnerProduct with weight ``alpha * op(B)^T`` ``(N,K)``
    and bias ``beta * C``."""
    b = np.asarray(node.const_input(1), dtype=_F32)
    w, alpha = (b if node.attrs.get("transB", 0) else b.T), float(node.attrs.get("alpha", 1.0))
    w = w if alpha == 1.0 else w * alpha
    _inner_product(node, ctx, ctx.inp(node.inputs[0]), w, _gemm_bias(node, w.shape[0]))


def _matmul_ip(node: Node) -> bool:
    """MatMul(A [1,K] or [1,M,K], B const 2-D) is an InnerProduct."""
    return node.inputs[1].is_const and len(node.inputs[1].shape) == 2 \
        and not node.inputs[0].is_const and len(node.inputs[0].shape) in (2, 3)


def _matmul_ok(node: Node) -> bool:
    a, b = node.inputs[0].shape, node.inputs[1].shape
    if _matmul_ip(node):
        return True
    return len(a) >= 2 and len(b) >= 2 and max(len(a), len(b)) >= 3 and not (
        node.inputs[0].is_const and node.inputs[1].is_const)


@lowering("ncnn", "MatMul", emits=("InnerProduct", "MatMul", "MemoryData"), checks=checks(
    Check("A and B have rank >= 2 and one of them rank >= 3 unless B is a constant matrix",
          _matmul_ok, "ncnn.attr")))
def lower_matmul(node: Node, ctx: LowerCtx) -> None:
    """MatMul -> InnerProduct (constant 2-D B, A of rank 2 or 3), else ncnn ``MatMul`` with both
    operands brought to the output rank (constants through MemoryData)."""
    a, b = node.inputs
    if _matmul_ip(node):
        w = np.asarray(b.const, dtype=_F32).T  # a view; no second copy of the weights
        _inner_product(node, ctx, ctx.inp(a), w, None)
        return
    r = len(node.outputs[0].shape)
    ins = [ctx.inp(v, aligned(v.shape, r)[1:]) for v in (a, b)]
    ctx.emit("MatMul", node.name, ins, [ctx.out(node.outputs[0])], {0: 0})


@lowering("ncnn", "BatchNormalization", emits=("BatchNorm",), checks=checks(
    const_inputs(1, 2, 3, 4, text="scale, bias, mean and var are constants")))
def lower_batchnorm(node: Node, ctx: LowerCtx) -> None:
    """BatchNormalization (inference) -> ``BatchNorm 0=channels 1=eps``; raw slope, mean, var,
    bias (src/layer/batchnorm.cpp ``load_model`` order). Keeps the input blob's shape (per
    channel on 3-D, per row on 2-D, per element on 1-D)."""
    scale, bias, mean, var = (np.asarray(node.const_input(i), dtype=_F32).reshape(-1)
                              for i in (1, 2, 3, 4))
    layer = ctx.unary(node, "BatchNorm", {0: scale.size, 1: float(node.attrs.get("epsilon",
                                                                                  1e-5))})
    layer.weights.extend((arr, False) for arr in (scale, mean, var, bias))
