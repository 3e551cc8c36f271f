"""Shared helpers for the optimizer-rule tests, and tests of the rule set as a whole."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.ir import Graph
from converter.rewrite import run_rules
from exporters.onnx.build import run_onnxruntime
import optimizers
from optimizers import DEFAULT_RULES, optimize
from optimizers import fold_affine, fold_batchnorm, fold_constants, strip, transposes
from optimizers import fuse_activations, sink_transposes, sink_transposes_exits
from optimizers import fold_pad

SYMBOLIC_DIM = 2  # concrete size fed for a symbolic / unknown input dim


def feeds(graph: Graph, seed: int = 0) -> dict:
    """Seeded random inputs for every graph input (symbolic dims become ``SYMBOLIC_DIM``)."""
    rng = np.random.default_rng(seed)
    out = {}
    for v in graph.inputs:
        shape = [d if isinstance(d, int) else SYMBOLIC_DIM for d in v.shape]
        if np.issubdtype(np.dtype(v.dtype), np.floating):
            out[v.name] = rng.standard_normal(shape).astype(v.dtype)
        else:
            out[v.name] = rng.integers(-5, 5, shape).astype(v.dtype)
    return out


def assert_close(ref: list, got: list, rtol: float = 1e-5) -> None:
    """Each output within ``rtol`` of the reference, relative to max(1, max |ref|)."""
    assert len(ref) == len(got)
    for a, b in zip(ref, got):
        assert a.shape == b.shape and a.dtype == b.dtype
        scale = max(1.0, float(np.abs(a).max())) if a.size else 1.0
        np.testing.assert_allclose(b, a, rtol=0, atol=rtol * scale)


def ops(graph: Graph) -> list:
    return [n.op for n in graph.nodes]


def rewrite(graph: Graph, rules=None, seed: int = 0):
    """Run ``rules`` (default: ``optimize``) on ``graph``; check it stays valid, its outputs
    keep their names, and its numerics (onnxruntime, seeded inputs) are unchanged.
    Returns the RewriteLog."""
    graph.validate()
    x = feeds(graph, seed)
    ref = run_onnxruntime(graph, x)
    names = [o.name for o in graph.outputs]
    if rules is None:
        log = optimize(graph)
    else:
        log = run_rules(graph, list(rules))
        graph.cleanup()
        graph.validate()
    assert [o.name for o in graph.outputs] == names
    assert_close(ref, run_onnxruntime(graph, x))
    return log


def fconst(graph: Graph, a, name: str = "c"):
    return graph.const(np.asarray(a, np.float32), name)


# --------------------------------------------------------------------------- the rule set
FAMILIES = (strip, fold_constants, transposes, fold_batchnorm, fold_affine, fuse_activations,
            sink_transposes, sink_transposes_exits, fold_pad)


def test_default_rules_list_every_rule_once():
    family_rules = [r for mod in FAMILIES for r in mod.RULES]
    assert sorted(r.name for r in DEFAULT_RULES) == sorted(r.name for r in family_rules)
    assert len({r.name for r in DEFAULT_RULES}) == len(DEFAULT_RULES)
    assert isinstance(DEFAULT_RULES, tuple)


def test_rule_names_are_stable():
    names = [r.name for r in DEFAULT_RULES]
    assert names[:2] == ["strip_dropout", "strip_identity"]
    assert names.index("strip_mul_one") < names.index("fold_affine_mul")
    assert names.index("strip_reshape") < names.index("compose_reshapes")
    assert names.index("fold_constants") < names.index("compose_reshapes")
    assert {"fold_batchnorm_conv", "fold_batchnorm_convtranspose", "fold_batchnorm_gemm",
            "fold_batchnorm_matmul", "fold_affine_mul", "fold_affine_add", "fold_affine_sub",
            "fold_affine_div", "fold_constants", "compose_transposes", "compose_reshapes",
            "compose_flatten_reshape", "cancel_squeeze_unsqueeze",
            "cancel_unsqueeze_squeeze"} <= set(names)


def test_rule_files_within_budget():
    for path in Path(optimizers.__file__).parent.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 150, path.name


def _mixed_graph():
    rng = np.random.default_rng(1)
    g = Graph("mixed")
    x = g.add_input("x", "float32", (1, 3, 8, 8))
    w = fconst(g, rng.standard_normal((3, 3, 3, 4)), "w_hwio")  # TF layout, folded below
    wt = g.op("Transpose", w, perm=(3, 2, 0, 1))
    y = g.op("Conv", g.op("Identity", x), wt, pads=(1, 1, 1, 1))
    y = g.op("Dropout", y)
    y = g.op("BatchNormalization", y, fconst(g, rng.uniform(.5, 1.5, 4)),
             fconst(g, rng.normal(size=4)), fconst(g, rng.normal(size=4)),
             fconst(g, rng.uniform(.5, 1.5, 4)))
    y = g.op("Sub", y, fconst(g, rng.normal(size=(1, 4, 1, 1))))
    y = g.op("Mul", y, fconst(g, rng.uniform(.5, 2, (4, 1, 1))))
    y = g.op("Relu", y)
    y = g.op("Transpose", y, perm=(0, 2, 3, 1))
    y = g.op("Transpose", y, perm=(0, 3, 1, 2))
    y = g.op("Flatten", y)
    y = g.op("Reshape", y, g.const(np.array([1, 4, 64], np.int64)), name="out")
    g.outputs = [y]
    return g


def test_optimize_mixed_graph_to_fixed_point():
    g = _mixed_graph()
    log = rewrite(g)
    assert ops(g) == ["Conv", "Relu", "Reshape"]
    assert log.counts == {"strip_identity": 1, "strip_dropout": 1, "fold_constants": 1,
                          "fold_batchnorm_conv": 1, "fold_affine_sub": 1, "fold_affine_mul": 1,
                          "compose_transposes": 1, "compose_flatten_reshape": 1}
    assert g.nodes[0].meta["fused_from"] == ["BatchNormalization", "Sub", "Mul"]
    again = optimize(g)
    assert again.counts == {} and again.rounds == 1


def test_optimize_returns_given_log():
    g = _mixed_graph()
    from converter.rewrite import RewriteLog
    log = RewriteLog()
    assert optimize(g, log=log) is log and log.counts


def test_optimize_is_deterministic():
    a, b = _mixed_graph(), _mixed_graph()
    optimize(a), optimize(b)
    assert a.dump() == b.dump()
