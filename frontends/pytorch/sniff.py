"""Identify a PyTorch file *without unpickling anything*.

``torch.save`` and ``torch.jit.save`` both write a zip archive whose entries sit under one
top folder; TorchScript archives hold ``code/`` and ``constants.pkl``, ``torch.export.save``
archives hold ``archive_format`` / ``models/`` entries, and a plain ``torch.save`` archive holds
only ``data.pkl`` + ``data/N`` storages (pytorch/pytorch ``torch/serialization.py``,
``torch/export/pt2_archive``). A pickle is inspected with :mod:`pickletools` (which decodes
opcodes and never executes them) only to name the class in the error message.
"""
from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

from converter.errors import UnreadableModelError

SAVE_HINT = ("unpickling runs arbitrary code, so mconv never loads it; save the model with "
             "torch.jit.save(torch.jit.trace(model, example), 'model.pt') or "
             "torch.export.save(torch.export.export(model, (example,)), 'model.pt2')")


def _pickle_globals(data: bytes, limit: int = 64) -> list[str]:
    found: list[str] = []
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                strings.append(str(arg))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            if len(found) >= limit:
                break
    except Exception:  # truncated or not a pickle: names are only for the message
        pass
    return found


def _describe_pickle(data: bytes) -> str:
    benign = ("collections.OrderedDict", "torch._utils", "torch.", "builtins.", "_codecs.")
    classes = [g for g in _pickle_globals(data) if not g.startswith(benign)]
    if classes:
        return f"a pickled Python object (class {classes[0]}), e.g. torch.save(model)"
    return "a pickled state dict or tensor collection (weights only, no graph)"


def sniff(path: Path) -> str:
    """Return ``"torchscript"`` or ``"exported"`` for a loadable file.

    Raises:
        UnreadableModelError: empty, truncated, corrupt, a pickle (with the hint), or not a
            PyTorch file at all.
    """
    try:
        size = path.stat().st_size
    except OSError as e:
        raise UnreadableModelError(f"{path}: cannot read: {e.strerror}") from None
    if size == 0:
        raise UnreadableModelError(f"{path}: empty file", "re-export the model")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80":
        data = path.read_bytes()[: 1 << 20]
        raise UnreadableModelError(f"{path}: {_describe_pickle(data)}", SAVE_HINT)
    if head != b"PK\x03\x04":
        raise UnreadableModelError(f"{path}: not a PyTorch model file (no zip archive header)",
                                   "pass a TorchScript .pt or a torch.export .pt2 file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            bad = zf.testzip() if size < (64 << 20) else None
            kind = _archive_kind(names)
            if kind == "pickle":
                pkl = next(n for n in names if n.endswith("data.pkl"))
                raise UnreadableModelError(f"{path}: {_describe_pickle(zf.read(pkl))}",
                                           SAVE_HINT)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise UnreadableModelError(f"{path}: truncated or corrupt archive ({e})",
                                   "re-export the model") from None
    if bad is not None:
        raise UnreadableModelError(f"{path}: corrupt archive member {bad}", "re-export the model")
    if kind is None:
        raise UnreadableModelError(f"{path}: zip archive is not a TorchScript or torch.export file",
                                   "pass a TorchScript .pt or a torch.export .pt2 file")
    return kind


def _archive_kind(names: list[str]):
    rel = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if any(r.startswith("code/") for r in rel) and "constants.pkl" in rel:
        return "torchscript"
    if "archive_format" in rel or any(r.startswith("models/") for r in rel) or any(
            n.endswith("serialized_exported_program.json") for n in names):
        return "exported"
    if "data.pkl" in rel:
        return "pickle"
    return None
