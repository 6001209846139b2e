"""MiniLM-L6 on the integer executor: recipes, per-op numerics, the core linear, checkpoints, run_model."""

import json

import numpy as np
import pytest

from hwsim.float_executor import FloatBackend, run_graph
from hwsim.formats import get_format
from hwsim.gemm import gemm
from hwsim.int_executor import IntegerExecutor
from hwsim.models import corpus, minilm
from hwsim.models.run import cosine, run_model
from hwsim.ptq import apply_recipe
from hwsim.requant import quantize_multiplier, requantize


@pytest.fixture(scope="module")
def setup(minilm_model):
    config, weights, tok = minilm_model

    def feeds(texts):
        ids, mask = tok(texts)
        return {"input_ids": ids, "attention_mask": mask}

    def build(f, layers=None):
        return minilm.build_graph(config, weights, *f["input_ids"].shape, layers=layers)

    return feeds, build, [feeds(corpus.sentences("calib", 8))]


def test_w8a8_full_model_cosine(setup):
    feeds, build, calib = setup
    ev = feeds(corpus.sentences("eval", 3))
    g = build(ev)
    ref = run_graph(g, ev, FloatBackend())["pooled"]
    ex = IntegerExecutor(apply_recipe(g, "w8a8", calib))
    cos = cosine(ex.run(ev)["pooled"], ref)
    assert cos.min() >= 0.98
    assert cos.max() < 1.0 - 1e-6  # really quantized
    assert {ex.numerics[o.name] for o in g.ops if o.kind in ("linear", "layernorm", "add")} == {"integer"}
    assert {ex.numerics[o.name] for o in g.ops if o.kind == "softmax"} == {"float"}
    assert all("rel_error" not in st for st in ex.norm_stats.values())  # the float reference is opt-in


def test_norm_reference_records_the_error_vs_float_without_changing_results(setup):
    feeds, build, calib = setup
    ev = feeds(corpus.sentences("eval", 2))
    q = apply_recipe(build(ev, layers=1), "w8a8", calib)
    plain, checked = IntegerExecutor(q), IntegerExecutor(q, norm_reference=True)
    assert np.array_equal(plain.run(ev)["pooled"], checked.run(ev)["pooled"])
    norms = [o.name for o in q.ops if o.kind == "layernorm"]
    assert norms and set(checked.norm_stats) >= set(norms)
    for name in norms:
        assert 0 < checked.norm_stats[name]["rel_error"] < 0.05 and checked.norm_stats[name]["max_error_lsb"] >= 0.5


def test_linear_is_gemm_plus_requant(setup):
    """One W8A8 linear equals hwsim.gemm + bias in the accumulator + hwsim.requantize, code for code."""
    feeds, build, calib = setup
    ev = feeds(corpus.sentences("eval", 2))
    q = apply_recipe(build(ev, layers=1), {"recipe": [{"rtn": {}}]}, calib)
    env = IntegerExecutor(q).run(ev, keep=True)
    op = next(o for o in q.ops if o.name.endswith("attention.self.value"))
    x, y = env[op.inputs[0]], env[op.outputs[0]]
    ws = q.tensors[op.inputs[1]].quant
    acc = gemm(x.codes.reshape(-1, 384), "int8", ws.codes, "int8")
    acc_scale = float(x.scale) * ws.scale
    acc = acc + np.round(q.weights[op.inputs[2]] / acc_scale).astype(np.int64)
    m, sh = quantize_multiplier(acc_scale / float(y.scale))
    expect = requantize(acc, m, sh, 0, out_format="int8")
    assert np.array_equal(get_format("int8").decode(y.codes).reshape(-1, 384), expect)


@pytest.mark.parametrize("preset", ["w4a8-g32", "fp8", "mxfp4-a8", "mixed-int4-ffn"])
def test_other_formats_one_layer(setup, preset):
    feeds, build, calib = setup
    ev = feeds(corpus.sentences("eval", 2))
    g = build(ev, layers=1)
    ref = run_graph(g, ev, FloatBackend())["pooled"]
    q = apply_recipe(g, preset, calib)
    assert cosine(IntegerExecutor(q).run(ev)["pooled"], ref).min() > 0.95
    if preset == "mixed-int4-ffn":
        specs = {o.name: q.tensors[o.inputs[1]].quant.describe() for o in q.ops if o.kind == "linear"}
        assert specs["encoder.layer.0.intermediate.dense"] == "int4/group128"
        assert specs["encoder.layer.0.output.dense"] == "int4/group128"
        assert specs["encoder.layer.0.attention.output.dense"] == "int8/channel"


def test_checkpoint_weights_drive_execution(setup):
    """A GPTQ v1 checkpoint written from MiniLM and read back runs through the group datapath as stored."""
    from hwsim.models.checkpoints import quantize_linear

    feeds, build, calib = setup
    ev = feeds(corpus.sentences("eval", 2))
    g = build(ev, layers=1)
    q = apply_recipe(g, "gptq-w4a8", calib)
    spec = q.tensors["encoder.layer.0.attention.self.key.weight"].quant
    direct = quantize_linear(np.asarray(g.weights["encoder.layer.0.attention.self.key.weight"]), "gptq")
    assert spec.format == "uint4" and np.array_equal(spec.codes, direct.codes)
    assert np.array_equal(spec.zero_point, direct.zeros) and np.array_equal(spec.scale, direct.scales)
    ref = run_graph(g, ev, FloatBackend())["pooled"]
    assert cosine(IntegerExecutor(q).run(ev)["pooled"], ref).min() > 0.9


def test_run_model_writes_summary(tmp_path):
    s = run_model("minilm", None, "w8a8,fp8", 2, tmp_path, layers=1, calib_sentences=4)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["model"] == "minilm-l6" and data["formats"] == ["w8a8", "fp8"]
    assert 0.9 < data["cosine_vs_float"] <= 1.0
    assert data["total_cycles"] > 0 and data["energy_pj"]["mac"] > 0
    assert set(data["performance_by_format"]) == {"w8a8", "fp8"}
    norms = data["layernorm_errors"]["w8a8"]
    assert norms and all(0 < row["rel_error"] < 0.05 for row in norms)  # hwsim run turns norm_reference on
    assert (tmp_path / "summary.md").read_text().startswith("# hwsim run")
    rows = (tmp_path / "per_layer.csv").read_text().splitlines()
    assert rows[0].startswith("format,") and "numerics" in rows[0] and len(rows) > 20
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    assert s["cosine_vs_float"] == data["cosine_vs_float"]
    with pytest.raises(ValueError, match="model must be one of .*not 'gpt5'"):
        run_model("gpt5")
    with pytest.raises(ValueError, match="recipe must be a preset"):
        run_model("minilm", None, "w3a3")
