"""The lowered TFLite graph: tensors and builtin operators in physical (NHWC) layout, before
serialization. :mod:`.writer` turns a :class:`TModel` into FlatBuffer bytes; the peephole
fusions in :mod:`.fuse` rewrite it in place.

Format source: tensorflow/tensorflow ``tensorflow/compiler/mlir/lite/schema/schema.fbs``
(``Model``, ``SubGraph``, ``Tensor``, ``Operator``, ``QuantizationParameters``); facts recorded
in shared/docs/formats/tflite.md. Operators are named by their ``BuiltinOperator`` enum name
(``"CONV_2D"``), option tables by their schema table name (``"Conv2DOptions"``) with fields in
the generated builders' CamelCase spelling (``"StrideW"``, ``"FusedActivationFunction"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from converter.names import NameSet

#: numpy dtype name -> ``TensorType`` (schema.fbs ``enum TensorType``).
TENSOR_TYPES = {"float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "bool": 6,
                "int16": 7, "int8": 9, "float64": 10}

#: ``ActivationFunctionType`` (schema.fbs): fused activations the float kernels apply.
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3
#: ``Padding`` (schema.fbs).
SAME, VALID = 0, 1


@dataclass
class Quant:
    """Symmetric int8 quantization of a constant: ``real = scale[c] * q`` along ``axis``
    (schema.fbs ``QuantizationParameters``: scale, zero_point, quantized_dimension)."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int = 0


@dataclass
class TTensor:
    """One TFLite tensor.

    Attributes:
        name: unique name (graph inputs/outputs keep the IR value names).
        shape: static physical shape (NHWC for image tensors).
        dtype: numpy dtype name, a key of :data:`TENSOR_TYPES`.
        data: the constant's array (row-major, physical layout), None for activations.
        quant: int8 quantization parameters of a quantized constant, else None.
    """

    name: str
    shape: tuple
    dtype: str = "float32"
    data: Optional[np.ndarray] = None
    quant: Optional[Quant] = None


@dataclass
class TOp:
    """One builtin operator: ``code`` (BuiltinOperator name), input tensor indices (-1 = an
    omitted optional input), output indices, the option table name and its fields."""

    code: str
    inputs: list
    outputs: list
    options: Optional[str] = None
    fields: dict = field(default_factory=dict)
    version: int = 1


class TModel:
    """A single-subgraph TFLite model under construction.

    ``inputs`` / ``outputs`` are tensor indices in IR graph order, ``input_names`` /
    ``output_names`` the IR names the ``serving_default`` signature maps to them.
    """

    def __init__(self, name: str = "main"):
        self.name = name
        self.tensors: list[TTensor] = []
        self.ops: list[TOp] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self.description = ""
        self.metadata: dict[str, bytes] = {}
        self._names = NameSet()

    def unique(self, base: str) -> str:
        """``base``, or ``base_N`` with the first free N."""
        return self._names.unique(base)

    def tensor(self, name: str, shape: Sequence[int], dtype: str = "float32") -> int:
        """Append an activation tensor; returns its index."""
        self.tensors.append(TTensor(self.unique(name), tuple(int(d) for d in shape), dtype))
        return len(self.tensors) - 1

    def const(self, array, name: str, dtype: Optional[str] = None,
              quant: Optional[Quant] = None) -> int:
        """Append a constant tensor holding ``array`` (cast to ``dtype``); returns its index."""
        arr = np.asarray(array, dtype=dtype) if dtype else np.asarray(array)
        arr = np.require(arr, requirements="C")
        self.tensors.append(TTensor(self.unique(name), tuple(arr.shape), str(arr.dtype), arr,
                                    quant))
        return len(self.tensors) - 1

    def op(self, code: str, inputs: Sequence[int], outputs: Sequence[int],
           options: Optional[str] = None, **fields) -> TOp:
        """Append an operator (operators are kept in execution order)."""
        o = TOp(code, list(inputs), list(outputs), options, dict(fields))
        self.ops.append(o)
        return o

    # ----------------------------------------------------------------- queries
    def producers(self) -> dict[int, TOp]:
        """Tensor index -> the operator writing it."""
        return {t: o for o in self.ops for t in o.outputs}

    def consumers(self) -> dict[int, list[TOp]]:
        """Tensor index -> operators reading it (in order, an op once per tensor)."""
        out: dict[int, list[TOp]] = {}
        for o in self.ops:
            for t in dict.fromkeys(i for i in o.inputs if i >= 0):
                out.setdefault(t, []).append(o)
        return out

    def op_counts(self) -> dict[str, int]:
        """Operator count per BuiltinOperator name, sorted by name."""
        counts: dict[str, int] = {}
        for o in self.ops:
            counts[o.code] = counts.get(o.code, 0) + 1
        return dict(sorted(counts.items()))

    def compact(self) -> None:
        """Drop tensors no operator, input or output references; renumber the rest in order."""
        used = set(self.inputs) | set(self.outputs)
        for o in self.ops:
            used.update(i for i in o.inputs if i >= 0)
            used.update(o.outputs)
        remap = {old: new for new, old in enumerate(sorted(used))}
        self.tensors = [self.tensors[i] for i in sorted(used)]
        for o in self.ops:
            o.inputs = [remap[i] if i >= 0 else -1 for i in o.inputs]
            o.outputs = [remap[i] for i in o.outputs]
        self.inputs = [remap[i] for i in self.inputs]
        self.outputs = [remap[i] for i in self.outputs]
