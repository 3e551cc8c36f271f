"""Weight precision of the TFLite exporter.

* ``fp32`` (default): float weights are FLOAT32 constants.
* ``fp16`` (``--fp16``): float constants with at least :data:`FP16_MIN` elements are stored
  as FLOAT16 and turned back into FLOAT32 by a ``DEQUANTIZE`` operator (the kernels have no
  implicit dequantization: a FLOAT16 filter fed straight to CONV_2D runs and returns garbage,
  shared/docs/formats/tflite.md rule 4).
* ``dynamic`` (``--quantize dynamic``, dynamic-range quantization): weights with at least
  :data:`INT8_MIN` elements become symmetric INT8 with one scale per output channel
  (``QuantizationParameters.scale[c]``, ``zero_point`` 0, ``quantized_dimension`` = the
  output-channel axis: 0 for CONV_2D ``[O,kh,kw,I]`` and FULLY_CONNECTED ``[O,I]``, 3 for
  DEPTHWISE_CONV_2D ``[1,kh,kw,C*M]``). CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED read
  them directly (their "hybrid" kernels quantize the activations on the fly); other large
  weights (TRANSPOSE_CONV filters, constant MatMul operands) go through ``DEQUANTIZE``;
  biases and small constants stay FLOAT32. Same threshold as TensorFlow's converter
  (1024 elements). Verified tolerance: see tests/test_tflite_export.py (``DYNAMIC_ATOL``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .model import Quant

FP16_MIN = 16
INT8_MIN = 1024


def precision_of(options: Any) -> str:
    """``"dynamic"``, ``"fp16"`` or ``"fp32"`` from ConvertOptions (quantize wins)."""
    if getattr(options, "quantize", "") == "dynamic":
        return "dynamic"
    return "fp16" if getattr(options, "fp16", False) else "fp32"


def int8_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8: ``(q, scale)`` with ``w ~= q * scale`` along ``axis``;
    ``scale = max|w| / 127`` per channel (1.0 for an all-zero channel)."""
    w = np.asarray(w, np.float32)
    others = tuple(a for a in range(w.ndim) if a != axis)
    amax = np.abs(w).max(axis=others) if others else np.abs(w)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def _dequantize(ctx, const_index: int, shape, name: str) -> int:
    out = ctx.model.tensor(name, shape, "float32")
    ctx.op("DEQUANTIZE", [const_index], [out])
    return out


def weight(ctx, w: np.ndarray, name: str, kind: str, axis: int) -> int:
    """Tensor index of float weight ``w`` in the precision of ``ctx.precision``; ``kind`` is
    ``"hybrid"`` (read as int8 by the op itself under dynamic quantization), ``"weight"``
    (large non-hybrid weight: int8 + DEQUANTIZE) or ``"other"`` (kept float32 under dynamic
    quantization)."""
    mode = ctx.precision
    if w.dtype.kind != "f":
        return ctx.const(w, name)
    w = np.ascontiguousarray(w, dtype=np.float32)
    if mode == "dynamic" and kind in ("hybrid", "weight") and w.size >= INT8_MIN:
        q, scale = int8_per_channel(w, axis)
        t = ctx.model.const(q, name, quant=Quant(scale, np.zeros(len(scale), np.int64), axis))
        if kind == "hybrid":
            return t
        return _dequantize(ctx, t, w.shape, f"{name}/dequantize")
    if mode == "fp16" and w.size >= FP16_MIN:
        t = ctx.const(w.astype(np.float16), f"{name}/fp16")
        return _dequantize(ctx, t, w.shape, name)
    return ctx.const(w, name)
