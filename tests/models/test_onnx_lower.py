"""ONNX models lowered to hwsim graphs: the float graph reproduces the model, the QDQ graph runs on the integer
executor with onnxruntime's meaning, and what no rule covers is refused by name."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hwsim.float_executor import FloatBackend, run_graph
from hwsim.int_executor import IntegerExecutor
from hwsim.models import onnx_import as oi
from hwsim.models.onnx_lower import OnnxLoweringError, lower_onnx
from hwsim.models.onnx_run import _calibration, compare, ort_run, text_feeds
from hwsim.qspec import QTensor


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lower")
    float_model = oi.OnnxModel(oi.vital_minilm_path())
    qdq = oi.quantize_with_onnxruntime(oi.vital_minilm_path(), tmp / "qdq.onnx",
                                       _calibration(float_model.input_names, 4))
    feeds = text_feeds(float_model.input_names, "eval", 6)
    return float_model, oi.OnnxModel(qdq), feeds


def _outputs(graph, values):
    return {name: values[t] for name, t in graph.meta["onnx_outputs"].items()}


def test_float_model_lowers_to_the_same_function(models):
    float_model, _, feeds = models
    graph = lower_onnx(float_model, feeds)
    kinds = Counter(op.kind for op in graph.ops)
    assert kinds["linear"] == 18 and kinds["matmul"] == 6 and kinds["gelu"] == 3 and kinds["layernorm"] == 7
    assert kinds["embedding"] == 1 and kinds["mean_pool"] == 1 and kinds["softmax"] == 3
    assert all(op.inputs[1] == "attention_mask" for op in graph.ops if op.kind == "softmax")
    got = _outputs(graph, run_graph(graph, feeds, FloatBackend()))
    ref = float_model.run(feeds)
    for name in ref:
        np.testing.assert_allclose(np.asarray(got[name], np.float64), ref[name], rtol=1e-4, atol=1e-5)


def test_qdq_model_runs_on_the_integer_executor_with_onnxruntime_meaning(models):
    _, qdq, feeds = models
    graph = lower_onnx(qdq, feeds, fold_requant=False)
    executor = IntegerExecutor(graph)
    got = _outputs(graph, executor.run(feeds))
    gemms = [op for op in graph.ops if op.kind in ("linear", "matmul")]
    assert len(gemms) == 24 and {executor.numerics[op.name] for op in gemms} == {"integer"}
    weights = [graph.tensors[op.inputs[1]].quant for op in gemms if op.kind == "linear"]
    assert {(w.format, w.granularity) for w in weights} == {("int8", "channel")}
    ort = ort_run(qdq, feeds)
    # float64 vs onnxruntime's float32 outside the GEMMs moves a few codes at rounding ties
    for name in ("461", "onnx::Shape_422"):
        assert compare(got[name], ort[name])["cosine"] > 0.9999


def test_folded_requant_is_the_requant_unit_one_lsb_from_onnx(models):
    """fold_requant: a QuantizeLinear after a GEMM becomes its output spec; the requant unit's gemmlowp
    double rounding differs from onnxruntime's float rounding by at most one code, rarely."""
    _, qdq, feeds = models
    graph = lower_onnx(qdq, feeds, fold_requant=True)
    assert not any(op.kind == "quantize" and graph.producers().get(op.inputs[0], op).kind == "linear"
                   for op in graph.ops)
    mine = IntegerExecutor(graph).run(feeds, keep=True)
    theirs = qdq.run(feeds, integer=True, keep=True)
    folded = [op for op in graph.ops if op.kind == "linear" and graph.tensors[op.outputs[0]].quant is not None]
    assert len(folded) == 18
    for op in folded:
        ours, onnx_codes = mine[op.outputs[0]], np.asarray(theirs[op.outputs[0]])
        assert isinstance(ours, QTensor) and ours.codes.shape == onnx_codes.shape
        if op is folded[0]:  # the first layer sees identical input codes: only the requant rounding differs
            diff = np.abs(ours.codes.astype(int) - onnx_codes.astype(int))
            assert diff.max() <= 1 and 0 < diff.mean() < 0.01


def _tiny_model(nodes, initializers=()):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
                              [onnx.numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return oi.OnnxModel(model)


def test_an_op_without_a_rule_is_named():
    from onnx import helper

    model = _tiny_model([helper.make_node("Sqrt", ["x"], ["y"], name="root")])
    feeds = {"x": np.random.default_rng(0).uniform(1, 2, (2, 8)).astype(np.float32)}
    with pytest.raises(OnnxLoweringError, match=r"'root': op type 'Sqrt' has no hwsim lowering"):
        lower_onnx(model, feeds)


def test_a_gelu_look_alike_is_refused():
    """x·0.5·(1 + erf(x/3)) has GELU's shape but not its constant: the numeric check refuses it."""
    from onnx import helper

    nodes = [helper.make_node("Div", ["x", "c"], ["d"], name="div"), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["y"])]
    model = _tiny_model(nodes, [("c", 3.0), ("one", 1.0), ("half", 0.5)])
    feeds = {"x": np.random.default_rng(1).normal(size=(2, 8)).astype(np.float32)}
    with pytest.raises(OnnxLoweringError, match=r"'div': looks like GELU"):
        lower_onnx(model, feeds)
    nodes[0] = helper.make_node("Div", ["x", "c"], ["d"], name="div")
    exact = _tiny_model(nodes, [("c", np.sqrt(2.0)), ("one", 1.0), ("half", 0.5)])
    graph = lower_onnx(exact, feeds)
    assert [op.kind for op in graph.ops] == ["gelu"]
