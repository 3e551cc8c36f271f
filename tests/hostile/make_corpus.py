"""Build the hostile-input corpus: broken, malicious and absurd model files per frontend.

Every :class:`Case` is a file (its suffix picks the frontend) plus the contract mconv must keep
on it: the documented exit code, one ``error:`` line (containing ``needle``), no traceback,
nothing written to the output folder, and (``marker``) a file that only appears if a pickle
in the file ran code. Cases are derived from three tiny *seed* models (TorchScript ``.pt``,
``torch.export`` ``.pt2``, ``.onnx``) built by :func:`build_seeds` (torch is needed for the
first two); the corpus itself is plain byte surgery, no torch.

Usage (also what ``tests/test_hostile_inputs.py`` does)::

    python tests/hostile/make_corpus.py OUT_DIR     # writes the seeds and every case file
"""
from __future__ import annotations

import io
import json
import pickle
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MARKER_NAME = "PWNED"
BOMB_BYTES = 64 << 20  # real inflated size of the genuine deflate bombs (~1000:1)


@dataclass
class Case:
    """One hostile input and the contract on it."""

    name: str  # file name; the suffix picks the frontend
    frontend: str  # "pytorch" or "onnx"
    data: bytes
    code: int  # expected exit code
    needle: str = ""  # text the one error line must contain
    args: tuple = ()  # extra CLI arguments
    marker: bool = False  # a pickle that would create MARKER_NAME when run
    escape: bool = False  # names that try to escape OUTDIR (the run may succeed)
    why: str = ""

    def write(self, folder: Path) -> Path:
        p = Path(folder) / self.name
        p.write_bytes(self.data)
        return p


# ------------------------------------------------------------------ seeds
def build_seeds(out: Path) -> dict:
    """Write ``seed.pt``, ``seed.pt2`` (torch) and ``seed.onnx`` (onnx only) into ``out``;
    returns name -> path. A conv / relu / pool / linear net on a 1x3x8x8 input."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"onnx": out / "seed.onnx"}
    paths["onnx"].write_bytes(seed_onnx())
    import torch

    torch.manual_seed(0)
    m = _TinyNet().eval()
    x = torch.randn(1, 3, 8, 8)
    paths["pt"], paths["pt2"] = out / "seed.pt", out / "seed.pt2"
    torch.jit.save(torch.jit.trace(m, x), str(paths["pt"]))
    torch.export.save(torch.export.export(m, (x,)), str(paths["pt2"]))
    return paths


def _tiny_net_class():
    import torch

    class TinyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            y = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1)
            return self.fc(torch.flatten(y, 1))
    return TinyNet


def _TinyNet():  # noqa: N802 - a class factory (torch imported lazily)
    return _tiny_net_class()()


def onnx_model(nodes, inputs, outputs, inits=(), opset: int = 17) -> bytes:
    """A serialized ModelProto from onnx.helper pieces."""
    import onnx
    from onnx import helper

    g = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def seed_onnx(x_name: str = "x", y_name: str = "y", node_names=("conv", "relu"),
              dims=(1, 3, 8, 8)) -> bytes:
    """Conv(3->4, 3x3, pad 1) -> Relu, with configurable names and input dims."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3))
                                .astype(np.float32), "w")
    nodes = [helper.make_node("Conv", [x_name, "w"], ["c"], name=node_names[0],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], [y_name], name=node_names[1])]
    out_dims = [dims[0], 4, *dims[2:]]
    return onnx_model(nodes, [helper.make_tensor_value_info(x_name, TensorProto.FLOAT, dims)],
                      [helper.make_tensor_value_info(y_name, TensorProto.FLOAT, out_dims)], [w])


# ------------------------------------------------------------------ zip surgery
def members(data: bytes) -> list:
    """(name, bytes, compress_type) of every member of a zip."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i), i.compress_type) for i in zf.infolist()]


def rezip(items: list) -> bytes:
    """A zip of (name, bytes, compress_type) items."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, ctype in items:
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data,
                        compress_type=ctype)
    return buf.getvalue()


def replace_member(data: bytes, suffix: str, new: bytes, ctype=None) -> bytes:
    """The zip with every member ending in ``suffix`` replaced by ``new``."""
    return rezip([(n, new if n.endswith(suffix) else d,
                   (ctype if ctype is not None else c) if n.endswith(suffix) else c)
                  for n, d, c in members(data)])


def add_member(data: bytes, rel: str, new: bytes, ctype=zipfile.ZIP_STORED) -> bytes:
    items = members(data)
    root = items[0][0].split("/", 1)[0]
    return rezip(items + [(f"{root}/{rel}", new, ctype)])


def deflate_bomb(n_bytes: int = BOMB_BYTES, fill: bytes = b"\0") -> bytes:
    """A raw zip member payload: ``n_bytes`` of ``fill`` deflated (~1000:1)."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = fill * (1 << 20)
    parts = [co.compress(chunk) for _ in range(n_bytes >> 20)]
    return b"".join(parts) + co.flush()


def bomb_zip(root: str, rel: str, n_bytes: int = BOMB_BYTES, fill: bytes = b"\0",
             extra: list = ()) -> bytes:
    """A zip whose member ``root/rel`` inflates to ``n_bytes`` (a genuine deflate bomb),
    written by hand so the payload is never held uncompressed."""
    payload = deflate_bomb(n_bytes, fill)
    crc = 0
    chunk = fill * (1 << 20)
    for _ in range(n_bytes >> 20):
        crc = zlib.crc32(chunk, crc)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in extra:
            zf.writestr(f"{root}/{name}", data)
    head = members(buf.getvalue())
    return _raw_zip(head + [(f"{root}/{rel}", (payload, crc, n_bytes), zipfile.ZIP_DEFLATED)])


def _raw_zip(items: list) -> bytes:
    """A zip from items whose data is bytes (stored) or (deflated payload, crc, size)."""
    out, central = io.BytesIO(), []
    for name, data, ctype in items:
        if isinstance(data, tuple):
            payload, crc, size = data
            method = 8
        else:
            payload, crc, size, method = data, zlib.crc32(data), len(data), 0
        off = out.tell()
        nb = name.encode()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc,
                              len(payload), size, len(nb), 0) + nb + payload)
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0,
                                   crc, len(payload), size, len(nb), 0, 0, 0, 0, 0, off) + nb)
    cd_off = out.tell()
    cd = b"".join(central)
    out.write(cd + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(items), len(items),
                               len(cd), cd_off, 0))
    return out.getvalue()


def declared_size_bomb(data: bytes, suffix: str, size: int = 0xFFFFFF00) -> bytes:
    """The zip with the declared uncompressed size of the member ending in ``suffix``
    patched to ``size`` (local header and central directory): a bomb by declaration."""
    items = members(data)
    raw = bytearray(_raw_zip([(n, d, 0) for n, d, _ in items]))
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (i := raw.find(sig, start)) >= 0:
            nlen_off = 26 if sig == b"PK\x03\x04" else 28
            nlen = struct.unpack_from("<H", raw, i + nlen_off)[0]
            name_at = i + (30 if sig == b"PK\x03\x04" else 46)
            if bytes(raw[name_at:name_at + nlen]).decode().endswith(suffix):
                struct.pack_into("<L", raw, i + off, size)
            start = i + 4
    return bytes(raw)


def many_members(n: int = 60_000) -> bytes:
    """A TorchScript-shaped zip with ``n`` empty members."""
    items = [("m/code/__torch__.py", b"", 0), ("m/constants.pkl", b"\x80\x02).", 0)]
    items += [(f"m/data/{i}", b"", 0) for i in range(n)]
    return _raw_zip(items)


# ------------------------------------------------------------------ pickles
class _Evil:
    """Unpickling this calls ``open(marker, "w")`` (creating the marker file)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_pickle(marker: Path, protocol: int = 2) -> bytes:
    return pickle.dumps(_Evil(marker), protocol=protocol)


def evil_torch_save(marker: Path) -> bytes:
    """A ``torch.save``-shaped zip (``archive/data.pkl``) whose pickle runs code."""
    return rezip([("archive/data.pkl", evil_pickle(marker), 0),
                  ("archive/byteorder", b"little", 0), ("archive/version", b"3\n", 0)])


# ------------------------------------------------------------------ .pt2 JSON surgery
def pt2_edit(data: bytes, rel: str, edit) -> bytes:
    """The ``.pt2`` with the JSON member ending in ``rel`` replaced by ``edit(obj)``."""
    items = members(data)
    out = []
    for n, d, c in items:
        if n.endswith(rel):
            obj = json.loads(d)
            obj = edit(obj) or obj
            d = json.dumps(obj).encode()
        out.append((n, d, c))
    return rezip(out)


def _huge_weight(cfg: dict, sizes: list, strides: list) -> None:
    first = next(iter(cfg["config"].values()))
    first["tensor_meta"]["sizes"] = [{"as_int": s} for s in sizes]
    first["tensor_meta"]["strides"] = [{"as_int": s} for s in strides]


def _huge_input(doc: dict) -> None:
    tv = doc["graph_module"]["graph"]["tensor_values"]
    tv["x"]["sizes"] = [{"as_int": d} for d in (1, 3, 100000, 100000)]


def _pickled_weight(cfg: dict) -> None:
    next(iter(cfg["config"].values()))["use_pickle"] = True


def _pickled_extra(cfg: dict) -> None:
    entry = dict(next(iter(cfg["config"].values())))
    entry.update(path_name="evil.pt", use_pickle=True)
    cfg["config"]["evil_extra"] = entry


# ------------------------------------------------------------------ the corpus
def pytorch_cases(seeds: dict, marker: Path) -> list[Case]:
    """Broken TorchScript ``.pt`` and ``torch.export`` ``.pt2`` files."""
    return _broken_archives(seeds) + _malicious_archives(seeds, marker)


def _broken_archives(seeds: dict) -> list[Case]:
    """Empty, truncated, random, mislabelled and bomb archives."""
    pt, pt2 = Path(seeds["pt"]).read_bytes(), Path(seeds["pt2"]).read_bytes()
    shape = ("--input-shape", "x=1x3x8x8")
    noise = bytes((i * 7919 + 13) % 251 for i in range(40_000))
    return [
        Case("empty.pt", "pytorch", b"", 5, "empty"),
        Case("empty.pt2", "pytorch", b"", 5, "empty"),
        Case("truncated.pt", "pytorch", pt[: len(pt) // 2], 5, "truncated.pt", shape),
        Case("truncated.pt2", "pytorch", pt2[: len(pt2) // 2], 5, "truncated.pt2"),
        Case("header-only.pt2", "pytorch", pt2[:64], 5, "header-only.pt2"),
        Case("random.pt", "pytorch", noise, 5, "random.pt"),
        Case("random.pt2", "pytorch", b"PK\x03\x04" + noise, 5, "random.pt2"),
        Case("onnx-named.pt", "pytorch", seed_onnx(), 5, "onnx-named.pt",
             why="wrong extension: an ONNX file named .pt"),
        Case("text-named.pt2", "pytorch", b"just some text\n" * 10, 5, "text-named.pt2",
             why="wrong extension: text"),
        Case("bomb.pt", "pytorch", bomb_zip("bomb", "code/__torch__.py", extra=[
            ("constants.pkl", b"\x80\x02)."), ("version", b"7\n")]), 5, "bomb.pt", shape,
             why="a 64 MiB deflate bomb member in a TorchScript layout"),
        Case("bomb.pt2", "pytorch", bomb_zip("bomb", "models/model.json", fill=b" ", extra=[
            ("archive_format", b"pt2"), ("byteorder", b"little")]), 5, "bomb.pt2",
             why="models/model.json inflates to 64 MiB of JSON whitespace"),
        Case("declared-bomb.pt", "pytorch", declared_size_bomb(pt, "data.pkl"), 5,
             "declared-bomb.pt", shape, why="a member declaring ~4 GiB uncompressed"),
        Case("many-members.pt", "pytorch", many_members(), 5, "many-members.pt", shape,
             why="60,000 archive members"),
        Case("bad-json.pt2", "pytorch", replace_member(pt2, "models/model.json", b"{\"graph"),
             5, "bad-json.pt2"),
    ]


def _malicious_archives(seeds: dict, marker: Path) -> list[Case]:
    """Pickles that would run code, absurd sizes."""
    pt, pt2 = Path(seeds["pt"]).read_bytes(), Path(seeds["pt2"]).read_bytes()
    shape = ("--input-shape", "x=1x3x8x8")
    return [
        Case("evil.pt", "pytorch", evil_pickle(marker), 5, "evil.pt", marker=True,
             why="a bare pickle whose unpickling runs open(marker)"),
        Case("evil-save.pt", "pytorch", evil_torch_save(marker), 5, "evil-save.pt",
             marker=True, why="a torch.save zip whose data.pkl runs code"),
        Case("evil-constants.pt", "pytorch", replace_member(pt, "constants.pkl",
             evil_pickle(marker)), 5, "evil-constants.pt", shape, marker=True,
             why="TorchScript with a code-running constants.pkl"),
        Case("evil-data.pt", "pytorch", replace_member(pt, "/data.pkl", evil_pickle(marker)),
             5, "evil-data.pt", shape, marker=True,
             why="TorchScript with a code-running data.pkl"),
        Case("evil-weight.pt2", "pytorch", pt2_edit(pt2, "model_weights_config.json",
             _pickled_weight), 5, "pickle", marker=True,
             why=".pt2 weight stored as a pickle"),
        Case("evil-extra.pt2", "pytorch", add_member(pt2_edit(
            pt2, "model_weights_config.json", _pickled_extra), "data/weights/evil.pt",
            evil_torch_save(marker)), 5, "evil-extra.pt2", ("--verify",), marker=True,
             why="an unreferenced pickled weight: torch.export.load at verification"),
        Case("huge-weight.pt2", "pytorch", pt2_edit(pt2, "model_weights_config.json",
             lambda c: _huge_weight(c, [100000] * 3, [10 ** 10, 10 ** 5, 1])), 5,
             "huge-weight.pt2", why="tensor_meta sizes 1e15 elements, a 432-byte file"),
        Case("huge-broadcast.pt2", "pytorch", pt2_edit(pt2, "model_weights_config.json",
             lambda c: _huge_weight(c, [100000] * 3, [0, 0, 0])), 5, "huge-broadcast.pt2",
             why="zero strides: 1e15 elements viewed from one, would be copied"),
        Case("huge-input.pt2", "pytorch", pt2_edit(pt2, "models/model.json", _huge_input), 5,
             "huge-input.pt2", why="an input declared 1x3x100000x100000"),
    ]


def _escaping_external_data():
    """A 4x3x3x3 initializer whose external data sits at ../../../../etc/passwd."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    ext = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
    ext.data_location = TensorProto.EXTERNAL
    ext.ClearField("raw_data")
    for k, v in (("location", "../../../../etc/passwd"), ("length", "432")):
        ext.external_data.add(key=k, value=v)
    return ext


def onnx_cases(seeds: dict) -> list[Case]:
    """Broken ``.onnx`` files."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    good = Path(seeds["onnx"]).read_bytes()
    f32 = TensorProto.FLOAT
    vi = helper.make_tensor_value_info
    shape_c = numpy_helper.from_array(np.array([100000, 100000, 100000], np.int64), "shape")
    big_init = TensorProto(name="w", data_type=f32, dims=[100000, 100000, 100000],
                           raw_data=b"\0" * 16)
    conv = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    return [
        Case("empty.onnx", "onnx", b"", 5, "empty"),
        Case("truncated.onnx", "onnx", good[: len(good) // 2], 5, "truncated.onnx"),
        Case("random.onnx", "onnx", bytes((i * 31 + 7) % 256 for i in range(5000)), 5,
             "random.onnx"),
        Case("pt2-named.onnx", "onnx", Path(seeds["pt2"]).read_bytes(), 5, "pt2-named.onnx",
             why="wrong extension: a .pt2 zip named .onnx"),
        Case("text-named.onnx", "onnx", b"hello world\n" * 20, 5, "text-named.onnx"),
        Case("huge-input.onnx", "onnx", seed_onnx(dims=(1, 3, 100000, 100000)), 5,
             "huge-input.onnx", why="an input declared 1x3x100000x100000"),
        Case("huge-const.onnx", "onnx", onnx_model(
            [helper.make_node("ConstantOfShape", ["shape"], ["big"], name="cos"),
             helper.make_node("Add", ["x", "big"], ["y"], name="add")],
            [vi("x", f32, [1, 1, 1])], [vi("y", f32, None)], [shape_c]), 5, "huge-const.onnx",
             why="ConstantOfShape of 1e15 elements, folded at load time"),
        Case("huge-init.onnx", "onnx", onnx_model(conv, [vi("x", f32, [1, 3, 8, 8])],
             [vi("y", f32, None)], [big_init]), 5, "huge-init.onnx",
             why="an initializer declaring 1e15 elements with 16 bytes of data"),
        Case("escape-data.onnx", "onnx", onnx_model(conv, [vi("x", f32, [1, 3, 8, 8])],
             [vi("y", f32, None)], [_escaping_external_data()]), 5, "escape-data.onnx",
             why="external data at ../../../../etc/passwd"),
        Case("cycle.onnx", "onnx", onnx_model(
            [helper.make_node("Relu", ["b"], ["a"], name="r1"),
             helper.make_node("Relu", ["a"], ["b"], name="r2")],
            [vi("x", f32, [1, 3, 8, 8])], [vi("b", f32, None)]), 5, "cycle.onnx"),
        Case("no-opset.onnx", "onnx", _strip_opset(good), 5, "no-opset.onnx"),
    ]


def _strip_opset(data: bytes) -> bytes:
    import onnx

    m = onnx.load_from_string(data)
    del m.opset_import[:]
    return m.SerializeToString()


def accepted_cases(seeds: dict, marker: Path) -> list[Case]:
    """Files that must convert (exit 0) *safely*: names trying to leave OUTDIR (every file
    lands in OUTDIR under the stem mconv chose), a pickle mconv has no reason to run, a
    file whose content decides over its suffix."""
    pt, pt2 = Path(seeds["pt"]).read_bytes(), Path(seeds["pt2"]).read_bytes()
    return [
        Case("evil-sample.pt2", "pytorch", replace_member(pt2, "sample_inputs/model.pt",
             evil_torch_save(marker)), 0, args=("--verify",), marker=True, escape=True,
             why="a code-running sample_inputs pickle (torch.export.load would run it at "
                 "verification; mconv hands torch a copy without it)"),
        Case("pt-named.pt2", "pytorch", pt, 0, args=("--input-shape", "x=1x3x8x8"),
             escape=True, why="a TorchScript file named .pt2: the content decides"),
        Case("names.onnx", "onnx", seed_onnx("../../in/../x", "../../../../tmp/evil_out",
                                             ("../../conv", "/abs/relu")), 0, escape=True),
        Case("slashes.onnx", "onnx", seed_onnx("a/b\\c", "y:/\\..", ("n\x00ul", "..")), 0,
             escape=True),
        Case("..onnx", "onnx", seed_onnx(), 0, escape=True,
             why="a file stem of '.': files are named model.*"),
    ]


def build_corpus(seeds: dict, marker: Path) -> dict:
    """``{"pytorch": [Case], "onnx": [Case], "accepted": [Case]}``: the first two must be
    refused, the last converted safely."""
    return {"pytorch": pytorch_cases(seeds, marker), "onnx": onnx_cases(seeds),
            "accepted": accepted_cases(seeds, marker)}


def main(argv: list) -> int:
    out = Path(argv[1] if len(argv) > 1 else "hostile-corpus")
    seeds = build_seeds(out / "seeds")
    corpus = build_corpus(seeds, out / MARKER_NAME)
    for group, cases in corpus.items():
        (out / group).mkdir(parents=True, exist_ok=True)
        for c in cases:
            c.write(out / group)
        print(f"{group}: {len(cases)} files in {out / group}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
