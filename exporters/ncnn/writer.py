"""Serializer of a lowered ncnn net to ``<stem>.ncnn.param`` + ``<stem>.ncnn.bin``.

Format facts (Tencent/ncnn docs/developer-guide/param-and-model-file-structure.md,
src/paramdict.cpp, src/modelbin.cpp; verified in shared/docs/formats/ncnn.md §1):

* ``.param``: magic ``7767517``, ``<layer_count> <blob_count>`` (exact), then one line per layer
  ``Type name n_in n_out ins... outs... k=v...``. Floats always carry a ``.`` or an exponent
  (int text for a float param is misread by older ncnn, float text for an int param fails);
  arrays are ``-23300-k=count,v1,...``.
* A blob is consumed by one layer only, so every blob with several consumers gets a ``Split``
  layer; a graph output also read by layers becomes one output of a ``Split`` that no layer
  reads. Every graph input gets an ``Input`` layer (shape hints ``0=w 1=h 11=d 2=c``).
* ``.bin``: each layer's weights in order; tagged arrays (``mb.load(n, 0)``) start with a 4-byte
  tag (``0`` fp32, ``0x01306B47`` fp16) and are zero-padded to 4 bytes; raw arrays
  (``mb.load(n, 1)``) are plain little-endian float32.

The ``.bin`` is streamed weight by weight (a strided weight, e.g. a transposed view of an IR
constant, in slabs of :data:`CHUNK_BYTES`), so no second copy of the weights is held.
Output is deterministic and written atomically (temporary files renamed into place; on any error
the temporaries, and files already renamed by this call, are removed).
"""
from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .context import Layer, LoweredNet, reshape_params
from .names import unique_names

MAGIC = 7767517
TAG_FP32 = 0x00000000
TAG_FP16 = 0x01306B47
FLT_MAX = float(np.finfo(np.float32).max)


# ------------------------------------------------------------------ graph preparation
def _consumers(layers: list[Layer]) -> dict[str, list[tuple[int, int]]]:
    uses: dict[str, list[tuple[int, int]]] = {}
    for li, layer in enumerate(layers):
        for pi, b in enumerate(layer.inputs):
            uses.setdefault(b, []).append((li, pi))
    return uses


def with_inputs_and_splits(net: LoweredNet) -> list[Layer]:
    """``Input`` layers, then the net's layers with ``Split`` layers after every producer whose
    blob has several consumers, or is a graph output that layers also read. Layers are copied;
    ``net`` is not changed."""
    layers = [Layer("Input", name, [], [name], reshape_params(shape) if shape else {})
              for name, shape in net.inputs]
    layers += [replace(l, inputs=list(l.inputs), outputs=list(l.outputs)) for l in net.layers]
    uses, outputs = _consumers(layers), set(net.outputs)
    result: list[Layer] = []
    for layer in layers:
        result.append(layer)
        for oi, b in enumerate(list(layer.outputs)):
            readers = uses.get(b, [])
            if len(readers) < (1 if b in outputs else 2):
                continue
            src = b + "_splitncnn_in" if b in outputs else b
            outs = ([b] if b in outputs else []) + [f"{b}_splitncnn_{i}"
                                                    for i in range(len(readers))]
            layer.outputs[oi] = src
            for (li, pi), name in zip(readers, outs[-len(readers):]):
                layers[li].inputs[pi] = name
            result.append(Layer("Split", f"splitncnn_{b}", [src], outs))
    return result


def assign_names(layers: list[Layer], net: LoweredNet) -> int:
    """Sanitize and uniquify blob names (graph inputs, then outputs, then the rest in order of
    appearance) and layer names, in place; returns the number of distinct blobs."""
    order = [n for n, _ in net.inputs] + list(net.outputs)
    seen = set(order)
    for layer in layers:
        for b in (*layer.inputs, *layer.outputs):
            if b not in seen:
                seen.add(b)
                order.append(b)
    # a graph output listed twice (or an input also listed as output) maps to one blob
    mapping: dict[str, str] = {}
    for raw, new in zip(order, unique_names(order)):
        mapping.setdefault(raw, new)
    for layer, name in zip(layers, unique_names(l.name for l in layers)):
        layer.name = name
        layer.inputs = [mapping[b] for b in layer.inputs]
        layer.outputs = [mapping[b] for b in layer.outputs]
    return len({b for l in layers for b in (*l.inputs, *l.outputs)})


# ------------------------------------------------------------------ .param text
def format_float(value: float) -> str:
    """Shortest float32 text that round-trips, always with ``.`` or an exponent; infinities
    become +-FLT_MAX.

    Raises:
        ValueError: NaN.
    """
    v = float(value)
    if v != v:
        raise ValueError("NaN param value")
    v = max(-FLT_MAX, min(FLT_MAX, v))
    text = str(np.float32(v))
    return text if any(c in text for c in ".eE") else text + ".0"


def _format_scalar(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format_float(value)
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return value
    raise TypeError(f"unsupported param value {value!r}")


def format_params(params: dict) -> str:
    """``k=v`` tokens sorted by id; lists become ``-23300-k=count,v1,...``.

    Raises:
        ValueError: an id outside 0..29 (30 and 31 are read by the net loader itself,
            src/paramdict.h ``NCNN_MAX_PARAM_COUNT`` is 32).
    """
    out = []
    for k in sorted(params):
        if not 0 <= int(k) < 30:
            raise ValueError(f"param id {k} out of range")
        v = params[k]
        if isinstance(v, (list, tuple, np.ndarray)):
            items = ",".join(_format_scalar(x) for x in v)
            out.append(f"{-23300 - int(k)}={len(v)}" + (f",{items}" if len(v) else ""))
        else:
            out.append(f"{int(k)}={_format_scalar(v)}")
    return " ".join(out)


def param_text(layers: list[Layer], blob_count: int) -> str:
    """The full ``.param`` text of named layers."""
    lines = [str(MAGIC), f"{len(layers)} {blob_count}"]
    for l in layers:
        fields = [l.type, l.name, str(len(l.inputs)), str(len(l.outputs)), *l.inputs,
                  *l.outputs]
        params = format_params(l.params)
        lines.append(" ".join(fields + ([params] if params else [])))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ .bin bytes
#: bytes of float32 converted (and, for a strided view, copied) at a time while streaming
CHUNK_BYTES = 1 << 22
#: columns per tile when copying a strided matrix (:func:`_f32_slab`)
TILE = 256


def _array_chunks(arr: np.ndarray, dtype: str = "<f4") -> Iterator:
    """C-order bytes of ``arr`` as ``dtype``, in buffers of about :data:`CHUNK_BYTES`: a
    contiguous array already of that dtype is passed on as a view (no copy); anything else
    (a transposed view, float64) is converted one slab of leading-axis rows at a time, always
    through float32 (so float64 -> float16 rounds as float64 -> float32 -> float16)."""
    a = np.asarray(arr)
    a = a.reshape(1) if a.ndim == 0 else a
    if a.dtype == np.dtype(dtype) and a.flags.c_contiguous:
        yield memoryview(a.reshape(-1)).cast("B")
        return
    step = max(1, CHUNK_BYTES // max(1, a[:1].size * 4))
    for i in range(0, a.shape[0], step):
        slab = _f32_slab(a[i:i + step])
        yield memoryview(slab.astype(dtype, copy=False).reshape(-1)).cast("B")


def _f32_slab(a: np.ndarray) -> np.ndarray:
    """``a`` as a new C-contiguous float32 array; a strided 2-D ``a`` (a transposed matrix) is
    copied in column tiles, about twice as fast as numpy's element-strided copy."""
    if a.ndim != 2 or a.flags.c_contiguous or a.shape[1] <= TILE:
        return np.ascontiguousarray(a, dtype="<f4")
    out = np.empty(a.shape, dtype="<f4")
    for j in range(0, a.shape[1], TILE):
        out[:, j:j + TILE] = a[:, j:j + TILE]
    return out


def weight_chunks(arr: np.ndarray, tagged: bool, fp16: bool) -> Iterator:
    """One weight array as stored in ``.bin`` (see the module docstring), as byte buffers."""
    if tagged:
        yield struct.pack("<I", TAG_FP16 if fp16 else TAG_FP32)
    yield from _array_chunks(arr, "<f2" if tagged and fp16 else "<f4")
    if tagged and fp16:
        yield b"\0" * (-2 * int(np.size(arr)) % 4)


def weight_bytes(arr: np.ndarray, tagged: bool, fp16: bool) -> bytes:
    """One weight array as stored in ``.bin`` (see the module docstring)."""
    return b"".join(bytes(c) for c in weight_chunks(arr, tagged, fp16))


def bin_bytes(layers: list[Layer], fp16: bool) -> Iterator:
    """The whole ``.bin`` as byte buffers in file order (every layer's weights in layer order;
    join them for the file's bytes). Lazy, so the writer streams one buffer at a time instead
    of holding a second copy of every weight."""
    return (c for l in layers for a, t in l.weights for c in weight_chunks(a, t, fp16))


# ------------------------------------------------------------------ files
def _write_atomic(payloads: list[tuple[Path, Any]]) -> None:
    """Write each ``(path, bytes or iterable of byte buffers)`` to a temporary file, then
    rename all into place; on any error every temporary and renamed file is removed."""
    temps: list[Path] = []
    done: list[Path] = []
    try:
        for final, data in payloads:
            fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
            temps.append(Path(tmp))
            with os.fdopen(fd, "wb") as f:
                for chunk in ([data] if isinstance(data, bytes) else data):
                    f.write(chunk)
            os.chmod(tmp, 0o644)
        for tmp, (final, _) in zip(temps, payloads):
            os.replace(tmp, final)
            done.append(final)
    except BaseException:
        for p in temps + done:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        raise


def write(net: LoweredNet, out_dir: Path, stem: str, fp16: bool = False) -> list[Path]:
    """Write ``<stem>.ncnn.param`` and ``<stem>.ncnn.bin`` into ``out_dir`` (created if missing);
    ``fp16`` stores tagged weights as float16. Returns the two paths.

    Raises:
        OSError: the files cannot be written (nothing is left behind).
        ValueError, TypeError: a param value cannot be serialized.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layers = with_inputs_and_splits(net)
    blob_count = assign_names(layers, net)
    param = param_text(layers, blob_count).encode("utf-8")
    data = bin_bytes(layers, fp16)
    paths = [out_dir / f"{stem}.ncnn.param", out_dir / f"{stem}.ncnn.bin"]
    _write_atomic(list(zip(paths, (param, data))))
    return paths
