"""Python API for in-memory PyTorch modules::

    from frontends.pytorch.api import convert
    result = convert(model, (torch.randn(1, 3, 224, 224),), to="ncnn", output_dir="out")
    assert result.verified

The module is captured with ``torch.export.export`` (no file is written for it) and then
goes through the same pipeline as ``mconv convert``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from converter.errors import UnreadableModelError
from converter.options import ConvertOptions


def convert(module, example_inputs: Sequence, to: Union[str, Sequence[str]] = "ncnn",
            output_dir: Union[str, Path] = ".", name: str = "model", **options):
    """Convert an ``nn.Module`` for the target(s) ``to``; returns the
    :class:`converter.pipeline.ConvertResult` (the JSON report's content).

    Args:
        module: a ``torch.nn.Module`` (put in eval mode here).
        example_inputs: tensors with the static NCHW shapes to convert for.
        to: target name or names; output files are ``<output_dir>/<name>.<target files>``.
        options: any other :class:`ConvertOptions` field (``fp16``, ``verify``, ``atol``, ...).
    Raises:
        UnreadableModelError: ``torch.export`` cannot capture the module.
        UnsupportedOpsError, VerificationError: as for ``mconv convert``.
    """
    import torch

    from converter.pipeline import run
    from frontends import LoadedModel

    from . import _runner
    from .walk import walk_exported

    module = module.eval()
    targets = (to,) if isinstance(to, str) else tuple(to)
    opts = ConvertOptions(targets=targets, output_dir=Path(output_dir), stem=name, **options)
    try:
        ep = torch.export.export(module, tuple(example_inputs))
    except Exception as e:
        raise UnreadableModelError(f"{name}: torch.export could not capture the module: "
                                   f"{str(e).splitlines()[0][:200]}") from None
    graph, counts = walk_exported(ep, dict(opts.input_shapes), name)
    loaded = LoadedModel(graph, _runner(module), "pytorch", counts)
    return run(Path(name), opts, loaded=loaded)
