"""Prefill/decode graphs: shapes, grouped-query attention, KV cache in its own format, metrics and bounds."""

import pytest

from hwsim.llm.api import simulate_llm
from hwsim.llm.config import load_llm_config
from hwsim.llm.graph import build_llm_graph

ARCH = {"array": {"rows": 32, "cols": 32}, "buffers": {"unified": {"size_kib": 512}},
        "dram": {"bandwidth_bytes_per_cycle": 32}, "requant": {"lanes": 32}, "vector": {"lanes": 32},
        "layernorm": {"lanes": 32}}


def _op(g, name):
    return next(op for op in g.ops if op.name == name)


def test_decode_graph_shapes_with_grouped_query_attention():
    cfg = load_llm_config("smollm2-135m")  # 9 query heads, 3 KV heads, head dim 64
    g = build_llm_graph(cfg, "decode", batch=4, kv_len=100, kv_format="int4")
    scores = _op(g, "l0.scores")
    assert g.gemm_dims(scores) == (4 * 3, 3, 64, 101)  # (sequences x KV groups, r*S, d, T)
    assert g.gemm_dims(_op(g, "l0.context")) == (12, 3, 101, 64)
    cache = g.tensors["l0.k_cache"]
    assert cache.shape == (4, 3, 101, 64) and cache.quant.format == "int4"
    writes = [op for op in g.ops if op.kind == "kv_write"]
    assert len(writes) == 2 * cfg.layers
    assert g.tensors[writes[0].inputs[0]].shape == (4, 3, 1, 64)
    assert g.gemm_dims(_op(g, "lm_head")) == (1, 4, 576, 49152)


def test_prefill_graph_and_encoder_has_no_decode():
    g = build_llm_graph(load_llm_config("llama-3-8b"), "prefill", batch=2, seq_len=16)
    assert g.gemm_dims(_op(g, "l31.scores")) == (2 * 8, 4 * 16, 128, 16)
    assert g.gemm_dims(_op(g, "l0.gate_proj")) == (1, 32, 4096, 14336)
    assert g.gemm_dims(_op(g, "lm_head")) == (1, 2, 4096, 128256)  # last position of each sequence
    bert = build_llm_graph(load_llm_config("bert-base"), "prefill", seq_len=128)
    assert not [op for op in bert.ops if op.kind == "kv_write"]
    with pytest.raises(ValueError, match="encoder"):
        build_llm_graph(load_llm_config("bert-base"), "decode", kv_len=8)
    with pytest.raises(ValueError, match="phase must be one of"):
        build_llm_graph(load_llm_config("gpt2"), "train")


def test_kv_format_sets_the_cache_traffic():
    runs = {fmt: simulate_llm("smollm2-135m", ARCH, phase="decode", kv_len=512, kv_format=fmt).summary()["llm"]
            for fmt in ("int8", "int4")}
    assert runs["int4"]["dram_bound_bytes"]["kv_read"] == pytest.approx(runs["int8"]["dram_bound_bytes"]["kv_read"] / 2)
    assert runs["int4"]["dram_bound_bytes"]["weights"] == runs["int8"]["dram_bound_bytes"]["weights"]
    cfg = load_llm_config("smollm2-135m")
    kv_bytes = 2 * cfg.layers * cfg.kv_heads * cfg.head_dim * 513  # K and V, int8, span 512 + 1
    assert runs["int8"]["dram_bound_bytes"]["kv_read"] == pytest.approx(kv_bytes)
    with pytest.raises(ValueError, match="kv_format"):
        simulate_llm("smollm2-135m", ARCH, phase="decode", kv_format="int7x")


def test_phase_metrics_are_consistent():
    pre = simulate_llm("smollm2-135m", ARCH, phase="prefill", batch=2, seq_len=64).summary()
    m = pre["llm"]
    assert m["tokens"] == 128 and m["ttft_s"] == pytest.approx(pre["latency_us"] * 1e-6)
    assert m["tokens_per_s"] == pytest.approx(128 / m["ttft_s"])
    assert m["j_per_token"] == pytest.approx(pre["energy_total_pj"] * 1e-12 / 128)
    assert m["latency_over_compute_bound"] >= 1 and m["latency_over_dram_bound"] >= 1
    rf = m["roofline"]
    assert rf["achieved_tops"] <= rf["attainable_tops"] * (1 + 1e-9) <= rf["peak_tops"] * (1 + 1e-9)
    dec = simulate_llm("smollm2-135m", ARCH, phase="decode", batch=2, kv_len=64).summary()["llm"]
    assert dec["tokens"] == 2 and dec["ttft_s"] is None
    assert dec["latency_over_dram_bound"] >= 1
