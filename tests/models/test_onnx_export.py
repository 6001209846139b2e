"""Quantized linears exported to ONNX (MatMulInteger + QDQ) and run by onnxruntime against hwsim."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hwsim.models import onnx_export as oe
from hwsim.ptq import apply_recipe, load_recipe

GPTQ_G128 = {"recipe": [{"gptq": {"weights": "int4", "granularity": "group", "group_size": 128}},
                        {"rtn": {"weights": "keep", "activations": "int8"}}]}
UINT4_TOKEN = {"recipe": [{"rtn": {"weights": "uint4", "granularity": "group", "group_size": 64, "symmetric": False,
                                   "activations": "int8", "act_granularity": "token"}}]}


@pytest.fixture(scope="module")
def minilm():
    from hwsim.models.run import minilm_task

    return minilm_task(sentences=2, calib_sentences=4, layers=1)


@pytest.mark.parametrize("recipe", ["w8a8", "gptq-w4a8", GPTQ_G128, UINT4_TOKEN],
                         ids=["w8a8-channel", "checkpoint-uint4-g128", "gptq-int4-g128", "uint4-g64-token"])
def test_onnxruntime_accumulators_equal_hwsim(tmp_path, minilm, recipe):
    qg = apply_recipe(minilm.graph, load_recipe(recipe), minilm.calibration)
    path = tmp_path / "linears.onnx"
    info = oe.export_onnx_linears(qg, path)
    assert info["linears"] == 6 and info["opset"] == 21
    report = oe.check_onnx_export(qg, path, minilm.evaluation[0])
    assert report["codes_equal"] and report["accumulators_equal"]
    assert all(r["max_abs_acc"] > 0 for r in report["linears"])
    assert report["max_y_rel_error"] < 1e-6 and report["max_y_qdq_rel_error"] < 1e-6
    model = onnx.load(str(path))
    kinds = [n.op_type for n in model.graph.node]
    assert kinds.count("MatMulInteger") == 6 and kinds.count("MatMul") == 6
    blocked = [n for n in model.graph.node if n.op_type == "DequantizeLinear"
               and any(a.name == "block_size" for a in n.attribute)]
    assert len(blocked) == (0 if recipe == "w8a8" else 6)


def test_check_sees_a_changed_weight_code(tmp_path, minilm):
    qg = apply_recipe(minilm.graph, load_recipe(GPTQ_G128), minilm.calibration)
    path = tmp_path / "linears.onnx"
    oe.export_onnx_linears(qg, path)
    model = onnx.load(str(path))
    name = "encoder.layer.0.intermediate.dense.w_u8"
    init = next(i for i in model.graph.initializer if i.name == name)
    w = numpy_helper.to_array(init).copy()
    w[0, 5, 7] ^= 1
    init.CopyFrom(numpy_helper.from_array(w, name))
    onnx.save(model, str(path))
    report = oe.check_onnx_export(qg, path, minilm.evaluation[0])
    bad = [r["linear"] for r in report["linears"] if not r["accumulators_equal"]]
    assert bad == ["encoder.layer.0.intermediate.dense"] and not report["accumulators_equal"]


@pytest.mark.parametrize("weights", ["float4_e2m1fn", "dint4"])
def test_refuses_non_integer_weights(tmp_path, minilm, weights):
    qg = apply_recipe(minilm.graph, load_recipe({"recipe": [{"rtn": {"weights": weights, "granularity": "channel",
                                                                     "activations": "int8"}}]}), minilm.calibration)
    with pytest.raises(oe.OnnxExportError, match=r"linear 'encoder\.layer\.0\.attention\.self\.query': weight "
                                                 + weights + "/channel is not integer codes of at most 8 bits") as info:
        oe.export_onnx_linears(qg, tmp_path / "m.onnx")
    assert "\n" not in str(info.value) and not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_smollm2_linears_per_token(tmp_path):
    from hwsim.models.run import smollm2_task

    task = smollm2_task(chunks=1, tokens=16, layers=1, calib_chunks=1)
    recipe = {"recipe": [{"rtn": {"weights": "int4", "granularity": "group", "group_size": 64,
                                  "activations": "int8"}}]}
    qg = apply_recipe(task.graph, load_recipe(recipe), task.calibration)
    path = tmp_path / "linears.onnx"
    oe.export_onnx_linears(qg, path)
    report = oe.check_onnx_export(qg, path, task.evaluation[0])
    assert {r["input"] for r in report["linears"]} == {"int8/tensor", "int8/token"}
    assert report["accumulators_equal"] and report["codes_equal"] and report["max_y_rel_error"] < 1e-6
    assert np.isfinite(report["max_y_qdq_rel_error"])
