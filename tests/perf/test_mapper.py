"""The tiling/loop-order mapper: physical bounds, DRAM reuse against a loop-nest replay, buffer fit."""

from itertools import product

import numpy as np
import pytest

from hwsim.perf.api import simulate
from hwsim.perf.arch import arch_from_dict
from hwsim.perf.mapper import INDEXED_BY, ORDERS, best_mapping, dram_factor
from hwsim.perf.timing import OpCounts, mapper_problem
from hwsim.perf.workload import GemmOp


def _arch(rows=32, cols=32, dataflow="ws", bw=32.0, buffers=None, **over):
    base = {"array": {"rows": rows, "cols": cols, "dataflow": dataflow},
            "dram": {"bandwidth_bytes_per_cycle": bw, "latency_cycles": 100},
            "requant": {"lanes": cols}}
    if buffers is not None:
        base["buffers"] = buffers
    base.update(over)
    return arch_from_dict(base)


def _bounds(c: OpCounts, arch) -> tuple[float, float]:
    """(compute bound, DRAM bound) in cycles: every MAC once on every PE, every operand moved once."""
    compute = c.macs / (arch.array.rows * arch.array.cols)
    dram = (c.m * c.k * c.ifmap_bits + c.k * c.n * c.weight_bits + c.m * c.n * c.out_bits) * c.count / 8
    return compute, dram / arch.dram.bandwidth_bytes_per_cycle


ARCHS = [_arch(dataflow=df) for df in ("ws", "os", "is")] + [
    _arch(128, 128, "ws", 64.0, {"unified": {"size_kib": 1024, "bandwidth_words_per_cycle": 1024}}),
    _arch(16, 8, "os", 4.0, {"ifmap": {"size_kib": 8}, "weight": {"size_kib": 8}, "ofmap": {"size_kib": 4}}),
]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a.array.rows}x{a.array.cols}-{a.array.dataflow}")
def test_latency_never_beats_compute_or_dram_bound(arch):
    rng = np.random.default_rng(7)
    shapes = [tuple(int(x) for x in rng.integers(1, 3000, size=3)) for _ in range(12)]
    shapes += [(1, 4096, 4096), (2048, 128, 2048), (4096, 4096, 4096)]
    for m, k, n in shapes:
        c = simulate([GemmOp(name="g", m=m, k=k, n=n)], arch).layers[0].counts
        assert c.total_cycles >= max(_bounds(c, arch)), (m, k, n, c.mapping)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("size", [1024, 2048, 4096])
def test_large_square_gemms_reach_the_bound(dataflow, size):
    """With buffers that allow the reuse, large square GEMMs run within 2 % of max(compute, DRAM)."""
    for arch in (_arch(dataflow=dataflow),
                 _arch(128, 128, dataflow, 64.0, {"unified": {"size_kib": 4096, "bandwidth_words_per_cycle": 1e6}})):
        c = simulate([GemmOp(name="g", m=size, k=size, n=size)], arch).layers[0].counts
        assert c.total_cycles <= 1.02 * max(_bounds(c, arch)), c.mapping
        assert c.dram_psum_writes == 0


def _replay(order: str, dims: dict, tiles: dict) -> dict:
    """Walk the DRAM-level loop nest; fetch a tile when it is not the one held; count output visits."""
    trips = {d: -(-dims[d] // tiles[d]) for d in "mkn"}
    held = {"ifmap": None, "weight": None}
    words = {"ifmap": 0, "weight": 0}
    visits: dict = {}
    last_out = None
    for idx in product(*(range(trips[d]) for d in order)):
        at = dict(zip(order, idx, strict=True))
        for operand, (d1, d2) in (("ifmap", "mk"), ("weight", "kn")):
            key = (at[d1], at[d2])
            if held[operand] != key:
                held[operand] = key
                words[operand] += (min(tiles[d1], dims[d1] - at[d1] * tiles[d1])
                                   * min(tiles[d2], dims[d2] - at[d2] * tiles[d2]))
        out = (at["m"], at["n"])
        if out != last_out:
            visits[out] = visits.get(out, 0) + 1
            last_out = out
    return {"ifmap": words["ifmap"], "weight": words["weight"], "out_visits": max(visits.values())}


@pytest.mark.parametrize("order", ORDERS)
def test_dram_reuse_rule_matches_a_loop_nest_replay(order):
    rng = np.random.default_rng(3)
    for _ in range(20):
        dims = {d: int(rng.integers(1, 60)) for d in "mkn"}
        tiles = {d: int(rng.integers(1, dims[d] + 1)) for d in "mkn"}
        trips = {d: -(-dims[d] // tiles[d]) for d in "mkn"}
        seen = _replay(order, dims, tiles)
        assert seen["ifmap"] == dims["m"] * dims["k"] * dram_factor(order, trips, INDEXED_BY["ifmap"])
        assert seen["weight"] == dims["k"] * dims["n"] * dram_factor(order, trips, INDEXED_BY["weight"])
        assert seen["out_visits"] == dram_factor(order, trips, INDEXED_BY["ofmap"])


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a.array.rows}x{a.array.cols}-{a.array.dataflow}")
def test_chosen_tile_fits_its_buffers(arch):
    for m, k, n in ((512, 768, 3072), (2048, 4096, 11008), (7, 9, 100)):
        op = GemmOp(name="g", m=m, k=k, n=n)
        c = simulate([op], arch).layers[0].counts
        mp = best_mapping(mapper_problem(arch, op, c))
        assert mp.fits and c.mapping == mp.describe()
        caps = [arch.buffers.of(x).size_bits for x in ("ifmap", "weight", "ofmap")]
        if arch.buffers.unified:
            assert sum(mp.footprint_bits) <= sum(caps)
        else:
            assert all(f <= cap for f, cap in zip(mp.footprint_bits, caps, strict=True))


def test_objectives_trade_latency_for_energy():
    op = GemmOp(name="g", m=1536, k=2048, n=2560)
    base = dict(rows=64, cols=64, bw=16.0, buffers={"ifmap": {"size_kib": 64}, "weight": {"size_kib": 64},
                                                      "ofmap": {"size_kib": 64}})
    res = {obj: simulate([op], _arch(**base, timing={"objective": obj})).layers[0] for obj in ("latency", "energy")}
    assert res["latency"].counts.total_cycles <= res["energy"].counts.total_cycles
    assert res["energy"].energy.total <= res["latency"].energy.total


def test_mapper_beats_all_or_nothing_reuse_on_llm_prefill():
    """The issue's case: a 2048-token projection on 128x128 / 1 MiB / 64 B per cycle."""
    arch = _arch(128, 128, "ws", 64.0, {"unified": {"size_kib": 1024, "bandwidth_words_per_cycle": 1024}})
    op = [GemmOp(name="q_proj", m=2048, k=4096, n=4096)]
    mapped = simulate(op, arch).layers[0]
    folds = simulate(op, arch.with_(mapper="folds")).layers[0]
    assert mapped.counts.dram_psum_writes == 0 < folds.counts.dram_psum_writes
    assert mapped.counts.total_cycles < folds.counts.total_cycles / 4
    assert mapped.counts.total_cycles <= 1.5 * max(_bounds(mapped.counts, arch))


def test_spills_only_when_unavoidable_and_then_warned():
    op = [GemmOp(name="fc", m=96, k=200, n=72)]
    roomy = simulate(op, _arch(16, 16, buffers={"ofmap": {"size_kib": 2}}))
    assert roomy.layers[0].counts.dram_psum_writes == 0 and roomy.warnings == []
    # 16 partial sums of 32 bits fill 64 bytes: no output tile of a split K reduction fits
    tight = simulate(op, _arch(16, 16, buffers={"ifmap": {"size_kib": 0.25}, "weight": {"size_kib": 0.25},
                                                "ofmap": {"size_kib": 0.125}}))
    c = tight.layers[0].counts
    assert c.dram_psum_writes > 0
    (line,) = [w for w in tight.warnings if "partial sums" in w]
    psum_pj = 2 * c.dram_psum_writes * 32 * tight.layers[0].energy.dram_ofmap / (
        c.dram_ofmap_writes * 8 + 2 * c.dram_psum_writes * 32)
    assert f"{100 * psum_pj / tight.layers[0].energy.total:.1f} %" in line and "'fc'" in line


def test_resolved_arch_and_narrow_unit_warning_in_summary():
    arch = _arch(128, 128, vector={"lanes": 16})
    s = simulate([GemmOp(name="g", m=64, k=64, n=64)], arch).summary()
    assert s["architecture"]["vector"]["lanes"] == 16 and s["architecture"]["layernorm"]["lanes"] == 16
    assert s["architecture"]["timing_mode"] == "pipelined" and s["architecture"]["mapper"] == "search"
    assert any("arch.vector.lanes = 16 is 8x narrower" in w for w in s["warnings"])
    assert not any("requant" in w for w in s["warnings"])  # requant.lanes = 128 here


def test_resolved_arch_logged_at_debug(caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="hwsim.perf"):
        simulate([GemmOp(name="g", m=8, k=8, n=8)], _arch(16, 16))
    text = caplog.text
    assert "resolved architecture" in text and "array.rows = 16" in text and "vector.lanes = 16" in text
    assert "timing_mode = 'pipelined'" in text and "mapper_objective = 'latency'" in text


@pytest.mark.parametrize("objective", ["latency", "energy", "edp"])
def test_vectorised_search_equals_the_plain_loop(objective):
    from dataclasses import replace

    from hwsim.perf.mapper import best_mapping_reference

    rng = np.random.default_rng(11)
    archs = ARCHS + [_arch(8, 8, "ws", 2.0, {"ifmap": {"size_kib": 0.0625}, "weight": {"size_kib": 0.0625},
                                             "ofmap": {"size_kib": 0.0625}})]  # nothing fits: fallback
    for arch in archs:
        for _ in range(4):
            op = GemmOp(name="g", m=int(rng.integers(1, 700)), k=int(rng.integers(1, 700)),
                        n=int(rng.integers(1, 700)))
            c = simulate([op], arch).layers[0].counts
            p = replace(mapper_problem(arch, op, c), objective=objective)
            assert best_mapping(p) == best_mapping_reference(p), (arch.array, op)


def test_fused_epilogue_options_in_both_searches():
    """Epilogue tile space, no output write and restricted loop orders: vectorised == plain loop."""
    from dataclasses import replace

    from hwsim.perf.mapper import best_mapping_reference

    arch = ARCHS[3]
    op = GemmOp(name="g", m=2048, k=4096, n=4096)
    c = simulate([op], arch).layers[0].counts
    base = mapper_problem(arch, op, c)
    for extra in (dict(epilogue_bits=8.0), dict(out_to_dram=False), dict(orders=("nmk", "nkm")),
                  dict(epilogue_bits=16.0, out_to_dram=False, orders=("nmk",))):
        p = replace(base, **extra)
        fast, ref = best_mapping(p), best_mapping_reference(p)
        assert (fast.order, fast.tm, fast.tk, fast.tn) == (ref.order, ref.tm, ref.tk, ref.tn), extra
        assert fast.order in p.orders
        if "epilogue_bits" in extra:
            assert fast.footprint_bits[2] >= fast.tm * fast.tn * extra["epilogue_bits"]
        if extra.get("out_to_dram") is False:
            assert fast.dram_ofmap_writes == 0
