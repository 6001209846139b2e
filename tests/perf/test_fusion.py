"""Operator fusion (hwsim.perf.fusion): physical bounds, never slower than unfused, MACs and softmax work
conserved, refusal when tiles do not fit, on/off switch and the per-op report."""

from dataclasses import replace

import pytest

from hwsim.llm.config import load_llm_config
from hwsim.llm.graph import build_llm_graph
from hwsim.llm.metrics import causal_masked_macs
from hwsim.models.minilm import MINILM_L6, build_graph
from hwsim.perf.api import simulate
from hwsim.perf.arch import arch_from_dict, load_arch
from hwsim.perf.flash_attention import masked_pairs
from hwsim.perf.fusion import fuse_workload
from hwsim.perf.workload import VECTOR_RECIPES

LLM_ARCH = "examples/arch/llm_int8_128x128_ws_1mib.yaml"


def _llama(phase="prefill", seq_len=1024, kv_len=1024, layers=2):
    cfg = replace(load_llm_config("llama-2-7b"), layers=layers)
    return build_llm_graph(cfg, phase, seq_len=seq_len, kv_len=kv_len)


def _small_arch(**over):
    base = {"array": {"rows": 32, "cols": 32, "dataflow": "ws"}, "dram": {"bandwidth_bytes_per_cycle": 16},
            "buffers": {"unified": {"size_kib": 256, "bandwidth_words_per_cycle": 256}},
            "requant": {"lanes": 32}, "layernorm": {"lanes": 32}, "vector": {"lanes": 32}}
    base.update(over)
    return arch_from_dict(base)


def _off(arch):
    return arch.with_(fusion=False)


CASES = [
    ("llama-prefill", lambda: _llama(), lambda: load_arch(LLM_ARCH)),
    ("llama-decode", lambda: _llama("decode"), lambda: load_arch(LLM_ARCH)),
    ("llama3-gqa-prefill-b2", lambda: build_llm_graph(replace(load_llm_config("llama-3-8b"), layers=2), "prefill",
                                                      batch=2, seq_len=512), lambda: load_arch(LLM_ARCH)),
    ("minilm", lambda: build_graph(MINILM_L6, None, 1, 128), lambda: _small_arch()),
    ("smollm-prefill-small-sram", lambda: build_llm_graph(replace(load_llm_config("smollm2-135m"), layers=2),
                                                           "prefill", seq_len=256),
     lambda: _small_arch(buffers={"unified": {"size_kib": 64, "bandwidth_words_per_cycle": 256}})),
]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def runs(request):
    _, graph, arch = request.param
    g, a = graph(), arch()
    return g, a, simulate(g, a), simulate(g, _off(a))


def test_every_row_respects_its_compute_and_dram_bounds(runs):
    _, arch, fused, _ = runs
    pes, bw = arch.array.rows * arch.array.cols, arch.dram.bandwidth_bytes_per_cycle
    for layer in fused.layers:
        c = layer.counts
        assert c.total_cycles >= c.macs / pes - 1e-9, c.name
        assert c.total_cycles >= c.dram_bytes() / bw - 1e-6, c.name
        assert c.total_cycles >= c.compute_cycles >= 0 and c.stall_cycles >= 0, c.name
    s = fused.summary()
    dram = sum(layer.counts.dram_bytes() for layer in fused.layers)
    assert s["total_cycles"] >= max(s["macs"] / pes, dram / bw)


def test_fused_is_never_slower_and_moves_less_dram(runs):
    _, _, fused, unfused = runs
    assert fused.summary()["total_cycles"] <= unfused.summary()["total_cycles"]
    assert sum(x.counts.dram_bytes() for x in fused.layers) <= sum(x.counts.dram_bytes() for x in unfused.layers)
    by_name = {x.counts.name: x.counts for x in unfused.layers}
    for layer in fused.layers:
        c = layer.counts
        if c.fused_ops:
            members = c.fused_ops.split("+")
            alone = sum(by_name[m].total_cycles for m in members if m in by_name)
            assert c.total_cycles <= alone, c.name


def test_macs_and_mac_energy_are_conserved(runs):
    """Computed + causally skipped MACs = the graph's; only masked (query, key) pairs are skipped."""
    graph, _, fused, unfused = runs
    s = fused.summary()
    assert s["macs"] + s["skipped_macs"] == unfused.summary()["macs"] == graph.total_macs
    assert unfused.summary()["skipped_macs"] == 0
    assert 0 <= s["skipped_macs"] <= causal_masked_macs(graph)
    if s["skipped_macs"]:
        assert fused.energy.mac < unfused.energy.mac and fused.energy.rf < unfused.energy.rf
    else:
        assert fused.energy.mac == pytest.approx(unfused.energy.mac, rel=1e-12)
        assert fused.energy.rf == pytest.approx(unfused.energy.rf, rel=1e-12)
    for layer in fused.layers:
        if layer.counts.parts:
            assert layer.counts.macs == sum(p.macs for p in layer.counts.parts)
            assert layer.counts.skipped_macs == sum(p.skipped_macs for p in layer.counts.parts)


def _visible_softmax_elements(graph) -> int:
    total = 0
    for op in graph.ops:
        if op.kind == "softmax":
            *_, rows, span = graph.tensors[op.inputs[0]].shape
            size = graph.tensors[op.outputs[0]].size
            if op.attrs.get("causal", False):
                period = rows // int(op.attrs.get("query_groups", 1))
                size -= masked_pairs(rows, span, period) * (size // (rows * span))
            total += size
    return total


def test_every_softmax_element_is_charged_on_the_vector_unit(runs):
    """Every score the causal mask leaves visible is charged (masked tiles may be skipped)."""
    graph, _, fused, _ = runs
    adds, _ = VECTOR_RECIPES["softmax"]
    charged = [p for x in fused.layers for p in (x.counts.parts or (x.counts,)) if p.kind == "softmax"]
    assert sum(p.vector_adds for p in charged) >= adds * _visible_softmax_elements(graph)
    assert fused.energy.vector > 0


def test_latency_respects_the_causal_compute_bound(runs):
    graph, arch, fused, _ = runs
    pes = arch.array.rows * arch.array.cols
    assert fused.summary()["total_cycles"] >= (graph.total_macs - causal_masked_macs(graph)) / pes


def test_llama_prefill_fuses_attention_and_epilogues():
    g = _llama(layers=1, seq_len=2048)
    _, plan = fuse_workload(g, load_arch(LLM_ARCH))
    d = plan.to_dict()
    kinds = {x["kind"] for x in d["groups"]}
    assert d["enabled"] and kinds == {"block", "epilogue", "rowwise"}
    block = next(x for x in d["groups"] if x["kind"] == "block")
    assert {"l0.scores", "l0.softmax", "l0.context", "l0.q_proj", "l0.k_cache_write"} <= set(block["ops"])
    assert "flash Br" in block["reason"] and "overlap" in block["reason"]
    swiglu = next(x for x in d["groups"] if "l0.swiglu" in x["ops"])
    assert swiglu["ops"] == ["l0.gate_proj", "l0.up_proj", "l0.swiglu"]
    rowwise = next(x for x in d["groups"] if x["kind"] == "rowwise")
    assert rowwise["ops"] == ["l0.attn_residual", "l0.mlp_norm"] and "still written" in rowwise["reason"]
    refused = {op: x["reason"] for x in d["refused"] for op in x["ops"]}
    assert "whole 4096-wide row" in refused["l0.attn_norm"]  # its input is the embedding gather
    assert "unfused" in refused["l0.o_proj"]  # the residual's tile space would slow the GEMM down


def test_attention_refused_when_no_tile_fits():
    arch = _small_arch(buffers={"unified": {"size_kib": 4, "bandwidth_words_per_cycle": 256}})
    g = build_llm_graph(replace(load_llm_config("smollm2-135m"), layers=1), "prefill", seq_len=256)
    _, plan = fuse_workload(g, arch)
    d = plan.to_dict()
    assert not any(x["kind"] in ("attention", "block") for x in d["groups"])
    (why,) = [x["reason"] for x in d["refused"] if "l0.softmax" in x["ops"]]
    assert "smallest FlashAttention tile" in why and "more than the 4 KiB SRAM" in why
    (why,) = [x["reason"] for x in d["refused"] if "l0.mlp_norm" in x["ops"]]
    assert "whole 576-wide row" in why and "is fused into l0.o_proj+l0.attn_residual" in why


def test_rowwise_refused_when_a_row_does_not_fit():
    from hwsim.graph import Graph

    g = Graph("add-norm")
    for name in ("x", "y", "s", "o"):
        g.add_tensor(name, (64, 4096))
    g.add_tensor("gamma", (4096,), is_weight=True)
    g.add_op("residual", "add", ["x", "y"], ["s"])
    g.add_op("norm", "rmsnorm", ["s", "gamma"], ["o"])
    _, tight = fuse_workload(g, _small_arch(buffers={"unified": {"size_kib": 16, "bandwidth_words_per_cycle": 256}}))
    (why,) = [x["reason"] for x in tight.to_dict()["refused"]]
    assert "one 4096-wide row of the add and rmsnorm needs 32.0 KiB, more than the 16 KiB SRAM" in why
    wl, roomy = fuse_workload(g, _small_arch())
    assert [x.kind for x in roomy.groups] == ["rowwise"] and len(wl.ops) == 1


def test_chosen_tiles_fit_the_sram():
    arch = load_arch(LLM_ARCH)
    _, plan = fuse_workload(_llama(layers=1, seq_len=2048), arch)
    cap = arch.buffers.ifmap.size_bits + arch.buffers.weight.size_bits + arch.buffers.ofmap.size_bits
    for group in plan.groups:
        att = group.attention if group.kind == "block" else group if group.kind == "attention" else None
        if att is not None:
            share = 1 - group.sram_split if group.kind == "block" else 1.0
            assert sum(att.tile.footprint_bits) <= share * cap


def test_switch_and_modes():
    g = _llama(layers=1, seq_len=256)
    arch = load_arch(LLM_ARCH)
    off = simulate(g, _off(arch)).summary()
    assert off["fusion"]["enabled"] is False and "fusion is false" in off["fusion"]["note"]
    ss = simulate(g, arch, mode="scalesim").summary()
    assert ss["fusion"]["enabled"] is False and "scalesim" in ss["fusion"]["note"]
    folds = simulate(g, arch.with_(mapper="folds")).summary()
    assert folds["fusion"]["enabled"] is False
    on = simulate(g, arch)
    assert on.summary()["fusion"]["enabled"] is True
    frame = on.to_frame()
    fused_rows = frame[frame["fused_ops"] != ""]
    assert len(fused_rows) and set(fused_rows["kind"]) == {"fused"}
    assert set(fused_rows["fusion"]) <= {"attention", "epilogue", "block", "rowwise"}
    assert "fusion:" in on.summary_text()


def test_arch_key_is_checked():
    from hwsim.errors import ConfigError

    assert arch_from_dict({"array": {"rows": 8, "cols": 8}, "timing": {"fusion": False}}).fusion is False
    with pytest.raises(ConfigError, match="arch.timing.fusion"):
        arch_from_dict({"array": {"rows": 8, "cols": 8}, "timing": {"fusion": "maybe"}})


def test_epilogue_refused_when_its_tile_space_does_not_fit():
    from hwsim.graph import Graph

    g = Graph("gemm-add")
    g.add_tensor("x", (1024, 64))
    g.add_tensor("w", (64, 64), is_weight=True)
    for name in ("y", "r", "z"):
        g.add_tensor(name, (1024, 64))
    g.add_op("fc", "linear", ["x", "w"], ["y"])
    g.add_op("residual", "add", ["y", "r"], ["z"])
    # the smallest split-K tile (Tm 1 x Tn 8) holds 8 x (32 + 8) = 320 bits of outputs: it fits 0.04 KiB
    # (327 bits), but not with the residual's 8 x 8 bits more
    tight = {"ifmap": {"size_kib": 0.0625}, "weight": {"size_kib": 0.125}, "ofmap": {"size_kib": 0.04}}
    arch = arch_from_dict({"array": {"rows": 8, "cols": 8, "dataflow": "ws"}, "buffers": tight})
    _, plan = fuse_workload(g, arch)
    (refused,) = plan.to_dict()["refused"]
    assert refused["ops"] == ["fc", "residual"] and "no mapping of fc fits the buffers" in refused["reason"]
    _, roomy = fuse_workload(g, arch_from_dict({"array": {"rows": 8, "cols": 8, "dataflow": "ws"}}))
    assert [x.members for x in roomy.groups] == [("fc", "residual")]
