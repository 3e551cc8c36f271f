#!/bin/sh
# Regenerate caffe_pb2.py from caffe.proto. protoc 25.x (grpcio-tools 1.62) is used on purpose:
# its Python gencode carries no runtime-version check, so it imports under every protobuf
# runtime from 4.25 (pyproject's floor) to 7.x. Run from anywhere:
#   python3 -m venv /tmp/protoc-venv && /tmp/protoc-venv/bin/pip install grpcio-tools==1.62.3
#   PROTOC_PY=/tmp/protoc-venv/bin/python sh frontends/caffe/gen_pb2.sh
set -e
cd "$(dirname "$0")"
"${PROTOC_PY:-python3}" -m grpc_tools.protoc -I. --python_out=. caffe.proto
