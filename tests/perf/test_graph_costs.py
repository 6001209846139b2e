"""The performance model reads the graph: each op through its one cost rule, each GEMM at its own formats."""

import dataclasses
from types import SimpleNamespace

import pytest

from hwsim.errors import ConfigError
from hwsim.graph import OP_KINDS, Graph, QuantSpec
from hwsim.perf.api import simulate
from hwsim.perf.arch import DEFAULT_PE_PAIRS, DRAMConfig, arch_from_dict, default_arch
from hwsim.perf.graph_costs import COST_RULES, workload_from_graph

M, K, N = 16, 256, 64


def _mixed_graph(token_activation: bool = False) -> Graph:
    """fc_w8: int8 x int8 per channel; fc_w4: int8 x int4 g128 (group epilogue); fc_fp8: e4m3 x e4m3,
    no output spec (float epilogue). fc_w8 and fc_w4 read the same activation ``x``."""
    g = Graph("mixed")
    a8 = QuantSpec("int8")
    if token_activation:  # dynamic per-token activation scale (granularity "token" of the issue-8 QuantSpec)
        a8 = SimpleNamespace(format="int8", granularity="token", axis=None, group_size=None)
    g.add_tensor("x", (M, K), quant=a8)
    g.add_tensor("w8", (K, N), is_weight=True, quant=QuantSpec("int8", "channel", axis=1))
    g.add_tensor("w4", (K, N), is_weight=True, quant=QuantSpec("int4", "group", axis=0, group_size=128))
    g.add_tensor("y8", (M, N), quant=QuantSpec("int8"))
    g.add_tensor("y4", (M, N), quant=QuantSpec("int8"))
    g.add_tensor("x8", (M, K), quant=QuantSpec("float8_e4m3fn"))
    g.add_tensor("wf", (K, N), is_weight=True, quant=QuantSpec("float8_e4m3fn", "channel", axis=1))
    g.add_tensor("yf", (M, N))
    g.add_op("fc_w8", "linear", ["x", "w8"], ["y8"])
    g.add_op("fc_w4", "linear", ["x", "w4"], ["y4"])
    g.add_op("fc_fp8", "linear", ["x8", "wf"], ["yf"])
    return g


def _compute_bound_arch():
    """The default arch with a DRAM that never stalls: an op's stall cycles are exactly its unit extras."""
    return default_arch().with_(dram=DRAMConfig(bandwidth_bytes_per_cycle=1e12, latency_cycles=0))


def _rows(result) -> dict:
    return {row["name"]: row for row in result.to_frame().to_dict(orient="records")}


def test_each_gemm_priced_at_its_own_formats():
    rows = _rows(simulate(_mixed_graph(), None))
    assert (rows["fc_w8"]["a_format"], rows["fc_w8"]["w_format"]) == ("int8", "int8/channel")
    assert (rows["fc_w4"]["a_format"], rows["fc_w4"]["w_format"]) == ("int8", "int4/group128")
    assert (rows["fc_fp8"]["a_format"], rows["fc_fp8"]["w_format"]) == ("float8_e4m3fn", "float8_e4m3fn/channel")
    assert rows["fc_fp8"]["out_format"] == "float32/float-epilogue"
    # hand check of fc_w4 (45 nm table: int mult 3.1 pJ at 32x32 bits, int add 0.1 pJ at 32 bits; PE areas
    # 1418.7 / 1894.0 NAND2-eq for the int4xint8 / int8xint8 PEs, hwsim/data/pe_area_45nm.yaml):
    # one MAC = (3.1 * 8 * 8 / 32**2 + 0.1) * 1418.7 / 1894.0 = 0.2200 pJ
    assert rows["fc_w4"]["energy_mac_pj"] == pytest.approx(M * K * N * 0.29375 * 1418.7 / 1894.0)
    assert rows["fc_w8"]["energy_mac_pj"] == pytest.approx(M * K * N * (3.1 * 8 * 8 / 32**2 + 0.1))
    # weights are read from DRAM once: 4 bits + one 16-bit scale per group of 128
    assert rows["fc_w4"]["dram_weight_bytes"] == pytest.approx(K * N * (4 + 16 / 128) / 8) == 8448
    assert rows["fc_w8"]["dram_weight_bytes"] == K * N
    assert rows["fc_w4"]["energy_mac_pj"] < rows["fc_w8"]["energy_mac_pj"]


def test_group_and_float_epilogues_visible():
    rows = _rows(simulate(_mixed_graph(), None))
    groups = K // 128
    assert rows["fc_w4"]["epilogue_mults"] == rows["fc_w4"]["epilogue_adds"] == M * N * groups
    assert rows["fc_w4"]["requant_elements"] == M * N and rows["fc_w4"]["energy_epilogue_pj"] > 0
    assert rows["fc_w8"]["epilogue_mults"] == 0 and rows["fc_w8"]["energy_epilogue_pj"] == 0
    assert rows["fc_fp8"]["epilogue_mults"] == M * N and rows["fc_fp8"]["epilogue_adds"] == 0
    assert rows["fc_fp8"]["requant_elements"] == 0 and rows["fc_fp8"]["energy_requant_pj"] == 0
    arch = _compute_bound_arch()  # vector unit: 32 lanes, latency 4; requant: 32 lanes, latency 3
    rows = _rows(simulate(_mixed_graph(), arch))
    vector_busy = -(-2 * M * N * groups // arch.vector.lanes)
    w4 = rows["fc_w4"]
    assert w4["stall_cycles"] == arch.vector.latency + arch.requant.latency + max(0, vector_busy - w4["compute_cycles"])
    fp8 = rows["fc_fp8"]
    assert fp8["stall_cycles"] == arch.vector.latency + max(0, -(-M * N // arch.vector.lanes) - fp8["compute_cycles"])
    w8 = rows["fc_w8"]
    assert w8["stall_cycles"] == arch.requant.latency + max(0, -(-M * N // arch.requant.lanes) - w8["compute_cycles"])


def test_per_token_activation_charged_once_per_tensor():
    arch = _compute_bound_arch()
    static = _rows(simulate(_mixed_graph(), arch))
    dynamic = _rows(simulate(_mixed_graph(token_activation=True), arch))
    first, second = dynamic["fc_w8"], dynamic["fc_w4"]
    assert first["a_format"] == "int8/token"
    assert first["quant_adds"] == first["quant_mults"] == M * K  # row amax + scale multiply per element
    assert second["quant_adds"] == 0 and second["a_format"] == "int8"  # same tensor: quantized once
    pre = -(-2 * M * K // arch.vector.lanes) + arch.vector.latency  # before the array starts
    assert first["total_cycles"] - static["fc_w8"]["total_cycles"] == pre
    assert second["total_cycles"] == static["fc_w4"]["total_cycles"]
    assert first["energy_act_quant_pj"] > 0 and static["fc_w8"]["energy_act_quant_pj"] == 0


def test_unsupported_pair_is_an_error_naming_op_and_pair():
    g = Graph("bad")
    g.add_tensor("x", (4, 32), quant=QuantSpec("int8"))
    g.add_tensor("w", (32, 8), is_weight=True, quant=QuantSpec("float4_e2m1fn", "group", axis=0, group_size=16))
    g.add_tensor("y", (4, 8))
    g.add_op("proj", "linear", ["x", "w"], ["y"])
    with pytest.raises(ValueError, match=r"op 'proj'.*\(int8, float4_e2m1fn\)"):
        simulate(g, None)
    narrow = {"array": {"rows": 8, "cols": 8}, "pe": {"supported_pairs": [["int8", "int8"]]}}
    g.set_quant("w", QuantSpec("int4", "channel", axis=1))
    with pytest.raises(ValueError, match=r"op 'proj'.*\(int8, int4\)"):
        simulate(g, narrow)
    assert simulate(g, None).layers[0].counts.w_format == "int4/channel"


def test_mx_weights_use_their_element_pair_and_block_scale():
    g = Graph("mx")
    g.add_tensor("x", (8, 64), quant=QuantSpec("float8_e4m3fn"))
    g.add_tensor("w", (64, 16), is_weight=True, quant=QuantSpec("mxfp4", "block", axis=0, group_size=32))
    g.add_tensor("y", (8, 16), quant=QuantSpec("float8_e4m3fn"))
    g.add_op("fc", "linear", ["x", "w"], ["y"])
    row = _rows(simulate(g, None))["fc"]
    assert row["w_format"] == "mxfp4/block32" and row["epilogue_mults"] == 8 * 16 * 2
    assert row["dram_weight_bytes"] == pytest.approx(64 * 16 * (4 + 8 / 32) / 8)


def test_pe_supported_pairs_validated_with_key_paths():
    with pytest.raises(ConfigError) as err:
        arch_from_dict({"array": {"rows": 4, "cols": 4},
                        "pe": {"supported_pairs": [["int8", "int4"], ["int8"], ["int8", "int99x"]]}})
    assert [p.split(":")[0] for p in err.value.problems] == ["arch.pe.supported_pairs[1]",
                                                             "arch.pe.supported_pairs[2]"]
    with pytest.raises(ConfigError, match="arch.pe.supported_pairs: expected a non-empty list"):
        arch_from_dict({"array": {"rows": 4, "cols": 4}, "pe": {"supported_pairs": []}})
    assert default_arch().pe.supported_pairs == DEFAULT_PE_PAIRS
    assert default_arch().pe.supports("float8_e4m3fn", "mxfp4")  # MX weights: the element pair


def test_every_graph_op_kind_has_exactly_one_cost_rule():
    assert set(COST_RULES) == set(OP_KINDS)


def test_unknown_op_kind_is_an_error_naming_the_op():
    g = Graph("g")
    g.add_tensor("x", (4, 4))
    g.add_tensor("y", (4, 4))
    op = g.add_op("mystery", "gelu", ["x"], ["y"])
    g.ops[-1] = dataclasses.replace(op, kind="scatter")  # a kind added to the vocabulary without a cost rule
    with pytest.raises(ValueError, match=r"op 'mystery' has kind 'scatter', which has no cost rule"):
        workload_from_graph(g)


def test_vector_unit_kinds_and_embedding_rows():
    g = Graph("lm")
    g.add_tensor("ids", (2, 8), dtype="int64")
    g.add_tensor("table", (100, 16), is_weight=True, quant=QuantSpec("int8", "channel", axis=0))
    g.add_tensor("pos", (64, 16), is_weight=True, quant=QuantSpec("int8", "channel", axis=0))
    g.add_tensor("h", (2, 8, 16))
    g.add_tensor("r", (2, 8, 16))
    g.add_tensor("q", (2, 8, 16))
    g.add_tensor("p", (2, 16))
    g.add_op("embed", "embedding", ["ids", "table", "pos"], ["h"])
    g.add_op("rope", "rope", ["h"], ["r"])
    g.add_op("requant", "requant", ["r"], ["q"])
    g.add_op("pool", "mean_pool", ["q"], ["p"])
    rows = _rows(simulate(g, None))
    assert rows["embed"]["dram_ifmap_reads"] == 2 * 2 * 8 * 16  # one row of each table per token
    assert rows["embed"]["dram_ifmap_bytes"] == 2 * 2 * 8 * 16
    assert (rows["rope"]["vector_adds"], rows["rope"]["vector_mults"]) == (256, 512)
    assert rows["requant"]["requant_elements"] == 256 and rows["requant"]["vector_adds"] == 0
    assert rows["pool"]["vector_adds"] == 256  # one add per input element


def test_workload_yaml_gemms_carry_their_formats():
    from hwsim.perf.workload import workload_from_dict

    wl = workload_from_dict({"ops": [
        {"name": "ffn", "type": "gemm", "m": M, "k": K, "n": N, "a_format": "int8", "w_format": "int4",
         "group_size": 128, "out_format": "int8"},
        {"name": "plain", "type": "gemm", "m": M, "k": K, "n": N}]})
    yaml_rows = _rows(simulate(wl, None))
    graph_rows = _rows(simulate(_mixed_graph(), None))
    for key in ("w_format", "total_cycles", "energy_total_pj", "epilogue_mults", "dram_weight_bytes"):
        assert yaml_rows["ffn"][key] == graph_rows["fc_w4"][key], key
    assert yaml_rows["plain"]["w_format"] == "int8"
    with pytest.raises(ConfigError) as err:
        workload_from_dict({"ops": [{"name": "g", "type": "gemm", "m": 1, "k": 1, "n": 1, "w_format": "int99x",
                                     "group_size": 0}]})
    assert [p.split(":")[0] for p in err.value.problems] == ["workload.ops[0].w_format", "workload.ops[0].group_size"]
