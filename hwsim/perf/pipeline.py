"""Latency of a fused group: its units work concurrently on a pipeline of SRAM tiles.

A fused group (:mod:`hwsim.perf.fusion`) streams ``tiles`` tiles through the units it uses: the
array, the vector unit (element-wise work, epilogues, KV-cache writes), the requant unit, the norm
unit, the SRAM ports and the DRAM channel. With ``busy_u`` the cycles unit ``u`` needs for the whole
group and ``b`` the busiest unit, the group takes::

    total = busy_b + sum_{u != b, u != sram} busy_u / tiles + latencies
    busy_array   = sum of the GEMM parts' array cycles (their own preload and skew included)
    busy_vector  = (adds + mults + quant and epilogue ops) / vector.ops_per_cycle
                   + KV-cache elements / vector.lanes  (+ fixed-point unit cycles)
    busy_requant = requant elements / requant.lanes
    busy_norm    = the norm parts' cycles without the unit latency
    busy_sram    = max over the three ports of words / port words per cycle
    busy_dram    = DRAM bytes / dram.bandwidth_bytes_per_cycle
    latencies    = dram.latency (if DRAM is used) + the latency of every unit used

i.e. the bottleneck runs back to back and every other unit adds one tile's worth of its work (the
pipeline's fill and drain: a tile passes DRAM load, array, requant and vector unit in turn). The SRAM
ports serve those stages while they run, so they add no stage of their own. Each busy term is the
parts' own count, so the total is never below the group's compute bound (MACs / PEs) or its
DRAM-traffic bound (bytes / bandwidth).
"""

from __future__ import annotations

import math

from hwsim.perf.arch import ArchSpec


def unit_busy(arch: ArchSpec, parts) -> dict[str, float]:
    """Cycles each unit is busy over all ``parts`` (:class:`~hwsim.perf.timing.OpCounts`; docstring)."""
    vec, rq, ln, bufs = arch.vector, arch.requant, arch.layernorm, arch.buffers
    busy = dict.fromkeys(("array", "vector", "requant", "norm", "sram", "dram"), 0.0)
    words = [0.0, 0.0, 0.0]
    for c in parts:
        if c.macs:
            busy["array"] += c.compute_cycles
        elif c.norm_elements:
            busy["norm"] += c.compute_cycles - ln.latency
        elif c.int_units:
            busy["vector"] += c.compute_cycles - vec.latency
        elif c.kind in ("kv_write", "embedding"):
            busy["vector"] += c.elements / vec.lanes
        busy["vector"] += (c.vector_adds + c.vector_mults + c.quant_adds + c.quant_mults + c.epilogue_adds
                           + c.epilogue_mults) / vec.throughput if not c.int_units else 0.0
        busy["requant"] += c.requant_elements / rq.lanes
        busy["dram"] += c.dram_bytes() / arch.dram.bandwidth_bytes_per_cycle
        words[0] += c.sram_ifmap_reads
        words[1] += c.sram_weight_reads
        words[2] += c.sram_ofmap_writes + c.sram_ofmap_reads
    busy["sram"] = max(words[0] / bufs.ifmap.bandwidth_words_per_cycle,
                       words[1] / bufs.weight.bandwidth_words_per_cycle,
                       words[2] / bufs.ofmap.bandwidth_words_per_cycle)
    return busy


def pipeline_cycles(arch: ArchSpec, parts, tiles: int) -> tuple[int, int]:
    """``(total, compute)`` cycles of a fused group of ``parts`` over ``tiles`` tiles (docstring).

    ``compute`` is the busiest compute unit's (array, vector, requant, norm) cycles; the rest of
    ``total`` is reported as stall.
    """
    busy = unit_busy(arch, parts)
    tiles = max(1, tiles)
    bottleneck = max(busy, key=busy.get)
    total = busy[bottleneck] + sum(v for u, v in busy.items() if u not in (bottleneck, "sram")) / tiles
    latency = {"dram": arch.dram.latency_cycles, "vector": arch.vector.latency, "requant": arch.requant.latency,
               "norm": arch.layernorm.latency}
    total += sum(lat for u, lat in latency.items() if busy[u] > 0)
    compute = max(busy["array"], busy["vector"], busy["requant"], busy["norm"])
    total_i = math.ceil(total - 1e-6)
    compute_i = min(math.ceil(compute - 1e-6), total_i)
    return total_i, compute_i
