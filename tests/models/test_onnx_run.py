"""Bring-your-own ONNX: quantize_dynamic support, +inf saturation, check-onnx on quantized input, run_onnx
and ``hwsim run --onnx`` on the paraphrase-MiniLM ONNX in float, QDQ and dynamic form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.models import onnx_import as oi
from hwsim.models.onnx_check import check_onnx
from hwsim.models.onnx_run import run_onnx, text_feeds


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The float model and its QDQ (quantize_static) and dynamic (quantize_dynamic) forms."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from hwsim.models.onnx_run import _calibration

    tmp = tmp_path_factory.mktemp("onnx")
    float_path = oi.vital_minilm_path()
    quantize_dynamic(str(float_path), str(tmp / "dyn.onnx"), weight_type=QuantType.QInt8)
    calib = _calibration(["input_ids", "attention_mask"], 4)
    oi.quantize_with_onnxruntime(float_path, tmp / "qdq.onnx", calib)
    return {"float": float_path, "qdq": tmp / "qdq.onnx", "dynamic": tmp / "dyn.onnx"}


def test_quantize_linear_saturates_infinities_without_warnings():
    x = np.array([np.inf, -np.inf, np.nan, 3e38, -3e38, 1.5], np.float32)
    assert list(oi.quantize_linear(x, np.float32(1e-3), np.uint8(10))) == [255, 0, 10, 255, 0, 255]
    assert list(oi.quantize_linear(x, np.float32(1.0), np.int8(0))) == [127, -128, 0, 127, -128, 2]


def _ort_dynamic_quantize(x):
    from onnx import TensorProto, helper

    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    graph = helper.make_graph([node], "dql", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, x.shape),
                               helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
                               helper.make_tensor_value_info("z", TensorProto.UINT8, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return oi._ort_session(model).run(None, {"x": x})


@pytest.mark.parametrize("case", ["normal", "positive", "negative", "zeros", "wide"])
def test_dynamic_quantize_linear_is_bit_exact_with_onnxruntime(case):
    rng = np.random.default_rng(7)
    x = {"normal": rng.normal(0, 3, (64, 97)), "positive": rng.uniform(0.5, 9, (33, 8)),
         "negative": -rng.uniform(0.1, 2, (5, 40)), "zeros": np.zeros((4, 4)),
         "wide": rng.normal(0, 1, (16, 16)) * 10.0 ** rng.integers(-6, 6, (16, 16))}[case].astype(np.float32)
    codes, scale, zp = oi.dynamic_quantize_linear(x)
    ref_codes, ref_scale, ref_zp = _ort_dynamic_quantize(x)
    np.testing.assert_array_equal(codes, ref_codes)
    assert np.float32(scale) == ref_scale and int(zp) == int(ref_zp)


def test_model_kind_detection(models):
    assert {k: oi.OnnxModel(p).quantization for k, p in models.items()} == \
        {"float": "float", "qdq": "qdq", "dynamic": "dynamic"}


@pytest.mark.slow
def test_check_onnx_on_a_dynamic_model_is_bit_exact(models):
    r = check_onnx(models["dynamic"], sentences=2)
    assert r["quantization"] == "dynamic" and "already quantized (dynamic)" in r["text"]
    assert len(r["matmuls"]) == 18 and {m["op"] for m in r["matmuls"]} == {"MatMulInteger"}
    assert r["accumulators_equal"]
    assert r["dynamic_quantize_total"] == 12 and r["dynamic_quantize_equal"] == 12
    assert r["cosine_hwsim_vs_ort_qdq"] > 0.99999


@pytest.mark.slow
def test_check_onnx_on_a_qdq_model_says_already_quantized(models):
    r = check_onnx(models["qdq"], sentences=2)
    assert r["quantization"] == "qdq" and "already quantized (qdq)" in r["text"].splitlines()[0]
    assert len(r["matmuls"]) == 24 and r["accumulators_equal"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["float", "qdq", "dynamic"])
def test_run_onnx_accuracy_cycles_and_formats(models, kind, tmp_path):
    s = run_onnx(models[kind], out_dir=tmp_path, sentences=2)
    assert s["quantization"] == ("qdq" if kind == "float" else kind)
    assert s["formats"] == ["int8", "uint8"]
    pooled = next(r for r in s["accuracy"] if r["shape"] == "2x384")
    assert 0.9 < pooled["cosine_vs_float"] < 1.0  # quantization costs something, not everything
    assert pooled["max_abs_diff_vs_onnxruntime"] < 1e-2  # the same model's meaning as onnxruntime's
    assert s["total_cycles"] > 0 and s["energy_total_pj"] > 0
    assert s["graph"]["macs"] == s["performance"]["macs"] > 0
    assert json.loads((tmp_path / "summary.json").read_text())["total_cycles"] == s["total_cycles"]


def test_graph_tensors_carry_the_model_quantization(models):
    feeds = text_feeds(["input_ids", "attention_mask"], "eval", 1)
    for kind, granularity in (("qdq", "channel"), ("dynamic", "tensor")):
        g = oi.OnnxModel(models[kind]).to_graph(feeds)
        linears = [op for op in g.ops if op.kind == "linear"]
        assert len(linears) == 18
        for op in linears:
            a, w = (g.tensors[t].quant for t in op.inputs)
            assert (a.format, w.format, w.granularity) == ("uint8", "int8", granularity)
            assert a.scale is not None and a.zero_point is not None


def test_cli_run_onnx_json_and_inputs(models, tmp_path, capsys):
    feeds = text_feeds(["input_ids", "attention_mask"], "eval", 2)
    np.savez(tmp_path / "feeds.npz", **feeds)
    out = tmp_path / "run"
    assert main(["run", "--onnx", str(models["dynamic"]), "--inputs", str(tmp_path / "feeds.npz"), "--json",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # stdout is the JSON summary and nothing else
    assert summary["inputs"]["input_ids"] == list(feeds["input_ids"].shape)
    assert "report.html" in captured.err and (out / "report.html").is_file()
    np.savez(tmp_path / "bad.npz", ids=feeds["input_ids"])
    assert main(["run", "--onnx", str(models["dynamic"]), "--inputs", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert "bad.npz: expected arrays named input_ids, attention_mask" in err and "Traceback" not in err


def test_cli_run_json_is_the_summary(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--sentences", "1", "--layers", "1", "--json", "--no-report", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "summary.json").read_text()) | {
        k: v for k, v in printed.items() if k not in json.loads((out / "summary.json").read_text())}
    assert printed["total_cycles"] > 0
