"""Caffe frontend: a deploy ``.prototxt`` plus its trained ``.caffemodel`` -> IR.

Modules: :mod:`.reader` (protobuf text / binary parsing with our own schema ``caffe.proto``,
generated into ``caffe_pb2.py`` by ``gen_pb2.sh``; layer records; V1 ``layers``; inputs),
:mod:`.walk` (SSA walk, weights joined by layer name, issue collection), :mod:`.runner`
(OpenCV's Caffe importer for verification), and one converter module per layer family:
:mod:`.ops_conv`, :mod:`.ops_activation`, :mod:`.ops_shape`, :mod:`.ops_detection` (SSD).
"""
from __future__ import annotations

from pathlib import Path

from converter.errors import UsageError

from . import ops_activation, ops_conv, ops_detection, ops_shape  # noqa: F401
from .reader import parse_caffemodel, parse_prototxt
from .runner import source_runner
from .walk import walk

FRAMEWORK = "caffe"


def weights_of(path: Path, options) -> Path:
    """The ``.caffemodel`` of ``path``: ``--weights``, else ``<stem>.caffemodel`` beside it.

    Raises:
        UsageError: the file does not exist.
    """
    given = getattr(options, "weights", None)
    w = Path(given) if given else path.with_suffix(".caffemodel")
    if not w.is_file():
        how = "" if given else f" (looked for {w.name} beside the prototxt)"
        raise UsageError(f"{path}: no weights file {w}{how}",
                         "pass --weights FILE.caffemodel")
    return w


def load(path: Path, options):
    """Load a Caffe deploy prototxt and its weights and translate them to IR.

    Returns:
        :class:`frontends.LoadedModel` whose ``run_source`` runs the same files in OpenCV.
    Raises:
        UsageError: no weights file, or an input without a shape (exit 2);
        UnreadableModelError: a prototxt syntax error (line and layer named), a corrupt or
            truncated caffemodel, weights missing or mis-shaped for a deploy layer (exit 5);
        UnsupportedOpsError: every layer type or parameter mconv cannot convert (exit 3).
    """
    from frontends import LoadedModel

    path = Path(path)
    weights = weights_of(path, options)
    net = parse_prototxt(path)
    wnet = parse_caffemodel(weights)
    res = walk(net, wnet, path, weights, dict(getattr(options, "input_shapes", {}) or {}),
               path.stem)
    blobs = {v.name: b for v, b in zip(res.graph.inputs, res.input_blobs)}
    return LoadedModel(res.graph, source_runner(path, weights, blobs, res.output_layers),
                       FRAMEWORK, res.counts)
