"""Quantized graphs exported as GPTQ / AWQ / compressed-tensors checkpoint folders and read back."""

import json

import numpy as np
import pytest

from hwsim.float_executor import rope
from hwsim.int_executor import IntegerExecutor
from hwsim.models import checkpoint_export as ce
from hwsim.models.checkpoints import read_safetensors, unpack_bits
from hwsim.ptq import apply_recipe, load_recipe

GPTQ_G128 = {"recipe": [{"gptq": {"weights": "int4", "granularity": "group", "group_size": 128}},
                        {"rtn": {"weights": "keep", "activations": "int8"}}]}


@pytest.fixture(scope="module")
def minilm():
    from hwsim.models.run import minilm_task

    return minilm_task(sentences=2, calib_sentences=4, layers=1)


@pytest.fixture(scope="module")
def graphs(minilm):
    out = {}
    for name, recipe in (("checkpoint", "gptq-w4a8"), ("gptq", GPTQ_G128)):
        rec = load_recipe(recipe)
        out[name] = (rec, apply_recipe(minilm.graph, rec, minilm.calibration))
    return out


def _int_values(spec):
    from hwsim.formats import get_format

    v = get_format(spec.format).code_to_int(spec.codes).astype(np.int64)
    zp = 0 if spec.zero_point is None else np.repeat(np.asarray(spec.zero_point), spec.group_size or 1, axis=0) \
        if spec.granularity == "group" else spec.zero_point
    return v - zp


@pytest.mark.parametrize("layout", ce.EXPORT_LAYOUTS)
def test_stored_fp16_graph_round_trips_bit_exact(tmp_path, minilm, graphs, layout):
    """Scales already float16 (the checkpoint step): import(export(G)) executes exactly like G."""
    recipe, qg = graphs["checkpoint"]
    summary = ce.export_checkpoint(qg, layout, tmp_path, recipe=recipe)
    assert summary["linears"] == 6 and summary["scales_rounded"] == 0
    back = ce.import_checkpoint(tmp_path, qg)
    for op in qg.ops:
        if op.kind == "linear":
            a, b = qg.tensors[op.inputs[1]].quant, back.tensors[op.inputs[1]].quant
            assert np.array_equal(_int_values(a), _int_values(b))
            assert np.array_equal(np.asarray(a.scale), np.asarray(b.scale))
            assert np.array_equal(qg.weights[op.inputs[2]], back.weights[op.inputs[2]])  # bias from the file
    feeds = minilm.evaluation[0]
    assert np.array_equal(IntegerExecutor(back).run(feeds)["pooled"], IntegerExecutor(qg).run(feeds)["pooled"])


@pytest.mark.parametrize("layout", ce.EXPORT_LAYOUTS)
def test_gptq_act_order_export(tmp_path, minilm, graphs, layout):
    """GPTQ (act-order, float64 scales): codes identical, scales = float16(scales), execution as stored."""
    recipe, qg = graphs["gptq"]
    summary = ce.export_checkpoint(qg, layout, tmp_path, recipe=recipe)
    assert 0 < summary["scales_rounded"] <= summary["scales_total"] and summary["max_scale_rel_change"] < 2 ** -11
    back = ce.import_checkpoint(tmp_path, qg)
    for op in qg.ops:
        if op.kind == "linear":
            a, b = qg.tensors[op.inputs[1]].quant, back.tensors[op.inputs[1]].quant
            assert np.array_equal(_int_values(a), _int_values(b))
            assert np.array_equal(np.asarray(a.scale).astype(np.float16).astype(np.float64), b.scale)
    feeds = minilm.evaluation[0]
    stored = ce.stored_graph(qg, layout)
    assert np.array_equal(IntegerExecutor(back).run(feeds)["pooled"], IntegerExecutor(stored).run(feeds)["pooled"])
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "bert" and cfg["num_hidden_layers"] == 1
    qc = cfg["quantization_config"]
    if layout == "gptq":
        assert qc == json.loads((tmp_path / "quantize_config.json").read_text())
        assert (qc["quant_method"], qc["checkpoint_format"], qc["bits"], qc["group_size"], qc["sym"]) == \
            ("gptq", "gptq", 4, 128, True)
        assert qc["desc_act"] is True and qc["static_groups"] is True and qc["damp_percent"] == 0.01
        tensors, _ = read_safetensors(tmp_path / "model.safetensors")
        g_idx = tensors["encoder.layer.0.intermediate.dense.g_idx"]
        assert np.array_equal(g_idx, np.arange(384) // 128)  # static groups: contiguous even with act-order
        zeros = unpack_bits(tensors["encoder.layer.0.intermediate.dense.qzeros"], 4, axis=1)
        assert np.all(zeros == 7)  # symmetric int4 = uint4 with zero 8, stored as zero - 1
    elif layout == "awq":
        assert qc == {"quant_method": "awq", "zero_point": True, "group_size": 128, "bits": 4, "version": "gemm",
                      "modules_to_not_convert": None}
    else:
        w = qc["config_groups"]["group_0"]["weights"]
        assert (qc["quant_method"], qc["format"], w["num_bits"], w["strategy"], w["group_size"], w["symmetric"]) == \
            ("compressed-tensors", "pack-quantized", 4, "group", 128, True)
        tensors, _ = read_safetensors(tmp_path / "model.safetensors")
        assert "encoder.layer.0.output.dense.weight_zero_point" not in tensors
        assert tensors["encoder.layer.0.output.dense.weight_shape"].tolist() == [384, 1536]


def test_float_tensors_use_hf_names_and_layout(tmp_path, graphs, minilm_model):
    _, weights, _ = minilm_model
    recipe, qg = graphs["checkpoint"]
    ce.export_checkpoint(qg, "gptq", tmp_path, recipe=recipe)
    tensors, _ = read_safetensors(tmp_path / "model.safetensors")
    for name in ("embeddings.word_embeddings.weight", "embeddings.LayerNorm.bias", "encoder.layer.0.output.dense.bias",
                 "encoder.layer.0.attention.output.LayerNorm.weight"):
        assert np.array_equal(tensors[name], weights[name])
    assert tensors["encoder.layer.0.attention.self.query.qweight"].shape == (48, 384)
    assert not any(n.endswith("query.weight") for n in tensors)


@pytest.mark.parametrize("recipe,layout,message", [
    ({"recipe": [{"rtn": {"weights": "float4_e2m1fn", "granularity": "group", "group_size": 32,
                          "activations": "int8"}}]}, "gptq", r"layer 'encoder\.layer\.0\.attention\.self\.query'"
     r": weight format 'float4_e2m1fn' is not an integer format .*; a gptq checkpoint cannot hold it"),
    ({"recipe": [{"rtn": {"weights": "int8", "granularity": "channel", "activations": "int8"}}]}, "awq",
     r"has 8 bits, not one of \(4,\); a awq checkpoint"),
    ({"recipe": [{"rtn": {"weights": "mxfp4", "activations": "int8"}}]}, "pack-quantized", r"MX blocks"),
    ("w8a8", "gptq", r"op 'embeddings\.LayerNorm\.unsmooth' \(mul\) was added by the recipe and the Hugging Face model "
                     r"has no such op; a gptq checkpoint cannot hold it"),
    ({"recipe": [{"rtn": {"weights": "int4", "granularity": "group", "group_size": 128, "activations": "int8"}}],
      "overrides": [{"match": "*.intermediate.dense", "rtn": {"group_size": 64}}]}, "gptq",
     r"layer 'encoder\.layer\.0\.intermediate\.dense': 4-bit group 64 .* one gptq config holds one setting"),
])
def test_refuses_what_the_layout_cannot_hold(tmp_path, minilm, recipe, layout, message):
    qg = apply_recipe(minilm.graph, load_recipe(recipe), minilm.calibration)
    with pytest.raises(ce.ExportError, match=message) as info:
        ce.export_checkpoint(qg, layout, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_hf_column_order_matches_rope_conventions():
    """Scores of GGUF-ordered q/k under adjacent-pair RoPE equal those of the HF-ordered columns under
    Hugging Face's half-split RoPE (rotate_half)."""
    rng = np.random.default_rng(3)
    heads, dh, k, seq = 3, 8, 16, 5
    x = rng.standard_normal((seq, k))
    wq, wk = rng.standard_normal((k, heads * dh)), rng.standard_normal((k, heads * dh))

    def gguf_scores(w1, w2):
        q = rope((x @ w1).reshape(seq, heads, dh).transpose(1, 0, 2), base=10000.0)
        kk = rope((x @ w2).reshape(seq, heads, dh).transpose(1, 0, 2), base=10000.0)
        return q @ kk.transpose(0, 2, 1)

    def hf_rope(t):
        inv = 10000.0 ** (-np.arange(0, dh, 2) / dh)
        ang = np.arange(seq)[:, None] * inv[None, :]
        cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))
        rot = np.concatenate([-t[..., dh // 2:], t[..., : dh // 2]], -1)
        return t * cos + rot * sin

    order = ce.hf_column_order(heads, heads * dh)
    q = hf_rope((x @ wq[:, order]).reshape(seq, heads, dh).transpose(1, 0, 2))
    kk = hf_rope((x @ wk[:, order]).reshape(seq, heads, dh).transpose(1, 0, 2))
    assert np.allclose(q @ kk.transpose(0, 2, 1), gguf_scores(wq, wk), rtol=1e-12, atol=1e-12)
    assert not np.allclose(hf_rope((x @ wq).reshape(seq, heads, dh).transpose(1, 0, 2)) @
                           hf_rope((x @ wk).reshape(seq, heads, dh).transpose(1, 0, 2)).transpose(0, 2, 1),
                           gguf_scores(wq, wk))


@pytest.mark.slow
def test_smollm2_export_round_trip(tmp_path):
    from hwsim.models.run import smollm2_task

    task = smollm2_task(chunks=1, tokens=16, layers=1, calib_chunks=1)
    recipe = load_recipe({"recipe": [{"rtn": {"weights": "int4", "granularity": "group", "group_size": 64,
                                              "activations": "int8"}}],
                          "overrides": [{"match": "output", "rtn": {"weights": "float"}}]})
    qg = apply_recipe(task.graph, recipe, task.calibration)
    ce.export_checkpoint(qg, "pack-quantized", tmp_path, recipe=recipe)
    tensors, _ = read_safetensors(tmp_path / "model.safetensors")
    assert "model.layers.0.self_attn.q_proj.weight_packed" in tensors and "lm_head.weight_packed" not in tensors
    assert tensors["model.embed_tokens.weight"].shape == (49152, 576)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["tie_word_embeddings"] is True and cfg["num_key_value_heads"] == 3
    back = ce.import_checkpoint(tmp_path, qg)
    feeds = task.evaluation[0]
    out = qg.outputs[0]
    assert np.array_equal(IntegerExecutor(back).run(feeds)[out],
                          IntegerExecutor(ce.stored_graph(qg, "pack-quantized")).run(feeds)[out])


def test_three_bit_gptq_export(tmp_path, minilm):
    recipe = load_recipe({"recipe": [{"gptq": {"weights": "int3", "granularity": "group", "group_size": 128}},
                                     {"rtn": {"weights": "keep", "activations": "int8"}}]})
    qg = apply_recipe(minilm.graph, recipe, minilm.calibration)
    ce.export_checkpoint(qg, "gptq", tmp_path, recipe=recipe)
    tensors, _ = read_safetensors(tmp_path / "model.safetensors")
    assert tensors["encoder.layer.0.output.dense.qweight"].shape == (1536 // 32 * 3, 384)
    assert tensors["encoder.layer.0.output.dense.qzeros"].shape == (12, 384 // 32 * 3)
    assert json.loads((tmp_path / "config.json").read_text())["quantization_config"]["bits"] == 3
    back = ce.import_checkpoint(tmp_path, qg)
    feeds = minilm.evaluation[0]
    assert np.array_equal(IntegerExecutor(back).run(feeds)["pooled"],
                          IntegerExecutor(ce.stored_graph(qg, "gptq")).run(feeds)["pooled"])
    with pytest.raises(ce.ExportError, match=r"has 3 bits, not one of \(2, 4, 8\); a pack-quantized checkpoint"):
        ce.export_checkpoint(qg, "pack-quantized", tmp_path / "ct")


@pytest.mark.slow
def test_smollm2_recipe_bias_refused(tmp_path):
    """GOM's data shift adds biases to Llama linears, which have none: refused before anything is written."""
    from hwsim.models.run import smollm2_task

    task = smollm2_task(chunks=1, tokens=16, layers=1, calib_chunks=1)
    recipe = load_recipe({"recipe": [{"gom": {}}, {"rtn": {"weights": "int8", "activations": "int8"}}]})
    qg = apply_recipe(task.graph, recipe, task.calibration)
    with pytest.raises(ce.ExportError, match=r"linear 'blk\.0\.attn_q' has a bias 'blk\.0\.attn_q\.shift_bias' "
                                             r"added by the recipe; the Llama checkpoint has no bias for it"):
        ce.export_checkpoint(qg, "gptq", tmp_path / "out")
    assert not (tmp_path / "out").exists()
