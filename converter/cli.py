"""The ``mconv`` command line (click). Exit codes: see :mod:`converter.errors` and README.

Only click is imported at module level, so ``mconv --help`` never imports torch.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import EXIT_INTERNAL, MconvError, UnsupportedOpsError


def parse_shape(text: str) -> tuple[str, tuple]:
    """``"x=1x3x224x224"`` -> ``("x", (1, 3, 224, 224))``; a bare shape names the only input.

    Raises:
        click.BadParameter: not of that form.
    """
    name, _, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.lower().replace(",", "x").split("x"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected NAME=1x3x224x224") from None
    if not shape or any(d <= 0 for d in shape):
        raise click.BadParameter(f"{text!r}: dims must be positive integers")
    return name, shape


def source_options(f):
    """Options that say how to read a source model (Caffe weights, SavedModel signature,
    frozen-graph inputs/outputs), shared by ``convert`` and ``ops``."""
    f = click.option("--output-names", default="", metavar="NAME[,NAME]",
                     help="Outputs of a frozen TensorFlow .pb [default: unconsumed nodes].")(f)
    f = click.option("--input-names", default="", metavar="NAME[,NAME]",
                     help="Inputs of a frozen TensorFlow .pb [default: its placeholders].")(f)
    f = click.option("--signature", default="serving_default", show_default=True,
                     help="SavedModel signature to convert.")(f)
    return click.option("--weights", type=click.Path(exists=True, dir_okay=False,
                        path_type=Path), help="Caffe .caffemodel for a .prototxt "
                        "[default: <stem>.caffemodel beside it].")(f)


def source_kwargs(source: dict) -> dict:
    """The ``ConvertOptions`` fields of :func:`source_options`' values."""
    def names(text):
        return tuple(n.strip() for n in text.split(",") if n.strip())

    return {"weights": source["weights"], "signature": source["signature"],
            "input_names": names(source["input_names"]),
            "output_names": names(source["output_names"])}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mconv")
def main() -> None:
    """mconv: convert trained models to deployable ones, and prove they compute the same.

    Exit codes: 0 ok, 1 internal error, 2 usage error, 3 unsupported ops,
    4 verification failed, 5 unreadable input.
    """


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--to", "targets", default="ncnn", show_default=True,
              help="Target(s), comma separated (ncnn, onnx, openvino, tflite); several targets "
                   "write into OUTDIR/<target>/.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder [default: the model's folder].")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=1x3x224x224",
              help="Static input shape in the source's layout (NCHW; NHWC for TensorFlow, "
                   "e.g. input=1x224x224x3); repeat per input. Needed for TorchScript, ONNX "
                   "inputs with symbolic dims and TF graphs without a static batch.")
@click.option("--fp16", is_flag=True, help="Store weights as float16.")
@click.option("--verify/--no-verify", default=None,
              help="Compare with the source model in the target runtime "
                   "[default: on when the runtime is installed].")
@click.option("--atol", type=float, help="Tolerance x max(1, max|ref|) [1e-4; 1e-2 with --fp16].")
@click.option("--rtol", type=float, default=0.0, show_default=True, help="Relative tolerance.")
@click.option("--inputs", "inputs_npz", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help=".npz with verification inputs by input name.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of random inputs.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JSON report of every stage here.")
@click.option("--opset", type=click.IntRange(13, 26), default=17, show_default=True,
              help="ONNX opset of the onnx target.")
@click.option("--io-layout", type=click.Choice(["nhwc", "nchw"]), default="nhwc",
              show_default=True, help="Layout of 4-D model inputs/outputs (tflite target).")
@click.option("--quantize", type=click.Choice(["dynamic"]), default=None,
              help="Weight quantization (tflite: dynamic-range int8 weights).")
@source_options
@click.option("--debug", is_flag=True, help="Show tracebacks and rewrite declines.")
def convert(model: Path, targets: str, output_dir, input_shapes, fp16, verify, atol, rtol,
            inputs_npz, seed, report, opset, io_layout, quantize, debug, **source) -> None:
    """Convert MODEL: .pt / .pth / .torchscript TorchScript, .pt2 torch.export, .onnx,
    .keras / .h5 Keras, a SavedModel folder, a frozen TensorFlow .pb, or a Caffe .prototxt."""
    from .options import ConvertOptions
    from .ui import Ui

    shapes = dict(parse_shape(s) for s in input_shapes)
    opts = ConvertOptions(targets=tuple(t.strip() for t in targets.split(",") if t.strip()),
                          output_dir=output_dir or model.parent, input_shapes=shapes,
                          fp16=fp16, verify=verify, atol=atol, rtol=rtol,
                          inputs_npz=inputs_npz, seed=seed, report=report, debug=debug,
                          opset=opset, io_layout=io_layout, quantize=quantize or "",
                          **source_kwargs(source))
    ui = Ui(debug)
    code = ui.run_convert(model, opts)
    sys.exit(code)


@main.command()
@click.argument("model", required=False,
                type=click.Path(exists=True, dir_okay=True, path_type=Path))
@click.option("--to", "targets", default=None,
              help="Target(s) to scan, comma separated [default: every installed target].")
@click.option("--matrix", is_flag=True,
              help="Print the global operator-support matrix from the registries instead.")
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "json", "html"]),
              help="Output format [default: table on the terminal; from -o's suffix].")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file (.md / .json / .html).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=1x3x224x224",
              help="Static input shape in the source's layout (NCHW; NHWC for "
                   "TensorFlow); repeat per input.")
@click.option("--opset", type=click.IntRange(13, 26), default=17, show_default=True,
              help="ONNX opset the onnx target is scanned for.")
@click.option("--fp16", is_flag=True, help="Scan for float16 weights (adds drift notes).")
@source_options
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def ops(model, targets, matrix, fmt, output, input_shapes, opset, fp16, debug, **source) -> None:
    """Which ops of MODEL each target supports, without converting (exit 0: all supported,
    3: some are not). With --matrix: the support matrix of every frontend and target."""
    from .errors import EXIT_USAGE
    from .options import ConvertOptions

    if not matrix and model is None:
        click.echo("error: mconv ops needs MODEL or --matrix (mconv ops model.pt2 --to ncnn)",
                   err=True)
        sys.exit(EXIT_USAGE)
    if matrix and fmt not in (None, "markdown", "json"):
        click.echo("error: --matrix supports --format markdown or json", err=True)
        sys.exit(EXIT_USAGE)
    if targets is None:
        import exporters

        targets = ",".join(exporters.TARGETS)
    shapes = dict(parse_shape(s) for s in input_shapes)
    opts = ConvertOptions(targets=tuple(t.strip() for t in targets.split(",") if t.strip()),
                          input_shapes=shapes, opset=opset, fp16=fp16, verify=False,
                          **source_kwargs(source))
    sys.exit(_run_ops(model, opts, matrix, fmt, output, debug))


def _run_ops(model, opts, matrix, fmt, output, debug) -> int:
    """Run ``mconv ops``; MconvErrors become one ``error:`` line and their exit code."""
    import traceback

    from .ops_report import run_ops

    try:
        return run_ops(model, opts, matrix, fmt, output)
    except MconvError as e:
        if debug:
            click.echo(traceback.format_exc(), err=True)
        click.echo(f"error: {e.one_line()}", err=True)
        return e.exit_code
    except Exception as e:  # a bug: short message, traceback with --debug
        if debug:
            click.echo(traceback.format_exc(), err=True)
        click.echo(f"internal error: {type(e).__name__}: {e} (a bug in mconv; rerun with "
                   "--debug for the traceback)", err=True)
        return EXIT_INTERNAL


def run() -> None:
    """Console-script entry point: click's own usage errors exit 2."""
    try:
        main(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


__all__ = ["main", "run", "parse_shape", "MconvError", "UnsupportedOpsError", "EXIT_INTERNAL"]
