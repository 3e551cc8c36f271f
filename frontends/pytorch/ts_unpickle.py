"""Read the pickles and sources of a TorchScript ``.pt`` archive *without torch and without
running anything from the file*.

Archive layout (``torch.jit.save``; pytorch/pytorch
``torch/csrc/jit/serialization/export_module.cpp``, ``import.cpp``, ``unpickler.cpp``,
``caffe2/serialize/inline_container.cc``): a zip whose members sit under one top folder
``<root>/``:

* ``code/__torch__/<a>/<b>.py``: the TorchScript source (``python_print.cpp``) of every class
  ``__torch__.<a>.<b>.<Class>`` (``__torch__.<Class>`` lives in ``code/__torch__.py``).
* ``data.pkl``: the module object tree, a protocol-2 pickle. Each module is
  ``GLOBAL '__torch__.<path> <Class>'``, ``EMPTY_TUPLE``, ``NEWOBJ`` and a ``BUILD`` with its
  attribute dict (submodules, tensors, ``training`` ...). A tensor is
  ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  backward_hooks[, metadata])`` whose ``storage`` is a persistent id
  ``('storage', torch.<Type>Storage, key, location, numel)``: the raw little-endian bytes of
  member ``data/<key>`` (``torch/serialization.py``, ``_load`` / ``persistent_load``).
* ``constants.pkl``: the tuple of tensor constants ``CONSTANTS.c<N>``, storages under
  ``constants/<key>``.
* ``byteorder`` (``little`` / ``big``), ``version`` or ``.data/version`` (the produced
  operator version: ops with upgraders, ``torch/csrc/jit/operator_upgraders/version_map.cpp``,
  compile to older schemas below their bump version).

Safety: :class:`RestrictedUnpickler` resolves ``GLOBAL`` only through an allow-list of inert
stand-ins (:data:`_ALLOWED`): ``__torch__.*`` classes become :class:`TSObject` records holding
their state dict; the tensor rebuild functions become builders of lazy numpy views of the
storages; storage type names become dtype tags; ``collections.OrderedDict``,
``builtins.set`` / ``frozenset`` and the ``torch.jit._pickle`` list / type-tag helpers become
plain containers. Every other global raises before anything is called, so no code from the
file can run: a foreign global (for example ``os.system``) is :class:`UnreadableModelError`;
an unknown ``torch.*`` or legacy ``__main__`` global (a quantized tensor, say) is
:class:`NotInterpretable` and the caller falls back to ``torch.jit.load``, whose C++
unpickler runs no Python either.
"""
from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from converter.errors import UnreadableModelError

from .archive import ZipModel
from .pt2_reader import _Bad, _view

HINT = "re-save the model with torch.jit.save"

# torch.<Type>Storage -> torch dtype name (torch/storage.py, _LegacyStorage subclasses).
STORAGE_DTYPES = {"FloatStorage": "float32", "DoubleStorage": "float64",
                  "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
                  "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
                  "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
                  "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}


class NotInterpretable(Exception):
    """The torch-free reader does not understand this file; the caller loads it with torch."""


class TSObject:
    """An inert record of one pickled ``__torch__.*`` object: ``qualname`` and ``state``."""

    qualname = ""

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state if isinstance(state, dict) else {}

    def attr(self, name: str) -> Any:
        """The attribute ``name`` (KeyError when absent)."""
        return self.__dict__.get("state", {})[name]

    def has(self, name: str) -> bool:
        return name in self.__dict__.get("state", {})


_RECORD_CLASSES: dict = {}


def _record_class(qualname: str) -> type:
    """A TSObject subclass per qualified name (NEWOBJ instantiates the class it is given)."""
    cls = _RECORD_CLASSES.get(qualname)
    if cls is None:
        cls = type("TSObject", (TSObject,), {"qualname": qualname, "__slots__": ()})
        _RECORD_CLASSES[qualname] = cls
    return cls


class StorageTag:
    """``torch.<Type>Storage`` as named in a persistent id: only its dtype matters."""

    def __init__(self, dtype: str):
        self.dtype = dtype


class Storage:
    """One storage record (``data/<key>``); its bytes are read on first use."""

    def __init__(self, archive: "TSArchive", folder: str, key: str, dtype: str):
        self.archive, self.member, self.dtype = archive, f"{folder}/{key}", dtype
        self._buf = None

    def buf(self) -> bytes:
        if self._buf is None:
            self._buf = self.archive.read(self.member)
        return self._buf


class TensorRef:
    """A tensor of the archive: a strided view of a storage, materialized on demand."""

    def __init__(self, storage: Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        self._array = None

    def array(self) -> np.ndarray:
        """The tensor as a contiguous numpy array (bfloat16 widened to float32).

        Raises:
            UnreadableModelError: the storage is too short for size / stride / offset.
        """
        if self._array is None:
            st = self.storage
            try:
                self._array = _view(st.buf(), st.dtype, list(self.size), list(self.stride),
                                    self.offset, st.archive.byteorder)
            except _Bad as e:
                raise st.archive.error(st.member, str(e)) from None
        return self._array


def _rebuild_tensor(storage, storage_offset, size, stride, *rest) -> TensorRef:
    if not isinstance(storage, Storage):
        raise _Bad("tensor without a storage record")
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *rest) -> Any:
    return data


def _identity(x, *rest) -> Any:
    return x


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch.jit._pickle", "build_intlist"): _identity,
    ("torch.jit._pickle", "build_floatlist"): _identity,
    ("torch.jit._pickle", "build_doublelist"): _identity,
    ("torch.jit._pickle", "build_boollist"): _identity,
    ("torch.jit._pickle", "build_tensorlist"): _identity,
    ("torch.jit._pickle", "restore_type_tag"): _identity,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose globals are the inert stand-ins of :data:`_ALLOWED` only."""

    def __init__(self, data: bytes, archive: "TSArchive", folder: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.folder = archive, folder

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _record_class(f"{module}.{name}")
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageTag(STORAGE_DTYPES[name])
        if module in ("torch", "__main__") or module.startswith("torch."):
            # legitimate in TorchScript archives (quantized tensors, legacy tensor ids...):
            # torch's own C++ unpickler (which runs no Python) decides
            raise NotInterpretable(f"pickled global {module}.{name} is not interpreted")
        raise UnreadableModelError(
            f"{self.archive.path}: member {self.folder}.pkl references {module}.{name}, "
            "which is not part of a TorchScript archive; refusing to unpickle it",
            "only load model files from trusted sources; re-save with torch.jit.save")

    def persistent_load(self, pid: Any) -> Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise _Bad(f"unknown persistent id {str(pid)[:80]}")
        tag = pid[1]
        if not isinstance(tag, StorageTag):
            raise NotInterpretable(f"storage type {tag!r} is not interpreted")
        return self.archive.storage(self.folder, str(pid[2]), tag.dtype)


class TSArchive(ZipModel):
    """The members of one TorchScript zip, plus its storages (shared between tensors)."""

    hint = HINT

    def __init__(self, path: Path):
        super().__init__(path)
        self.storages: dict = {}
        self.byteorder = "little"

    def storage(self, folder: str, key: str, dtype: str) -> Storage:
        """The storage ``<folder>/<key>``, one record per key (tensors may share it)."""
        if "/" in key or key in ("", ".", ".."):
            raise _Bad(f"bad storage key {key!r}")
        k = (folder, key)
        if k not in self.storages:
            self.storages[k] = Storage(self, folder, key, dtype)
        return self.storages[k]

    def unpickle(self, name: str) -> Any:
        """Unpickle ``<name>.pkl`` with :class:`RestrictedUnpickler` (storages in ``<name>/``).

        Raises:
            UnreadableModelError: malformed or truncated pickle, or a foreign global.
            NotInterpretable: a torch global or object layout the reader does not model.
        """
        rel = f"{name}.pkl"
        data = self.read(rel)
        try:
            return RestrictedUnpickler(data, self, name).load()
        except (NotInterpretable, UnreadableModelError):
            raise
        except (_Bad, pickle.UnpicklingError, EOFError) as e:  # corrupt or truncated
            raise self.error(rel, f"malformed pickle ({e})") from None
        except Exception as e:  # a well-formed pickle the stand-ins do not model
            raise NotInterpretable(f"{rel}: {type(e).__name__}: {e}") from None

    def version(self) -> int:
        """The produced operator version (``version`` or ``.data/version``), 0 if absent."""
        for rel in ("version", ".data/version"):
            if self.has(rel):
                try:
                    return int(self.read(rel).decode("ascii").strip())
                except ValueError:
                    raise self.error(rel, "not an integer") from None
        return 0

    def load_byteorder(self) -> None:
        if self.has("byteorder"):
            order = self.read("byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise self.error("byteorder", f"unknown byte order {order[:20]!r}")
            self.byteorder = order

    def code_path(self, qualname: str) -> str:
        """The source member defining class ``qualname`` (``__torch__.a.b.C`` ->
        ``code/__torch__/a/b.py``)."""
        return "code/" + qualname.rsplit(".", 1)[0].replace(".", "/") + ".py"
