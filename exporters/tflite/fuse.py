"""Target-only peephole fusions on the lowered :class:`~exporters.tflite.model.TModel`.

Run once after lowering, in this order:

0. A channel-shuffle GATHER -> RESHAPE / TRANSPOSE chain (:mod:`.shuffle`: XNNPACK does not
   delegate GATHER; measured 2x faster on shufflenet_v2).
1. TRANSPOSE of TRANSPOSE -> one TRANSPOSE; RESHAPE of RESHAPE -> one RESHAPE; a TRANSPOSE
   that moves only unit axes -> RESHAPE; identity TRANSPOSE / same-shape RESHAPE removed
   (to a fixed point).
2. ``MEAN`` / ``SUM`` / ``REDUCE_MAX`` with ``keep_dims`` whose only reader is a RESHAPE
   dropping exactly the reduced unit axes -> the reduction with ``keep_dims=False``
   (GlobalAveragePool + Flatten -> one MEAN).
3. ADD / SUB of a per-channel constant after a CONV_2D / DEPTHWISE_CONV_2D /
   FULLY_CONNECTED / TRANSPOSE_CONV is folded into its bias (HardSigmoid's ``+ 3`` after the
   squeeze-excite convolution of MobileNetV3).
4. ``fused_activation_function``: RELU / RELU6 / RELU_N1_TO_1 reading the only output of a
   CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV, ADD, SUB, MUL, DIV,
   MAX_POOL_2D or AVERAGE_POOL_2D is folded into it (``ActivationFunctionType`` RELU 1,
   RELU_N1_TO_1 2, RELU6 3). Not fused: TANH (the float kernels ignore a fused TANH: CONV_2D
   and ADD returned un-activated values, verified in LiteRT 2.3.0) and anything into
   CONCATENATION (the builtin kernel rejects a fused activation, XNNPACK ignores it).

A tensor that is a graph output keeps its producer; nothing changes the computed values.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .model import TModel, TOp
from .shuffle import rewrite_shuffles

ACTIVATIONS = {"RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
FUSABLE = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "ADD", "SUB",
           "MUL", "DIV", "MAX_POOL_2D", "AVERAGE_POOL_2D"}
REDUCERS = {"MEAN", "SUM", "REDUCE_MAX"}


def _only_reader(model: TModel, t: int) -> Optional[TOp]:
    """The single op reading tensor ``t`` when ``t`` is no graph output, else None."""
    if t in model.outputs:
        return None
    readers = model.consumers().get(t, [])
    return readers[0] if len(readers) == 1 and readers[0].inputs.count(t) == 1 else None


def _drop(model: TModel, op: TOp) -> None:
    model.ops = [o for o in model.ops if o is not op]


def fuse_activations(model: TModel) -> int:
    """Fold standalone clamping activations into their producer (also through one RESHAPE
    in between, which commutes with an elementwise clamp); returns the count."""
    n = 0
    for op in list(model.ops):
        if op.code not in FUSABLE or op.fields.get("FusedActivationFunction", 0):
            continue
        act = _only_reader(model, op.outputs[0])
        via = None
        if act is not None and act.code == "RESHAPE":
            via, act = act, _only_reader(model, act.outputs[0])
        if act is None or act.code not in ACTIVATIONS:
            continue
        op.fields["FusedActivationFunction"] = ACTIVATIONS[act.code]
        (via or op).outputs = list(act.outputs)
        _drop(model, act)
        n += 1
    return n


def _data(model: TModel, t: int) -> Optional[np.ndarray]:
    return model.tensors[t].data if t >= 0 else None


def fuse_reduce_reshape(model: TModel) -> int:
    """Reduction with keep_dims + RESHAPE dropping the reduced axes -> keep_dims False."""
    n = 0
    for op in list(model.ops):
        if op.code not in REDUCERS or not op.fields.get("KeepDims"):
            continue
        rs = _only_reader(model, op.outputs[0])
        axes = _data(model, op.inputs[1])
        if rs is None or rs.code != "RESHAPE" or axes is None:
            continue
        src = model.tensors[op.inputs[0]].shape
        gone = {int(a) % len(src) for a in np.asarray(axes).reshape(-1)}
        kept = tuple(d for i, d in enumerate(src) if i not in gone)
        if tuple(model.tensors[rs.outputs[0]].shape) != kept:
            continue
        op.fields["KeepDims"] = False
        op.outputs = list(rs.outputs)
        _drop(model, rs)
        n += 1
    return n


BIASED = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0, "TRANSPOSE_CONV": 0}


def _channel_const(model: TModel, t: int, n: int) -> Optional[np.ndarray]:
    """A float32 constant ``t`` broadcasting only along the last axis to ``n`` channels, as
    ``[n]``; None otherwise."""
    arr = _data(model, t)
    if arr is None or arr.dtype != np.float32 or model.tensors[t].quant is not None:
        return None
    if arr.size not in (1, n) or (arr.ndim and arr.size == n and arr.shape[-1] != n):
        return None
    return np.broadcast_to(arr.reshape(-1), (n,)).astype(np.float32)


def _bias_slot(op: TOp) -> int:
    return 3 if op.code == "TRANSPOSE_CONV" else 2


def fold_bias_add(model: TModel) -> int:
    """ADD / SUB of a per-channel (or scalar) constant reading the only output of a
    CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / TRANSPOSE_CONV without fused activation
    -> added into that op's bias (a new bias constant); the ADD's activation moves along."""
    n = 0
    for op in list(model.ops):
        if op.code not in BIASED or op.fields.get("FusedActivationFunction", 0):
            continue
        y = op.outputs[0]
        add = _only_reader(model, y)
        if add is None or add.code not in ("ADD", "SUB") or \
                (add.inputs[0] != y and add.code == "SUB"):
            continue
        other = add.inputs[1] if add.inputs[0] == y else add.inputs[0]
        shape = model.tensors[y].shape
        c = _channel_const(model, other, shape[-1])
        slot = _bias_slot(op)
        ins = list(op.inputs) + [-1] * (slot + 1 - len(op.inputs))
        old = _data(model, ins[slot])
        if c is None or (ins[slot] >= 0 and old is None) or \
                np.asarray(_data(model, other)).ndim > len(shape):
            continue
        bias = (np.zeros(shape[-1], np.float32) if old is None else old.astype(np.float32)) + \
            (c if add.code == "ADD" else -c)
        ins[slot] = model.const(bias, model.tensors[y].name + "/bias")
        op.inputs = ins
        if add.fields.get("FusedActivationFunction", 0):
            op.fields["FusedActivationFunction"] = add.fields["FusedActivationFunction"]
        op.outputs = list(add.outputs)
        _drop(model, add)
        n += 1
    return n


def _bypass(model: TModel, op: TOp) -> bool:
    """Remove identity-like ``op`` (output == input values); False when it must stay."""
    src, dst = op.inputs[0], op.outputs[0]
    if dst not in model.outputs:
        for o in model.ops:
            o.inputs = [src if i == dst else i for i in o.inputs]
        _drop(model, op)
        return True
    prod = model.producers().get(src)
    if prod is not None and src not in model.outputs and len(model.consumers()[src]) == 1:
        prod.outputs = [dst if t == src else t for t in prod.outputs]
        _drop(model, op)
        return True
    return False


def _perm(model: TModel, op: TOp) -> Optional[list]:
    p = _data(model, op.inputs[1])
    return None if p is None else [int(v) for v in np.asarray(p).reshape(-1)]


def _simplify_one(model: TModel, op: TOp) -> bool:
    """One rewrite of a TRANSPOSE / RESHAPE ``op``; True when something changed."""
    src_shape = model.tensors[op.inputs[0]].shape
    dst_shape = model.tensors[op.outputs[0]].shape
    if op.code == "RESHAPE" and tuple(src_shape) == tuple(dst_shape):
        return _bypass(model, op)
    prev = model.producers().get(op.inputs[0])
    single = prev is not None and _only_reader(model, op.inputs[0]) is op
    if op.code == "TRANSPOSE":
        perm = _perm(model, op)
        if perm is None:
            return False
        if perm == sorted(perm):
            return _bypass(model, op)
        moved = [p for p in perm if src_shape[p] != 1]
        if moved == sorted(moved):
            _as_reshape(model, op, dst_shape)
            return True
        if single and prev.code == "TRANSPOSE" and _perm(model, prev) is not None:
            first = _perm(model, prev)
            op.inputs = [prev.inputs[0], _new_perm(model, [first[p] for p in perm])]
            return True
    if op.code == "RESHAPE" and single and prev.code == "RESHAPE":
        op.inputs = [prev.inputs[0], op.inputs[1]]
        return True
    return False


def _new_perm(model: TModel, perm: list) -> int:
    return model.const(np.asarray(perm, np.int32), "perm")


def _as_reshape(model: TModel, op: TOp, shape) -> None:
    op.code, op.options, op.fields = "RESHAPE", None, {}
    op.inputs = [op.inputs[0], model.const(np.asarray(shape, np.int32), "shape")]


def simplify_movements(model: TModel) -> int:
    """Merge / cancel TRANSPOSE and RESHAPE chains to a fixed point; returns the count."""
    n, changed = 0, True
    while changed:
        changed = False
        for op in list(model.ops):
            if op.code in ("TRANSPOSE", "RESHAPE") and op in model.ops and \
                    _simplify_one(model, op):
                n += 1
                changed = True
        _dead(model)
    return n


def _dead(model: TModel) -> None:
    """Drop ops none of whose outputs is read or is a graph output."""
    while True:
        readers = model.consumers()
        live = [o for o in model.ops if any(t in model.outputs or t in readers
                                            for t in o.outputs)]
        if len(live) == len(model.ops):
            return
        model.ops = live


def run(model: TModel) -> dict:
    """All fusions in order, then unused tensors dropped; returns counts per fusion."""
    counts = {"rewrite_shuffles": rewrite_shuffles(model),
              "simplify_movements": simplify_movements(model),
              "fuse_reduce_reshape": fuse_reduce_reshape(model),
              "fold_bias_add": fold_bias_add(model),
              "fuse_activations": fuse_activations(model)}
    _dead(model)
    model.compact()
    return counts
