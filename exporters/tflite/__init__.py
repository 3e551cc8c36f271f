"""TFLite exporter: IR graph -> ``<stem>.tflite`` (FlatBuffer, schema v3, ``TFL3``), run in
LiteRT (``ai_edge_litert``).

Contract of :mod:`exporters`: :func:`scan`, :func:`export`, :func:`runtime_available`,
:func:`run`, :func:`describe`. Modules: ``layout.py`` (the one NCHW -> NHWC pass),
``lower*.py`` (IR -> TFLite builtins, registered lowerings), ``context.py`` (tensor map,
operand layout, constants), ``geometry.py`` (SAME/VALID vs explicit padding), ``quant.py``
(fp16 / dynamic int8 weights), ``fuse.py`` (fused activations, reshape/transpose peepholes),
``model.py`` (the lowered graph), ``writer.py`` (FlatBuffer serializer), ``runtime.py``
(LiteRT Interpreter). Format facts: shared/docs/formats/tflite.md; schema:
tensorflow/tensorflow ``tensorflow/compiler/mlir/lite/schema/schema.fbs``.

Options used: ``io_layout`` (``"nhwc"`` default: rank-4 graph inputs/outputs are NHWC;
``"nchw"`` keeps the source layout at the boundary), ``fp16``, ``quantize`` (``"dynamic"``).
The ``tflite`` package is needed to export (not to scan), ``ai_edge_litert`` to run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from converter.errors import Issue, UnsupportedOpsError, UsageError
from converter.ir import Graph

from . import writer
from .lower import lower_graph
from .lower import scan as _scan
from .runtime import run, runtime_available

__all__ = ["scan", "export", "run", "runtime_available", "describe"]

#: Operators :func:`describe` leaves out: DEQUANTIZE of a constant is weight storage.
NOT_COUNTED = ("DEQUANTIZE",)


def scan(graph: Graph, options: Any = None) -> list[Issue]:
    """Pre-flight scan: every IR node TFLite cannot take (no lowering, or a failed check such
    as ``tflite.dynamic``) and every graph input/output it cannot declare; nothing is written
    and neither tflite nor LiteRT is imported."""
    return _scan(graph, options)


def _writer_available() -> bool:
    try:
        import flatbuffers  # noqa: F401
        import tflite  # noqa: F401
    except Exception:
        return False
    return True


def export(graph: Graph, out_dir, stem: str, options: Any = None) -> list[Path]:
    """Lower ``graph`` and write ``<stem>.tflite`` into ``out_dir``.

    Returns:
        ``[tflite_path]``.

    Raises:
        UnsupportedOpsError: the scan found problems (nothing is written).
        UsageError: the ``tflite`` / ``flatbuffers`` packages are not installed.
        OSError: writing failed (no partial file is left).
    """
    issues = scan(graph, options)
    if issues:
        raise UnsupportedOpsError(issues)
    if not _writer_available():
        raise UsageError("the tflite target needs the tflite and flatbuffers packages",
                         "pip install 'mconv[runtimes]'")
    model = lower_graph(graph, options)
    return writer.write(model, Path(out_dir), stem)


def op_counts(data: bytes) -> dict[str, int]:
    """Operator counts of ``.tflite`` bytes by BuiltinOperator name (all operators)."""
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    m = tflite.Model.GetRootAsModel(data, 0)
    sg = m.Subgraphs(0)
    counts: dict[str, int] = {}
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = m.OperatorCodes(op.OpcodeIndex())
        name = names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]
        if name in NOT_COUNTED and m.Buffers(sg.Tensors(op.Inputs(0)).Buffer()).DataLength():
            continue
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def describe(files: list[Path]) -> dict:
    """Operator counts of the written ``.tflite``: ``{"ops": n, "op_counts": {name: n}}``;
    DEQUANTIZE of constant weights (fp16 / int8 storage) is not counted."""
    path = next(Path(f) for f in files if Path(f).suffix == ".tflite")
    counts = op_counts(path.read_bytes())
    return {"ops": sum(counts.values()), "op_counts": counts}
