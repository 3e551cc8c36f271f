"""Rebuild, without torch, the graph ``torch.jit.load(path).inlined_graph`` holds: the same
nodes in the same order, with the same value debug names and numbers, so the walker in
:mod:`.ts_reader` names IR nodes exactly as :func:`.walk.walk_torchscript` does.

The TorchScript source of each class (``code/**.py``, printed by pytorch/pytorch
``torch/csrc/jit/serialization/python_print.cpp``) is parsed with :mod:`ast` and compiled the
way ``torch/csrc/jit/frontend/ir_emitter.cpp`` compiles it on load (facts used, from
pytorch/pytorch ``torch/csrc/jit``):

* ``frontend/ir_emitter.cpp``: int / float literals are materialized once per method at the
  *front* of the graph (``materializeConstant``; a negative literal is one constant);
  ``True`` / ``False`` / ``None`` / strings / ``CONSTANTS.cN`` and defaults filled in by
  schema matching are inserted in place. Variables go through ``prim::Store`` /
  ``prim::Load``; a load of a *meaningful* name (not ``_<digits>``) names its output, which
  renames the previous owner of the name (``environment.cpp``); ``ConvertToSSA`` then erases
  the loads. ``getattr`` / ``self.x`` create ``prim::GetAttr`` named after the attribute
  (``_<n>`` for a numeric one).
* ``frontend/schema_matching.cpp``: overloads are tried in registration order (first without,
  then with implicit conversions when there are several); defaults are inserted as constants
  while matching, also for an overload that then fails; several returns are packed with
  ``prim::TupleConstruct``.
* ``frontend/run_cleanup_passes.cpp``: after emission dead code is removed and constants are
  pooled: each new distinct constant moves to the front, a duplicate is replaced
  (``passes/constant_pooling.cpp``), which reverses the order of the constant block.
* ``api/function_impl.cpp`` (``optimized_graph``, ``preoptimizeGraph``): a callee is inlined
  as a copy of its graph, itself inlined, peephole-optimized, constant-propagated and pooled.
* ``ir/ir.cpp``: ``Value::setDebugName`` (a taken name moves its old owner to
  ``name.<n>``), ``Graph::copy`` and ``insertGraph`` / ``inlineCallTo`` (clones take the
  callee's names; a named call output passes its name to the inlined result).
* ``python/script_init.cpp``: ``inlined_graph`` is ``graph()->copy()`` + ``Inline``.

Anything outside what traced models print (control flow, unknown calls, constant folding,
empty list literals, ...) raises :class:`NotInterpretable`.
"""
from __future__ import annotations

import ast
from typing import Any, Optional

import numpy as np

from .pt2_reader import decode_default
from .ts_reader import NotInterpretable, match_call, overloads_of, resolve_type
from .ts_unpickle import TensorRef, TSObject

DIGITS = set("0123456789")
SIDE_EFFECTS = {"prim::CallMethod", "prim::CallFunction", "prim::RaiseException", "prim::Print",
                "aten::warn"}


def meaningful(name: str) -> bool:
    """``meaningfulName`` (ir_emitter.cpp): not empty, no ``$``, not ``_<digits>``."""
    if not name or name[0] == "$":
        return False
    return name[0] != "_" or not all(c in DIGITS for c in name[1:])


class Value:
    __slots__ = ("uid", "name", "type", "node")

    def __init__(self, uid: int, typ: Any, node: Optional["Node"]):
        self.uid, self.name, self.type, self.node = uid, None, typ, node

    def debug_name(self) -> str:
        return self.name if self.name is not None else str(self.uid)


class Node:
    __slots__ = ("kind", "inputs", "outputs", "attr", "key")

    def __init__(self, kind: str, inputs: list, attr: Any = None, key: str = ""):
        self.kind, self.inputs, self.outputs, self.attr, self.key = kind, inputs, [], attr, key


class Graph:
    """Nodes in order, inputs, outputs, and the debug-name tables of a torch Graph."""

    def __init__(self):
        self.nodes: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.names: dict = {}
        self.suffix: dict = {}
        self.next_uid = 0

    def value(self, typ: Any, node: Optional[Node] = None) -> Value:
        v = Value(self.next_uid, typ, node)
        self.next_uid += 1
        if node is not None:
            node.outputs.append(v)
        return v

    def set_name(self, v: Value, name: Optional[str]) -> None:
        """``Value::setDebugName``: a name held by another value renames that one to
        ``base.<n>`` (the smallest free n not below the base's next suffix)."""
        if name and all(c in DIGITS for c in name):
            raise NotInterpretable(f"invalid value name {name!r}")
        if v.name is not None:
            if self.names.get(v.name) is v:
                del self.names[v.name]
            v.name = None
        if not name:
            return
        old = self.names.get(name)
        if old is not None:
            base, suffix = name, 1
            dot = name.rfind(".")
            if 0 <= dot < len(name) - 1 and all(c in DIGITS for c in name[dot + 1:]):
                base, suffix = name[:dot], int(name[dot + 1:])
            if base in self.suffix:
                suffix = max(suffix, self.suffix[base] + 1)
            while f"{base}.{suffix}" in self.names:
                suffix += 1
            self.suffix[base] = suffix + 1
            self.set_name(old, f"{base}.{suffix}")
        self.names[name] = v
        v.name = name

    def free(self, v: Value) -> None:
        self.set_name(v, None)

    def clone_node(self, n: Node, vmap: dict) -> Node:
        """``Graph::createClone``: outputs created and named in order, inputs mapped."""
        c = Node(n.kind, [vmap.get(i, i) for i in n.inputs], n.attr, n.key)
        for o in n.outputs:
            v = self.value(o.type, c)
            if o.name is not None:
                self.set_name(v, o.name)
            vmap[o] = v
        return c

    def copy(self) -> "Graph":
        """``Graph::copy``: inputs, then every node, renumbered from 0 in order."""
        g, vmap = Graph(), {}
        for i in self.inputs:
            v = g.value(i.type)
            if i.name is not None:
                g.set_name(v, i.name)
            vmap[i] = v
            g.inputs.append(v)
        g.nodes = [g.clone_node(n, vmap) for n in self.nodes]
        g.outputs = [vmap.get(o, o) for o in self.outputs]
        return g


# ------------------------------------------------------------------ passes
def _remap(g: Graph, rep: dict) -> None:
    if not rep:
        return
    for n in g.nodes:
        n.inputs = [rep.get(i, i) for i in n.inputs]
    g.outputs = [rep.get(o, o) for o in g.outputs]


def _has_side_effects(n: Node) -> bool:
    if n.kind in SIDE_EFFECTS:
        return True
    name = n.kind.split("::", 1)[1]
    return name.endswith("_") and not name.endswith("__")  # in-place: mutates its input


def eliminate_dead_code(g: Graph) -> None:
    """Drop nodes without side effects whose outputs nobody uses (last to first)."""
    uses: dict = {}
    for n in g.nodes:
        for i in n.inputs:
            uses[i] = uses.get(i, 0) + 1
    for o in g.outputs:
        uses[o] = uses.get(o, 0) + 1
    keep = []
    for n in reversed(g.nodes):
        if not _has_side_effects(n) and not any(uses.get(o) for o in n.outputs):
            for i in n.inputs:
                uses[i] -= 1
            for o in n.outputs:
                g.free(o)
            continue
        keep.append(n)
    g.nodes = keep[::-1]


def _const_key(n: Node) -> Any:
    """Equality class of a constant (``EqualNode``: same output type, equal value)."""
    v, t = n.attr, n.outputs[0].type
    if isinstance(v, TensorRef):
        return ("T", v.storage.dtype, v.size)
    if isinstance(v, list):
        return (repr(t), tuple(v))
    return (repr(t), v)


def _same_const(a: Node, b: Node) -> bool:
    if isinstance(a.attr, TensorRef):
        return a.attr is b.attr or bool(np.array_equal(a.attr.array(), b.attr.array()))
    return True


def pool_constants(g: Graph) -> None:
    """``ConstantPooling``: each new distinct constant moves to the front, duplicates go."""
    seen: dict = {}
    front, rest, rep = [], [], {}
    for n in g.nodes:
        if n.kind != "prim::Constant":
            rest.append(n)
            continue
        key = _const_key(n)
        cands = seen.setdefault(key, [])
        same = next((c for c in cands if _same_const(c, n)), None)
        if same is not None:
            rep[n.outputs[0]] = same.outputs[0]
            g.free(n.outputs[0])
            continue
        cands.append(n)
        front.insert(0, n)
    g.nodes = front + rest
    _remap(g, rep)


def lower_simple_tuples(g: Graph) -> None:
    """``LowerSimpleTuples``: unpack / index of a ``prim::TupleConstruct`` reads its inputs."""
    rep: dict = {}
    for n in g.nodes:
        n.inputs = [rep.get(i, i) for i in n.inputs]
        src = n.inputs[0].node if n.inputs else None
        if src is None or src.kind != "prim::TupleConstruct":
            continue
        if n.kind == "prim::TupleUnpack":
            rep.update(zip(n.outputs, src.inputs))
        elif n.kind == "prim::TupleIndex" and n.inputs[1].node.kind == "prim::Constant":
            rep[n.outputs[0]] = src.inputs[n.inputs[1].node.attr]
    g.outputs = [rep.get(o, o) for o in g.outputs]


IMMUTABLE = {"i", "f", "b", "s", "N", "c", "n"}


def _immutable(t: Any) -> bool:
    if isinstance(t, tuple) and t and t[0] == "tuple":
        return all(_immutable(e) for e in t[1])
    return t in IMMUTABLE


def check_no_folding(g: Graph) -> None:
    """``ConstantPropagationImmutableTypes`` would fold a node whose inputs are constants of
    immutable types and whose outputs are immutable: not modelled, so refuse such graphs."""
    for n in g.nodes:
        if n.kind in ("prim::Constant", "prim::GetAttr") or _has_side_effects(n):
            continue
        if n.inputs and all(i.node is not None and i.node.kind == "prim::Constant" and
                            _immutable(i.type) for i in n.inputs) and \
                all(_immutable(o.type) for o in n.outputs):
            raise NotInterpretable(f"{n.kind} on constants would be constant-folded")


def cleanup(g: Graph) -> None:
    """``runCleanupPasses`` as far as straight-line code needs it."""
    lower_simple_tuples(g)
    check_no_folding(g)
    eliminate_dead_code(g)
    pool_constants(g)


def inline_calls(g: Graph, program: "Program") -> None:
    """``Inline``: every ``prim::CallMethod`` becomes a copy of the callee's optimized graph."""
    rep: dict = {}
    nodes, g.nodes = g.nodes, []
    for n in nodes:
        n.inputs = [rep.get(i, i) for i in n.inputs]
        if n.kind != "prim::CallMethod":
            g.nodes.append(n)
            continue
        callee = program.optimized(n.inputs[0].type[1], n.attr)
        vmap = dict(zip(callee.inputs, n.inputs))
        for cn in callee.nodes:
            g.nodes.append(g.clone_node(cn, vmap))
        new = [vmap.get(o, o) for o in callee.outputs]
        for old, v in zip(n.outputs, new):
            if old.name is not None:
                g.set_name(v, old.name)
            rep[old] = v
        for old in n.outputs:
            g.free(old)
    g.outputs = [rep.get(o, o) for o in g.outputs]


# ------------------------------------------------------------------ sugared values
class Sugar:
    """A compile-time value that is not a graph value: ``torch`` / ``ops`` namespaces, a
    builtin function, a bound method, ``CONSTANTS``, a Python builtin such as ``int``."""

    def __init__(self, kind: str, *args: Any):
        self.kind, self.args = kind, args


GLOBALS = {"torch": Sugar("ns", "aten"), "ops": Sugar("ops"), "CONSTANTS": Sugar("constants"),
           "int": Sugar("cast", "i", "Int"), "float": Sugar("cast", "f", "Float"),
           "len": Sugar("fn", "aten", "len"), "getattr": Sugar("getattr"),
           "annotate": Sugar("annotate")}
BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}


def attr_type(v: Any) -> Any:
    """The TorchScript type of a module attribute read with ``prim::GetAttr``."""
    if isinstance(v, TSObject):
        return ("obj", v.qualname)
    if isinstance(v, TensorRef):
        return "T"
    if isinstance(v, bool):
        return "b"
    for typ, code in ((int, "i"), (float, "f"), (str, "s"), (type(None), "N")):
        if isinstance(v, typ):
            return code
    raise NotInterpretable(f"module attribute of type {type(v).__name__}")


def literal(node: ast.AST) -> Any:
    """A number literal, negative ones included (the TorchScript lexer reads ``-1`` as one
    constant), else a sentinel."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = literal(node.operand)
        return -inner if inner is not _NO else _NO
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return _NO


_NO = object()


class Emitter:
    """Compile one method's AST into a :class:`Graph` (``to_ir`` + cleanup passes)."""

    def __init__(self, program: "Program", qualname: str, fn: ast.FunctionDef):
        self.p, self.qualname, self.fn = program, qualname, fn
        self.g = Graph()
        self.vars: dict = {}
        self.loads: list = []
        self.cache: dict = {}

    def compile(self) -> Graph:
        self.params()
        body = self.fn.body
        for i, st in enumerate(body):
            if isinstance(st, ast.Return) and i != len(body) - 1:
                raise NotInterpretable("return before the end of a method")
            self.statement(st)
        for v in self.loads:  # ConvertToSSA erases the loads
            self.g.free(v)
        cleanup(self.g)
        return self.g

    def params(self) -> None:
        args = self.fn.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.defaults or not args.args:
            raise NotInterpretable("method with defaults / varargs / keyword-only parameters")
        for k, a in enumerate(args.args):
            typ = ("obj", self.qualname) if k == 0 else resolve_type(a.annotation)
            v = self.g.value(typ)
            if k == 0 or meaningful(a.arg):
                self.g.set_name(v, a.arg)
            self.g.inputs.append(v)
            self.set_var(a.arg, v)

    # -------------------------------------------------------------- statements
    def statement(self, st: ast.stmt) -> None:
        if isinstance(st, ast.Assign) and len(st.targets) == 1:
            target = st.targets[0]
            value = self.expr(st.value)
            if isinstance(target, ast.Name):
                self.set_var(target.id, value)
            elif isinstance(target, (ast.Tuple, ast.List)) and all(
                    isinstance(t, ast.Name) for t in target.elts):
                for t, v in zip(target.elts, self.unpack(value, len(target.elts))):
                    self.set_var(t.id, v)
            else:
                raise NotInterpretable("assignment to something other than names")
        elif isinstance(st, ast.Return):
            v = self.expr(st.value) if st.value is not None else self.const(None)
            self.g.outputs = [self.simple(v)]
        elif isinstance(st, ast.Expr):
            self.expr(st.value)
        else:
            raise NotInterpretable(f"{type(st).__name__} statement (control flow?)")

    def set_var(self, name: str, v: Any) -> None:
        """``Environment::setSugaredVar``: an unnamed value takes a meaningful name."""
        if isinstance(v, Value) and v.name is None and meaningful(name):
            self.g.set_name(v, name)
        self.vars[name] = v

    def read_var(self, name: str) -> Any:
        """``Environment::insertLoad``: a load of a meaningful name names its output."""
        if name not in self.vars:
            if name in GLOBALS:
                return GLOBALS[name]
            raise NotInterpretable(f"unknown name {name!r}")
        v = self.vars[name]
        if isinstance(v, Value) and meaningful(name):
            load = self.g.value(v.type)
            self.g.set_name(load, name)
            self.loads.append(load)
        return v

    def unpack(self, v: Any, n: int) -> list:
        v = self.simple(v)
        if isinstance(v.type, tuple) and v.type[0] == "tuple":
            if v.node is not None and v.node.kind == "prim::TupleConstruct":
                return list(v.node.inputs)
            node = self.add("prim::TupleUnpack", [v], list(v.type[1]))
        elif isinstance(v.type, tuple) and v.type[0] == "list":
            node = self.add("prim::ListUnpack", [v], [v.type[1]] * n)
        else:
            raise NotInterpretable(f"unpacking a value of type {v.type}")
        if len(node.outputs) != n:
            raise NotInterpretable("tuple unpack of the wrong length")
        return node.outputs

    # -------------------------------------------------------------- nodes / constants
    def add(self, kind: str, inputs: list, types: list, attr: Any = None,
            key: str = "") -> Node:
        n = Node(kind, inputs, attr, key)
        for t in types:
            self.g.value(t, n)
        self.g.nodes.append(n)
        return n

    def const(self, value: Any, typ: Any = None) -> Value:
        """``Graph::insertConstant`` at the insertion point (the end)."""
        typ = typ if typ is not None else const_type(value)
        return self.add("prim::Constant", [], [typ], value).outputs[0]

    def number(self, value: Any) -> Value:
        """``materializeConstant``: one constant per int / float value, at the front."""
        key = (type(value), value)
        if key not in self.cache:
            n = Node("prim::Constant", [], value)
            self.g.value(const_type(value), n)
            self.g.nodes.insert(0, n)
            self.cache[key] = n.outputs[0]
        return self.cache[key]

    def simple(self, v: Any) -> Value:
        if not isinstance(v, Value):
            raise NotInterpretable(f"{getattr(v, 'kind', v)!r} used as a value")
        return v

    # -------------------------------------------------------------- expressions
    def expr(self, e: ast.expr) -> Any:
        num = literal(e)
        if num is not _NO:
            return self.number(num)
        if isinstance(e, ast.Constant):
            if e.value is None or isinstance(e.value, (bool, str)):
                return self.const(e.value)
            raise NotInterpretable(f"literal {e.value!r}")
        handler = getattr(self, "x_" + type(e).__name__, None)
        if handler is None:
            raise NotInterpretable(f"{type(e).__name__} expression")
        return handler(e)

    def x_Name(self, e: ast.Name) -> Any:
        return self.read_var(e.id)

    def x_Attribute(self, e: ast.Attribute) -> Any:
        base = self.expr(e.value)
        if isinstance(base, Value) and isinstance(base.type, tuple) and base.type[0] == "obj":
            if self.p.has_method(base.type[1], e.attr):
                return Sugar("method", base, e.attr)
            return self.getattr(base, e.attr)
        if isinstance(base, Sugar):
            if base.kind == "ns":
                return Sugar("fn", base.args[0], e.attr)
            if base.kind == "ops" and e.attr in ("aten", "prim"):
                return Sugar("ns", e.attr)
            if base.kind == "constants":
                return self.const(self.p.constant(e.attr), "T")
        raise NotInterpretable(f"attribute {e.attr!r}")

    def getattr(self, obj: Value, name: str) -> Value:
        """``prim::GetAttr`` named after the attribute (``_<n>`` when numeric)."""
        value = self.p.record_attr(obj.type[1], name)
        n = self.add("prim::GetAttr", [obj], [attr_type(value)], name)
        self.g.set_name(n.outputs[0], "_" + name if all(c in DIGITS for c in name) else name)
        return n.outputs[0]

    def x_List(self, e: ast.List) -> Value:
        vals = [self.simple(self.expr(x)) for x in e.elts]
        if not vals:
            raise NotInterpretable("empty list literal")
        elem = vals[0].type
        if any(v.type != elem for v in vals):
            raise NotInterpretable("list literal of mixed types")
        return self.add("prim::ListConstruct", vals, [("list", elem)]).outputs[0]

    def x_Tuple(self, e: ast.Tuple) -> Value:
        vals = [self.simple(self.expr(x)) for x in e.elts]
        typ = ("tuple", tuple(v.type for v in vals))
        return self.add("prim::TupleConstruct", vals, [typ]).outputs[0]

    def x_Subscript(self, e: ast.Subscript) -> Value:
        base = self.simple(self.expr(e.value))
        if isinstance(e.slice, ast.Slice):
            raise NotInterpretable("slice of a list or tuple")
        idx = self.simple(self.expr(e.slice))
        if isinstance(base.type, tuple) and base.type[0] == "tuple":
            k = idx.node.attr if idx.node is not None and idx.node.kind == "prim::Constant" \
                else None
            if not isinstance(k, int) or not -len(base.type[1]) <= k < len(base.type[1]):
                raise NotInterpretable("tuple index that is not a constant")
            return self.add("prim::TupleIndex", [base, idx], [base.type[1][k]]).outputs[0]
        return self.builtin("aten", "__getitem__", [base, idx], [])

    def x_BinOp(self, e: ast.BinOp) -> Value:
        op = BINOPS.get(type(e.op))
        if op is None:
            raise NotInterpretable(f"operator {type(e.op).__name__}")
        a, b = self.expr(e.left), self.expr(e.right)
        return self.builtin("aten", op, [a, b], [])

    def x_UnaryOp(self, e: ast.UnaryOp) -> Value:
        if not isinstance(e.op, ast.USub):
            raise NotInterpretable(f"operator {type(e.op).__name__}")
        return self.builtin("aten", "neg", [self.expr(e.operand)], [])

    def x_Call(self, e: ast.Call) -> Any:
        fn = self.expr(e.func)
        if not isinstance(fn, Sugar):
            raise NotInterpretable("call of a value")
        if fn.kind == "getattr":
            return self.call_getattr(e)
        if fn.kind == "annotate":
            return self.call_annotate(e)
        args = [self.expr(a) for a in e.args]
        if any(isinstance(a, ast.Starred) for a in e.args) or any(k.arg is None
                                                                   for k in e.keywords):
            raise NotInterpretable("*args / **kwargs call")
        kwargs = [(k.arg, self.expr(k.value)) for k in e.keywords]
        if fn.kind == "fn":
            return self.builtin(fn.args[0], fn.args[1], args, kwargs)
        if fn.kind == "method" and not kwargs:
            return self.call_method(fn.args[0], fn.args[1], args)
        if fn.kind == "cast" and len(args) == 1 and not kwargs:
            v = self.simple(args[0])
            return v if v.type == fn.args[0] else self.builtin("aten", fn.args[1], [v], [])
        raise NotInterpretable(f"call of {fn.kind}")

    def call_getattr(self, e: ast.Call) -> Value:
        if len(e.args) != 2 or e.keywords or not isinstance(e.args[1], ast.Constant) or \
                not isinstance(e.args[1].value, str):
            raise NotInterpretable("getattr with a computed name")
        obj = self.simple(self.expr(e.args[0]))
        if not (isinstance(obj.type, tuple) and obj.type[0] == "obj"):
            raise NotInterpretable("getattr on a non-module value")
        return self.getattr(obj, e.args[1].value)

    def call_annotate(self, e: ast.Call) -> Value:
        """``annotate(T, value)``: the value emitted with type hint ``T``; an empty list
        literal becomes a ``prim::ListConstruct`` of that element type."""
        if len(e.args) != 2 or e.keywords:
            raise NotInterpretable("annotate() with other than two arguments")
        typ, value = resolve_type(e.args[0]), e.args[1]
        if isinstance(value, ast.List) and not value.elts and isinstance(typ, tuple) and \
                typ[0] == "list":
            return self.add("prim::ListConstruct", [], [typ]).outputs[0]
        v = self.simple(self.expr(value))
        if v.type != typ:
            raise NotInterpretable(f"annotate() converting {v.type} to {typ}")
        return v

    def call_method(self, obj: Value, name: str, args: list) -> Value:
        """``prim::CallMethod`` with the callee's declared return type (one output)."""
        params, ret = self.p.method_signature(obj.type[1], name)
        if len(args) != len(params) - 1:
            raise NotInterpretable(f"call of {name} with {len(args)} arguments")
        vals = [self.simple(a) for a in args]
        return self.add("prim::CallMethod", [obj] + vals, [ret], name).outputs[0]

    def builtin(self, ns: str, name: str, args: list, kwargs: list) -> Value:
        """``emitBuiltinCall``: match the overloads in order, emit the node, pack returns."""
        args = [self.simple(a) for a in args]
        kwargs = [(k, self.simple(v)) for k, v in kwargs]
        try:
            overloads = overloads_of(ns, name)
        except NotInterpretable:
            if not self.p.lenient:
                raise
            # no schema: an op without a converter, kept only to be listed as unsupported
            return self.add(f"{ns}::{name}", args + [v for _, v in kwargs], ["T"]).outputs[0]
        ov, inputs, rets = match_call(self, overloads, args, kwargs)
        n = self.add(f"{ns}::{name}", inputs, rets, None, f"{ns}.{name}.{ov.name}")
        if len(n.outputs) == 1:
            return n.outputs[0]
        typ = ("tuple", tuple(o.type for o in n.outputs))
        return self.add("prim::TupleConstruct", list(n.outputs), [typ]).outputs[0]

    def default(self, value: Any, code: str) -> Value:
        """A schema default inserted in place while matching (``NamedValue(IValue)``)."""
        return self.const(decode_default(value), default_type(value, code))


def const_type(v: Any) -> Any:
    if isinstance(v, bool):
        return "b"
    for typ, code in ((int, "i"), (float, "f"), (str, "s"), (type(None), "N")):
        if isinstance(v, typ):
            return code
    raise NotInterpretable(f"constant of type {type(v).__name__}")


def default_type(value: Any, code: str) -> Any:
    """The type of a default constant: its IValue's type (``int[2] stride=[]`` -> int[])."""
    if value is None:
        return "N"
    if isinstance(value, list):
        elem = code.rstrip("?").split("[", 1)[0]
        if elem not in ("i", "f", "b"):
            raise NotInterpretable(f"list default for type {code}")
        return ("list", elem)
    if isinstance(value, dict):
        raise NotInterpretable(f"default {value!r}")
    return const_type(value)


# ------------------------------------------------------------------ program
CASTS = {"aten::Float", "aten::Int", "aten::FloatImplicit", "aten::IntImplicit",
         "aten::ScalarImplicit"}
LIST_IDIOMS = {"prim::ListUnpack", "aten::len", "aten::__getitem__", "aten::slice", "aten::add"}


def _src(v: Value) -> str:
    return v.node.kind if v.node is not None else ""


def _refuse_peepholes(n: Node) -> None:
    """Peepholes that would rewrite ``n`` but are not modelled (``passes/peephole.cpp``,
    ``peephole_list_idioms.cpp``, ``peephole_alias_sensitive.cpp``)."""
    srcs = [_src(i) for i in n.inputs]
    if n.kind in LIST_IDIOMS and srcs and srcs[0] == "prim::ListConstruct":
        raise NotInterpretable(f"{n.kind} of a list literal after inlining")
    if n.kind == "aten::t" and srcs[0] == "aten::t":
        raise NotInterpretable("x.t().t() after inlining")
    if n.kind == "aten::dim" and srcs[0] in ("aten::conv1d", "aten::conv2d", "aten::conv3d"):
        raise NotInterpretable("dim() of a convolution after inlining")
    if n.kind in ("aten::add", "aten::sub", "aten::mul") and len(n.inputs) > 1 and \
            srcs[1] == "prim::Constant" and n.inputs[1].node.attr == \
            (1 if n.kind == "aten::mul" else 0) and n.inputs[1].type == "i":
        raise NotInterpretable(f"{n.kind} by a neutral constant after inlining")
    if n.kind != "prim::Constant" and any(o.type == "N" for o in n.outputs):
        raise NotInterpretable(f"{n.kind} returning None after inlining")


def peephole(g: Graph) -> None:
    """``PeepholeOptimize`` with shape peepholes off: ``int(NumToTensor(x))`` and the
    other tensor-to-number casts of a ``prim::NumToTensor`` read ``x``; dead code is removed
    when anything changed. The remaining rules raise :class:`NotInterpretable`."""
    rep: dict = {}
    for n in g.nodes:
        n.inputs = [rep.get(i, i) for i in n.inputs]
        _refuse_peepholes(n)
        if n.kind in CASTS and n.inputs and _src(n.inputs[0]) == "prim::NumToTensor":
            rep[n.outputs[0]] = n.inputs[0].node.inputs[0]
    if rep:
        g.outputs = [rep.get(o, o) for o in g.outputs]
        eliminate_dead_code(g)


class Program:
    """The classes of one archive: sources (parsed lazily), a record per class, and the
    compiled / optimized graph per method (memoized like torch's per-function graphs)."""

    def __init__(self, archive, root: TSObject, constants: Any, lenient: bool = False):
        self.ar, self.root, self.constants, self.lenient = archive, root, constants, lenient
        self.records: dict = {}
        self.sources: dict = {}
        self.compiled_graphs: dict = {}
        self.optimized_graphs: dict = {}
        self._collect(root)

    def _collect(self, obj: TSObject) -> None:
        """One record per class; a class with a TorchScript ``__setstate__`` builds its
        attributes by running code on load, which the reader does not do."""
        stack = [obj]
        while stack:
            o = stack.pop()
            if o.qualname in self.records:
                continue
            self.records[o.qualname] = o
            if self.has_method(o.qualname, "__setstate__"):
                raise NotInterpretable(f"{o.qualname} defines __setstate__")
            stack.extend(v for v in o.__dict__.get("state", {}).values()
                         if isinstance(v, TSObject))

    def class_def(self, qualname: str) -> ast.ClassDef:
        """The ``ClassDef`` of ``qualname`` in its source member."""
        rel = self.ar.code_path(qualname)
        if rel not in self.sources:
            try:
                self.sources[rel] = ast.parse(self.ar.text(rel))
            except SyntaxError as e:
                raise NotInterpretable(f"{rel}: {e}") from None
        cls = qualname.rsplit(".", 1)[1]
        for st in self.sources[rel].body:
            if isinstance(st, ast.ClassDef) and st.name == cls:
                return st
        raise NotInterpretable(f"class {qualname} not found in {rel}")

    def method_def(self, qualname: str, name: str) -> Optional[ast.FunctionDef]:
        for st in self.class_def(qualname).body:
            if isinstance(st, ast.FunctionDef) and st.name == name:
                return st
        return None

    def has_method(self, qualname: str, name: str) -> bool:
        return self.method_def(qualname, name) is not None

    def method_signature(self, qualname: str, name: str) -> tuple:
        fn = self.method_def(qualname, name)
        if fn is None:
            raise NotInterpretable(f"{qualname} has no method {name}")
        ret = resolve_type(fn.returns) if fn.returns is not None else "N"
        return fn.args.args, ret

    def record_attr(self, qualname: str, name: str) -> Any:
        rec = self.records.get(qualname)
        if rec is None or not rec.has(name):
            raise NotInterpretable(f"{qualname} has no attribute {name!r}")
        return rec.attr(name)

    def constant(self, attr: str) -> TensorRef:
        k = attr[1:] if attr.startswith("c") else ""
        if not k.isdigit() or not isinstance(self.constants, tuple) or \
                int(k) >= len(self.constants) or not isinstance(self.constants[int(k)],
                                                                TensorRef):
            raise NotInterpretable(f"CONSTANTS.{attr} is not a tensor constant")
        return self.constants[int(k)]

    def compiled(self, qualname: str, name: str) -> Graph:
        key = (qualname, name)
        if key not in self.compiled_graphs:
            fn = self.method_def(qualname, name)
            if fn is None:
                raise NotInterpretable(f"{qualname} has no method {name}")
            self.compiled_graphs[key] = Emitter(self, qualname, fn).compile()
        return self.compiled_graphs[key]

    def optimized(self, qualname: str, name: str) -> Graph:
        """``GraphFunction::optimized_graph`` of a callee."""
        key = (qualname, name)
        if key not in self.optimized_graphs:
            g = self.compiled(qualname, name).copy()
            inline_calls(g, self)
            peephole(g)
            check_no_folding(g)
            pool_constants(g)
            self.optimized_graphs[key] = g
        return self.optimized_graphs[key]

    def inlined_graph(self) -> Graph:
        """``module.inlined_graph`` of the root ``forward``."""
        g = self.compiled(self.root.qualname, "forward").copy()
        inline_calls(g, self)
        return g
