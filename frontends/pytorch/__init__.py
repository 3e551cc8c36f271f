"""PyTorch frontend: TorchScript (``.pt``, ``.pth``, ``.torchscript``) and ``torch.export``
ExportedProgram (``.pt2``) files, plus in-memory ``nn.Module`` objects (:mod:`.api`).

torch is imported inside the functions, never at module import time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from converter.errors import UnreadableModelError

from . import ops_activation, ops_conv, ops_elementwise, ops_pool, ops_resize, ops_shape  # noqa
from .sniff import sniff

FRAMEWORK = "pytorch"


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
        :class:`frontends.LoadedModel` with a runner of the source model.
    Raises:
        UnreadableModelError: empty / truncated / pickled / not a PyTorch file (exit 5).
        UsageError: an input without a static shape and no ``--input-shape`` (exit 2).
        UnsupportedOpsError: every op without a converter (exit 3).
    """
    from frontends import LoadedModel

    kind = sniff(path)
    import torch

    from .walk import walk_exported, walk_torchscript

    name = path.stem
    if kind == "torchscript":
        try:
            module = torch.jit.load(str(path), map_location="cpu").eval()
            frozen = torch.jit.freeze(module)
        except Exception as e:
            raise UnreadableModelError(f"{path}: TorchScript load failed: {_first(e)}",
                                       "re-save with torch.jit.save") from None
        graph, counts = walk_torchscript(frozen, dict(options.input_shapes), name)
        return LoadedModel(graph, _runner(module), FRAMEWORK, counts)
    try:
        ep = torch.export.load(str(path))
    except Exception as e:
        raise UnreadableModelError(f"{path}: torch.export load failed: {_first(e)}",
                                   "re-save with torch.export.save") from None
    graph, counts = walk_exported(ep, dict(options.input_shapes), name)
    return LoadedModel(graph, _runner(ep.module()), FRAMEWORK, counts)


def _first(e: Exception) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:200]
