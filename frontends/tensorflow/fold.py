"""NodeDef helpers: attribute decoding, constant tensors, output counts, and load-time
folding of all-constant nodes by TensorFlow itself.

Folding runs the node in a two-line graph (one ``Const`` per input, then a copy of the node)
in a ``tf.compat.v1.Session``, so every deterministic op TensorFlow knows folds exactly as
TensorFlow computes it (shape arithmetic: Shape, StridedSlice, Pack, Prod, Cast, Fill, Range,
...). Attribute encodings: tensorflow/tensorflow ``tensorflow/core/framework/attr_value.proto``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Elements of one constant computed at load time (1 GiB of float32).
MAX_FOLD_ELEMENTS = 1 << 28


class FoldError(Exception):
    """TensorFlow could not compute an all-constant node (or it would be absurdly large)."""


def dtype_name(code: int) -> str:
    """numpy dtype name of a TF ``DataType`` enum value (``"object"`` for strings)."""
    import tensorflow as tf

    dt = tf.dtypes.as_dtype(code)
    return "object" if dt == tf.string else str(np.dtype(dt.as_numpy_dtype))


def _shape(sp) -> Any:
    if sp.unknown_rank:
        return None
    return tuple(None if d.size < 0 else int(d.size) for d in sp.dim)


def _value(av) -> Any:
    kind = av.WhichOneof("value")
    if kind == "s":
        return av.s.decode("utf-8", "replace")
    if kind in ("i", "f", "b"):
        return getattr(av, kind)
    if kind == "type":
        return dtype_name(av.type)
    if kind == "shape":
        return _shape(av.shape)
    if kind == "tensor":
        import tensorflow as tf

        return tf.make_ndarray(av.tensor)
    if kind == "list":
        lst = av.list
        for f in ("i", "f", "b"):
            if len(getattr(lst, f)):
                return [x for x in getattr(lst, f)]
        if len(lst.s):
            return [x.decode("utf-8", "replace") for x in lst.s]
        if len(lst.type):
            return [dtype_name(t) for t in lst.type]
        if len(lst.shape):
            return [_shape(s) for s in lst.shape]
        return []
    if kind == "func":
        return av.func.name
    return None


def decode_attrs(nd) -> dict:
    """Attribute name -> decoded Python value of NodeDef ``nd``."""
    return {k: _value(v) for k, v in sorted(nd.attr.items())}


def tensor_array(nd) -> np.ndarray:
    """The value of a ``Const`` node as a C-contiguous numpy array.

    Raises:
        FoldError: the tensor proto is corrupt.
    """
    import tensorflow as tf

    try:
        return np.require(tf.make_ndarray(nd.attr["value"].tensor), requirements="C")
    except Exception as e:
        raise FoldError(f"corrupt constant ({str(e).splitlines()[0][:120]})") from None


def output_count(nd, attrs: dict) -> int:
    """Number of outputs of NodeDef ``nd`` from its op definition (number / type-list
    attributes resolved); 1 when the op is unknown to TensorFlow."""
    from tensorflow.python.framework import op_def_registry

    od = op_def_registry.get(nd.op)
    if od is None:
        return 1
    n = 0
    for arg in od.output_arg:
        if arg.number_attr:
            n += int(attrs.get(arg.number_attr, 1))
        elif arg.type_list_attr:
            n += len(attrs.get(arg.type_list_attr, []) or [])
        else:
            n += 1
    return n


#: Float arithmetic folded with numpy (same IEEE float32 operations; ~100x faster than a
#: TF session per node, which matters for Keras 3 graphs: BatchNorm arrives as ~5 constant
#: ops per layer).
_NUMPY = {"Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply,
          "RealDiv": np.divide, "Maximum": np.maximum, "Minimum": np.minimum,
          "Sqrt": np.sqrt, "Rsqrt": lambda x: np.reciprocal(np.sqrt(x)),
          "Square": np.square, "Neg": np.negative}


def _numpy_fold(op: str, arrays: list):
    f = _NUMPY.get(op)
    if f is None or not arrays or not all(a.dtype in (np.float32, np.float64) for a in arrays):
        return None
    if len({a.dtype for a in arrays}) != 1:
        return None
    with np.errstate(all="ignore"):
        return [np.require(np.asarray(f(*arrays), dtype=arrays[0].dtype), requirements="C")]


#: Ops folded by TensorFlow at load time: pure math / shape ops only. Anything else with
#: constant inputs goes through its converter (or is reported unsupported): a hostile graph
#: must not get ``WriteFile`` / ``ReadFile`` / ``PrintV2`` ... executed by folding.
TF_FOLDABLE = frozenset("""
Abs Add AddN AddV2 All Any ArgMax ArgMin BatchMatMul BatchMatMulV2 BatchMatMulV3 BroadcastArgs
BroadcastTo Cast Ceil Concat ConcatV2 Cos Cumsum Div Equal Erf Exp ExpandDims Fill Floor FloorDiv
FloorMod Gather GatherV2 Greater GreaterEqual Identity IdentityN Less LessEqual Log LogicalAnd
LogicalNot LogicalOr MatMul Max Maximum Mean Min Minimum Mod Mul Neg NotEqual OnesLike Pack Pad
PadV2 Pow Prod Range Rank RealDiv Reciprocal Relu Relu6 Reshape Round Rsqrt Select SelectV2
Shape ShapeN Sigmoid Sign Sin Size Slice Softmax Split SplitV Sqrt Square SquaredDifference
Squeeze StopGradient StridedSlice Sub Sum Tanh Tile Transpose Unpack ZerosLike""".split())


def fold_node(nd, arrays: list) -> list:
    """Output arrays of NodeDef ``nd`` evaluated on constant inputs ``arrays``: simple float
    arithmetic with numpy, :data:`TF_FOLDABLE` ops by TensorFlow, after TensorFlow's shape
    inference has bounded every output by :data:`MAX_FOLD_ELEMENTS`.

    Raises:
        FoldError: not foldable, TensorFlow failed, or an output would be too large.
    """
    import tensorflow as tf

    fast = _numpy_fold(nd.op, arrays)
    if fast is not None:
        return fast
    if nd.op not in TF_FOLDABLE:
        raise FoldError(f"{nd.op} is not computed at load time")
    gd = tf.compat.v1.GraphDef()
    for k, a in enumerate(arrays):
        c = gd.node.add(name=f"in{k}", op="Const")
        c.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(a))
        c.attr["dtype"].type = c.attr["value"].tensor.dtype
    n = gd.node.add()
    n.CopyFrom(nd)
    n.name, n.device = "node", ""
    del n.input[:]
    n.input.extend(f"in{k}" for k in range(len(arrays)))
    return _run_one(tf, gd, output_count(nd, decode_attrs(nd)))


def _run_one(tf, gd, n_out: int) -> list:
    g = tf.Graph()
    try:
        with g.as_default():
            tf.graph_util.import_graph_def(gd, name="")
        for t in g.get_operation_by_name("node").outputs:
            dims = t.shape.as_list() if t.shape.rank is not None else None
            if dims is None or None in dims or math.prod(dims) > MAX_FOLD_ELEMENTS:
                raise FoldError(f"an output of shape {dims} (unknown or too large)")
        with tf.compat.v1.Session(graph=g) as sess:
            outs = sess.run([f"node:{k}" for k in range(n_out)])
    except FoldError:
        raise
    except Exception as e:
        raise FoldError(str(e).strip().splitlines()[0][:160]) from None
    return [np.require(np.asarray(o), requirements="C") for o in outs]
