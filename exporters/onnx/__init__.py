"""ONNX exporter (issue 3 grows it into a full target); today :mod:`.build` turns an IR graph
into an ``onnx.ModelProto`` so any IR graph can be evaluated with onnxruntime."""
