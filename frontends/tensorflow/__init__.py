"""TensorFlow frontend: Keras ``.keras`` / ``.h5`` / ``.hdf5``, SavedModel folders and frozen
GraphDef ``.pb`` files -> IR.

Every source is first turned into a frozen inference GraphDef (:mod:`.source`), then one
walker (:mod:`.walk`) translates it with one converter module per op family:
:mod:`.ops_conv` (conv / pool / batch norm / matmul), :mod:`.ops_activation`,
:mod:`.ops_elementwise` (math, reductions), :mod:`.ops_shape`, :mod:`.ops_resize`;
:mod:`.ops_random` resolves dropout subgraphs, :mod:`.fold` folds all-constant nodes with
TensorFlow. The graph is NHWC-in-Transposes (see :mod:`.walk`); ``graph.source_layout`` is
``"nhwc"``. ``--input-shape`` for TensorFlow models is given in the source layout (NHWC for
images). TensorFlow is imported only inside functions.
"""
from __future__ import annotations

import os
from pathlib import Path

from converter.errors import UsageError

from . import ops_activation, ops_conv, ops_elementwise, ops_resize, ops_shape  # noqa: F401

FRAMEWORK = "tensorflow"


def load(path: Path, options):
    """Load a Keras file, SavedModel folder or frozen GraphDef and translate it to IR.

    Returns:
        :class:`frontends.LoadedModel` whose ``run_source`` runs the source model in
        TensorFlow (``training=False``) on IR-layout (NCHW) inputs and returns IR-layout
        outputs in graph output order.
    Raises:
        UnreadableModelError: not a Keras / SavedModel / GraphDef, or variables missing
            (exit 5); UsageError: TensorFlow not installed, unknown signature, names not in
            the graph, an input without a static shape (exit 2); UnsupportedOpsError: every op without a
            converter (exit 3).
    """
    from frontends import LoadedModel

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's C++ INFO/WARNING lines
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise UsageError(f"{path}: reading TensorFlow / Keras models needs TensorFlow, which "
                         "is not installed", "pip install 'mconv[tensorflow]'") from None
    from .source import graph_def_spec, keras_spec, saved_model_spec
    from .walk import walk

    path = Path(path)
    if path.is_dir():
        spec, run = saved_model_spec(path, options)
    elif path.suffix.lower() == ".pb":
        spec, run = graph_def_spec(path, options)
    else:
        spec, run = keras_spec(path, options)
    graph, counts, _ = walk(spec, dict(options.input_shapes or {}), path)
    graph.source_layout = "nhwc"
    return LoadedModel(graph, run, FRAMEWORK, counts)
