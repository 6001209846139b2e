"""Causal block skipping in fused attention (hwsim.perf.flash_attention): the tiles it skips are exactly
those the executors' causal mask hides entirely, and the LLM metrics keep the full S x T compute bound."""

from dataclasses import replace

import numpy as np
import pytest

from hwsim.float_executor import causal_keep
from hwsim.llm.api import simulate_llm
from hwsim.llm.config import load_llm_config
from hwsim.llm.graph import build_llm_graph
from hwsim.perf.api import simulate
from hwsim.perf.arch import load_arch
from hwsim.perf.flash_attention import AttentionShape, FlashTile, _tile_classes, kept_blocks, masked_pairs
from hwsim.perf.fusion import fuse_workload

LLM_ARCH = "examples/arch/llm_int8_128x128_ws_1mib.yaml"


def _shape(rows, span, period, causal=True):
    return AttentionShape(count=1, rows=rows, d=64, span=span, dv=64, a_bits=8, kv_bits=8, p_bits=8, acc_bits=32,
                          out_bits=8, causal=causal, period=period)


@pytest.mark.parametrize(("rows", "span", "period", "br", "bc"), [
    (512, 512, 512, 128, 128),   # square prefill, whole blocks
    (500, 500, 500, 96, 128),    # remainder blocks on both axes
    (4 * 300, 300, 300, 256, 128),  # GQA: 4 stacked query groups, blocks straddling groups
    (3, 2049, 1, 1, 128),        # decode with GQA: one new position after 2048 cached keys
    (200, 456, 200, 64, 128),    # chunked prefill: 256 keys cached before 200 new queries
])
def test_skipped_tiles_are_exactly_the_fully_masked_ones(rows, span, period, br, bc):
    keep = causal_keep(rows, span, period)  # the executors' mask
    s = _shape(rows, span, period)
    kept = kept_blocks(s, br, bc)
    computed = elements = 0
    for qi, q0 in enumerate(range(0, rows, br)):
        runs = [keep[q0:q0 + br, k0:k0 + bc].any() for k0 in range(0, span, bc)]
        n = sum(runs)
        assert runs == [True] * n + [False] * (len(runs) - n)  # skipped tiles are a suffix
        assert kept[qi] == n
        computed += n
        elements += min(br, rows - q0) * min(span, n * bc)
    classes, _, charged, _ = _tile_classes(s, br, bc)
    assert sum(classes.values()) == computed
    assert charged == elements >= keep.sum()
    assert masked_pairs(rows, span, period) == (~keep).sum()


def test_non_causal_computes_every_tile():
    s = _shape(500, 500, 500, causal=False)
    assert kept_blocks(s, 96, 128).tolist() == [4] * 6
    assert _tile_classes(s, 96, 128)[2] == 500 * 500


def test_causal_skip_charges_less_and_never_beats_its_bounds():
    arch = load_arch(LLM_ARCH)
    cfg = replace(load_llm_config("llama-2-7b"), layers=1)
    g = build_llm_graph(cfg, "prefill", seq_len=2048)
    plain = g.edit()  # the same graph without the causal attribute (ops are shared: replace, never mutate)
    plain.ops = [replace(op, attrs={}) if op.kind == "softmax" else op for op in plain.ops]
    plain.freeze()
    causal, full = simulate(g, arch).summary(), simulate(plain, arch).summary()
    assert full["skipped_macs"] == 0 and causal["skipped_macs"] > 0
    assert causal["macs"] + causal["skipped_macs"] == full["macs"] == g.total_macs
    assert causal["total_cycles"] < full["total_cycles"]
    att = next(x for x in fuse_workload(g, arch)[1].groups if x.kind == "block").attention
    assert att.shape.causal and att.shape.period == 2048
    assert isinstance(att.tile, FlashTile)


def test_llm_metrics_keep_the_full_and_state_the_causal_bound():
    arch = load_arch(LLM_ARCH)
    cfg = replace(load_llm_config("llama-2-7b"), layers=2)
    r = simulate_llm(cfg, arch, phase="prefill", seq_len=1024)
    m, s = r.summary()["llm"], r.summary()
    pes = arch.array.rows * arch.array.cols
    masked = 2 * 32 * (1024 * 1023 // 2) * (128 + 128)  # layers x heads x pairs above the diagonal x (d + dv)
    assert m["causal_masked_macs"] == masked
    assert m["compute_bound_cycles"] == pytest.approx((s["macs"] + s["skipped_macs"]) / pes)
    assert m["causal_compute_bound_cycles"] == pytest.approx((s["macs"] + s["skipped_macs"] - masked) / pes)
    assert 1 < m["latency_over_causal_compute_bound"] and m["latency_over_compute_bound"] > 1
    assert "causal bound" in r.summary_text()
    d = simulate_llm(cfg, arch, phase="decode", kv_len=1024).summary()
    assert d["llm"]["causal_masked_macs"] == 0 and d["skipped_macs"] == 0


def test_decode_mask_sees_the_whole_cache():
    assert causal_keep(4, 9, 1).all()
    np.testing.assert_array_equal(causal_keep(3, 3), np.tril(np.ones((3, 3), bool)))
