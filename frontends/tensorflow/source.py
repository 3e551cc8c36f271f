"""Turn every TensorFlow source into a frozen inference GraphDef (a :class:`.walk.Spec`) plus
a runner of the source model for verification.

* Keras ``.keras`` / ``.h5``: ``keras.saving.load_model`` (Keras 3); an HDF5 file written by
  Keras 2 (root attribute ``keras_version`` 2.x), or one Keras 3 cannot read, is loaded with
  ``tf_keras``. ``model(x, training=False)`` is traced in a ``tf.function`` at the model's
  input shapes (batch 1 unless ``--input-shape``) and frozen with
  ``convert_variables_to_constants_v2``.
* SavedModel folder: ``tf.saved_model.load`` and ``signatures[--signature]``, frozen the same
  way; inputs / outputs are the signature's keyword names (outputs sorted by key, the order
  ``tf.nest.flatten`` gives).
* Frozen ``.pb``: a ``GraphDef``; inputs are the Placeholders (or ``--input-names``), outputs
  the nodes nobody reads (or ``--output-names``). A scalar float placeholder named like
  ``keep_prob`` is bound to 1.0 (dropout off) and a PlaceholderWithDefault takes its
  default, unless named in ``--input-names``.

Runners take IR-layout (NCHW) arrays by IR input name, feed TensorFlow NHWC, and return the
outputs in graph output order, rank-4 ones transposed back to NCHW. TensorFlow and Keras are
imported inside the functions.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from converter.errors import UnreadableModelError, UsageError
from converter.names import sanitize

from .walk import Spec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

KEEP_PROB_NAMES = ("keep_prob", "keep_probability", "keepprob", "dropout_keep")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def _freeze(fn) -> tuple[Any, list, list]:
    """(frozen GraphDef, input placeholder names, output tensor names) of concrete function
    ``fn``: variables become constants, functions are inlined (tensorflow/tensorflow
    ``tensorflow/python/framework/convert_to_constants.py``). The internal converter is
    used directly because ``convert_variables_to_constants_v2`` re-wraps the graph into a
    new function we do not need (seconds per model); the public call is the fallback."""
    from tensorflow.python.framework import convert_to_constants as cc

    try:
        data = cc._FunctionConverterDataInEager(func=fn, lower_control_flow=True,
                                                aggressive_inlining=False)
        gd, converted = cc._replace_variables_by_constants(converter_data=data)
        captured = {id(fn.graph.internal_captures[i]) for i in converted}
        ins = [t.op.name for t in fn.inputs if id(t) not in captured]
        return gd, ins, [t.name for t in fn.outputs]
    except AttributeError:  # the private API moved: take the public, slower path
        frozen = cc.convert_variables_to_constants_v2(fn)
        ins = [t.op.name for t in frozen.inputs if t.dtype.name != "resource"]
        return frozen.graph.as_graph_def(), ins, [t.name for t in frozen.outputs]


# ------------------------------------------------------------------------- Keras
def _keras_version(path: Path) -> str:
    """``keras_version`` root attribute of an HDF5 file ("" when absent).

    Raises:
        UnreadableModelError: not an HDF5 file.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            v = f.attrs.get("keras_version", "")
    except Exception as e:
        raise UnreadableModelError(f"{path}: not a Keras HDF5 file ({_first_line(e)})",
                                   "pass a .h5 saved by Keras") from None
    return v.decode() if isinstance(v, bytes) else str(v)


def load_keras(path: Path):
    """The Keras model in ``path`` (Keras 3, or tf_keras for Keras 2 files), always in safe
    mode: a Lambda layer holding Python bytecode is refused, never deserialized (it would
    run code from the file).

    Raises:
        UnreadableModelError: neither Keras can read the file.
    """
    legacy = path.suffix.lower() in (".h5", ".hdf5") and \
        _keras_version(path).startswith(("1.", "2."))
    errors = []
    loaders = ("tf_keras",) if legacy else ("keras", "tf_keras")
    for mod in loaders:
        try:
            if mod == "keras":
                import keras

                return keras.saving.load_model(str(path), compile=False, safe_mode=True)
            import tf_keras
            from tf_keras.src.saving.serialization_lib import SafeModeScope

            with SafeModeScope(True):  # tf_keras' HDF5 path ignores safe_mode otherwise
                return tf_keras.models.load_model(str(path), compile=False)
        except Exception as e:  # a file neither Keras can read
            errors.append(f"{mod}: {_first_line(e)}")
    raise UnreadableModelError(f"{path}: not a readable Keras model ({'; '.join(errors)})",
                               "re-save it with model.save()")


def keras_spec(path: Path, options) -> tuple[Spec, Callable]:
    """Frozen Spec and source runner of a Keras model file."""
    import tensorflow as tf

    model = load_keras(path)
    names = [sanitize(getattr(t, "name", "") or f"input_{k}").split(":")[0]
             for k, t in enumerate(model.inputs)]
    specs = []
    for nm, t in zip(names, model.inputs):
        shape = _keras_shape(nm, tuple(t.shape), options)
        specs.append(tf.TensorSpec(shape, t.dtype or tf.float32, name=nm))
    single = len(specs) == 1
    fn = tf.function(lambda *xs: model(xs[0] if single else list(xs), training=False))
    try:
        concrete = fn.get_concrete_function(*specs)
    except Exception as e:  # e.g. an --input-shape the model's layers do not accept
        msg = [ln.strip() for ln in str(e).splitlines() if "Error" in ln] or [_first_line(e)]
        raise UsageError(f"{path}: the model cannot run on input shape(s) "
                         f"{', '.join(str(tuple(t.shape)) for t in specs)} ({msg[-1][:200]})",
                         "pass --input-shape in the model's layout (NHWC), or none") from None
    gd, ins, outs = _freeze(concrete)
    out_names = list(getattr(model, "output_names", None) or [])
    if len(out_names) != len(outs):
        out_names = [f"output_{k}" for k in range(len(outs))]
    spec = Spec(gd, list(zip(ins, names)), list(zip(outs, out_names)), name=path.stem)
    return spec, _runner(lambda xs: concrete(*xs))


def _keras_shape(name: str, shape: tuple, options) -> tuple:
    """A Keras input shape with the batch dim (and nothing else) defaulted to 1."""
    ov = dict(options.input_shapes or {})
    got = ov.get(name, ov.get("") if len(ov) == 1 else None)
    if got is None and len(ov) == 1:
        got = next(iter(ov.values()))
    if got is not None:
        return tuple(int(d) for d in got)
    if any(d is None for d in shape[1:]):
        guess = "x".join("1" if d is None else str(d) for d in shape)
        raise UsageError(f"input {name!r} has no static shape in the model "
                         f"({'x'.join('?' if d is None else str(d) for d in shape)})",
                         f"pass --input-shape {name}={guess} (source layout: NHWC)")
    return (1 if shape[0] is None else shape[0],) + tuple(shape[1:])


# ------------------------------------------------------------------ SavedModel
def saved_model_spec(path: Path, options) -> tuple[Spec, Callable]:
    """Frozen Spec and source runner of signature ``options.signature`` of a SavedModel.

    Raises:
        UnreadableModelError: the SavedModel cannot be loaded (e.g. variables missing);
        UsageError: no signature of that name (the message lists the available ones).
    """
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:
        raise UnreadableModelError(f"{path}: cannot load the SavedModel ({_first_line(e)})",
                                   "check that saved_model.pb and variables/ are complete") \
            from None
    sigs = sorted(loaded.signatures.keys())
    want = options.signature or "serving_default"
    if want not in sigs:
        raise UsageError(f"{path}: no signature {want!r}; the SavedModel has "
                         f"{', '.join(sigs) or 'no signatures'}",
                         "pass --signature NAME with one of those")
    fn = loaded.signatures[want]
    try:
        gd, ins, outs = _freeze(fn)
    except Exception as e:
        raise UnreadableModelError(f"{path}: cannot freeze signature {want!r} "
                                   f"({_first_line(e)})", "re-export the SavedModel") from None
    kw = fn.structured_input_signature[1]
    names = sorted(kw)
    if sorted(ins) == names:  # placeholders carry the keyword names: pair by name
        ins = names
    spec = Spec(gd, list(zip(ins, names)), list(zip(outs, sorted(fn.structured_outputs))),
                name=path.name)

    def call(xs):
        res = fn(**dict(zip(names, xs)))
        return [res[k] for k in sorted(res)]
    run = _runner(call)
    run.keep = loaded  # keep the trackable alive as long as the runner
    return spec, run


# ------------------------------------------------------------------- frozen .pb
def read_graph_def(path: Path):
    """Parse a binary GraphDef.

    Raises:
        UnreadableModelError: the file is not a GraphDef with nodes.
    """
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(path.read_bytes())
    except Exception as e:
        raise UnreadableModelError(f"{path}: not a TensorFlow GraphDef ({_first_line(e)})",
                                   "pass a frozen graph (.pb) or a SavedModel folder") from None
    if not gd.node or any(not n.op or not n.name for n in gd.node):
        raise UnreadableModelError(f"{path}: not a TensorFlow GraphDef (no valid nodes)",
                                   "pass a frozen graph (.pb) or a SavedModel folder")
    return gd


def _is_keep_prob(nd) -> bool:
    from .fold import decode_attrs

    a = decode_attrs(nd)
    leaf = nd.name.lower().rsplit("/", 1)[-1]
    return a.get("shape") == () and str(a.get("dtype", "")).startswith("float") and \
        any(k in leaf for k in KEEP_PROB_NAMES)


def graph_def_spec(path: Path, options) -> tuple[Spec, Callable]:
    """Spec and source runner of a frozen GraphDef file.

    Raises:
        UnreadableModelError: not a GraphDef; UsageError: ``--input-names`` /
        ``--output-names`` naming no node, or no output found.
    """
    gd = read_graph_def(path)
    nodes = {n.name: n for n in gd.node}
    for nm in list(options.input_names) + [o.split(":")[0] for o in options.output_names]:
        if nm not in nodes:
            raise UsageError(f"{path}: no node named {nm!r}",
                             "check --input-names / --output-names against the graph")
    bound, ins = {}, list(options.input_names)
    for n in gd.node:
        if n.op == "Placeholder" and n.name not in ins and _is_keep_prob(n):
            bound[n.name] = np.asarray(1.0, np.float32)
        elif n.op == "Placeholder" and not options.input_names:
            ins.append(n.name)
    outs = list(options.output_names) or _sinks(gd)
    if not outs:
        raise UsageError(f"{path}: found no output node", "pass --output-names")
    outs = [o if ":" in o else f"{o}:0" for o in outs]
    spec = Spec(gd, [(n, n) for n in ins], [(o, o.split(":")[0] if o.endswith(":0") else o)
                                           for o in outs], bound, path.stem)
    return spec, _graph_runner(gd, ins, outs, bound)


def _sinks(gd) -> list:
    """Nodes no other node reads (data or control), except constants and side-effect ops."""
    read = {i.lstrip("^").split(":")[0] for n in gd.node for i in n.input}
    skip = {"Const", "NoOp", "Placeholder", "PlaceholderWithDefault", "Assert", "SaveV2",
            "RestoreV2", "VarHandleOp", "VariableV2", "AssignVariableOp"}
    return [n.name for n in gd.node if n.name not in read and n.op not in skip]


def _graph_runner(gd, ins: list, outs: list, bound: dict) -> Callable:
    def call(xs):
        import tensorflow as tf

        g = tf.Graph()
        with g.as_default():
            tf.graph_util.import_graph_def(gd, name="")
        feed = {f"{k}:0": v for k, v in bound.items()}
        feed.update({f"{n}:0": x for n, x in zip(ins, xs)})
        with tf.compat.v1.Session(graph=g) as sess:
            return sess.run(outs, feed_dict=feed)
    return _runner(call, tensors=False)


# ---------------------------------------------------------------------- runner
def _runner(call: Callable, tensors: bool = True) -> Callable:
    """``run(inputs: {IR name: NCHW array}) -> [NCHW arrays]`` around ``call(list of NHWC
    inputs) -> list of outputs`` (TF tensors when ``tensors``, else arrays)."""
    def run(inputs: dict) -> list:
        """IR-layout inputs by name -> IR-layout outputs in graph output order."""
        import tensorflow as tf

        xs = [np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if a.ndim == 4 else a
              for a in inputs.values()]
        if tensors:
            xs = [tf.constant(x) for x in xs]
        res = call(xs)
        res = tf.nest.flatten(res) if not isinstance(res, list) else res
        out = [np.asarray(r) for r in res]
        return [o.transpose(0, 3, 1, 2) if o.ndim == 4 else o for o in out]
    return run
