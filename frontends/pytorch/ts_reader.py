"""Translate a TorchScript ``.pt`` archive into IR *without importing torch*.

:func:`walk_ts_file` reads the archive with :mod:`.ts_unpickle` (a restricted unpickler: no
code from the file runs), rebuilds ``torch.jit.load(path).inlined_graph`` with
:mod:`.ts_interp` (same nodes, order and value names), and walks it exactly as
:func:`.walk.walk_torchscript` walks torch's graph: same :class:`~.context.SourceNode`
records (schema argument names from ``aten_defaults.json``), same converters
(:func:`.walk.check_supported` over every op first, then :func:`.walk.run_converter`), same
input names and shapes (:func:`.walk._shape_for`) and outputs (:func:`.walk._set_outputs`).

Whatever the reader does not model raises :class:`NotInterpretable`;
:func:`frontends.pytorch.load` then loads the file with torch instead, so this path is an
optimization, never a regression. ``MCONV_TS_READER=torch`` forces the torch path,
``MCONV_TS_READER=fast`` forces this one (no fallback; for tests and debugging).

Operator schemas: argument names, ``kwarg_only`` flags and defaults come from
``aten_defaults.json`` (:mod:`.gen_aten_defaults`); :data:`SIGNATURES` adds what overload
resolution needs and the JSON lacks: every overload of each op *in registration order*
(``torch._C._jit_get_schemas_for_operator``) with argument and return types, coded ``T``
Tensor, ``i`` int / SymInt / ScalarType / Layout / MemoryFormat, ``f`` float, ``b`` bool,
``s`` str, ``n`` Scalar, ``c`` complex, ``D`` Device, ``G`` Generator, ``t`` a type variable,
``x`` anything else; ``X?`` Optional, ``X[]`` / ``X[N]`` lists; ``*`` keyword-only. Ops
without a converter (``Int``, ``len``, ...) carry their argument names (``name:code``).
``tests/test_ts_reader.py`` checks the table against the installed torch.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from converter.errors import UsageError
from converter.ir import Graph as IRGraph
from converter.names import sanitize

from .context import Ctx, SourceNode, op_name
from .pt2_reader import schemas
from .ts_unpickle import NotInterpretable, TensorRef, TSArchive, TSObject
from .walk import (SCALAR_OPS, _all_python, _flatten, _pythonize, _set_outputs, _shape_for,
                   check_supported, run_converter)

ENV_VAR = "MCONV_TS_READER"
# Operators whose schema changed at a bumped operator version: files below the version
# compile them to older schemas (torch/csrc/jit/operator_upgraders/version_map.cpp).
UPGRADED = {"div": 4, "div_": 4, "full": 5, "linspace": 8, "logspace": 9, "gelu": 10}

SIGNATURES = """
_adaptive_avg_pool2d default(T,i[2])T out(T,i[2],*T)T
_convolution deprecated(T,T,T?,i[],i[],i[],b,i[],i,b,b,b)T
  default(T,T,T?,i[],i[],i[],b,i[],i,b,b,b,b)T out(T,T,T?,i[],i[],i[],b,i[],i,b,b,b,b,*T)T
_convolution_mode default(T,T,T?,i[],s,i[],i)T
_log_softmax default(T,i,b)T out(T,i,b,*T)T
_native_batch_norm_legit_no_training default(T,T?,T?,T,T,f,f)T,T,T
  out(T,T?,T?,T,T,f,f,*T,*T,*T)T,T,T
_softmax default(T,i,b)T out(T,i,b,*T)T
_unsafe_view default(T,i[])T out(T,i[],*T)T
abs default(T)T out(T,*T)T
abs_ default(T)T
adaptive_avg_pool1d default(T,i[1])T out(T,i[1],*T)T
adaptive_avg_pool2d default(T,i[2])T out(T,i[2],*T)T
adaptive_max_pool1d default(T,i[1])T,T
adaptive_max_pool2d default(T,i[2])T,T out(T,i[2],*T,*T)T,T
add Tensor(T,T,*n)T Scalar(T,n,n)T out(T,T,*n,*T)T Scalar_out(T,n,n,*T)T t(t[],t[])t[]
  str(s,s)s int(i,i)i complex(c,c)c float(f,f)f int_complex(i,c)c complex_int(c,i)c
  float_complex(f,c)c complex_float(c,f)c int_float(i,f)f float_int(f,i)f default(n,n)n
add_ Tensor(T,T,*n)T Scalar(T,n,n)T t(t[],t[])t[]
addmm default(T,T,T,*n,*n)T out(T,T,T,*n,*n,*T)T dtype_out(T,T,T,i,*n,*n,*T)T
  dtype(T,T,T,i,*n,*n)T
addmm_ default(T,T,T,*n,*n)T
alias default(T)T
alpha_dropout default(T,f,b)T
alpha_dropout_ default(T,f,b)T
amax default(T,i[1],b)T out(T,i[1],b,*T)T
avg_pool1d default(T,i[1],i[1],i[1],b,b)T out(T,i[1],i[1],i[1],b,b,*T)T
avg_pool2d default(T,i[2],i[2],i[2],b,b,i?)T out(T,i[2],i[2],i[2],b,b,i?,*T)T
batch_norm default(T,T?,T?,T?,T?,b,f,f,b)T
bmm default(T,T)T out(T,T,*T)T dtype_out(T,T,i,*T)T dtype(T,T,i)T
cat default(T[],i)T out(T[],i,*T)T
ceil default(T)T out(T,*T)T int(i)i float(f)i Scalar(n)n
ceil_ default(T)T
channel_shuffle default(T,i)T out(T,i,*T)T
chunk default(T,i,i)T[]
clamp default(T,n?,n?)T Tensor(T,T?,T?)T out(T,n?,n?,*T)T Tensor_out(T,T?,T?,*T)T
clamp_ default(T,n?,n?)T Tensor(T,T?,T?)T
clamp_max default(T,n)T Tensor(T,T)T out(T,n,*T)T Tensor_out(T,T,*T)T
clamp_max_ default(T,n)T Tensor(T,T)T
clamp_min default(T,n)T Tensor(T,T)T out(T,n,*T)T Tensor_out(T,T,*T)T
clamp_min_ default(T,n)T Tensor(T,T)T
clip default(T,n?,n?)T Tensor(T,T?,T?)T out(T,n?,n?,*T)T Tensor_out(T,T?,T?,*T)T
clip_ default(T,n?,n?)T Tensor(T,T?,T?)T
clone default(T,*i?)T out(T,*i?,*T)T
constant_pad_nd default(T,i[],n)T out(T,i[],n,*T)T
contiguous default(T,*i)T
conv1d default(T,T,T?,i[1],i[1],i[1],i)T padding(T,T,T?,i[1],s,i[1],i)T
conv2d default(T,T,T?,i[2],i[2],i[2],i)T padding(T,T,T?,i[2],s,i[2],i)T
conv_transpose1d default(T,T,T?,i[1],i[1],i[1],i,i[1])T
conv_transpose2d input(T,T,T?,i[2],i[2],i[2],i,i[2])T
convolution default(T,T,T?,i[],i[],i[],b,i[],i)T out(T,T,T?,i[],i[],i[],b,i[],i,*T)T
detach default(T)T
detach_ default(T)T
div Tensor(T,T)T Scalar(T,n)T Tensor_mode(T,T,*s?)T Scalar_mode(T,n,*s?)T out(T,T,*T)T
  out_mode(T,T,*s?,*T)T Scalar_out(T,n,*T)T Scalar_mode_out(T,n,*s?,*T)T int(i,i)f
  complex(c,c)c float(f,f)f default(n,n)f
div_ Tensor(T,T)T Tensor_mode(T,T,*s?)T Scalar(T,n)T Scalar_mode(T,n,*s?)T
dropout default(T,f,b)T
dropout_ default(T,f,b)T
elu default(T,n,n,n)T out(T,n,n,n,*T)T
elu_ default(T,n,n,n)T
erf default(T)T out(T,*T)T int(i)f float(f)f Scalar(n)n
erf_ default(T)T
exp default(T)T out(T,*T)T int(i)f float(f)f complex(c)c Scalar(n)n
exp_ default(T)T
feature_alpha_dropout default(T,f,b)T
feature_alpha_dropout_ default(T,f,b)T
feature_dropout default(T,f,b)T
feature_dropout_ default(T,f,b)T
flatten using_ints(T,i,i)T
floor default(T)T out(T,*T)T int(i)i float(f)i Scalar(n)n
floor_ default(T)T
floor_divide default(T,T)T Scalar(T,n)T out(T,T,*T)T Scalar_out(T,n,*T)T
floor_divide_ Tensor(T,T)T Scalar(T,n)T
gelu default(T,*s)T out(T,*s,*T)T
gelu_ default(T,*s)T
hardsigmoid default(T)T out(T,*T)T
hardsigmoid_ default(T)T
hardswish default(T)T out(T,*T)T
hardswish_ default(T)T
hardtanh default(T,n,n)T out(T,n,n,*T)T
hardtanh_ default(T,n,n)T
leaky_relu default(T,n)T out(T,n,*T)T
leaky_relu_ default(T,n)T
lift_fresh_copy default(T)T out(T,*T)T
linear default(T,T,T?)T out(T,T,T?,*T)T
log default(T)T out(T,*T)T int(i)f float(f)f complex(c)c Scalar(n)n int_int(i,i)f
  float_float(f,f)f complex_complex(c,c)c int_float(i,f)f float_int(f,i)f int_complex(i,c)c
  complex_int(c,i)c float_complex(f,c)c complex_float(c,f)c Scalar_Scalar(n,n)f
log_ default(T)T
log_softmax int(T,i,i?)T int_out(T,i,i?,*T)T
matmul default(T,T)T out(T,T,*T)T
max_pool1d default(T,i[1],i[1],i[1],i[1],b)T
max_pool2d default(T,i[2],i[2],i[2],i[2],b)T
max_pool2d_with_indices default(T,i[2],i[2],i[2],i[2],b)T,T
  out(T,i[2],i[2],i[2],i[2],b,*T,*T)T,T
maximum default(T,T)T out(T,T,*T)T
mean default(T,*i?)T dim(T,i[1]?,b,*i?)T out(T,i[1]?,b,*i?,*T)T dtype_out(T,*i?,*T)T
minimum default(T,T)T out(T,T,*T)T
mish default(T)T out(T,*T)T
mish_ default(T)T
mm default(T,T)T out(T,T,*T)T dtype_out(T,T,i,*T)T dtype(T,T,i)T
mul Tensor(T,T)T Scalar(T,n)T out(T,T,*T)T Scalar_out(T,n,*T)T left_t(t[],i)t[]
  right_(i,t[])t[] int(i,i)i complex(c,c)c float(f,f)f int_complex(i,c)c complex_int(c,i)c
  float_complex(f,c)c complex_float(c,f)c int_float(i,f)f float_int(f,i)f default(n,n)n
mul_ Tensor(T,T)T Scalar(T,n)T t(t[],i)t[]
narrow default(T,i,i,i)T Tensor(T,i,T,i)T
native_channel_shuffle default(T,i)T
native_dropout default(T,f,b?)T,T out(T,f,b?,*T,*T)T,T
neg default(T)T out(T,*T)T int(i)i float(f)f complex(c)c Scalar(n)n
neg_ default(T)T
pad default(T,i[],s,f?)T
permute default(T,i[])T
pow Tensor_Tensor(T,T)T Tensor_Scalar(T,n)T Scalar(n,T)T Tensor_Tensor_out(T,T,*T)T
  Scalar_out(n,T,*T)T Tensor_Scalar_out(T,n,*T)T int(i,i)f complex(c,c)c float(f,f)f
  int_float(i,f)f float_int(f,i)f float_complex(f,c)c complex_float(c,f)c Scalar_Scalar(n,n)f
  int_to_int(i,i)i
pow_ Scalar(T,n)T Tensor(T,T)T
prelu default(T,T)T
reciprocal default(T)T out(T,*T)T
reciprocal_ default(T)T
reflection_pad1d default(T,i[2])T out(T,i[2],*T)T
reflection_pad2d default(T,i[4])T out(T,i[4],*T)T
relu default(T)T out(T,*T)T
relu6 default(T)T
relu6_ default(T)T
relu_ default(T)T
replication_pad1d default(T,i[2])T out(T,i[2],*T)T
replication_pad2d default(T,i[4])T out(T,i[4],*T)T
reshape default(T,i[])T
rsqrt default(T)T out(T,*T)T
rsqrt_ default(T)T
rsub Tensor(T,T,*n)T Scalar(T,n,n)T Tensor_out(T,T,*n,*T)T Scalar_out(T,n,n,*T)T
select int(T,i,i)T t(t[],i)t
selu default(T)T
selu_ default(T)T
sigmoid default(T)T out(T,*T)T
sigmoid_ default(T)T
silu default(T)T out(T,*T)T
silu_ default(T)T
size int(T,i)i default(T)i[]
slice Tensor(T,i,i?,i?,i)T t(t[],i?,i?,i)t[] str(s,i?,i?,i)s
softmax int(T,i,i?)T int_out(T,i,i?,*T)T
softplus default(T,n,n)T out(T,n,n,*T)T
split Tensor(T,i,i)T[] sizes(T,i[],i)T[] str(s,s?,i)s[] default(T,i[],i)T[]
split_with_sizes default(T,i[],i)T[]
sqrt default(T)T out(T,*T)T int(i)f float(f)f complex(c)c Scalar(n)n
sqrt_ default(T)T
squeeze default(T)T dim(T,i)T dims(T,i[])T
squeeze_ default(T)T dim(T,i)T dims(T,i[])T
stack default(T[],i)T out(T[],i,*T)T
sub Tensor(T,T,*n)T Scalar(T,n,n)T out(T,T,*n,*T)T Scalar_out(T,n,n,*T)T int(i,i)i
  complex(c,c)c float(f,f)f int_complex(i,c)c complex_int(c,i)c float_complex(f,c)c
  complex_float(c,f)c int_float(i,f)f float_int(f,i)f default(n,n)n
sub_ Tensor(T,T,*n)T Scalar(T,n,n)T
sum dim_IntList(T,i[1]?,b,*i?)T default(T,*i?)T IntList_out(T,i[1]?,b,*i?,*T)T out(T,*i?,*T)T
  int(i[])i float(f[])f complex(c[])c bool(b[])i
sym_size int(T,i)i default(T)i[]
t default(T)T
t_ default(T)T
tanh default(T)T out(T,*T)T int(i)f float(f)f complex(c)c Scalar(n)n
tanh_ default(T)T
to device(T,D,i,b,b,i?)T dtype(T,i,b,b,i?)T other(T,T,b,b,i?)T
  dtype_layout(T,*i?,*i?,*D?,*b?,*b,*b,*i?)T prim_Device(T,D?,i?,b,b)T prim_dtype(T,i?,b,b)T
  prim_other(T,b,b)T
transpose int(T,i,i)T
transpose_ default(T,i,i)T
type_as default(T,T)T
unbind int(T,i)T[]
unsqueeze default(T,i)T
unsqueeze_ default(T,i)T
upsample_bilinear2d default(T,i[2],b,f?,f?)T vec(T,i[]?,b,f[]?)T out(T,i[2],b,f?,f?,*T)T
  vec_out(T,i[]?,b,f[]?,*T)T
upsample_linear1d default(T,i[1],b,f?)T vec(T,i[]?,b,f[]?)T out(T,i[1],b,f?,*T)T
upsample_nearest1d default(T,i[1],f?)T vec(T,i[]?,f[]?)T out(T,i[1],f?,*T)T
upsample_nearest2d default(T,i[2],f?,f?)T vec(T,i[]?,f[]?)T out(T,i[2],f?,f?,*T)T
  vec_out(T,i[]?,f[]?,*T)T
view default(T,i[])T dtype(T,i)T
Int Tensor(a:T)i bool(a:b)i float(a:f)i Scalar(a:n)i str(a:s)i
Float Tensor(a:T)f Scalar(a:n)f int(a:i)f bool(a:b)f str(a:s)f
ScalarImplicit default(a:T)n
IntImplicit default(a:T)i
FloatImplicit default(a:T)f
len t(a:t[])i Tensor(t:T)i str(s:s)i Dict_str(self:x)i Dict_int(self:x)i Dict_bool(self:x)i
  Dict_float(self:x)i Dict_complex(self:x)i Dict_Tensor(self:x)i any(a:x[])i
__getitem__ t(list:t[],idx:i)t str(s:s,index:i)s Dict_str(self:x,key:s)t
  Dict_int(self:x,key:i)t Dict_bool(self:x,key:b)t Dict_float(self:x,key:f)t
  Dict_complex(self:x,key:c)t Dict_Tensor(self:x,key:T)t
prim::NumToTensor Scalar(a:n)T bool(a:b)T
"""


class Formal:
    """One schema argument: name, type code, keyword-only flag, default (if any)."""

    __slots__ = ("name", "code", "kwarg_only", "has_default", "default")

    def __init__(self, name: str, code: str, kwarg_only: bool, rec: Optional[dict]):
        self.name, self.code, self.kwarg_only = name, code, kwarg_only
        self.has_default = rec is not None and "default" in rec
        self.default = rec.get("default") if rec else None


class Overload:
    __slots__ = ("name", "formals", "rets")

    def __init__(self, name: str, formals: list, rets: list):
        self.name, self.formals, self.rets = name, formals, rets


_TABLE: Optional[dict] = None
_OVERLOADS: dict = {}


def _table() -> dict:
    """``{"aten::add": ["Tensor(T,T,*n)T", ...]}`` parsed from :data:`SIGNATURES`."""
    global _TABLE
    if _TABLE is None:
        _TABLE, name = {}, ""
        for line in SIGNATURES.splitlines():
            parts = line.split()
            if parts and not line[0].isspace():
                name = parts[0] if "::" in parts[0] else "aten::" + parts[0]
                _TABLE[name], parts = [], parts[1:]
            if parts:
                _TABLE[name] += parts
    return _TABLE


def _parse_overload(ns: str, op: str, text: str) -> Overload:
    ov, rest = text.split("(", 1)
    args, rets = rest.split(")", 1)
    recs = schemas().get(f"{ns}.{op}.{ov}")
    formals = []
    for k, tok in enumerate(a for a in args.split(",") if a):
        kw = tok.startswith("*")
        tok = tok.lstrip("*")
        name, code = tok.split(":", 1) if ":" in tok else (None, tok)
        rec = recs[k] if recs is not None and k < len(recs) else None
        if name is None:
            if rec is None:
                raise NotInterpretable(f"{ns}.{op}.{ov} is missing from aten_defaults.json")
            name = rec["name"]
        formals.append(Formal(name, code, kw, rec))
    return Overload(ov, formals, [r for r in rets.split(",") if r])


def overloads_of(ns: str, op: str) -> list:
    """The overloads of ``ns::op`` in registration order.

    Raises:
        NotInterpretable: an op without a known schema (the torch path names it exactly).
    """
    key = f"{ns}::{op}"
    if key not in _OVERLOADS:
        texts = _table().get(key)
        if texts is None:
            raise NotInterpretable(f"no schema for {key}")
        _OVERLOADS[key] = [_parse_overload(ns, op, t) for t in texts]
    return _OVERLOADS[key]


def arg_names(key: str) -> list:
    """Argument names of overload ``aten.relu.default`` (``ns.op.overload``)."""
    if key.count(".") < 2:
        raise NotInterpretable("an op without a schema reached the converters")
    ns, op, ov = key.split(".", 2)
    for o in overloads_of(ns, op):
        if o.name == ov:
            return [f.name for f in o.formals]
    raise NotInterpretable(f"unknown overload {key}")


# ------------------------------------------------------------------ types
_SCALARS = {"Tensor": "T", "int": "i", "float": "f", "bool": "b", "str": "s",
            "NoneType": "N", "None": "N", "complex": "c", "Device": "D"}


def resolve_type(ann: Optional[ast.expr]) -> Any:
    """A TorchScript annotation (``Tensor``, ``Tuple[Tensor, Tensor]``, ``List[int]``) as
    the reader's type: a code, ``("tuple", (...))``, ``("list", elem)``, ``("obj", name)``."""
    if isinstance(ann, ast.Name) and ann.id in _SCALARS:
        return _SCALARS[ann.id]
    if isinstance(ann, ast.Constant) and ann.value is None:
        return "N"
    if isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name):
        elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        if ann.value.id == "Tuple":
            return ("tuple", tuple(resolve_type(e) for e in elts))
        if ann.value.id == "List" and len(elts) == 1:
            return ("list", resolve_type(elts[0]))
    if isinstance(ann, ast.Attribute):
        return ("obj", ast.unparse(ann))
    raise NotInterpretable(f"type annotation {ast.unparse(ann) if ann else None}")


def _elem(code: str) -> tuple:
    """``("i", 2)`` for ``i[2]``, ``("T", 0)`` for ``T[]``, ``(None, 0)`` for a non-list."""
    if not code.endswith("]"):
        return None, 0
    base, n = code[:-1].split("[", 1)
    return base, int(n) if n else 0


def _bind(code: str, vt: Any, env: dict) -> bool:
    """``matchTypeVariables`` for ``t`` / ``t[]`` / ``t?``."""
    code = code.rstrip("?")
    if code == "t":
        return env.setdefault("t", vt) == vt
    if code == "t[]":
        if not (isinstance(vt, tuple) and vt[0] == "list"):
            return False
        return env.setdefault("t", vt[1]) == vt[1]
    return True


def _subst(code: str, env: dict) -> Any:
    """A formal type with its type variable replaced by the bound type."""
    base = code.rstrip("?")
    if "t" not in env or base not in ("t", "t[]"):
        return code
    t = env["t"] if base == "t" else ("list", env["t"])
    return (t, "?") if code.endswith("?") else t


def subtype(vt: Any, code: Any) -> bool:
    """``vt.isSubtypeOf(code)`` for the types the reader produces."""
    if isinstance(code, tuple) and len(code) == 2 and code[1] == "?":
        return vt == "N" or subtype(vt, code[0])
    if not isinstance(code, str):
        return vt == code
    if code.endswith("?"):
        return vt == "N" or subtype(vt, code[:-1])
    base, _ = _elem(code)
    if base is not None:
        return isinstance(vt, tuple) and vt[0] == "list" and vt[1] == base
    if code == "n":
        return vt in ("i", "f", "c", "n")
    return vt == code and code not in ("x", "G")


def ret_type(code: str, env: dict) -> Any:
    t = _subst(code, env)
    if isinstance(t, str):
        base, _ = _elem(t)
        return ("list", base) if base is not None else t
    return t


# ------------------------------------------------------------------ overload matching
def match_call(em, overloads: list, args: list, kwargs: list) -> tuple:
    """``matchSchemas``: the first overload that fits, without implicit conversions first
    when there are several; returns (overload, node inputs, output types).

    Raises:
        NotInterpretable: nothing fits (torch would raise, or convert in ways not modelled).
    """
    passes = (True,) if len(overloads) == 1 else (False, True)
    for allow in passes:
        for ov in overloads:
            got = _try_match(em, ov, args, kwargs, allow)
            if got is not None:
                return ov, got[0], got[1]
    raise NotInterpretable(f"no overload of {overloads[0].name}... fits the call")


def _find_kw(name: str, kwargs: list) -> Optional[int]:
    for k, (kn, _) in enumerate(kwargs):
        if kn == name or (name == "self" and kn == "input"):
            return k
    return None


def _try_match(em, ov: Overload, args: list, kwargs: list, allow: bool) -> Optional[tuple]:
    """``tryMatchSchema``: defaults are inserted as constants even if a later argument
    fails, as torch does."""
    env: dict = {}
    inputs, used, used_kw = [], 0, set()
    for i, f in enumerate(ov.formals):
        if not f.kwarg_only and used < len(args):
            if allow and _varargs_list(ov, i, f) and not _listlike(args[used].type):
                raise NotInterpretable("varargs passed for a list argument")
            actual = args[used]
            used += 1
        else:
            k = _find_kw(f.name, kwargs)
            if k is not None:
                if k in used_kw:
                    return None
                used_kw.add(k)
                actual = kwargs[k][1]
            elif f.has_default:
                actual = em.default(f.default, f.code)
            else:
                return None
        v = _match_arg(em, f.code, actual, allow, env)
        if v is None:
            return None
        inputs.append(v)
    if used < len(args) or len(used_kw) < len(kwargs):
        return None
    return inputs, [ret_type(r, env) for r in ov.rets]


def _listlike(t: Any) -> bool:
    return isinstance(t, tuple) and t[0] in ("list", "tuple")


def _varargs_list(ov: Overload, i: int, f: Formal) -> bool:
    last = i + 1 == len(ov.formals) or ov.formals[i + 1].kwarg_only
    base, n = _elem(f.code)
    return last and base is not None and base != "t" and n == 0


def _match_arg(em, code: str, v, allow: bool, env: dict):
    """``tryMatchArgument``: int-for-int[N] repetition, type variables, conversions."""
    base, n = _elem(code.rstrip("?"))
    if v.type in ("i", "f") and base == v.type and n:
        v = em.add("prim::ListConstruct", [v] * n, [("list", v.type)]).outputs[0]
    if not _bind(code, v.type, env):
        return None
    concrete = _subst(code, env)
    v = _convert(em, concrete, v, allow)
    return v if subtype(v.type, concrete) else None


def _convert(em, code: Any, v, allow: bool):
    """``tryConvertToType``: Optional unwrapping, tuple -> list, Tensor -> number."""
    if isinstance(code, str) and code.endswith("?") and v.type != "N":
        code = code[:-1]
    if isinstance(v.type, tuple) and v.type[0] == "tuple" and isinstance(code, str):
        base, _ = _elem(code)
        if base is not None and all(subtype(t, base) for t in v.type[1]):
            elems = em.unpack(v, len(v.type[1]))
            v = em.add("prim::ListConstruct", elems, [("list", base)]).outputs[0]
    if allow and v.type == "T" and code in ("f", "i", "n", "c"):
        if code == "c":
            raise NotInterpretable("implicit Tensor -> complex conversion")
        op = {"f": "FloatImplicit", "i": "IntImplicit", "n": "ScalarImplicit"}[code]
        return em.builtin("aten", op, [v], [])
    if allow and v.type == "n" and code in ("f", "i"):
        return em.builtin("aten", "Float" if code == "f" else "Int", [v], [])
    return v


# ------------------------------------------------------------------ walking
PRIM = {"prim::Constant", "prim::ListConstruct", "prim::TupleConstruct", "prim::ListUnpack",
        "prim::TupleUnpack", "prim::NumToTensor", "prim::min", "prim::max",
        "prim::TupleIndex", "prim::device", "prim::dtype", "prim::GetAttr"}


def ts_name(n) -> str:
    """:func:`.walk._ts_name` for a loaded graph (no scopes): the first output's name."""
    return sanitize(n.outputs[0].debug_name() if n.outputs else n.kind.split("::")[-1])


def prescan(nodes: list) -> dict:
    """Count source ops; raise one UnsupportedOpsError for every op without a converter."""
    counts: dict = {}
    pending = []
    for n in nodes:
        if n.kind.startswith("prim::"):
            if n.kind not in PRIM:
                pending.append((n.kind.replace("::", "."), ts_name(n)))
            continue
        op, _ = op_name(n.kind)
        counts[op] = counts.get(op, 0) + 1
        if op not in SCALAR_OPS:
            pending.append((op, ts_name(n)))
    check_supported(pending, counts)
    return counts


def tensor_array(ref: TensorRef) -> np.ndarray:
    """The array :func:`.walk.to_numpy` makes of the tensor (``np.ascontiguousarray``: a
    0-d tensor becomes shape ``(1,)``)."""
    return np.ascontiguousarray(ref.array())


def _getattr(cx: Ctx, obj: Any, attr: str) -> Any:
    """``prim::GetAttr``: a submodule stays a record, a tensor becomes one shared constant
    named after the attribute (cached by identity, as :func:`.walk._ts_getattr`)."""
    if not isinstance(obj, TSObject) or not obj.has(attr):
        raise NotInterpretable(f"attribute {attr!r} of a non-module value")
    v = obj.attr(attr)
    if isinstance(v, TensorRef):
        if id(v) not in cx.attr_cache:
            cx.attr_cache[id(v)] = (v, cx.g.const(tensor_array(v), sanitize(attr)))
        return cx.attr_cache[id(v)][1]
    return v


def _prim(cx: Ctx, n, args: list, env: dict) -> None:
    outs, kind = n.outputs, n.kind
    if kind == "prim::Constant":
        v = n.attr
        env[outs[0]] = cx.g.const(tensor_array(v), sanitize(outs[0].debug_name())) \
            if isinstance(v, TensorRef) else v
    elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
        env[outs[0]] = list(args)
    elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
        for o, v in zip(outs, args[0]):
            env[o] = v
    elif kind == "prim::GetAttr":
        env[outs[0]] = _getattr(cx, args[0], n.attr)
    elif kind == "prim::TupleIndex":
        env[outs[0]] = args[0][args[1]]
    elif kind == "prim::NumToTensor":
        env[outs[0]] = args[0]
    else:
        raise NotInterpretable(f"{kind} is not interpreted")


def walk_node(cx: Ctx, n, env: dict) -> None:
    """:func:`.walk._ts_node` on a rebuilt node: arguments by schema name, scalar
    arithmetic in Python, the rest through the registered converter."""
    args = [env.get(i) for i in n.inputs]
    if n.kind.startswith("prim::"):
        _prim(cx, n, args, env)
        return
    op, overload = op_name(n.kind)
    a = dict(zip(arg_names(n.key), args))
    if op in SCALAR_OPS and _all_python(_pythonize(a)):
        try:
            res = SCALAR_OPS[op](_pythonize(a))
        except (KeyError, TypeError, ZeroDivisionError) as e:
            raise NotInterpretable(f"{op} on {a}: {e}") from None
    else:
        res = run_converter(cx, SourceNode(op, ts_name(n), a, overload=overload))
    if len(n.outputs) == 1:
        env[n.outputs[0]] = res
    else:
        for o, v in zip(n.outputs, res):
            env[o] = v


def walk_graph(tg, root: TSObject, overrides: dict, name: str) -> tuple:
    """:func:`.walk.walk_torchscript` over a rebuilt inlined graph."""
    counts = prescan(tg.nodes)
    g = IRGraph(name)
    env: dict = {tg.inputs[0]: root}
    ins = tg.inputs[1:]
    for i in ins:
        nm = sanitize(i.debug_name().split(".")[0])
        env[i] = g.add_input(nm, "float32", _shape_for(nm, None, overrides, len(ins)))
    cx = Ctx(g)
    cx.attr_cache = {}
    for n in tg.nodes:
        walk_node(cx, n, env)
    _set_outputs(g, _flatten([env[o] for o in tg.outputs]), [])
    return g, counts


def reader_mode() -> str:
    """``MCONV_TS_READER``: ``auto`` (default), ``fast`` or ``torch``.

    Raises:
        UsageError: any other value.
    """
    mode = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if mode not in ("auto", "fast", "torch"):
        raise UsageError(f"{ENV_VAR}={mode!r} is not one of auto, fast, torch",
                         f"unset {ENV_VAR} or set it to fast or torch")
    return mode


def check_version(ar: TSArchive, program) -> None:
    """Files below an op's upgrader version compile that op to an older schema."""
    version = ar.version()
    for (qualname, method), g in program.compiled_graphs.items():
        for n in g.nodes:
            op = n.kind.split("::", 1)[1]
            if n.kind.startswith("aten::") and version < UPGRADED.get(op, 0):
                raise NotInterpretable(f"{n.kind} in a version-{version} file (upgrader)")


def walk_ts_file(path, overrides: dict, name: str = "graph", lenient: bool = False) -> tuple:
    """Translate a ``torch.jit.save`` archive into IR without importing torch.

    Args:
        path: the ``.pt`` file.
        overrides: input name (sanitized) -> static NCHW shape.
        lenient: ops without a known schema do not raise NotInterpretable; they are kept
            (arguments as given) so the pre-scan lists them as unsupported. Node names
            after such an op may then differ from the torch path's (``MCONV_TS_READER=fast``).
    Returns:
        (graph, source op counts), as :func:`.walk.walk_torchscript` returns them for
        ``torch.jit.load(path)`` and its ``inlined_graph``.
    Raises:
        NotInterpretable: anything not modelled (the caller falls back to torch).
        UnreadableModelError: a corrupt archive, a malformed pickle, a foreign pickled
            global (nothing from the file is ever executed).
        UsageError: an input without a shape; UnsupportedOpsError.
    """
    from .ts_interp import Program

    with TSArchive(Path(path)) as ar:
        if not ar.has("data.pkl") or not ar.has("constants.pkl"):
            raise NotInterpretable("no data.pkl / constants.pkl (not a torch.jit.save zip)")
        ar.load_byteorder()
        root = ar.unpickle("data")
        if not isinstance(root, TSObject):
            raise ar.error("data.pkl", "the root object is not a module")
        constants = ar.unpickle("constants")
        program = Program(ar, root, constants, lenient)
        tg = program.inlined_graph()
        check_version(ar, program)
        return walk_graph(tg, root, overrides, name)
