"""PyTorch frontend: TorchScript (``.pt``, ``.pth``, ``.torchscript``) and ``torch.export``
ExportedProgram (``.pt2``) files, plus in-memory ``nn.Module`` objects (:mod:`.api`).

torch is imported inside the functions, never at module import time; a ``.pt2`` file is
translated without torch at all (:mod:`.pt2_reader`), and so is a TorchScript file the
torch-free reader models (:mod:`.ts_reader`; others are loaded with ``torch.jit.load``);
torch is imported only when the source program runs for verification.

Environment: ``MCONV_TS_READER=torch`` always loads TorchScript with torch;
``MCONV_TS_READER=fast`` always uses the torch-free reader (an error instead of the
fallback); unset / ``auto``: the reader, falling back to torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from converter.errors import UnreadableModelError

from . import ops_activation, ops_conv, ops_elementwise, ops_pool, ops_resize, ops_shape  # noqa
from .sniff import sniff

FRAMEWORK = "pytorch"
_CONTROL = ("prim::If", "prim::Loop", "prim::CallMethod", "prim::CallFunction")


def _runner(fn):
    def run(inputs: dict) -> list:
        import torch

        with torch.no_grad():
            out = fn(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs.values()])
        from .walk import _flatten, to_numpy

        return [to_numpy(t) for t in _flatten(out)]
    return run


def load(path: Path, options):
    """Load a PyTorch model file and translate it to IR.

    Returns:
        :class:`frontends.LoadedModel` with a runner of the source model (for ``.pt2`` and
        for TorchScript read without torch, a runner that loads the file with torch on its
        first call).
    Raises:
        UnreadableModelError: empty / truncated / pickled / not a PyTorch file (exit 5).
        UsageError: an input without a static shape and no ``--input-shape`` (exit 2).
        UnsupportedOpsError: every op without a converter (exit 3).
    """
    from frontends import LoadedModel

    kind = sniff(path)
    name = path.stem
    if kind == "exported":
        from .pt2_reader import walk_pt2

        graph, counts = walk_pt2(path, dict(options.input_shapes), name)
        return LoadedModel(graph, _exported_runner(path), FRAMEWORK, counts)
    fast = _read_torchscript_fast(path, options, name)
    if fast is not None:
        return LoadedModel(fast[0], _torchscript_runner(path), FRAMEWORK, fast[1])
    import torch

    from .walk import walk_torchscript

    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
        walked, tgraph = module, module.inlined_graph
        if any(n.kind() in _CONTROL for n in tgraph.nodes()):
            walked, tgraph = torch.jit.freeze(module), None  # freezing folds the branches
    except Exception as e:
        raise UnreadableModelError(f"{path}: TorchScript load failed: {_first(e)}",
                                   "re-save with torch.jit.save") from None
    graph, counts = walk_torchscript(walked, dict(options.input_shapes), name, tgraph)
    return LoadedModel(graph, _runner(module), FRAMEWORK, counts)


def _read_torchscript_fast(path: Path, options, name: str):
    """(graph, counts) from the torch-free reader (:mod:`.ts_reader`), or None when the
    torch path must load the file: ``MCONV_TS_READER=torch``, or (by default) a file the
    reader does not model. ``MCONV_TS_READER=fast`` never falls back."""
    from .ts_reader import reader_mode, walk_ts_file
    from .ts_unpickle import NotInterpretable

    mode = reader_mode()
    if mode == "torch":
        return None
    try:
        return walk_ts_file(path, dict(options.input_shapes), name, lenient=mode == "fast")
    except NotInterpretable as e:
        if mode == "fast":
            raise UnreadableModelError(f"{path}: not readable without torch: {_first(e)}",
                                       "unset MCONV_TS_READER to load it with torch") from None
        return None


def _torchscript_runner(path: Path):
    """A runner of a TorchScript file that imports torch and loads it only when first
    called (verification); the graph itself comes from the torch-free reader."""
    state: dict = {}

    def run(inputs: dict) -> list:
        if "run" not in state:
            import torch

            try:
                module = torch.jit.load(str(path), map_location="cpu").eval()
            except Exception as e:
                raise UnreadableModelError(f"{path}: TorchScript load failed: {_first(e)}",
                                           "re-save with torch.jit.save") from None
            state["run"] = _runner(module)
        return state["run"](inputs)
    return run


def _exported_runner(path: Path):
    """A runner of a ``.pt2`` program that imports torch and loads the file only when it is
    first called (verification); the graph itself comes from the torch-free reader."""
    state: dict = {}

    def run(inputs: dict) -> list:
        if "run" not in state:
            import logging
            import tempfile

            import torch

            from .pt2_reader import sanitized_copy

            quiet = logging.getLogger("torch")  # load warnings carry tracebacks
            level = quiet.level
            quiet.setLevel(logging.CRITICAL)
            try:
                with tempfile.TemporaryDirectory(prefix="mconv-") as tmp:
                    # only vetted members: torch.export.load unpickles sample inputs and
                    # pickled weights with weights_only=False, and loads AOTI libraries
                    ep = torch.export.load(str(sanitized_copy(path, Path(tmp) / "m.pt2")))
            except Exception as e:
                raise UnreadableModelError(f"{path}: torch.export load failed: {_first(e)}",
                                           "re-save with torch.export.save") from None
            finally:
                quiet.setLevel(level)
            state["run"] = _runner(ep.module())
        return state["run"](inputs)
    return run


def _first(e: Exception) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]
