"""The CLI contract on bad TensorFlow input: documented exit code, one-line message naming
the file / op, no traceback, nothing written."""
from __future__ import annotations

import shutil


from tests.conftest import assert_clean_failure, run_mconv
from tests.test_tf_e2e import keras_fixture

import tensorflow as tf




def test_saved_model_without_variables(tmp_path, out_dir):
    """A SavedModel whose variables/ folder is gone: exit 5, the folder is named."""
    sm = tmp_path / "broken_savedmodel"
    shutil.copytree(keras_fixture("mobilenet_v3_small", "savedmodel"), sm)
    shutil.rmtree(sm / "variables")
    proc = run_mconv("convert", str(sm), "--to", "onnx", "-o", str(out_dir))
    assert_clean_failure(proc, 5, out_dir, "broken_savedmodel", "variables")


def test_pb_that_is_not_a_graph_def(tmp_path, out_dir):
    p = tmp_path / "notagraph.pb"
    p.write_bytes(b"this is not a graph\x00\xff\x17")
    proc = run_mconv("convert", str(p), "--to", "ncnn", "-o", str(out_dir))
    assert_clean_failure(proc, 5, out_dir, "notagraph.pb", "GraphDef")


def _in_process(path, out_dir, **options):
    from converter import convert

    res = convert(path, to="onnx", output_dir=out_dir, raise_on_error=False, **options)
    assert len(res.error.splitlines()) == 1
    assert not any(out_dir.iterdir()), list(out_dir.iterdir())
    return res


def test_empty_pb(tmp_path, out_dir):
    """An empty file parses as an empty GraphDef: refused as no graph (exit 5)."""
    p = tmp_path / "empty.pb"
    p.write_bytes(b"")
    res = _in_process(p, out_dir)
    assert res.exit_code == 5 and "empty.pb" in res.error and "GraphDef" in res.error


def test_unknown_signature_lists_the_available_ones(out_dir):
    sm = keras_fixture("mobilenet_v3_small", "savedmodel")
    proc = run_mconv("convert", str(sm), "--signature", "nope", "--to", "onnx",
                     "-o", str(out_dir))
    assert_clean_failure(proc, 2, out_dir, sm.name, "'nope'", "serving_default")


def _string_graph(path):
    """x [1, 4] float -> AsString -> StringToNumber -> Add -> y: two ops outside the IR."""
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 4), name="x")
        s = tf.strings.as_string(x, name="to_text")
        y = tf.strings.to_number(s, tf.float32, name="from_text")
        tf.add(y, 1.0, name="y")
    path.write_bytes(g.as_graph_def().SerializeToString(deterministic=True))
    return path


def test_string_ops_are_listed(tmp_path, out_dir):
    """Every op outside the IR is listed at once (exit 3), with counts and node names."""
    p = _string_graph(tmp_path / "strings.pb")
    proc = run_mconv("convert", str(p), "--to", "onnx", "-o", str(out_dir))
    assert_clean_failure(proc, 3, out_dir, "AsString x1", "StringToNumber x1")
    assert "to_text" in proc.stdout + proc.stderr
    assert "from_text" in proc.stdout + proc.stderr


def test_output_names_must_exist(tmp_path, out_dir):
    p = _string_graph(tmp_path / "strings.pb")
    res = _in_process(p, out_dir, output_names=("nosuchnode",))
    assert res.exit_code == 2 and "strings.pb" in res.error and "nosuchnode" in res.error



def test_keras2_h5_with_a_python_lambda_is_refused(tmp_path, out_dir):
    """A Keras 2 HDF5 file whose Lambda layer holds Python bytecode: exit 5, the lambda is
    never deserialized (safe mode also on tf_keras' HDF5 path)."""
    import tf_keras

    marker = tmp_path / "ran"
    inp = tf_keras.Input((4,))
    touch = eval(f"lambda t: t * 2.0 + (open({str(marker)!r}, 'w').close() or 0.0)")
    out = tf_keras.layers.Lambda(touch)(inp)  # building the model calls it once
    p = tmp_path / "lambda.h5"
    tf_keras.Model(inp, out).save(p, save_format="h5")
    marker.unlink(missing_ok=True)
    res = _in_process(p, out_dir)
    assert res.exit_code == 5 and "lambda.h5" in res.error and "Lambda" in res.error
    assert not marker.exists()


def test_constant_file_ops_are_not_run_at_load_time(tmp_path, out_dir):
    """ReadFile of a constant path is all-constant but never folded (load-time folding runs
    pure math / shape ops only): it is reported unsupported (exit 3)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("42")
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 4), name="x")
        data = tf.strings.to_number(tf.io.read_file(str(secret), name="peek"), tf.float32)
        tf.add(x, data, name="y")
    p = tmp_path / "readfile.pb"
    p.write_bytes(g.as_graph_def().SerializeToString(deterministic=True))
    res = _in_process(p, out_dir)
    assert res.exit_code == 3 and "ReadFile x1" in res.error, res.error
