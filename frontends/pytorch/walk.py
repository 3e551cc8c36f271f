"""Walk a TorchScript graph or a ``torch.export`` FX graph and call one registered converter
per source op (``converter.registry.CONVERTERS[("pytorch", op)]``).

Both walkers first scan every op and collect *all* ops without a converter (or failing a
converter check) into one :class:`~converter.errors.UnsupportedOpsError` before emitting.
Shape-only arithmetic (``aten::size``, int math, list building) is evaluated in Python on the
static shapes, so it never reaches the IR.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable, Iterable, Optional

import numpy as np

from converter.errors import Issue, UnsupportedOpsError, UsageError
from converter.ir import Graph, Value
from converter.names import sanitize
from converter.registry import find_converter

from .context import Ctx, SourceNode, normalize_args, op_name

FW = "pytorch"

# Python-side evaluation of scalar ops whose inputs are all Python values (TorchScript
# traces keep shape arithmetic such as x.size(0) * 2 as graph ops).
SCALAR_OPS: dict[str, Callable] = {
    "aten.add": lambda a: a["self"] + a["other"] * a.get("alpha", 1),
    "aten.sub": lambda a: a["self"] - a["other"] * a.get("alpha", 1),
    "aten.mul": lambda a: a["self"] * a["other"],
    "aten.floordiv": lambda a: a["self"] // a["other"],
    "aten.floor_divide": lambda a: a["self"] // a["other"],
    "aten.div": lambda a: a["self"] / a["other"],
    "aten.remainder": lambda a: a["self"] % a["other"],
    "aten.neg": lambda a: -a["self"],
    "aten.pow": lambda a: a["self"] ** a["exponent"],
    "aten.Int": lambda a: int(a[next(iter(a))]),
    "aten.Float": lambda a: float(a[next(iter(a))]),
    "aten.ScalarImplicit": lambda a: a["a"],
    "aten.floor": lambda a: math.floor(a["self"]),
    "aten.ceil": lambda a: math.ceil(a["self"]),
    "aten.len": lambda a: len(a["a"]),
    "aten.__getitem__": lambda a: a[next(iter(a))][a["idx"]],
    "aten.eq": lambda a: a["a"] == a["b"], "aten.ne": lambda a: a["a"] != a["b"],
}


def torch_dtype_name(dt) -> str:
    return str(dt).replace("torch.", "")


def to_numpy(t) -> np.ndarray:
    """A torch tensor (any dtype) as a contiguous numpy array (bfloat16 -> float32)."""
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return np.ascontiguousarray(t.numpy())


def check_supported(ops: Iterable[tuple[str, str]], counts: Optional[dict] = None) -> None:
    """Raise one UnsupportedOpsError listing every (op, node name) without a converter; the
    error carries ``source_ops`` (``counts``, every source op of the model) for ``mconv ops``."""
    issues = []
    for op, name in ops:
        if find_converter(FW, op) is None:
            issues.append(Issue(f"frontend:{FW}", op, "no-converter",
                                f"no PyTorch converter for {op}", [name],
                                "rewrite the model with supported ops or open an issue"))
    if issues:
        err = UnsupportedOpsError(issues)
        err.source_ops = dict(counts or {})
        raise err


def run_converter(cx: Ctx, sn: SourceNode) -> Any:
    """Convert one source node; returns Values / Python values (lists for multi-output).

    Raises:
        UnsupportedOpsError: a converter check failed for this node.
    """
    entry = find_converter(FW, sn.op)
    if entry is None:  # a shape-arithmetic op that met a real tensor
        check_supported([(sn.op, sn.name)])
    failed = entry.failed_checks(sn)
    if failed:
        raise UnsupportedOpsError([Issue(f"frontend:{FW}", sn.op, c.code, c.text,
                                         [sn.name]) for c in failed])
    cx.node = sn
    return entry.fn(cx, sn)


def _all_python(args: dict) -> bool:
    def py(x):
        if isinstance(x, Value):
            return False
        if isinstance(x, (list, tuple)):
            return all(py(e) for e in x)
        return True
    return all(py(v) for v in args.values())


def _pythonize(args: dict) -> dict:
    """Scalar constants (size-1 const Values, e.g. TorchScript's 0-d tensor literals) as
    Python numbers, so shape arithmetic on them is evaluated here."""
    out = {}
    for k, v in args.items():
        if isinstance(v, Value) and v.is_const and v.const.size == 1:
            v = v.const.reshape(()).item()
        out[k] = v
    return out


def _shape_for(name: str, declared, overrides: dict, n_inputs: int):
    if name in overrides:
        return tuple(overrides[name])
    if n_inputs == 1 and len(overrides) == 1:  # one input, one shape: the name is moot
        return tuple(next(iter(overrides.values())))
    if declared is not None and all(isinstance(d, int) for d in declared):
        return tuple(declared)
    raise UsageError(f"input {name!r} has no static shape in the file",
                     f"pass --input-shape {name}=1x3x224x224 (NCHW, batch first)")


# ------------------------------------------------------------------ TorchScript
def walk_torchscript(module, overrides: dict, name: str = "graph",
                     graph=None) -> tuple[Graph, dict]:
    """Translate a TorchScript module's graph into IR.

    Args:
        module: a ScriptModule. Its ``graph`` is walked when it is frozen (weights are
            ``prim::Constant``); else pass ``graph=module.inlined_graph`` and parameters are
            resolved through ``prim::GetAttr`` chains from ``self`` (no freezing: 1.2 s saved
            on ResNet-50).
        overrides: input name (sanitized) -> static NCHW shape.
    Returns:
        (graph, source op counts)
    Raises:
        UsageError: an input without a shape; UnsupportedOpsError: ops without converter.
    """
    tg = graph if graph is not None else module.graph
    nodes = list(tg.nodes())
    counts = _ts_prescan(nodes)
    g = Graph(name)
    env: dict = {list(tg.inputs())[0].unique(): module}
    ins = list(tg.inputs())[1:]
    for i in ins:
        nm = sanitize(i.debugName().split(".")[0])
        declared = None
        try:
            declared = i.type().sizes()
        except Exception:  # an unshaped TensorType has no sizes
            pass
        env[i.unique()] = g.add_input(nm, "float32", _shape_for(nm, declared, overrides,
                                                                 len(ins)))
    cx = Ctx(g)
    cx.attr_cache = {}
    for n in nodes:
        _ts_node(cx, n, env)
    _set_outputs(g, _flatten([env[o.unique()] for o in tg.outputs()]), [])
    return g, counts


def _ts_prescan(nodes) -> dict:
    """Source op counts; raises one UnsupportedOpsError for every op without a converter."""
    counts: dict[str, int] = {}
    pending = []
    for n in nodes:
        kind = n.kind()
        if kind.startswith("prim::"):
            if kind not in _PRIM:
                pending.append((kind.replace("::", "."), _ts_name(n)))
            continue
        op, _ = op_name(kind)
        counts[op] = counts.get(op, 0) + 1
        if op not in SCALAR_OPS:
            pending.append((op, _ts_name(n)))
    check_supported(pending, counts)
    return counts


_PRIM = {"prim::Constant", "prim::ListConstruct", "prim::TupleConstruct", "prim::ListUnpack",
         "prim::TupleUnpack", "prim::NumToTensor", "prim::min", "prim::max",
         "prim::TupleIndex", "prim::device", "prim::dtype", "prim::GetAttr"}


def _ts_name(n) -> str:
    scope = n.scopeName().replace("__module.", "")
    outs = list(n.outputs())
    base = outs[0].debugName() if outs else n.kind().split("::")[-1]
    return sanitize(base if not scope else f"{scope.split('/')[-1]}.{base}")


def _ts_const(out):
    import torch

    v = out.toIValue()
    if isinstance(v, torch.Tensor):
        return ("tensor", v)
    if isinstance(v, torch.device) or isinstance(v, torch.dtype):
        return ("py", None)
    return ("py", v)


def _ts_getattr(cx: Ctx, obj, attr: str):
    """``prim::GetAttr``: a submodule stays a Python object, a tensor becomes one shared
    constant (cached by identity, so a weight read twice is one constant)."""
    import torch

    v = getattr(obj, attr)
    if isinstance(v, torch.Tensor):
        key = id(v)
        if key not in cx.attr_cache:
            cx.attr_cache[key] = (v, cx.g.const(to_numpy(v), sanitize(attr)))
        return cx.attr_cache[key][1]
    return v


def _ts_node(cx: Ctx, n, env: dict) -> None:
    kind = n.kind()
    outs = list(n.outputs())
    args = [env.get(i.unique()) for i in n.inputs()]
    if kind == "prim::Constant":
        tag, v = _ts_const(outs[0])
        if tag == "tensor":
            arr = to_numpy(v)
            env[outs[0].unique()] = cx.g.const(arr, sanitize(outs[0].debugName()))
        else:
            env[outs[0].unique()] = v
    elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
        env[outs[0].unique()] = list(args)
    elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
        for o, v in zip(outs, args[0]):
            env[o.unique()] = v
    elif kind == "prim::GetAttr":
        env[outs[0].unique()] = _ts_getattr(cx, args[0], n.s("name"))
    elif kind == "prim::TupleIndex":
        env[outs[0].unique()] = args[0][args[1]]
    elif kind in ("prim::NumToTensor",):
        env[outs[0].unique()] = args[0]
    elif kind in ("prim::min", "prim::max"):
        f = min if kind == "prim::min" else max
        env[outs[0].unique()] = f(*args) if len(args) > 1 else f(args[0])
    elif kind in ("prim::device", "prim::dtype"):
        env[outs[0].unique()] = None
    else:
        _ts_aten(cx, n, args, outs, env)


def _ts_aten(cx: Ctx, n, args: list, outs: list, env: dict) -> None:
    """An ``aten::`` node: shape arithmetic evaluated in Python, the rest converted."""
    import torch

    op, overload = op_name(n.kind())
    a = normalize_args(torch._C.parse_schema(n.schema()), args, {}, all_positional=True)
    if op in SCALAR_OPS and _all_python(_pythonize(a)):
        res = SCALAR_OPS[op](_pythonize(a))
    else:
        res = run_converter(cx, SourceNode(op, _ts_name(n), a, overload=overload))
    if len(outs) == 1:
        env[outs[0].unique()] = res
    else:
        for o, v in zip(outs, res):
            env[o.unique()] = v


# ------------------------------------------------------------------ torch.export
def walk_exported(ep, overrides: dict, name: str = "graph") -> tuple[Graph, dict]:
    """Translate a ``torch.export.ExportedProgram`` into IR.

    Parameters, buffers and lifted constants become IR constants; user inputs take their
    static shapes from the FakeTensor metadata (``node.meta["val"]``) or ``overrides``.
    Raises:
        UsageError: a symbolic input dim and no override; UnsupportedOpsError.
    """
    sig = ep.graph_signature
    consts = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
              **sig.inputs_to_lifted_tensor_constants}
    state = {**ep.state_dict, **ep.constants}
    fx_nodes = list(ep.graph.nodes)
    counts = _fx_prescan(fx_nodes)
    g = Graph(name)
    cx = Ctx(g)
    env: dict = {}
    n_user = sum(1 for n in fx_nodes if n.op == "placeholder" and n.name not in consts)
    outs: list = []
    for n in fx_nodes:
        if n.op == "placeholder" and n.name in consts:
            env[n.name] = g.const(to_numpy(state[consts[n.name]]), sanitize(consts[n.name]))
        elif n.op == "placeholder":
            env[n.name] = _fx_input(g, n, overrides, n_user)
        elif n.op == "call_function":
            env[n.name] = _fx_call(cx, n, env)
        elif n.op == "output":
            outs = _flatten(_fx_map(n.args[0], env))
    names = [sanitize(s.arg.name) for s in sig.output_specs if hasattr(s.arg, "name")]
    _set_outputs(g, outs, names if len(names) == len(outs) else [])
    return g, counts


def _fx_prescan(fx_nodes) -> dict:
    """Source op counts; raises one UnsupportedOpsError for every op without a converter."""
    counts: dict[str, int] = {}
    pending = []
    for n in fx_nodes:
        if n.op == "call_function" and n.target is not operator.getitem:
            op, _ = op_name(str(n.target))
            counts[op] = counts.get(op, 0) + 1
            pending.append((op, sanitize(n.name)))
    check_supported(pending, counts)
    return counts


def _fx_input(g: Graph, n, overrides: dict, n_user: int) -> Value:
    """A user input placeholder: dtype and static shape from its FakeTensor metadata."""
    val = n.meta.get("val")
    declared = [d if isinstance(d, int) else None for d in val.shape] if val is not None \
        else None
    shape = _shape_for(sanitize(n.name), declared, overrides, n_user)
    dtype = torch_dtype_name(val.dtype) if val is not None else "float32"
    return g.add_input(sanitize(n.name), dtype, shape)


def _fx_call(cx: Ctx, n, env: dict) -> Any:
    """A call_function node: ``getitem`` indexes a multi-output result, the rest converts."""
    a_args = _fx_map(n.args, env)
    if n.target is operator.getitem:
        return a_args[0][a_args[1]]
    op, overload = op_name(str(n.target))
    a = normalize_args(n.target._schema, list(a_args), _fx_map(n.kwargs, env))
    return run_converter(cx, SourceNode(op, sanitize(n.name), a, _fx_loc(n), overload))


def _fx_map(x: Any, env: dict) -> Any:
    import torch.fx

    if isinstance(x, torch.fx.Node):
        return env[x.name]
    if isinstance(x, (list, tuple)):
        return type(x)(_fx_map(e, env) for e in x)
    if isinstance(x, dict):
        return {k: _fx_map(v, env) for k, v in x.items()}
    return x


def _fx_loc(n) -> str:
    return stack_loc(n.meta.get("stack_trace") or "")


def stack_loc(st: str) -> str:
    """``file:line`` of the innermost ``File ...`` frame of an FX ``stack_trace``, or ""."""
    lines = [ln.strip() for ln in st.strip().splitlines() if ln.strip().startswith("File ")]
    return lines[-1][5:].split(", in ")[0].replace('"', "").replace(", line ", ":") if lines else ""


def _flatten(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        return [e for sub in x for e in _flatten(sub)]
    return [x]


def _set_outputs(g: Graph, outs: list, names: list) -> None:
    """Make ``outs`` the graph outputs, named after the source (``output`` / ``output_i``
    when the source has no names). A value listed twice or a graph input gets an Identity."""
    final = []
    for i, v in enumerate(outs):
        if not isinstance(v, Value):
            raise UsageError(f"model output {i} is not a tensor ({type(v).__name__})",
                             "return tensors only from forward()")
        if v.producer is None or any(v is f for f in final):
            v = g.add("Identity", [v], name=f"output_{i}").outputs[0]
        final.append(v)
    for i, v in enumerate(final):
        default = "output" if len(final) == 1 else f"output_{i}"
        g.rename(v, names[i] if names else default)
    g.outputs = final
