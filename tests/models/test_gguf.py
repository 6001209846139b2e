"""SmolLM2-135M GGUF: block decoding vs the gguf package, integer GEMM path, ORI-LN on real activations."""

import numpy as np
import pytest

from hwsim.models import gguf_import as gi


@pytest.fixture(scope="module")
def model():
    return gi.shared_model()


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
    from hwsim.float_executor import FloatBackend, run_graph
    from hwsim.int_executor import IntegerExecutor
    from hwsim.models.run import nll
    from hwsim.ptq import apply_recipe
    from hwsim.qspec import QTensor

    tok = model.tokenizer()
    ids = np.array([[model.bos_id] + tok.encode("The capital of France is Paris. The capital of Italy is").ids])
    g = gi.build_graph(model, ids.shape[1], layers=2)
    ref = run_graph(g, {"input_ids": ids}, FloatBackend())[g.outputs[0]]
    q = apply_recipe(g, "q4_1-a8", [{"input_ids": ids}])
    ex = IntegerExecutor(q)
    env = ex.run({"input_ids": ids}, keep=True)
    out = env[g.outputs[0]]
    assert out.shape == (1, ids.shape[1], 49152)
    cos = (out * ref).sum(-1) / np.linalg.norm(out, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert cos.min() > 0.99 and np.abs(out - ref).max() > 0  # quantized activations, same weights
    assert ex.numerics["blk.0.ffn_down"] == "integer" and ex.numerics["blk.0.attn_norm"] == "integer"
    assert ex.numerics["blk.0.q_rope"] == "float"
    # one block-quantized linear reproduced by hand: Q4_1 codes x int8 per-token activations
    op = next(o for o in g.ops if o.name == "blk.0.ffn_down")
    spec = q.tensors[op.inputs[1]].quant
    assert spec.describe() == "uint4/group32" and spec.offset is not None
    xq = env[op.inputs[0]]
    assert isinstance(xq, QTensor) and xq.scale.shape == (1, ids.shape[1], 1)  # dynamic per-token int8
    a = get_format_int8(xq.codes)
    w = spec.codes.astype(np.int64) * np.repeat(spec.scale, 32, axis=0) + np.repeat(spec.offset, 32, axis=0)
    np.testing.assert_allclose((a * xq.scale).reshape(-1, 1536) @ w,
                               np.asarray(env[op.outputs[0]]).reshape(-1, 576), rtol=0, atol=1e-9 * np.abs(w).sum())
    nll_values, _ = nll(ref, ids)
    assert np.all(np.isfinite(nll_values))


def get_format_int8(codes):
    from hwsim.formats import get_format

    return get_format("int8").code_to_int(codes)


def test_ori_ln_on_real_outlier_channels(model):
    rows = gi.norm_outlier_study(model, layers=(2,), tokens=24)
    r = rows[0]
    assert r["outlier_ratio"] > 20
    assert r["rel_error_ori"] * 5 < r["rel_error_vanilla"]


@pytest.mark.slow
def test_smollm2_run_is_deterministic_and_prices_each_gemm_at_its_formats(tmp_path):
    """W8A8 and the mixed-precision recipe on a 1-layer SmolLM2: the same run twice gives identical numbers,
    and the per-op table prices the FFN at int4/group64 and attention at int8/channel."""
    import pandas as pd

    from hwsim.models.run import run_model

    kw = {"layers": 1, "tokens": 24, "calib_chunks": 1}
    a = run_model("smollm2", None, "w8a8,mixed-int4-ffn", 2, tmp_path / "a", **kw)
    b = run_model("smollm2", None, "w8a8,mixed-int4-ffn", 2, None, **kw)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in a["accuracy"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in b["accuracy"]]
    row = a["accuracy"][0]
    assert row["tokens"] == 2 * 23 and np.isfinite(row["perplexity_se"]) and 0 < row["next_token_agreement"] <= 1
    ops = pd.read_csv(tmp_path / "a" / "per_layer.csv", keep_default_na=False)
    mixed = ops[ops["format"] == "mixed-int4-ffn"]

    def row(op):  # the op's own row, or the fused group's whose first member (its GEMM) it is
        (hit,) = [r for _, r in mixed.iterrows() if r["name"] == op or r["fused_ops"].split("+")[0] == op]
        return hit

    def numerics(op):
        (hit,) = [r for _, r in mixed.iterrows() if r["name"] == op or op in r["fused_ops"].split("+")]
        members = hit["fused_ops"].split("+") if hit["fused_ops"] else [op]
        return hit["numerics"].split("+")[members.index(op)]

    assert row("blk.0.ffn_down")["w_format"] == "int4/group64"
    assert row("blk.0.attn_q")["w_format"] == "int8/channel"
    assert numerics("blk.0.ffn_down") == "integer" and numerics("blk.0.q_rope") == "float"
    perf = a["performance_by_format"]
    assert perf["mixed-int4-ffn"]["energy_pj"]["dram_weight"] < perf["w8a8"]["energy_pj"]["dram_weight"]
