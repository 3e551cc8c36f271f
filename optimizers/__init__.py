"""Target-independent optimizer passes (pipeline step 2): rewrite rules run to a fixed point.

One rule family per file, math in each module docstring:
:mod:`.strip` (no-op and training-only nodes), :mod:`.fold_constants`, :mod:`.transposes`
(layout chains), :mod:`.sink_transposes` (NHWC regions of TensorFlow graphs; helpers in
``sink_transposes_*``), :mod:`.sink_transposes_exits` (``transpose_to_reshape``,
``reduce_keepdims``),
:mod:`.fold_batchnorm`, :mod:`.fold_affine` (per-channel Mul/Add/Sub/Div),
:mod:`.fold_pad` (zero Pad into the Conv's / MaxPool's pads).
Dead nodes are removed by ``Graph.cleanup()`` (the engine runs it after every round).

Rule names are stable strings: they key the fire counts in ``RewriteLog.counts`` and in the
JSON report. Order matters only between rules whose root is the same op (on each node the
first rule that fires wins, then the next node is visited); across ops the fixed point makes
the result independent of the order, e.g. Conv -> Mul -> BN folds the Mul first and the BN in
the next round.
"""
from __future__ import annotations

from typing import Optional

from converter.ir import Graph
from converter.rewrite import RewriteLog, run_rules
from . import fold_affine, fold_batchnorm, fold_constants, strip, transposes
from . import sink_transposes, sink_transposes_exits
from . import fuse_activations
from . import fold_pad

_R = {r.name: r for mod in (strip, fold_constants, transposes, fold_batchnorm, fold_affine,
                             sink_transposes, sink_transposes_exits) for r in mod.RULES}
_R.update({r.name: r for mod in (fuse_activations, fold_pad) for r in mod.RULES})

DEFAULT_RULES = (
    # strip first: no-ops hide patterns (Identity / Dropout between a Conv and its BN), and
    # stripping reuses the existing input instead of copying an array like folding would.
    _R["strip_dropout"],        # training-only: Dropout is the identity at inference
    _R["strip_identity"],       # Identity is what frontends emit for aliases and StopGradient
    _R["strip_cast"],           # casts to the same dtype come from dtype-generic source code
    _R["strip_reshape"],        # before compose_reshapes: dropping beats composing
    _R["strip_transpose"],      # before compose_transposes: same reason
    _R["strip_slice"],          # x[:] / x[0:INT_MAX] from traced indexing
    _R["strip_concat"],         # cat of one tensor (list-built concats)
    _R["strip_split"],          # split into one piece
    _R["strip_pad"],            # zero pads (padding computed as 0 for this input size)
    _R["strip_clip"],           # Clip(-inf, inf): clamp without bounds
    _R["strip_mul_one"],        # before fold_affine_mul: x*1 needs no weight rewrite
    _R["strip_add_zero"],       # before fold_affine_add: same reason
    _R["strip_sub_zero"],       # before fold_affine_sub: same reason
    _R["strip_div_one"],        # before fold_affine_div: same reason
    # then constants: shape operands built from constant arithmetic must be constants for
    # the shape rules below (they read Reshape / Squeeze operands as arrays).
    _R["fold_constants"],       # all-constant node -> constant (after strip: no copy needed)
    # layout chains: after folding, so their shape / axes operands are constants.
    _R["compose_transposes"],   # NHWC<->NCHW wrappers of TF graphs cancel pairwise
    _R["sink_transposes"],      # after compose (same root): moves TF NHWC Transposes through
                                # agnostic ops until they cancel; only when the count drops
    _R["transpose_to_reshape"],  # last for Transpose roots: a size-1-only move after a Reshape
    _R["reduce_keepdims"],      # Keras SE: mean(keepdims=0) -> Reshape(N,1,1,C) = keepdims=1
    _R["compose_reshapes"],     # Reshape(Reshape(x)) -> one Reshape
    _R["compose_flatten_reshape"],  # Reshape(Flatten(x)) -> one Reshape
    _R["cancel_squeeze_unsqueeze"],  # Unsqueeze(Squeeze(x, a), a) -> x
    _R["cancel_unsqueeze_squeeze"],  # Squeeze(Unsqueeze(x, a), a) -> x
    # fusions into weights: distinct root ops (BatchNormalization vs Mul/Add/Sub/Div), so the
    # order among them is free; they come last only for readability.
    _R["fold_pad_conv"],        # Pad(0) -> Conv: Keras ZeroPadding2D, F.pad (Conv root)
    _R["fold_pad_maxpool"],     # Pad(0) -> MaxPool only after x >= 0 (ResNet50 pool1_pad)
    _R["fold_batchnorm_conv"],          # Conv -> BN (every torchvision CNN)
    _R["fold_batchnorm_convtranspose"],  # ConvTranspose -> BN (decoders, GAN generators)
    _R["fold_batchnorm_gemm"],          # Gemm -> BatchNorm1d
    _R["fold_batchnorm_matmul"],        # MatMul(rank 2, const B) -> BN: becomes one Gemm
    _R["fold_affine_mul"],      # Keras 3 / Caffe Scale: BN split into Mul ...
    _R["fold_affine_add"],      # ... and Add,
    _R["fold_affine_sub"],      # ... or Sub (x - mean),
    _R["fold_affine_div"],      # ... or Div (x / sqrt(var + eps))
    # activation patterns TF graphs spell in arithmetic; Mul roots, after fold_affine_mul
    # (a Mul after a Conv is a scale, never one of these patterns).
    _R["fuse_gelu"],            # 0.5 x (1 + erf(x / sqrt 2)) -> Gelu
    _R["fuse_hard_swish"],      # x * hard_sigmoid(x) -> HardSwish (before hard_sigmoid: same root)
    _R["fuse_hard_sigmoid"],    # relu6(x + 3) / 6 -> HardSigmoid
)


def optimize(graph: Graph, log: Optional[RewriteLog] = None) -> RewriteLog:
    """Run :data:`DEFAULT_RULES` on ``graph`` in place to a fixed point, remove dead nodes and
    validate the result.

    Returns the :class:`~converter.rewrite.RewriteLog` (``log`` when given): fire counts per
    rule name and every decline reason.

    Raises:
        converter.ir.GraphError: the rewritten graph breaks an IR invariant (a bug in a rule).
    """
    log = run_rules(graph, list(DEFAULT_RULES), log=log)
    graph.cleanup()
    graph.validate()
    return log
