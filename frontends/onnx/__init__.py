"""ONNX frontend: ``.onnx`` files (any ai.onnx opset the installed ``onnx`` package knows;
tested 6..26) -> IR (the IR *is* ONNX, opset 18+ operand form, so most ops map 1:1 once their
attribute forms are normalized).

Modules: :mod:`.reader` (parse + structural checks), :mod:`.extdata` (external data read
with np.fromfile), :mod:`.walk` (topological walk, issue collection, names), :mod:`.fold`
(load-time constant folding), :mod:`.runner` (the source model in onnxruntime for
verification), and one converter module per op family:
:mod:`.ops_conv` (conv / pool / normalization / gemm), :mod:`.ops_activation`,
:mod:`.ops_elementwise`, :mod:`.ops_shape`, :mod:`.ops_resize` (resize / pad / reduce).
onnxruntime and onnx.reference are imported only when the source model runs.
"""
from __future__ import annotations

from pathlib import Path

from . import ops_activation, ops_conv, ops_elementwise, ops_resize, ops_shape  # noqa: F401
from .reader import read_model
from .runner import source_runner
from .walk import walk

FRAMEWORK = "onnx"


def load(path: Path, options):
    """Load an ONNX model file and translate it to IR.

    Returns:
        :class:`frontends.LoadedModel` whose ``run_source`` runs the original file in
        onnxruntime (CPU), or in onnx.reference when onnxruntime cannot load it.
    Raises:
        UnreadableModelError: empty / truncated / not ONNX / missing external data (exit 5).
        UsageError: an input without a static shape and no ``--input-shape`` (exit 2).
        UnsupportedOpsError: every node outside the IR or of another domain (exit 3).
    """
    from frontends import LoadedModel

    path = Path(path)
    model, external = read_model(path)
    graph, counts = walk(model, dict(getattr(options, "input_shapes", {}) or {}),
                         path.stem, path, external)
    init_names = {t.name for t in model.graph.initializer}
    onnx_inputs = [i.name for i in model.graph.input if i.name not in init_names]
    input_names = {v.name: n for v, n in zip(graph.inputs, onnx_inputs)}
    outputs = [o.name for o in model.graph.output]
    return LoadedModel(graph, source_runner(path, input_names, outputs), FRAMEWORK, counts)
