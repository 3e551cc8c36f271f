"""Member access to a PyTorch zip archive (TorchScript or ``torch.export``) without torch.

Both formats put every member under one top folder (pytorch/pytorch
``caffe2/serialize/inline_container.cc``); members are addressed relative to it. Every
failure is an :class:`~converter.errors.UnreadableModelError` naming the file and member.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from converter.errors import UnreadableModelError


class ZipModel:
    """An open model archive; ``hint`` ends every error message (how to re-save)."""

    hint = "re-save the model"

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.zf = zipfile.ZipFile(self.path)
            names = self.zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise UnreadableModelError(f"{self.path}: truncated or corrupt archive ({e})",
                                       self.hint) from None
        self.names = set(names)
        self.root = names[0].split("/", 1)[0] + "/" if names and "/" in names[0] else ""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.zf.close()

    def member(self, rel: str) -> str:
        return self.root + rel

    def error(self, rel: str, msg: str, hint: str = "") -> UnreadableModelError:
        return UnreadableModelError(f"{self.path}: member {self.member(rel)}: {msg}",
                                    hint or self.hint)

    def has(self, rel: str) -> bool:
        return self.member(rel) in self.names

    def read(self, rel: str) -> bytes:
        """The bytes of member ``rel`` (CRC-checked by zipfile)."""
        if not self.has(rel):
            raise self.error(rel, "missing from the archive")
        try:
            return self.zf.read(self.member(rel))
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as e:
            raise self.error(rel, f"truncated or corrupt ({e})") from None

    def text(self, rel: str) -> str:
        try:
            return self.read(rel).decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.error(rel, f"not UTF-8 text ({e})") from None
