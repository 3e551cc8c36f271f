"""mconv core: the framework-free IR, registries, rewrite engine, pipeline, verification and CLI.

Nothing in this package imports torch or tensorflow at module level, so ``mconv --help`` stays
fast; frontends and runtimes import their framework inside the functions that need it.

Python API::

    from converter import convert
    result = convert("model.pt2", to=["ncnn", "onnx"], output_dir="out")   # a file
    result = convert(module, example_inputs=(x,), to="ncnn", output_dir="out")  # nn.Module
    result.as_dict()   # == the JSON report of ``mconv convert --report``
"""

__version__ = "0.1.0"


def convert(model, to="ncnn", example_inputs=None, output_dir=None, raise_on_error=True,
            **options):
    """Convert a model file or an in-memory ``torch.nn.Module`` and return the
    :class:`~converter.pipeline.ConvertResult` (``as_dict()`` is the ``--report`` JSON).

    Args:
        model: a path (``.pt``, ``.pt2``, ``.onnx``, ...) or an ``nn.Module``.
        to: a target name or several (``"ncnn"``, ``["onnx", "openvino"]``, ``"ncnn,onnx"``).
        example_inputs: tensors with the static shapes to convert for (modules only).
        output_dir: output folder [default: the model's folder; ``.`` for a module].
        raise_on_error: False returns the failed result (``exit_code``, ``error``) instead
            of raising.
        options: any other :class:`~converter.options.ConvertOptions` field: ``fp16``,
            ``verify``, ``atol``, ``rtol``, ``input_shapes``, ``opset``, ``report``, ``stem``,
            ``seed``, ``inputs_npz``...; ``name`` sets a module's file stem.
    Raises:
        UsageError, UnsupportedOpsError, VerificationError, UnreadableModelError (the
        :mod:`converter.errors` types behind exit codes 2-5; each carries ``.result``).
    """
    from pathlib import Path

    from .errors import MconvError

    targets = tuple(t.strip() for t in to.split(",")) if isinstance(to, str) else tuple(to)
    try:
        if isinstance(model, (str, Path)) or hasattr(model, "__fspath__"):
            return _convert_file(Path(model), targets, output_dir, options)
        if example_inputs is None:
            from .errors import UsageError

            raise UsageError("convert(module): example_inputs are required",
                             "pass example_inputs=(torch.randn(1, 3, 224, 224),)")
        from frontends.pytorch.api import convert as convert_module

        return convert_module(model, example_inputs, to=targets,
                              output_dir=output_dir or ".", **options)
    except MconvError as e:
        if raise_on_error or getattr(e, "result", None) is None:
            raise
        return e.result


def _convert_file(path, targets, output_dir, options):
    """:func:`converter.pipeline.run` on a model file with keyword options."""
    from pathlib import Path

    from .options import ConvertOptions
    from .pipeline import run

    shapes = {k: tuple(v) for k, v in (options.pop("input_shapes", None) or {}).items()}
    opts = ConvertOptions(targets=targets, input_shapes=shapes,
                          output_dir=Path(output_dir) if output_dir else path.parent, **options)
    return run(path, opts)


__all__ = ["__version__", "convert"]
