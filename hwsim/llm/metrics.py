"""Per-phase LLM metrics of a simulated prefill or decode step: rates, bounds and roofline.

For a step that processes ``tokens`` tokens (prefill: ``batch * seq_len``; decode: ``batch``) in
``latency`` seconds with energy ``E``::

    tokens_per_s  = tokens / latency          j_per_token = E / tokens
    ttft_s        = latency of the prefill step (its lm_head yields the first token; prefill only)
    compute bound = MACs / (rows * cols) cycles: every MAC of the graph, the full S x T attention
                    scores and context included (what a fused causal attention skips counts too)
    causal bound  = (MACs - causal_masked_macs) / (rows * cols): without the MACs of the (query, key)
                    pairs a causal mask hides (element-exact; a tiled kernel skips whole tiles only)
    DRAM bound    = (weights + KV-cache reads + KV-cache writes) bytes / DRAM bytes per cycle
                    weights: every weight GEMM's K*N once; KV reads: the cached B operand of every
                    attention matmul; KV writes: the appended keys/values (each in its own format)
    roofline      operational intensity I = 2*MACs / DRAM bytes moved (ops/byte); attainable
                  = min(peak, I * DRAM bandwidth); ridge point = peak / bandwidth

with ``peak = 2 * rows * cols * clock`` ops/s. ``latency_over_*_bound`` compare the simulated latency
with each bound (>= 1 by construction of the model; the mapper test checks it per GEMM).
"""

from __future__ import annotations


def _bound_bytes(result) -> dict[str, float]:
    weights = kv_read = kv_write = 0.0
    for c in (p for layer in result.layers for p in (layer.counts.parts or (layer.counts,))):
        if c.kind in ("gemm", "conv") and c.macs:
            b_bytes = c.k * c.n * c.count * c.weight_bits / 8
            if c.name.endswith((".scores", ".context")):
                kv_read += b_bytes
            else:
                weights += b_bytes
        elif c.kind == "kv_write":
            kv_write += c.dram_bytes()
        elif c.kind == "embedding":
            weights += c.dram_bytes()
    return {"weights": weights, "kv_read": kv_read, "kv_write": kv_write}


def causal_masked_macs(graph) -> int:
    """MACs of the score and context GEMMs on (query, key) pairs that causal softmaxes mask."""
    from hwsim.perf.flash_attention import masked_pairs

    prods, cons = graph.producers(), graph.consumers()
    total = 0
    for op in graph.ops:
        if op.kind != "softmax" or not op.attrs.get("causal", False):
            continue
        *lead, rows, span = graph.tensors[op.inputs[0]].shape
        d = graph.tensors[prods[op.inputs[0]].inputs[0]].shape[-1]
        dv = graph.tensors[cons[op.outputs[0]][0].outputs[0]].shape[-1]
        products = 1
        for x in lead:
            products *= x
        total += masked_pairs(rows, span, rows // int(op.attrs.get("query_groups", 1))) * products * (d + dv)
    return total


def phase_metrics(result, arch, *, phase: str, tokens: int, masked_macs: int = 0) -> dict:
    """The ``llm`` section of ``summary.json`` for one simulated phase (module docstring);
    ``masked_macs`` from :func:`causal_masked_macs`."""
    s = result.summary()
    cycles, clock_hz = s["total_cycles"], arch.clock_mhz * 1e6
    latency_s = cycles / clock_hz
    energy_j = s["energy_total_pj"] * 1e-12
    pes = arch.array.rows * arch.array.cols
    bw = arch.dram.bandwidth_bytes_per_cycle
    traffic = _bound_bytes(result)
    full_macs = s["macs"] + s["skipped_macs"]
    compute_bound = full_macs / pes
    causal_bound = (full_macs - masked_macs) / pes
    dram_bound = sum(traffic.values()) / bw
    dram_moved = sum(layer.counts.dram_bytes() for layer in result.layers)
    peak_ops = 2 * pes * clock_hz
    intensity = 2 * s["macs"] / dram_moved if dram_moved else float("inf")
    out = {
        "phase": phase, "tokens": tokens, "latency_s": latency_s,
        "tokens_per_s": tokens / latency_s if latency_s else 0.0,
        "j_per_token": energy_j / tokens, "ttft_s": latency_s if phase == "prefill" else None,
        "compute_bound_cycles": compute_bound, "causal_compute_bound_cycles": causal_bound,
        "skipped_macs": s["skipped_macs"], "causal_masked_macs": masked_macs, "dram_bound_cycles": dram_bound,
        "dram_bound_bytes": traffic,
        "latency_over_compute_bound": cycles / compute_bound if compute_bound else None,
        "latency_over_causal_compute_bound": cycles / causal_bound if causal_bound else None,
        "latency_over_dram_bound": cycles / dram_bound if dram_bound else None,
        "roofline": {
            "peak_tops": peak_ops * 1e-12, "dram_gb_per_s": bw * clock_hz * 1e-9,
            "dram_bytes": dram_moved, "operational_intensity_ops_per_byte": intensity,
            "ridge_point_ops_per_byte": peak_ops / (bw * clock_hz),
            "attainable_tops": min(peak_ops, intensity * bw * clock_hz) * 1e-12,
            "achieved_tops": 2 * s["macs"] / latency_s * 1e-12 if latency_s else 0.0,
        },
    }
    return out


def metrics_text(m: dict) -> str:
    """A few lines for the terminal."""
    rf = m["roofline"]
    lines = [f"  {m['phase']}: {m['tokens']} tokens in {m['latency_s'] * 1e3:,.3f} ms  "
             f"{m['tokens_per_s']:,.1f} tokens/s  {m['j_per_token'] * 1e3:,.3f} mJ/token"
             + (f"  TTFT {m['ttft_s'] * 1e3:,.3f} ms" if m["ttft_s"] is not None else "")]
    lines.append(f"  bounds: compute {m['compute_bound_cycles']:,.0f} cycles (latency x"
                 f"{m['latency_over_compute_bound']:.3f}), weights+KV DRAM {m['dram_bound_cycles']:,.0f} cycles "
                 f"(latency x{m['latency_over_dram_bound']:.3f})")
    if m["causal_masked_macs"]:
        lines.append(f"  causal bound: {m['causal_compute_bound_cycles']:,.0f} cycles without the "
                     f"{m['causal_masked_macs']:,} masked MACs (latency "
                     f"x{m['latency_over_causal_compute_bound']:.3f}); {m['skipped_macs']:,} MACs skipped in "
                     f"masked tiles")
    lines.append(f"  roofline: {rf['operational_intensity_ops_per_byte']:,.1f} ops/B (ridge "
                 f"{rf['ridge_point_ops_per_byte']:,.1f}), attainable {rf['attainable_tops']:,.2f} TOPS, "
                 f"achieved {rf['achieved_tops']:,.2f} of {rf['peak_tops']:,.2f} TOPS peak")
    return "\n".join(lines)
