"""``ConvertOptions``: every option of a conversion, in one frozen dataclass."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class ConvertOptions:
    """Options of one ``convert`` run.

    Attributes:
        targets: target names in order (``("ncnn",)``).
        output_dir: folder the files are written to (created if missing).
        input_shapes: input name -> shape (NCHW ints); the name ``""`` means "the only input".
        fp16: store weights as float16 (targets that support it).
        verify: True / False, or None = verify when the target runtime is installed.
        atol: absolute tolerance, scaled by ``max(1, max|reference|)`` per output.
        rtol: relative tolerance (elementwise, on top of atol).
        inputs_npz: ``.npz`` file with input arrays by name (else seeded random inputs).
        seed: seed of the random verification inputs.
        report: path of the JSON report, or None.
        debug: keep tracebacks and show rule declines.
        stem: file stem of the outputs (default: the input file's stem).
        opset: ONNX opset of the ONNX target (13 .. 26).
        source_sha256: sha256 of the source model file, set by the pipeline (exporters
            record it as metadata); empty when unknown.
        passes: names of the rewrite rules that fired, set by the pipeline after optimizing
            (exporters record them as metadata).
        io_layout: layout of rank-4 graph inputs/outputs of layout-changing targets (TFLite):
            ``"nhwc"`` (default) or ``"nchw"`` (the source layout).
        quantize: ``""`` (none) or ``"dynamic"`` (int8 weights, dynamic-range; TFLite).
        weights: Caffe ``.caffemodel`` joined to a ``.prototxt`` (None: ``<stem>.caffemodel``
            beside the prototxt).
        signature: SavedModel signature to convert.
        input_names / output_names: graph inputs / outputs of a frozen TensorFlow GraphDef
            (``.pb``) when the file does not say (empty: placeholders / unconsumed nodes).
    """

    targets: tuple = ("ncnn",)
    output_dir: Path = Path(".")
    input_shapes: dict = field(default_factory=dict)
    fp16: bool = False
    verify: Optional[bool] = None
    atol: Optional[float] = None
    rtol: float = 0.0
    inputs_npz: Optional[Path] = None
    seed: int = 0
    report: Optional[Path] = None
    debug: bool = False
    stem: Optional[str] = None
    opset: int = 17
    source_sha256: str = ""
    passes: tuple = ()
    io_layout: str = "nhwc"
    quantize: str = ""
    weights: Optional[Path] = None
    signature: str = "serving_default"
    input_names: tuple = ()
    output_names: tuple = ()

    def tolerance(self) -> float:
        """The absolute tolerance factor: ``--atol`` or 1e-4 (fp32) / 1e-2 (fp16)."""
        if self.atol is not None:
            return self.atol
        return 1e-2 if self.fp16 else 1e-4
