"""TensorFlow frontend per op family: small TF1-style frozen graphs (built here with
``tf.compat.v1`` in graph mode, seeded weights) converted to every target and verified
against TensorFlow on seeded inputs (fp32, default tolerance), plus unit checks of the
StridedSlice plan and the SAME-padding rule against TensorFlow itself."""
from __future__ import annotations

import numpy as np
import pytest

import tensorflow as tf

TARGETS = ("ncnn", "onnx", "openvino", "tflite")


def _w(rng, *shape, scale=0.3):
    return tf.constant(rng.normal(0, scale, shape).astype(np.float32))


def conv_graph():
    """Conv2D (SAME s2, EXPLICIT, grouped), DepthwiseConv2dNative (multiplier 2),
    Conv2DBackpropInput (SAME s2), FusedBatchNormV3, MaxPool / AvgPool SAME, resizes."""
    rng = np.random.default_rng(1)
    x = tf.compat.v1.placeholder(tf.float32, (1, 15, 17, 4), name="x")
    a = tf.nn.conv2d(x, _w(rng, 3, 3, 4, 8), [1, 2, 2, 1], "SAME")
    a = tf.raw_ops.FusedBatchNormV3(x=a, scale=_w(rng, 8) + 1.0, offset=_w(rng, 8),
                                    mean=_w(rng, 8), variance=tf.abs(_w(rng, 8)) + 0.5,
                                    epsilon=1e-3, is_training=False)[0]
    b = tf.nn.conv2d(x, _w(rng, 3, 3, 2, 6), [1, 1, 1, 1], [[0, 0], [1, 2], [0, 1], [0, 0]])
    b = tf.nn.depthwise_conv2d(tf.nn.relu(b), _w(rng, 3, 3, 6, 2), [1, 1, 1, 1], "SAME")
    c = tf.nn.conv2d_transpose(a, _w(rng, 3, 3, 5, 8), (1, 15, 17, 5), [1, 2, 2, 1], "SAME")
    d = tf.nn.max_pool2d(b, 3, 2, "SAME")
    e = tf.nn.avg_pool2d(b, 3, 2, "SAME")
    f = tf.compat.v1.image.resize_bilinear(a, (16, 18), half_pixel_centers=True)
    g = tf.compat.v1.image.resize_nearest_neighbor(a, (16, 18))
    h = tf.compat.v1.image.resize_bilinear(a, (15, 17), align_corners=True)
    outs = [c, d, e, f, g, h]
    return [tf.identity(o, name=f"out{k}") for k, o in enumerate(outs)]


def activation_graph():
    """Activations and elementwise math, incl. the swish / hard-swish / GELU patterns."""
    x = tf.compat.v1.placeholder(tf.float32, (1, 6, 7, 5), name="x")
    y = tf.compat.v1.placeholder(tf.float32, (1, 6, 7, 5), name="y")
    outs = [tf.nn.leaky_relu(x, 0.1), tf.nn.elu(x), tf.nn.selu(x), tf.nn.softplus(x),
            tf.tanh(x) + tf.sigmoid(y), tf.nn.relu6(x * 4.0), x * tf.sigmoid(x),
            x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0),
            0.5 * x * (1.0 + tf.math.erf(x / np.float32(np.sqrt(2.0)))),
            tf.square(x) - tf.math.squared_difference(x, y), tf.maximum(x, y) * tf.minimum(x, 0.5),
            tf.math.rsqrt(tf.abs(x) + 1.0) + tf.sqrt(tf.abs(y)), tf.nn.softmax(x),
            tf.exp(-tf.abs(x)) / (y * y + 1.0)]
    return [tf.identity(o, name=f"out{k}") for k, o in enumerate(outs)]


def shape_graph():
    """StridedSlice masks, Slice, Split / SplitV, Pack / Unpack, pads, reductions, matmuls."""
    rng = np.random.default_rng(2)
    x = tf.compat.v1.placeholder(tf.float32, (1, 8, 6, 4), name="x")
    s1 = x[:, 1:7:2, ::-1, 1:]                 # strides, negative step, begin/end masks
    s2 = x[..., 2]                               # ellipsis + shrink axis
    s3 = x[:, 1, tf.newaxis, 3, :2]              # shrink + new axis
    a, b = tf.split(x, 2, axis=3)
    p, q, r = tf.split(x, [2, -1, 1], axis=1)
    st = tf.stack([a, b * 2.0], axis=-1)
    un = tf.unstack(x, axis=2)
    pads = tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]], constant_values=0.5)
    mir = tf.pad(x, [[0, 0], [2, 2], [1, 1], [0, 0]], mode="REFLECT")
    red = tf.reduce_sum(x, axis=[1, 2], keepdims=True) + tf.reduce_max(x, axis=3, keepdims=True)
    flat = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), (1, 192))
    mm = tf.matmul(flat, _w(rng, 5, 192), transpose_b=True)
    sq = tf.squeeze(tf.reshape(x, (1, 1, 48, 4)), 1)
    bmm = tf.linalg.matmul(sq, sq * 0.5, adjoint_b=True)  # BatchMatMulV2, runtime operands
    outs = [s1, s2, s3, tf.concat([p, r * r], axis=1), q, st, un[1] - un[4], pads, mir, red,
            tf.slice(x, [0, 2, 1, 0], [1, 3, -1, 2]), mm, bmm, tf.reduce_mean(x, [1, 2])]
    return [tf.identity(o, name=f"out{k}") for k, o in enumerate(outs)]


GRAPHS = {"conv": conv_graph, "activation": activation_graph, "shape": shape_graph}


def _build(tmp_path, make) -> str:
    g = tf.Graph()
    with g.as_default():
        make()
    p = tmp_path / f"{make.__name__}.pb"
    p.write_bytes(g.as_graph_def().SerializeToString(deterministic=True))
    return p


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_op_family_all_targets(name, tmp_path):
    """Each graph converts to all four targets and every output of every target verifies."""
    from converter import convert

    res = convert(_build(tmp_path, GRAPHS[name]), to=",".join(TARGETS),
                  output_dir=tmp_path / "out", verify=True, raise_on_error=False)
    assert res.exit_code == 0, res.error
    assert len(res.verification) == len(TARGETS) * len(res.outputs)
    bad = [r for r in res.verification if not r["passed"]]
    assert not bad, bad
    assert res.framework == "tensorflow"
    if name == "activation":  # the GELU and hard-swish arithmetic became one op each
        assert res.rewrites.get("fuse_gelu") == 1 and res.rewrites.get("fuse_hard_swish") == 1
        assert res.ops_after.get("Gelu") == 1 and res.ops_after.get("HardSwish") == 1


@pytest.mark.parametrize("spec", [
    (slice(1, 7, 2), slice(None, None, -1)), (Ellipsis, 2), (0, slice(None), None, 3),
    (slice(-3, None), Ellipsis, slice(None, -1)), (slice(None), slice(5, 1, -2), None)])
def test_strided_slice_plan_matches_tensorflow(spec):
    """The StridedSlice plan (Slice + Reshape) computes what TensorFlow computes."""
    from frontends.tensorflow.ops_shape import slice_plan

    x = np.arange(1 * 8 * 6 * 4, dtype=np.float32).reshape(1, 8, 6, 4)
    g = tf.Graph()
    with g.as_default():
        t = tf.constant(x)[spec]
    nd = next(n for n in g.as_graph_def().node if n.op == "StridedSlice")
    consts = {n.name: tf.make_ndarray(n.attr["value"].tensor) for n in g.as_graph_def().node
              if n.op == "Const"}
    begin, end, strides = (consts[i] for i in nd.input[1:4])
    masks = {k: nd.attr[k].i for k in ("begin_mask", "end_mask", "ellipsis_mask",
                                       "new_axis_mask", "shrink_axis_mask")}
    slices, out = slice_plan(x.shape, begin, end, strides, masks)
    idx = [slice(None)] * 4
    for a, s, e, st in slices:
        idx[a] = slice(s, e if e >= 0 else None, st)
    got = x[tuple(idx)].reshape(out)
    with tf.compat.v1.Session(graph=g) as sess:
        np.testing.assert_array_equal(got, sess.run(t))


@pytest.mark.parametrize("size,k,s", [(15, 3, 2), (16, 3, 2), (7, 1, 3), (9, 4, 1), (5, 7, 2)])
def test_same_pads_match_tensorflow(size, k, s):
    """SAME padding: the explicit pads give TensorFlow's output for a conv of ones."""
    from frontends.tensorflow.context import same_pads

    pads = same_pads([size, size], [k, k], [s, s], [1, 1])
    x = np.random.default_rng(0).normal(size=(1, size, size, 1)).astype(np.float32)
    w = np.ones((k, k, 1, 1), np.float32)
    ref = tf.nn.conv2d(x, w, s, "SAME").numpy()
    xp = np.pad(x, [(0, 0), (pads[0], pads[2]), (pads[1], pads[3]), (0, 0)])
    got = tf.nn.conv2d(xp, w, s, "VALID").numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-5)


def _keras_multi_io(path):
    """A Keras 3 functional model: two inputs (image NHWC, vector), two outputs, with
    Conv2DTranspose, UpSampling2D, LayerNormalization, gelu, Concatenate and Dense."""
    import keras

    keras.utils.set_random_seed(3)
    img = keras.Input((12, 10, 3), name="image")
    vec = keras.Input((7,), name="meta")
    L = keras.layers
    h = L.Conv2D(8, 3, strides=2, padding="same", activation="gelu")(img)
    h = L.BatchNormalization()(h)
    h = L.Conv2DTranspose(6, 3, strides=2, padding="same")(h)
    h = L.UpSampling2D(2)(L.MaxPooling2D(2)(h))
    h = L.LayerNormalization()(h)
    pooled = L.GlobalAveragePooling2D()(h)
    mix = L.Dense(5, activation="swish")(L.Concatenate()([pooled, vec]))
    model = keras.Model([img, vec], [L.Softmax(name="probs")(mix), L.Conv2D(2, 1, name="map")(h)])
    model.save(path)
    model.save(path.with_suffix(".h5"))  # Keras 3's legacy HDF5 (keras_version 3.x)
    return path


def test_keras_two_inputs_two_outputs(tmp_path):
    """Keras input / output names and order survive; a rank-4 output comes back NCHW."""
    from converter import convert

    res = convert(_keras_multi_io(tmp_path / "multi.keras"), to=",".join(TARGETS),
                  output_dir=tmp_path / "out", verify=True, raise_on_error=False)
    assert res.exit_code == 0, res.error
    assert [(v["name"], v["shape"]) for v in res.inputs] == [("image", [1, 3, 12, 10]),
                                                             ("meta", [1, 7])]
    assert [v["shape"] for v in res.outputs] == [[1, 5], [1, 2, 12, 10]]
    assert len(res.verification) == 2 * len(TARGETS)
    assert all(r["passed"] for r in res.verification), res.verification
    assert res.ops_after.get("Gelu") == 1 and "Erf" not in res.ops_after  # Keras 3 erfc form
    assert "Tile" in res.source_ops  # UpSampling2D's repeat
    h5 = convert(tmp_path / "multi.h5", to="onnx,tflite", output_dir=tmp_path / "h5",
                 verify=True, raise_on_error=False)
    assert h5.exit_code == 0, h5.error
    assert [v["name"] for v in h5.inputs] == ["image", "meta"]
    assert len(h5.verification) == 4 and all(r["passed"] for r in h5.verification)
