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
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

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


def attention_parts(arch: ArchSpec, s: AttentionShape, tile: FlashTile, qk, sm, pv):
    """``(parts, tiles)``: the OpCounts of scores, softmax and context fused with ``tile`` (docstring).

    ``qk``/``pv`` are the unfused GEMMs' counts, ``sm`` the softmax's (names, formats and bit widths
    are taken from them); all counts include the ``count`` products.
    """
    r, c = arch.array.rows, arch.array.cols
    br, bc = tile.br, tile.bc
    nq, nk = cdiv(s.rows, br), cdiv(s.span, bc)
    a = dict.fromkeys(("cyc", "q_rd", "k_rd", "s_wr", "s_rd"), 0)
    b = dict.fromkeys(("cyc", "p_rd", "v_rd", "o_wr", "o_rd"), 0)
    for sq, cq in _blocks(s.rows, br):
        for sk, ck in _blocks(s.span, bc):
            n = cq * ck
            rf, cf = cdiv(s.d, r), cdiv(sk, c)
            a["cyc"] += n * rf * cf * max(sq, r)
            a["q_rd"] += n * sq * s.d * cf
            a["k_rd"] += n * s.d * sk
            a["s_wr"] += n * sq * sk * rf
            a["s_rd"] += n * sq * sk * (rf - 1)
            rf, cf = cdiv(sk, r), cdiv(s.dv, c)
            b["cyc"] += n * rf * cf * max(sq, r)
            b["p_rd"] += n * sq * sk * cf
            b["v_rd"] += n * sk * s.dv
            b["o_wr"] += n * sq * s.dv * rf
            b["o_rd"] += n * sq * s.dv * (rf - 1)
    b["o_rd"] += s.rows * s.dv * (nk - 1)  # O read-modify-written once per later kv block
    b["o_wr"] += s.rows * s.dv * (nk - 1)
    fill = r + r + c - 2
    k = s.count
    scores = replace(qk, compute_cycles=k * (a["cyc"] + fill), sram_ifmap_reads=k * a["q_rd"],
                     sram_weight_reads=k * a["k_rd"], sram_ofmap_writes=k * a["s_wr"], sram_ofmap_reads=k * a["s_rd"],
                     sram_psum_writes=k * a["s_rd"], dram_ifmap_reads=k * s.rows * s.d,
                     dram_weight_reads=k * nq * s.span * s.d, dram_ofmap_writes=0, dram_psum_writes=0,
                     dram_psum_reads=0, mapping=tile.describe(), mapping_fits=True, parts=())
    adds, mults = VECTOR_RECIPES["softmax"]
    elements = k * s.rows * s.span
    rescales = k * s.rows * (nk - 1)
    softmax = replace(sm, vector_adds=elements * adds + rescales * RESCALE_ADDS,
                      vector_mults=elements * (mults - 1) + k * s.rows * (s.dv + 1)
                      + rescales * (RESCALE_MULTS + s.dv + 1),
                      sram_ifmap_reads=elements, sram_ofmap_writes=elements, dram_ifmap_reads=0,
                      dram_ofmap_writes=0, parts=())
    softmax.compute_cycles = cdiv(softmax.vector_adds + softmax.vector_mults, arch.vector.throughput) \
        + arch.vector.latency
    context = replace(pv, compute_cycles=k * b["cyc"], sram_ifmap_reads=k * b["p_rd"],
                      sram_weight_reads=k * b["v_rd"], sram_ofmap_writes=k * b["o_wr"],
                      sram_ofmap_reads=k * b["o_rd"], sram_psum_writes=k * b["o_rd"], dram_ifmap_reads=0,
                      dram_weight_reads=k * nq * s.span * s.dv, dram_ofmap_writes=k * s.rows * s.dv,
                      dram_psum_writes=0, dram_psum_reads=0, mapping=tile.describe(), mapping_fits=True,
                      parts=())
    return (scores, softmax, context), k * nq * nk


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
