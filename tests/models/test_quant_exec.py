"""Bit-exact quantized execution of MiniLM-L6: integer chain invariants and accuracy vs float."""

import json

import numpy as np
import pytest

from hwsim.gemm import gemm
from hwsim.models import corpus, execute, minilm, qexec
from hwsim.models.run import cosine, run_model
from hwsim.requant import quantize_multiplier, requantize


@pytest.fixture(scope="module")
def setup(minilm_model):
    config, weights, tok = minilm_model

    def feeds(texts):
        ids, mask = tok(texts)
        return {"input_ids": ids, "attention_mask": mask}

    def build(f, layers=None):
        return minilm.build_graph(config, weights, *f["input_ids"].shape, layers=layers)

    amax = qexec.calibrate(build, [feeds(corpus.sentences("calib", 8))])
    return feeds, build, amax


def test_w8a8_full_model_cosine(setup):
    feeds, build, amax = setup
    ev = feeds(corpus.sentences("eval", 3))
    g = build(ev)
    ref = execute.run_graph(g, ev, execute.FloatBackend())["pooled"]
    out = execute.run_graph(g, ev, qexec.QuantBackend(qexec.get_config("w8a8"), amax, g))["pooled"]
    cos = cosine(out, ref)
    assert cos.min() >= 0.98
    assert cos.max() < 1.0 - 1e-6  # really quantized


def test_linear_is_gemm_plus_requant(setup):
    """One W8A8 linear equals hwsim.gemm + bias in the accumulator + hwsim.requantize, code for code."""
    feeds, build, amax = setup
    ev = feeds(corpus.sentences("eval", 2))
    g = build(ev, layers=1)
    be = qexec.QuantBackend(qexec.get_config("w8a8"), amax, g, smooth_alpha=None)
    env = execute.run_graph(g, ev, be, keep=True)
    op = next(o for o in g.ops if o.name.endswith("attention.self.value"))
    x, y = env[op.inputs[0]], env[op.outputs[0]]
    qw = be._weights[op.name]
    acc = gemm(x.codes.reshape(-1, 384), "int8", qw.codes, "int8")
    acc_scale = x.scale * qw.scale
    acc = acc + np.round(g.weights[op.inputs[2]] / acc_scale).astype(np.int64)
    m, sh = quantize_multiplier(acc_scale / y.scale)
    expect = requantize(acc, m, sh, 0, out_format="int8")
    from hwsim.formats import get_format

    assert np.array_equal(get_format("int8").decode(y.codes).reshape(-1, 384), expect)


@pytest.mark.parametrize("preset", ["w4a8-g32", "fp8", "mxfp4-a8"])
def test_other_formats_one_layer(setup, preset):
    feeds, build, amax = setup
    ev = feeds(corpus.sentences("eval", 2))
    g = build(ev, layers=1)
    ref = execute.run_graph(g, ev, execute.FloatBackend())["pooled"]
    out = execute.run_graph(g, ev, qexec.QuantBackend(qexec.get_config(preset), amax, g))["pooled"]
    assert cosine(out, ref).min() > 0.95


def test_unknown_preset_message():
    with pytest.raises(ValueError, match="format preset must be one of .*not 'w3a3'"):
        qexec.get_config("w3a3")


def test_run_model_writes_summary(tmp_path):
    s = run_model("minilm", None, "w8a8", 2, tmp_path, layers=1, calib_sentences=4)
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["model"] == "minilm-l6" and data["formats"] == ["w8a8"]
    assert 0.9 < data["cosine_vs_float"] <= 1.0
    assert data["total_cycles"] > 0 and data["energy_pj"]["mac"] > 0
    assert (tmp_path / "summary.md").read_text().startswith("# hwsim run")
    assert (tmp_path / "per_layer.csv").read_text().count("\n") > 10
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    assert s["cosine_vs_float"] == data["cosine_vs_float"]
    with pytest.raises(ValueError, match="model must be one of .*not 'gpt5'"):
        run_model("gpt5")


def test_checkpoint_weights_drive_execution(setup):
    """A GPTQ v1 checkpoint written from MiniLM and read back runs through the group datapath as stored."""
    from hwsim.models.run import checkpoint_round_trip

    feeds, build, amax = setup
    ev = feeds(corpus.sentences("eval", 2))
    g = build(ev, layers=1)
    cfg = qexec.get_config("gptq-w4a8")
    ckpt = checkpoint_round_trip(g, cfg)
    assert len(ckpt) == 6 and ckpt["encoder.layer.0.intermediate.dense"].codes.shape == (384, 1536)
    be = qexec.QuantBackend(cfg, amax, g, checkpoint=ckpt)
    ref = execute.run_graph(g, ev, execute.FloatBackend())["pooled"]
    out = execute.run_graph(g, ev, be)["pooled"]
    assert cosine(out, ref).min() > 0.9
    qw = be._weights["encoder.layer.0.attention.self.key"]
    q = ckpt["encoder.layer.0.attention.self.key"]
    assert qw.fmt == "uint4" and np.array_equal(qw.zero_point, q.zeros) and not be.smooth
