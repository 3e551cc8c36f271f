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
import zlib
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
            bad = zf.testzip() if check_bomb(path, zf.infolist(), size) < (64 << 20) else None
            kind = _archive_kind(names)
            if kind == "pickle":
                pkl = next(n for n in names if n.endswith("data.pkl"))
                raise UnreadableModelError(f"{path}: {_describe_pickle(zf.read(pkl))}",
                                           SAVE_HINT)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error,
            NotImplementedError, RuntimeError) as e:  # unknown compression, encryption
        raise UnreadableModelError(f"{path}: truncated or corrupt archive ({e})",
                                   "re-export the model") from None
    if bad is not None:
        raise UnreadableModelError(f"{path}: corrupt archive member {bad}", "re-export the model")
    if kind is None:
        raise UnreadableModelError(f"{path}: zip archive is not a TorchScript or torch.export file",
                                   "pass a TorchScript .pt or a torch.export .pt2 file")
    return kind


MAX_MEMBERS = 50_000  # a model archive holds one member per tensor plus code
MAX_RATIO = 200  # deflate reaches ~1000:1 only on degenerate data (zip bombs)


def check_bomb(path: Path, infos: list, size: int) -> int:
    """Refuse a zip bomb from its central directory alone (nothing is inflated): too many
    members, a member inflating over :data:`MAX_RATIO`:1, a stored member whose declared size
    differs from its stored size, or a declared total far beyond the file size. Returns the
    declared uncompressed total.

    Raises:
        UnreadableModelError: naming the member and the sizes.
    """
    if len(infos) > MAX_MEMBERS:
        raise UnreadableModelError(f"{path}: {len(infos):,} archive members (over "
                                   f"{MAX_MEMBERS:,}); not a model archive", "re-export the model")
    for i in infos:
        stored = i.compress_type == zipfile.ZIP_STORED
        if (stored and i.file_size != i.compress_size) or (
                not stored and i.file_size > (1 << 20) + MAX_RATIO * i.compress_size):
            raise UnreadableModelError(
                f"{path}: member {i.filename} declares {i.file_size:,} bytes from "
                f"{i.compress_size:,} stored (a zip bomb or a corrupt archive); not inflated",
                "re-export the model")
    total = sum(i.file_size for i in infos)
    if total > MAX_RATIO * size + (1 << 20):
        raise UnreadableModelError(f"{path}: members declare {total:,} bytes in a {size:,}-byte "
                                   "file (a zip bomb?); not inflated", "re-export the model")
    return total


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
