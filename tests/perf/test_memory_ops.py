"""KV-cache writes and embedding gathers (memory ops) and per-operand formats taken from the graph."""

import pytest

from hwsim.graph import Graph, QuantSpec
from hwsim.perf.api import simulate
from hwsim.perf.graph_costs import workload_from_graph
from hwsim.perf.workload import GemmOp, MemoryOp


def _kv_graph(kv_format: str) -> Graph:
    g = Graph("kv")
    # an fp8 cache is read by fp8 queries (the PE has no int8 x e4m3 pair); others by PE-default queries
    g.add_tensor("q", (2, 4, 1, 64), quant=QuantSpec(kv_format) if kv_format.startswith("float") else None)
    g.add_tensor("k_new", (2, 4, 1, 64))
    g.add_tensor("k_cache", (2, 4, 17, 64), quant=QuantSpec(kv_format))
    g.add_tensor("k_t", (2, 4, 64, 17), quant=QuantSpec(kv_format))
    g.add_tensor("s", (2, 4, 1, 17))
    g.add_op("k_write", "kv_write", ["k_new"], ["k_cache"])
    g.add_op("k_view", "transpose", ["k_cache"], ["k_t"])
    g.add_op("scores", "matmul", ["q", "k_t"], ["s"])
    return g


@pytest.mark.parametrize(("kv_format", "bits"), [("int4", 4), ("int8", 8), ("float8_e4m3fn", 8)])
def test_kv_cache_priced_in_its_graph_format(kv_format, bits):
    wl = workload_from_graph(_kv_graph(kv_format))
    write, scores = wl.ops
    assert isinstance(write, MemoryOp) and write.elements == 2 * 4 * 64 and write.bits == bits
    assert isinstance(scores, GemmOp) and scores.b_format == kv_format
    assert scores.a_format == ("" if kv_format.startswith("int") else kv_format)
    res = simulate(wl, None)
    w, s = (layer.counts for layer in res.layers)
    assert w.dram_ofmap_writes == 512 and w.dram_bytes() == pytest.approx(512 * bits / 8)
    assert s.weight_bits == bits and s.count == 8
    assert s.dram_weight_reads == 8 * 64 * 17


def test_embedding_reads_rows_at_weight_width():
    res = simulate([MemoryOp(name="emb", kind="embedding", elements=1000)],
                   {"array": {"rows": 8, "cols": 8}, "pe": {"weight_format": "int4"}})
    c = res.layers[0].counts
    assert c.dram_ifmap_reads == 1000 and c.dram_bytes() == pytest.approx(500)
    assert res.layers[0].energy.dram_ifmap > 0


def test_unknown_memory_kind_is_an_error():
    with pytest.raises(ValueError, match="memory kind"):
        simulate([MemoryOp(name="x", kind="scatter", elements=4)], None)
