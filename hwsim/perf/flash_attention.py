"""Fused attention (FlashAttention-style) on the array: tile search, SRAM footprint and counts.

``scores = Q K^T`` (per product ``rows x d`` times ``d x T``), ``P = softmax(scores)`` over ``T`` and
``context = P V`` (``rows x T`` times ``T x d``), ``count`` independent products (sequence x KV group),
run one query block of ``Br`` rows against one key/value block of ``Bc`` keys at a time, keeping the
running row max ``m``, row sum ``l`` and output accumulator ``O`` on chip (online softmax). The
``rows x T`` score and probability matrices never leave the chip.

SRAM footprint of one tile (bits; K/V and Q blocks double-buffered when ``buffers.double_buffered``)::

    ifmap  = db*Br*d*a_bits (Q)  + Br*Bc*p_bits (P)
    weight = db*Bc*d*kv_bits (K) + db*Bc*d*kv_bits (V)
    ofmap  = Br*Bc*acc_bits (S)  + Br*d*acc_bits (O) + Br*d*out_bits (finished O) + 2*Br*32 (m, l)

Each part must fit its buffer (a unified buffer: their sum). Candidates: ``Br`` as the mapper's temporal
tiles of ``rows`` (step R), ``Bc`` multiples of the array columns up to ``T``; the tile with the fewest
cycles (:mod:`hwsim.perf.pipeline`) wins, ties to the smaller footprint. No fitting tile: the attention is
not fused (:mod:`hwsim.perf.fusion` reports why).

Counts (per product; ``nq = ceil(rows/Br)``, ``nk = ceil(T/Bc)``, remainder blocks counted at their size)::

    MACs          rows*d*T (scores) + rows*T*d (context): every MAC of the unfused pair
    array cycles  per (q block, kv block) the fold model of both GEMMs: ceil(d/R)*ceil(Bc/C)*max(Br,R)
                  + ceil(Bc/R)*ceil(d/C)*max(Br,R); plus R + R + C - 2 once
    softmax       every score element at the unfused recipe (VECTOR_RECIPES['softmax']: max, subtract,
                  exp, sum) except its per-element normalising multiply, which moves to the end: one
                  reciprocal and d multiplies per row (O / l); plus the online rescale per row and kv
                  block after the first: the correction exp(m_old-m_new) (1 subtract + the exp
                  polynomial, 5 adds + 4 multiplies), l and the d outputs of O rescaled (d + 1 multiplies)
    requant       the scores into the softmax's input format and the context outputs (as unfused)
    SRAM          Q, K, V, S, P words as the fold model reads/writes them; O read-modify-written once
                  per kv block after the first (at accumulator width)
    DRAM          Q once, K and V once per query block (nq * T * d each), the context written once

Causal block skipping (``causal``: a decoder's masked self-attention, the softmax op's ``causal``
attribute). Query row ``i`` sits at position ``p(i) = i mod P + (T - P)`` (``P`` = ``period``, the rows
of one query group; GQA stacks ``rows / P`` groups) and sees keys ``j <= p(i)``. A kv block whose first
key is after the last position of a query block is fully masked: it is not loaded and none of its MACs,
score elements or rescales are computed (FlashAttention-2's causal loop bound). Every other tile,
including the diagonal ones that are partly masked, is computed and charged in full. So for each query
block only its first ``min(nk, p_max // Bc + 1)`` kv blocks run, and all counts above (MACs, array
cycles, softmax elements, rescales, O read-modify-writes, K/V DRAM reads, pipeline tiles) sum over those
tiles only. ``skipped_macs`` records the MACs of the skipped tiles, ``masked_macs`` those of every masked
(query, key) pair (:func:`masked_pairs`; the MACs an element-exact causal kernel would avoid). Query
blocks that straddle two GQA groups keep the kv blocks of the later positions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from hwsim.perf.arch import ArchSpec
from hwsim.perf.dataflow import cdiv
from hwsim.perf.mapper import candidates
from hwsim.perf.pipeline import pipeline_cycles
from hwsim.perf.workload import VECTOR_RECIPES

#: online-softmax rescale per row and kv block: exp(m_old - m_new) (subtract + 4-add/4-mult polynomial)
RESCALE_ADDS, RESCALE_MULTS = 5, 4


@dataclass(frozen=True)
class AttentionShape:
    """One fused attention: ``count`` products of ``rows x d`` queries over ``span`` keys (bits per word)."""

    count: int
    rows: int
    d: int
    span: int
    dv: int
    a_bits: float
    kv_bits: float
    p_bits: float
    acc_bits: float
    out_bits: float
    #: causal mask (module docstring): rows of one query group (0 = ``rows``); key offset ``span - period``
    causal: bool = False
    period: int = 0


@dataclass(frozen=True)
class FlashTile:
    """A query block of ``br`` rows against a key/value block of ``bc`` keys and its footprint (bits)."""

    br: int
    bc: int
    footprint_bits: tuple[float, float, float]

    def describe(self) -> str:
        return f"flash Br{self.br} Bc{self.bc} {sum(self.footprint_bits) / 8 / 1024:,.0f} KiB"


def footprint_bits(s: AttentionShape, br: int, bc: int, double_buffered: bool) -> tuple[float, float, float]:
    """SRAM bits of one tile per buffer (ifmap, weight, ofmap); module docstring."""
    db = 2 if double_buffered else 1
    d = max(s.d, s.dv)
    return (db * br * s.d * s.a_bits + br * bc * s.p_bits,
            db * bc * s.d * s.kv_bits + db * bc * s.dv * s.kv_bits,
            br * bc * s.acc_bits + br * d * (s.acc_bits + s.out_bits) + 2 * br * 32)


def _fits(arch: ArchSpec, fp: tuple[float, float, float]) -> bool:
    bufs = arch.buffers
    caps = [bufs.of(x).size_bits for x in ("ifmap", "weight", "ofmap")]
    if bufs.unified:
        return sum(fp) <= sum(caps)
    return all(f <= c for f, c in zip(fp, caps, strict=True))


def _blocks(dim: int, tile: int) -> list[tuple[int, int]]:
    full, rem = divmod(dim, tile)
    return [(tile, full)] + ([(rem, 1)] if rem else [])


def _period(s: AttentionShape) -> int:
    return s.period or s.rows


def kept_blocks(s: AttentionShape, br: int, bc: int) -> np.ndarray:
    """Kv blocks computed for each query block of ``br`` rows (all ``nk`` unless causal; docstring)."""
    nq, nk = cdiv(s.rows, br), cdiv(s.span, bc)
    if not s.causal:
        return np.full(nq, nk, dtype=np.int64)
    period = _period(s)
    first = np.arange(nq, dtype=np.int64) * br
    last = np.minimum(first + br, s.rows) - 1
    crosses = first // period != last // period
    p_max = np.where(crosses, period - 1, last % period) + (s.span - period)
    return np.minimum(nk, p_max // bc + 1)


def masked_pairs(rows: int, span: int, period: int = 0) -> int:
    """(query, key) pairs of one causal product of ``rows`` queries over ``span`` keys (query groups
    of ``period`` rows, 0 = ``rows``) that the mask hides (module docstring)."""
    period = period or rows
    visible = np.minimum(span, np.arange(period, dtype=np.int64) + (span - period) + 1)
    return int((span - visible).sum()) * (rows // period)


def _tile_classes(s: AttentionShape, br: int, bc: int) -> tuple[dict[tuple[int, int], int], int, int, int]:
    """Per product: ``({(query rows, keys): tiles}, rows x later kv blocks, score elements, keys loaded)``
    summed over the query blocks and their kept kv blocks."""
    kept = kept_blocks(s, br, bc)
    nk, rem = cdiv(s.span, bc), s.span % bc
    sizes = np.minimum(br, s.rows - np.arange(len(kept), dtype=np.int64) * br)
    short = (kept == nk) & (rem > 0)  # the remainder kv block is among the kept ones
    classes: dict[tuple[int, int], int] = {}
    for sq in np.unique(sizes):
        sel = sizes == sq
        for sk, n in ((bc, int((kept[sel] - short[sel]).sum())), (rem, int(short[sel].sum()))):
            if n:
                classes[(int(sq), int(sk))] = classes.get((int(sq), int(sk)), 0) + n
    keys = kept * bc - short * (bc - rem)
    return classes, int((sizes * (kept - 1)).sum()), int((sizes * keys).sum()), int(keys.sum())


def attention_parts(arch: ArchSpec, s: AttentionShape, tile: FlashTile, qk, sm, pv):
    """``(parts, tiles)``: the OpCounts of scores, softmax and context fused with ``tile`` (docstring).

    ``qk``/``pv`` are the unfused GEMMs' counts, ``sm`` the softmax's (names, formats and bit widths
    are taken from them); all counts include the ``count`` products.
    """
    r, c = arch.array.rows, arch.array.cols
    br, bc = tile.br, tile.bc
    classes, later, elements, kv_keys = _tile_classes(s, br, bc)
    a = dict.fromkeys(("cyc", "q_rd", "k_rd", "s_wr", "s_rd", "macs"), 0)
    b = dict.fromkeys(("cyc", "p_rd", "v_rd", "o_wr", "o_rd", "macs"), 0)
    for (sq, sk), n in classes.items():
        rf, cf = cdiv(s.d, r), cdiv(sk, c)
        a["cyc"] += n * rf * cf * max(sq, r)
        a["q_rd"] += n * sq * s.d * cf
        a["k_rd"] += n * s.d * sk
        a["s_wr"] += n * sq * sk * rf
        a["s_rd"] += n * sq * sk * (rf - 1)
        a["macs"] += n * sq * sk * s.d
        rf, cf = cdiv(sk, r), cdiv(s.dv, c)
        b["cyc"] += n * rf * cf * max(sq, r)
        b["p_rd"] += n * sq * sk * cf
        b["v_rd"] += n * sk * s.dv
        b["o_wr"] += n * sq * s.dv * rf
        b["o_rd"] += n * sq * s.dv * (rf - 1)
        b["macs"] += n * sq * sk * s.dv
    b["o_rd"] += later * s.dv  # O read-modify-written once per later kv block
    b["o_wr"] += later * s.dv
    fill = r + r + c - 2
    k = s.count
    full, masked = s.rows * s.span, masked_pairs(s.rows, s.span, _period(s)) if s.causal else 0
    skipped = k * (full - elements)  # score elements of the skipped tiles
    scores = replace(qk, macs=k * a["macs"], compute_cycles=k * (a["cyc"] + fill), sram_ifmap_reads=k * a["q_rd"],
                     sram_weight_reads=k * a["k_rd"], sram_ofmap_writes=k * a["s_wr"], sram_ofmap_reads=k * a["s_rd"],
                     sram_psum_writes=k * a["s_rd"], dram_ifmap_reads=k * s.rows * s.d,
                     dram_weight_reads=k * kv_keys * s.d, dram_ofmap_writes=0, dram_psum_writes=0,
                     dram_psum_reads=0, requant_elements=qk.requant_elements * elements // full,
                     skipped_macs=skipped * s.d, masked_macs=k * masked * s.d,
                     mapping=tile.describe(), mapping_fits=True, parts=())
    adds, mults = VECTOR_RECIPES["softmax"]
    rescales = k * later
    elements *= k
    softmax = replace(sm, vector_adds=elements * adds + rescales * RESCALE_ADDS,
                      vector_mults=elements * (mults - 1) + k * s.rows * (s.dv + 1)
                      + rescales * (RESCALE_MULTS + s.dv + 1),
                      sram_ifmap_reads=elements, sram_ofmap_writes=elements, dram_ifmap_reads=0,
                      dram_ofmap_writes=0, parts=())
    softmax.compute_cycles = cdiv(softmax.vector_adds + softmax.vector_mults, arch.vector.throughput) \
        + arch.vector.latency
    context = replace(pv, macs=k * b["macs"], compute_cycles=k * b["cyc"], sram_ifmap_reads=k * b["p_rd"],
                      sram_weight_reads=k * b["v_rd"], sram_ofmap_writes=k * b["o_wr"],
                      sram_ofmap_reads=k * b["o_rd"], sram_psum_writes=k * b["o_rd"], dram_ifmap_reads=0,
                      dram_weight_reads=k * kv_keys * s.dv, dram_ofmap_writes=k * s.rows * s.dv,
                      dram_psum_writes=0, dram_psum_reads=0, skipped_macs=skipped * s.dv,
                      masked_macs=k * masked * s.dv, mapping=tile.describe(), mapping_fits=True, parts=())
    return (scores, softmax, context), k * sum(classes.values())


@lru_cache(maxsize=256)
def _tile_options(arch: ArchSpec, s: AttentionShape) -> tuple[tuple[FlashTile, ...], FlashTile]:
    """Every fitting tile, and the smallest-footprint candidate (for the refusal message)."""
    r, c = arch.array.rows, arch.array.cols
    fitting, smallest = [], None
    for br in candidates(s.rows, 1, r):
        for bc in candidates(s.span, c, c):
            fp = footprint_bits(s, br, bc, arch.buffers.double_buffered)
            t = FlashTile(br, bc, fp)
            if smallest is None or sum(fp) < sum(smallest.footprint_bits):
                smallest = t
            if _fits(arch, fp):
                fitting.append(t)
    return tuple(fitting), smallest


def best_tile(arch: ArchSpec, s: AttentionShape, qk, sm, pv, *, timing_arch: ArchSpec | None = None,
              with_parts=(), blocks: int = 0) -> tuple[FlashTile | None, FlashTile]:
    """``(best fitting tile or None, smallest candidate)`` for the fused attention ``s`` (docstring).

    Tiles must fit ``arch``'s buffers. Ranked by the pipelined cycles on ``timing_arch`` (default
    ``arch``) of the attention alone, or, with ``with_parts``, of those parts plus the attention over
    ``blocks`` pipeline stages (a head-pipelined block, :mod:`hwsim.perf.fusion`).
    """
    fitting, smallest = _tile_options(arch, s)
    timing_arch = timing_arch or arch
    best, best_key = None, None
    for t in fitting:
        parts, tiles = attention_parts(arch, s, t, qk, sm, pv)
        if with_parts:
            parts, tiles = (*with_parts, *parts), blocks
        key = (pipeline_cycles(timing_arch, parts, tiles)[0], sum(t.footprint_bits))
        if best_key is None or key < best_key:
            best, best_key = t, key
    return best, smallest
