"""SmolLM2-135M GGUF: block decoding vs the gguf package, integer GEMM path, ORI-LN on real activations."""

import numpy as np
import pytest

from hwsim.models import gguf_import as gi


@pytest.fixture(scope="module")
def model():
    return gi.GGUFModel()


def test_config_and_block_decoding(model):
    import gguf.quants

    c = model.config
    assert (c.layers, c.hidden, c.heads, c.kv_heads, c.ffn) == (30, 576, 9, 3, 1536)
    for name, fmt in (("blk.3.ffn_down.weight", "uint4"), ("token_embd.weight", "int8")):
        t = model.tensors[name]
        bq = model.quantized(name)
        assert bq.fmt == fmt
        ref = gguf.quants.dequantize(t.data, t.tensor_type)
        assert np.array_equal(bq.dequantize().astype(np.float32), ref.T)
    with pytest.raises(ValueError, match="tensor 'blk.99.attn_q.weight' not found"):
        model.quantized("blk.99.attn_q.weight")


def test_integer_path_two_layers(model):
    from hwsim.models.execute import FloatBackend, run_graph

    tok = model.tokenizer()
    ids = np.array([[model.bos_id] + tok.encode("The capital of France is Paris. The capital of Italy is").ids])
    g = gi.build_graph(model, ids.shape[1], layers=2)
    ref = run_graph(g, {"input_ids": ids}, FloatBackend())[g.outputs[0]]
    be = gi.GGUFBackend(g)
    out = run_graph(g, {"input_ids": ids}, be)[g.outputs[0]]
    assert out.shape == (1, ids.shape[1], 49152)
    cos = (out * ref).sum(-1) / np.linalg.norm(out, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert cos.min() > 0.99 and np.abs(out - ref).max() > 0  # quantized activations, same weights
    # one block-quantized linear reproduced by hand: integer codes x int8 per-token activations
    x = np.random.default_rng(0).normal(size=(3, 576)).astype(np.float32)
    op = next(o for o in g.ops if o.name == "blk.0.attn_k")
    bq = g.block_weights[op.inputs[1]]
    s_a = np.abs(x).max(1, keepdims=True) / 127
    a = np.clip(np.rint(x / s_a), -127, 127)
    w = bq.dequantize()
    np.testing.assert_allclose(be.linear(op, x, g.weights[op.inputs[1]]), (a @ w) * s_a, rtol=2e-6, atol=2e-6)
    ppl, _ = gi.perplexity(ref, ids)
    assert np.isfinite(ppl) and ppl > 1  # a 2-layer truncation is not a language model


def test_ori_ln_on_real_outlier_channels(model):
    rows = gi.norm_outlier_study(model, layers=(2,), tokens=24)
    r = rows[0]
    assert r["outlier_ratio"] > 20
    assert r["rel_error_ori"] * 5 < r["rel_error_vanilla"]
