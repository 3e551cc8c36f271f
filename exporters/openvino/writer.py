"""Write an ``openvino.Model`` as ``<stem>.xml`` + ``<stem>.bin`` (IR v11), atomically.

The files are produced by OpenVINO's own serializer, ``openvino.save_model`` (the writer behind
``ovc``): IR version 11 (the only versions the 2026.x IR frontend reads are 10 and 11,
shared/docs/formats/openvino-ir.md §1), ``Const`` layers with ``offset``/``size`` into the
``.bin``, mandatory output-port precisions, tensor names, and the ``<rt_info>`` the runtime
expects. ``compress_to_fp16=True`` stores float weights as ``Const f16 -> Convert(f32)`` with
the ``decompression`` rt_info (openvino-ir.md §1 "Element types"); shape-like constants that
must stay exact are kept in their type by OpenVINO's own precision-sensitivity marking.

Determinism: the serializer's output depends only on the model's structure and friendly
names; :class:`~exporters.openvino.context.LowerCtx` names every node, so the same IR graph
gives byte-identical files in any process (tests/test_openvino_export.py checks it across two
interpreter processes).

Atomicity: both files are written into a fresh hidden temporary folder inside ``out_dir`` and
renamed into place with ``os.replace``; on any error the temporary folder and files already
renamed by this call are removed, so no partial model is left.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

SUFFIXES = (".xml", ".bin")


def save(model, path: Path, fp16: bool) -> None:
    """``openvino.save_model(model, path, compress_to_fp16=fp16)`` (indirection for tests)."""
    import openvino

    openvino.save_model(model, str(path), compress_to_fp16=fp16)


def write(model, out_dir: Path, stem: str, fp16: bool = False) -> list[Path]:
    """Write ``<stem>.xml`` and ``<stem>.bin`` into ``out_dir`` (created if missing); ``fp16``
    compresses float weights to float16. Returns ``[xml_path, bin_path]``.

    Raises:
        OSError / RuntimeError: the files cannot be written (nothing is left behind).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}.", suffix=".tmp", dir=out_dir))
    finals = [out_dir / f"{stem}{s}" for s in SUFFIXES]
    done: list[Path] = []
    try:
        save(model, tmp / f"{stem}.xml", fp16)
        for final in finals:
            src = tmp / final.name
            if not src.is_file():
                raise OSError(f"openvino.save_model wrote no {final.name}")
            os.chmod(src, 0o644)
            os.replace(src, final)
            done.append(final)
    except BaseException:
        for p in done:
            p.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finals
