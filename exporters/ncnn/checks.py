"""Support checks shared by the ncnn lowerings (each a :class:`converter.registry.Check`).

ncnn blobs are float ``Mat`` objects with 1..4 dims and no batch dimension
(Tencent/ncnn src/mat.h; shared/docs/formats/ncnn.md §2), so every non-constant tensor a
lowering touches must be float32, statically shaped, have batch dim 0 == 1 and rank <= 5.
"""
from __future__ import annotations

import functools
from typing import Optional

import numpy as np

from converter import checks as _shared
from converter.checks import axis_of, node_tensors
from converter.ir import Node, Value
from converter.registry import Check


def tensors(node: Node) -> list[Value]:
    """The tensors a lowering computes: see :func:`converter.checks.node_tensors`."""
    return node_tensors(node, consts=False)


const_inputs = functools.partial(_shared.const_inputs, "ncnn")
rank_in = functools.partial(_shared.rank_in, "ncnn")


def _batch_ok(node: Node) -> bool:
    return all(v.shape is not None and len(v.shape) >= 1 and v.shape[0] == 1
               for v in tensors(node))


def _static_ok(node: Node) -> bool:
    return all(v.shape is not None and all(isinstance(d, int) and d > 0 for d in v.shape)
               for v in tensors(node))


def _rank_ok(node: Node) -> bool:
    return all(2 <= len(v.shape) <= 5 or tuple(v.shape) == (1,) for v in tensors(node))


def _dtype_ok(node: Node) -> bool:
    return all(v.dtype in ("float32", "float16") for v in tensors(node))


BATCH = Check("every tensor has batch dim 0 == 1 (ncnn blobs have no batch dimension)",
              _batch_ok, "ncnn.batch")
STATIC = Check("all tensor shapes are static (give --input-shape)", _static_ok, "ncnn.dynamic")
RANK = Check("tensor rank is 2..5 (ncnn blobs have 1..4 dims without the batch)",
             _rank_ok, "ncnn.rank")
DTYPE = Check("tensors are float (ncnn blobs hold float data)", _dtype_ok, "ncnn.dtype")

COMMON = (BATCH, STATIC, RANK, DTYPE)


def checks(*extra: Check) -> tuple:
    """The common checks followed by ``extra``."""
    return COMMON + tuple(extra)


def scalar_of(node: Node, i: int) -> Optional[float]:
    """The float value of a constant scalar (size-1) input ``i``, None when absent."""
    v = node.input(i)
    if v is None:
        return None
    arr = np.asarray(v.const)
    if arr.size != 1:
        raise ValueError(f"{node.name}: input {i} is not a scalar")
    return float(arr.reshape(()))


NOT_BATCH_AXIS = Check("the axis is not the batch axis 0", lambda n: axis_of(n) != 0,
                       "ncnn.batch_axis")
