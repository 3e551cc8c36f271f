"""Verification: run the source model and the written files on the same inputs and compare.

Inputs are seeded standard-normal arrays (``numpy.random.default_rng(seed)``) of each graph
input's shape and dtype, or arrays from a user ``.npz``. For every output the figures are
max absolute error, max relative error (max abs error / max |reference|) and cosine
similarity. An output passes when every element satisfies
``|got - ref| <= atol * max(1, max|ref|) + rtol * |ref|``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import UsageError
from .ir import Graph


@dataclass
class OutputCheck:
    """Comparison figures of one output of one target."""

    target: str
    output: str
    shape: list
    max_abs: float
    max_rel: float
    cosine: float
    ref_max: float
    tolerance: float
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def make_inputs(graph: Graph, seed: int = 0, npz: Optional[Path] = None) -> dict:
    """Inputs for every graph input, by name: from ``npz`` when given, else seeded normal.

    Raises:
        UsageError: the ``.npz`` misses an input or has a wrong shape.
    """
    if npz is not None:
        data = np.load(npz, allow_pickle=False)
        out = {}
        for v in graph.inputs:
            if v.name not in data:
                raise UsageError(f"{npz}: no array named {v.name!r}",
                                 f"the model inputs are {[i.name for i in graph.inputs]}")
            arr = np.asarray(data[v.name], dtype=v.dtype)
            if tuple(arr.shape) != tuple(v.shape):
                raise UsageError(f"{npz}: {v.name} has shape {arr.shape}, model wants {v.shape}")
            out[v.name] = arr
        return out
    rng = np.random.default_rng(seed)
    return {v.name: rng.standard_normal(v.shape).astype(v.dtype) for v in graph.inputs}


def compare(target: str, name: str, ref: np.ndarray, got: np.ndarray, atol: float,
            rtol: float = 0.0) -> OutputCheck:
    """Figures for one output; a shape mismatch fails with infinite error."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    ref_max = float(np.abs(ref).max()) if ref.size else 0.0
    tol = atol * max(1.0, ref_max)
    if ref.shape != got.shape:
        if ref.size == got.size:
            got = got.reshape(ref.shape)
        else:
            return OutputCheck(target, name, list(ref.shape), float("inf"), float("inf"), 0.0,
                               ref_max, tol, False)
    diff = np.abs(got - ref)
    max_abs = float(diff.max()) if diff.size else 0.0
    denom = float(np.linalg.norm(ref) * np.linalg.norm(got))
    cos = float(np.dot(ref.ravel(), got.ravel()) / denom) if denom > 0 else (
        1.0 if max_abs == 0 else 0.0)
    finite = bool(np.all(np.isfinite(got)))
    passed = finite and bool(np.all(diff <= tol + rtol * np.abs(ref)))
    return OutputCheck(target, name, list(ref.shape), max_abs, max_abs / max(ref_max, 1e-12),
                       cos, ref_max, tol, passed)


def verify_target(target: str, graph: Graph, references: list, got: list, atol: float,
                  rtol: float) -> list[OutputCheck]:
    """Compare a target's outputs (graph output order) with the source's references;
    detection lists are first put in one canonical row order
    (:func:`converter.ops_detection.comparable`)."""
    from .ops_detection import comparable

    return [compare(target, v.name, *comparable(v, r, g), atol, rtol)
            for v, r, g in zip(graph.outputs, references, got)]
