"""Read a Caffe ``.prototxt`` (protobuf text format) and ``.caffemodel`` (binary
``NetParameter``) into :class:`CaffeLayer` records with their weight blobs.

Facts (BVLC/caffe ``src/caffe/proto/caffe.proto``, ``src/caffe/util/upgrade_proto.cpp``,
``src/caffe/net.cpp``):

* a net lists ``layer`` (LayerParameter, type a string) or, in files older than 2015,
  ``layers`` (V1LayerParameter, type an enum: :data:`V1_TYPES`);
* inputs come from ``Input`` layers (``input_param.shape``: one shape per top, or one shape for
  all), or from the net's ``input`` names with ``input_shape`` (BlobShape) or ``input_dim``
  (four ints per input);
* a layer runs in the TEST phase unless an ``include`` rule names another phase or an
  ``exclude`` rule names TEST;
* a blob holds ``shape.dim`` (or the legacy ``num, channels, height, width``) and float
  ``data`` (or ``double_data``) in C order.

Trained ``.caffemodel`` files hold the training net (Data, loss, Dropout, Split layers); its
layers are matched to the deploy layers by name in :mod:`.walk`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from converter.errors import UnreadableModelError

#: V1LayerParameter.LayerType enum value names -> current layer type strings
#: (src/caffe/util/upgrade_proto.cpp, UpgradeV1LayerType).
V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU",
    "SIGMOID": "Sigmoid", "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence", "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH", "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold"}

#: Largest blob (elements) accepted from a file: beyond it the file is taken as corrupt.
MAX_BLOB = 2 ** 31 - 1


def pb2():
    """The generated schema module (imported lazily: protobuf loads only for Caffe files)."""
    from . import caffe_pb2

    return caffe_pb2


@dataclass
class CaffeLayer:
    """One deploy layer as converters and checks see it.

    Attributes:
        name: the layer name (as in the file); ``label``: its sanitized form for IR names.
        op: the layer type string (``"Convolution"``; V1 enums mapped by :data:`V1_TYPES`).
        bottoms / tops: blob names.
        p: the LayerParameter / V1LayerParameter message (``p.convolution_param`` ...).
        index: position in the file; ``v1``: from the legacy ``layers`` form.
        inputs: IR Values of the bottoms (set by the walk).
        blobs: weight arrays (set by the walk from the caffemodel, or inline blobs).
    """

    name: str
    op: str
    bottoms: list
    tops: list
    p: Any
    index: int
    v1: bool = False
    label: str = ""
    domain: str = ""
    inputs: list = field(default_factory=list)
    blobs: list = field(default_factory=list)

    def param(self, field_name: str) -> Any:
        """The ``*_param`` sub-message (its defaults when absent, or when the V1 form has no
        such field)."""
        try:
            return getattr(self.p, field_name)
        except AttributeError:
            return getattr(pb2().LayerParameter(), field_name)

    @property
    def x(self):
        """The first bottom's IR Value."""
        return self.inputs[0]


def _layer_line(text: str, line: int, col: int = 0) -> str:
    """The ``name:`` of the layer enclosing 1-based ``line`` / ``col`` of a prototxt (the
    last ``layer {`` / ``layers {`` starting before that point), or ``""``."""
    import re

    lines = text.splitlines(keepends=True)
    pos = sum(len(x) for x in lines[: max(0, line - 1)]) + max(0, col)
    starts = [m.start() for m in re.finditer(r"\blayers?\s*\{", text[:pos + 1])]
    if not starts:
        return ""
    m = re.search(r'\bname\s*:\s*"([^"]*)"', text[starts[-1]:])
    return m.group(1) if m else ""


def parse_prototxt(path: Path):
    """Parse a ``.prototxt`` into a NetParameter.

    Raises:
        UnreadableModelError: unreadable bytes, or a text-format error (naming line, column
            and the enclosing layer).
    """
    from google.protobuf import text_format

    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UnreadableModelError(f"{path}: not a readable UTF-8 prototxt ({e})",
                                   "pass a Caffe deploy .prototxt") from None
    net = pb2().NetParameter()
    try:
        text_format.Merge(text, net)
    except text_format.ParseError as e:
        line = getattr(e, "GetLine", lambda: 0)() or 0
        where = _layer_line(text, line, getattr(e, "GetColumn", lambda: 0)() or 0)
        near = f" in layer {where!r}" if where else ""
        raise UnreadableModelError(f"{path}: prototxt syntax error{near}: {e}",
                                   "fix the line; field names follow BVLC caffe.proto") from None
    except Exception as e:  # protobuf internals on hostile text (overflows, recursion)
        raise UnreadableModelError(f"{path}: cannot parse the prototxt ({type(e).__name__}: "
                                   f"{str(e)[:160]})", "pass a Caffe deploy .prototxt") from None
    return net


def parse_caffemodel(path: Path):
    """Parse a binary ``.caffemodel`` into a NetParameter.

    Raises:
        UnreadableModelError: unreadable, empty, truncated or not a NetParameter.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UnreadableModelError(f"{path}: cannot read the caffemodel ({e.strerror or e})",
                                   "pass --weights FILE.caffemodel") from None
    net = pb2().NetParameter()
    try:
        net.ParseFromString(data)
    except Exception as e:  # google.protobuf.message.DecodeError and hostile-byte failures
        raise UnreadableModelError(f"{path}: not a valid .caffemodel (truncated or corrupt: "
                                   f"{str(e)[:120] or type(e).__name__})",
                                   "re-download or re-save the weights") from None
    if not data or (not net.layer and not net.layers):
        raise UnreadableModelError(f"{path}: the caffemodel holds no layers",
                                   "pass the trained .caffemodel of this prototxt")
    return net


def _included(lp) -> bool:
    """TEST-phase membership of a layer (NetStateRule phase only; stages and levels are
    not used by deploy nets)."""
    test = pb2().TEST
    if len(lp.include):
        return any(not r.HasField("phase") or r.phase == test for r in lp.include)
    return not any(not r.HasField("phase") or r.phase == test for r in lp.exclude)


def layer_records(net) -> list[CaffeLayer]:
    """The TEST-phase layers of ``net`` in file order, both forms (``layer`` first)."""
    out: list[CaffeLayer] = []
    v1_enum = pb2().V1LayerParameter.LayerType
    for lp in net.layer:
        if _included(lp):
            out.append(CaffeLayer(lp.name, lp.type, list(lp.bottom), list(lp.top), lp, len(out)))
    for lp in net.layers:
        if _included(lp):
            enum_name = v1_enum.Name(lp.type) if lp.type in v1_enum.values() else str(lp.type)
            out.append(CaffeLayer(lp.name, V1_TYPES.get(enum_name, enum_name), list(lp.bottom),
                                  list(lp.top), lp, len(out), v1=True))
    return out


def blob_shape(b) -> tuple:
    """A BlobProto's shape: ``shape.dim``, else the non-zero legacy 4-D dims."""
    if b.HasField("shape"):
        return tuple(int(d) for d in b.shape.dim)
    legacy = (b.num, b.channels, b.height, b.width)
    return tuple(int(d) for d in legacy) if any(legacy) else (len(b.data) or len(b.double_data),)


def blob_array(b, where: str) -> np.ndarray:
    """A BlobProto as a float32 array of its shape.

    Raises:
        UnreadableModelError: negative or absurd dims, or a data length that is not the
            product of the dims (``where`` names the file and layer).
    """
    shape = blob_shape(b)
    n = math.prod(shape) if shape else 1
    if any(d < 0 for d in shape) or n > MAX_BLOB:
        raise UnreadableModelError(f"{where}: blob shape {list(shape)} is invalid",
                                   "the caffemodel is corrupt")
    data = b.data if len(b.data) else b.double_data
    if len(data) != n:
        raise UnreadableModelError(f"{where}: blob of shape {list(shape)} holds {len(data)} "
                                   f"values, expected {n}", "the caffemodel is corrupt")
    return np.asarray(data, dtype=np.float32).reshape(shape)


def weight_table(net) -> dict:
    """Layer name -> list of BlobProto, for every layer of a caffemodel that has blobs (the
    first such layer of a name wins, as in Caffe's CopyTrainedLayersFrom)."""
    table: dict = {}
    for lp in list(net.layer) + list(net.layers):
        if len(lp.blobs) and lp.name not in table:
            table[lp.name] = list(lp.blobs)
    return table


def input_specs(net, layers: list[CaffeLayer]) -> list[tuple[str, Optional[tuple]]]:
    """(blob name, declared shape or None) of every net input: the net's ``input`` names with
    ``input_shape`` / ``input_dim``, then the tops of ``Input`` layers."""
    specs = []
    dims = [int(d) for d in net.input_dim]
    for i, name in enumerate(net.input):
        if i < len(net.input_shape):
            shape = tuple(int(d) for d in net.input_shape[i].dim)
        elif len(dims) >= 4 * (i + 1):
            shape = tuple(dims[4 * i: 4 * i + 4])
        else:
            shape = None
        specs.append((name, shape))
    for layer in layers:
        if layer.op != "Input":
            continue
        shapes = list(layer.param("input_param").shape)
        for k, top in enumerate(layer.tops):
            s = shapes[k] if k < len(shapes) else (shapes[0] if len(shapes) == 1 else None)
            specs.append((top, tuple(int(d) for d in s.dim) if s is not None else None))
    return specs
