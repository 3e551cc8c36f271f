"""Read an ``.onnx`` file into a checked ``onnx.ModelProto``, or fail with one line.

Format facts (onnx/onnx ``onnx/onnx.proto``, ``docs/IR.md``, ``docs/ExternalData.md``): a model
is a protobuf ``ModelProto`` whose ``graph`` (field 7) holds every node, so a file cut anywhere
inside the graph fails to parse; ``opset_import`` (field 8) follows the graph and is required
from IR version 3. Tensors stored outside the file carry ``data_location = EXTERNAL`` and a
``location`` key relative to the model's folder. Protobuf parsing is lenient (an empty byte
string is a valid empty message), so a parsed model is also checked for a graph, an ai.onnx
opset and node inputs that name existing tensors.
"""
from __future__ import annotations

from pathlib import Path

from converter.errors import UnreadableModelError

from .extdata import load_external

REEXPORT = "re-export the model (torch.onnx.export / tf2onnx) or check the download"


def read_model(path: Path) -> tuple:
    """Parse ``path`` into a ``ModelProto`` and read its external data (:mod:`.extdata`).

    Returns:
        (model, external): ``external`` maps main-graph initializer names to the arrays read
        from their external-data files (those initializers keep no bytes in the proto).

    Raises:
        UnreadableModelError: missing / empty / truncated / not protobuf / not an ONNX model /
            an external-data file missing or too short (the message names the file).
    """
    import onnx

    try:
        size = path.stat().st_size
    except OSError as e:
        raise UnreadableModelError(f"{path}: cannot read: {e.strerror}") from None
    if size == 0:
        raise UnreadableModelError(f"{path}: empty file", REEXPORT)
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as e:  # DecodeError, RuntimeError from the C++ parser, ...
        raise UnreadableModelError(f"{path}: not a readable ONNX protobuf (truncated or "
                                   f"wrong format: {_first(e)})", REEXPORT) from None
    _check_structure(path, model)
    _check_nodes(path, model)
    external = load_external(path, model)
    if len(model.functions):
        model = _inline(path, model)
    return model, external


def _check_structure(path: Path, model) -> None:
    g = model.graph
    if not model.HasField("graph") or (not len(g.node) and not len(g.output)):
        raise UnreadableModelError(f"{path}: not an ONNX model (no graph)", REEXPORT)
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import) and \
            model.ir_version >= 3:
        raise UnreadableModelError(f"{path}: no ai.onnx opset_import (truncated or not an "
                                   "ONNX model)", REEXPORT)
    known = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    known |= {t.values.name for t in g.sparse_initializer}
    for n in g.node:
        twice = [o for o in n.output if o and o in known]
        if twice:  # SSA (docs/IR.md): every name is produced once
            raise UnreadableModelError(f"{path}: tensor {twice[0]!r} is produced twice "
                                       f"(node {n.name or n.op_type!r})", REEXPORT)
        known.update(n.output)
    for n in g.node:
        missing = [i for i in n.input if i not in known]
        if missing:
            label = n.name or (n.output[0] if len(n.output) else n.op_type)
            raise UnreadableModelError(f"{path}: node {label!r} ({n.op_type}) reads "
                                       f"undefined tensor {missing[0]!r}", REEXPORT)
    for o in g.output:
        if o.name not in known:
            raise UnreadableModelError(f"{path}: graph output {o.name!r} is never produced",
                                       REEXPORT)


def _check_nodes(path: Path, model) -> None:
    """Names that are text (protobuf hands back bytes for non-UTF-8 ``string`` fields) and
    ai.onnx nodes whose input / output counts fit their operator schema (onnx.defs).

    Raises:
        UnreadableModelError: naming the node.
    """
    from onnx import defs

    g = model.graph
    opset = max([o.version for o in model.opset_import if o.domain in ("", "ai.onnx")],
                default=1)
    texts = [v.name for v in (*g.input, *g.output, *g.initializer)]
    for n in g.node:
        fields = [n.name, n.op_type, n.domain, *n.input, *n.output]
        if not all(isinstance(t, str) for t in fields + texts):
            raise UnreadableModelError(f"{path}: a name is not UTF-8 text (corrupt file)",
                                       REEXPORT)
        texts = []
        if n.domain not in ("", "ai.onnx") or not defs.has(n.op_type):
            continue
        try:
            sch = defs.get_schema(n.op_type, opset)
        except Exception:  # the op does not exist at this opset: the walk reports it
            continue
        ins, outs = len(n.input), len(n.output)
        if not (sch.min_input <= ins <= sch.max_input and sch.min_output <= outs <= sch.max_output):
            raise UnreadableModelError(
                f"{path}: node {n.name or n.op_type!r} ({n.op_type}) has {ins} input(s) and "
                f"{outs} output(s); opset {opset} allows {sch.min_input}..{sch.max_input} "
                f"and {sch.min_output}..{sch.max_output}", REEXPORT)


def _inline(path: Path, model):
    """Model-local functions inlined into the main graph (onnx.inliner)."""
    from onnx import inliner

    try:
        return inliner.inline_local_functions(model)
    except Exception as e:
        raise UnreadableModelError(f"{path}: cannot inline local functions: {_first(e)}",
                                   REEXPORT) from None


def _first(e: Exception) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]
