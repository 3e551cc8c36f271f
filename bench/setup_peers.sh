#!/usr/bin/env bash
# Peers of bench/run.py that cannot share the project's venv get their own venv here.
#
# onnx2tf pins TensorFlow 2.19 / numpy 1.26 / onnx 1.19 / protobuf 4.25, which would downgrade
# the project's TensorFlow 2.21, numpy 2 and onnx 1.23, so it lives in bench/.venvs/onnx2tf/
# (gitignored). bench/run.py finds it there (or at $MCONV_ONNX2TF_PYTHON) and records a
# missing venv as that peer's error. Every other peer (pnnx, onnxsim, onnxslim, onnxscript,
# tf2onnx, openvino.convert_model, tf.lite.TFLiteConverter) installs with `pip install -e
# '.[bench]'` into the project's venv.
#
# Idempotent: a venv whose stamp file matches the requirement line is left alone.
# Usage: bash bench/setup_peers.sh        (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"

make_venv() {  # make_venv NAME REQUIREMENT...
    local name="$1"; shift
    local dir=".venvs/$name" want="$*"
    if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$want" ]; then
        echo "bench/$dir: up to date ($want)"
        return
    fi
    rm -rf "$dir"
    "$PY" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    "$dir/bin/python" -m pip install --quiet "$@"
    echo "$want" > "$dir/.stamp"
    echo "bench/$dir: installed ($want)"
}

# onnx2tf's own requirements bring TensorFlow 2.19, tf_keras, onnx, onnxsim (run by onnx2tf
# as a subprocess: the venv's bin/ goes on PATH), onnxruntime and onnx_graphsurgeon.
make_venv onnx2tf "onnx2tf==1.29.24" "psutil"
