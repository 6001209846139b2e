"""ONNX import: numpy interpreter vs onnxruntime (float), the QDQ accumulator check on the real model."""

import numpy as np
import pytest

from hwsim.models import corpus, minilm
from hwsim.models import onnx_import as oi


@pytest.fixture(scope="module")
def feeds():
    ids, mask = minilm.Tokenizer()(corpus.sentences("eval", 2))
    return {"input_ids": ids, "attention_mask": mask}


def test_float_interpreter_matches_onnxruntime(feeds):
    m = oi.OnnxModel(oi.vital_minilm_path())
    mine = m.run(feeds)
    sess = oi._ort_session(m.model)
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
    for name in m.output_names:
        np.testing.assert_allclose(np.asarray(mine[name], np.float64), ref[name], atol=1e-5, rtol=0)
    g = m.to_graph(feeds)
    kinds = [r["kind"] for r in g.to_rows()]
    assert kinds.count("linear") == 18 and kinds.count("matmul") == 6 and kinds.count("layernorm") == 7


def test_qdq_accumulators_equal_onnxruntime(tmp_path):
    r = oi.check_qdq(sentences=2, calib_sentences=4, workdir=tmp_path)
    assert len(r["matmuls"]) == 24
    assert r["accumulators_equal"]
    assert {m["a_format"] for m in r["matmuls"]} == {"uint8"}
    assert {m["b_format"] for m in r["matmuls"]} == {"int8", "uint8"}
    # requant: fixed-point gemmlowp vs onnxruntime's float32 round-half-even differ by at most one code,
    # on a small fraction of outputs
    assert r["requant_codes_total"] > 0
    assert r["requant_max_code_difference"] <= 1
    assert r["requant_codes_differing"] < 0.02 * r["requant_codes_total"]
    assert r["cosine_hwsim_vs_ort_qdq"] > 0.9999
    assert "True" in r["text"]


def test_quantize_linear_is_round_half_even():
    q = oi.quantize_linear(np.array([0.5, 1.5, 2.5, -0.5, 300.0], np.float32), np.float32(1.0), np.uint8(10))
    assert list(q) == [10, 12, 12, 10, 255]


def test_unsupported_op_names_the_node():
    from onnx import TensorProto, helper

    node = helper.make_node("Hardmax", ["x"], ["y"], name="weird_node")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = oi.OnnxModel(helper.make_model(graph))
    with pytest.raises(ValueError, match="ONNX node 'weird_node': op type 'Hardmax' is not supported"):
        m.run({"x": np.zeros(2, np.float32)})
