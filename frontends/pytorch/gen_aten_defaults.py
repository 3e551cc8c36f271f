"""Generate ``aten_defaults.json``: the argument list of every overload of every ATen op that
has a registered PyTorch converter, so :mod:`.pt2_reader` can fill omitted arguments of a
``.pt2`` graph without importing torch.

``torch.export.save`` leaves out arguments that equal their schema default (pytorch/pytorch
``torch/_export/serde/serialize.py``, ``GraphModuleSerializer.serialize_inputs``), so a reader
needs each overload's schema: argument names in order, ``kwarg_only`` flags and defaults. The
schemas come from ``torch.ops.<ns>.<op>.<overload>._schema`` (``torch._C.FunctionSchema``).
For a registered op ``aten.relu`` the in-place variant ``aten.relu_`` is included as well,
since the walkers map both to the same converter (:func:`.context.op_name`).

Regenerate (needs torch) after adding or removing a converter, and commit the JSON::

    /work/venv/bin/python -m frontends.pytorch.gen_aten_defaults

File format::

    {"torch_version": "2.13.0+cpu",
     "ops": ["aten.add", ...],                      # registered converter keys
     "overloads": {"aten.conv2d.default": [         # "<ns>.<op>.<overload>"
         {"name": "input", "kwarg_only": false},    # no "default": required argument
         {"name": "groups", "kwarg_only": false, "default": 1}, ...]}}

Defaults are plain JSON (null, bool, int, float, str, lists) except values JSON cannot hold,
written as one-key objects: ``{"float": "inf" | "-inf" | "nan"}``, ``{"dtype": "float32"}``,
``{"memory_format": "contiguous_format"}``, ``{"layout": "strided"}``, ``{"device": "cpu"}``,
``{"complex": [re, im]}``; :func:`.pt2_reader.decode_default` reads them back.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "aten_defaults.json"


def encode_default(v: Any) -> Any:
    """A schema default value in JSON-safe form (see the module docstring)."""
    import torch

    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else {"float": str(v)}
    if isinstance(v, (list, tuple)):
        return [encode_default(e) for e in v]
    if isinstance(v, complex):
        return {"complex": [v.real, v.imag]}
    if isinstance(v, torch.dtype):
        return {"dtype": str(v).replace("torch.", "")}
    if isinstance(v, torch.memory_format):
        return {"memory_format": str(v).replace("torch.", "")}
    if isinstance(v, torch.layout):
        return {"layout": str(v).replace("torch.", "")}
    if isinstance(v, torch.device):
        return {"device": str(v)}
    raise TypeError(f"cannot encode schema default {v!r} ({type(v).__name__})")


def schema_args(schema) -> list[dict]:
    """The arguments of a ``torch._C.FunctionSchema`` as JSON records, in schema order."""
    out = []
    for a in schema.arguments:
        rec: dict = {"name": a.name, "kwarg_only": bool(a.kwarg_only)}
        if a.has_default_value():
            rec["default"] = encode_default(a.default_value)
        out.append(rec)
    return out


def registered_ops() -> list[str]:
    """Keys of every registered PyTorch converter (``"aten.conv2d"``), sorted."""
    import frontends.pytorch  # noqa: F401  (registers the converters)
    from converter.registry import CONVERTERS

    return sorted(op for fw, op in CONVERTERS if fw == "pytorch")


def overloads_of(op: str) -> dict[str, list[dict]]:
    """``{"aten.relu.default": [...], "aten.relu_.default": [...]}`` for ``"aten.relu"``."""
    import torch

    ns, name = op.split(".", 1)
    out: dict[str, list[dict]] = {}
    for variant in (name, name + "_"):
        packet = getattr(getattr(torch.ops, ns), variant, None)
        if packet is None:
            continue
        for ov in packet.overloads():
            out[f"{ns}.{variant}.{ov}"] = schema_args(getattr(packet, ov)._schema)
    return out


def generate() -> dict:
    """The content of ``aten_defaults.json`` for the installed torch and registered ops."""
    import torch

    ops = registered_ops()
    overloads: dict[str, list[dict]] = {}
    for op in ops:
        overloads.update(overloads_of(op))
    return {"torch_version": torch.__version__, "ops": ops,
            "overloads": dict(sorted(overloads.items()))}


def dumps(data: dict) -> str:
    """Stable text: one overload per line, so a regenerated file diffs line by line."""
    head = {k: v for k, v in data.items() if k != "overloads"}
    lines = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()]
    body = [f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}"
            for k, v in data["overloads"].items()]
    return "{" + ",\n".join(lines) + ',\n"overloads": {\n' + ",\n".join(body) + "\n}}\n"


def main(argv: list[str] | None = None) -> int:
    data = generate()
    OUT.write_text(dumps(data))
    missing = [op for op in data["ops"]
               if not any(k.startswith(op + ".") or k.startswith(op + "_.")
                          for k in data["overloads"])]
    print(f"wrote {OUT} ({len(data['overloads'])} overloads of {len(data['ops'])} ops)")
    if missing:
        print(f"no torch op for: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
