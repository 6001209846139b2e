"""Tiling and loop-order mapper for one GEMM on the array (the default of ``pipelined`` timing).

Search space
------------
A GEMM ``A[M,K] @ B[K,N] = O[M,N]`` is cut into SRAM tiles ``Tm x Tk x Tn`` visited by three DRAM-level
loops in one of the six orders (``order`` names them outermost first, e.g. ``"nmk"``). Tiles of the two
spatial dimensions of the dataflow (:data:`hwsim.perf.timing.DATAFLOW_ROLES`; ``K`` and ``N`` for ``ws``)
are multiples of the array side they map to; the temporal dimension is free. Candidates per dimension
``D`` with unit ``u``: ``u * 2**i``, ``ceil(D / j)`` rounded up to ``u`` and ``j * s`` for
``j = 1..16``, and ``D`` itself, all capped at ``D``; the step ``s`` is the array side (``R`` for the
temporal dimension: a tile of at least ``R`` steps hides the next fold's preload).

Buffer footprint (bits; ``x2`` when ``buffers.double_buffered``: the next tile loads while this one
computes)::

    ifmap  = Tm*Tk*a_bits  x2        weight = Tk*Tn*b_bits  x2
    ofmap  = Tm*Tn*acc_bits          partial sums, only if the K reduction is split over folds
           + Tm*Tn*out_bits          finished outputs (requantized on the way out), x2 if not split

A fused element-wise epilogue (:mod:`hwsim.perf.fusion`) that reads another operand per output (a
residual) adds ``Tm*Tn*epilogue_bits`` to the ofmap part: once when the reduction is split (the tile's
operand is prefetched during its earlier K folds and consumed by the last), ``x2`` otherwise (when
double buffered); an output consumed on chip by its epilogue
(``out_to_dram`` false) costs no DRAM write.

The partial-sum tile is read-modify-written in place and consumed by the last K fold in the order it
is refilled, so it is held once. With a split reduction a tile's outputs appear only in its last fold
and drain to DRAM during the next tile's folds, so one output tile suffices; an unsplit reduction
emits outputs every fold and double-buffers them. Each part must fit its buffer; a ``unified``
buffer holds their sum.

Cost
----
Loops whose trip count is 1 are dropped. An input operand is fetched from DRAM once per iteration of
each loop that does not index it and lies *outside* its innermost indexing loop (Timeloop's reuse
rule)::

    dram(A) = M*K * prod(trips of n-loops outside A's innermost m/k loop)

The output is written once unless the ``k`` loop lies outside its innermost ``m``/``n`` loop: then the
``Nk - 1`` earlier partial sums of each output are spilled and read back at accumulator width. SRAM
traffic and array cycles are the fold model of :mod:`hwsim.perf.timing` applied to every tile (full and
remainder tiles counted separately); ``pipelined`` array cycles are
``preload + sum_tiles folds * max(T_tile, R) + R + C - 2 + drain``. The objective ranks mappings by
``latency = max(compute, SRAM-port, DRAM cycles)``, ``energy`` (DRAM + SRAM access energy of the
table; MAC energy does not depend on the mapping) or their product ``edp``; ties go to the other
measure, then to the smaller footprint. Mappings that spill partial sums to DRAM are taken only when
every fitting mapping spills. No candidate fitting the buffers leaves the smallest-footprint
mapping, flagged ``fits = False``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations, product

import numpy as np

from hwsim.perf.dataflow import DATAFLOW_ROLES, cdiv

ORDERS = tuple("".join(p) for p in permutations("mkn"))
OBJECTIVES = ("latency", "energy", "edp")
#: dims each operand is indexed by
INDEXED_BY = {"ifmap": "mk", "weight": "kn", "ofmap": "mn"}


@dataclass(frozen=True)
class MapperProblem:
    """Everything the mapper needs: GEMM shape, operand widths (bits), array and memory system."""

    m: int
    k: int
    n: int
    a_bits: float
    b_bits: float
    acc_bits: float
    out_bits: float
    rows: int
    cols: int
    dataflow: str
    capacity_bits: tuple[float, float, float]  # ifmap, weight, ofmap
    unified: bool
    double_buffered: bool
    dram_bytes_per_cycle: float
    sram_words_per_cycle: tuple[float, float, float]
    sram_pj_per_bit: float
    dram_pj_per_bit: float
    objective: str = "latency"
    #: extra SRAM bits per output element held for a fused epilogue (its streamed second operand)
    epilogue_bits: float = 0.0
    #: False when a fused epilogue consumes the output on chip (no DRAM write of it)
    out_to_dram: bool = True
    #: loop orders searched (a head-pipelined attention block needs ``n`` outermost)
    orders: tuple[str, ...] = ORDERS


@dataclass(frozen=True)
class GemmMapping:
    """One mapping with its counts (words unless noted); ``describe()`` is the per-op report text."""

    order: str
    tm: int
    tk: int
    tn: int
    fits: bool
    footprint_bits: tuple[float, float, float]
    compute_cycles: int
    sram_ifmap_reads: int
    sram_weight_reads: int
    sram_ofmap_writes: int
    sram_ofmap_reads: int
    dram_ifmap_reads: int
    dram_weight_reads: int
    dram_ofmap_writes: int
    dram_psum_writes: int
    dram_psum_reads: int
    latency_cycles: float
    energy_pj: float

    @property
    def dram_loads(self) -> dict[str, int]:
        return {"ifmap": self.dram_ifmap_reads, "weight": self.dram_weight_reads}

    def tiles_of(self, p: MapperProblem) -> int:
        """Output tiles ``Tm x Tn`` the loops visit (full and remainder tiles)."""
        return cdiv(p.m, self.tm) * cdiv(p.n, self.tn)

    def describe(self) -> str:
        """E.g. ``n>m>k M256 K4096 N128`` (loop order outermost first, SRAM tile sizes)."""
        return f"{'>'.join(self.order)} M{self.tm} K{self.tk} N{self.tn}" + ("" if self.fits else " (overflows)")


def candidates(dim: int, unit: int, step: int) -> tuple[int, ...]:
    """Tile sizes tried for a dimension of ``dim`` with granularity ``unit`` (module docstring)."""
    out = {dim}
    t = unit
    while t < dim:
        out.add(t)
        t *= 2
    for j in range(1, 17):
        out.add(min(dim, cdiv(cdiv(dim, j), unit) * unit))
        out.add(min(dim, step * j))
    return tuple(sorted(out))


def _classes(dim: int, tile: int) -> list[tuple[int, int]]:
    """(tile size, how many) of the full tiles and the remainder tile of ``dim``."""
    full, rem = divmod(dim, tile)
    return [(tile, full)] + ([(rem, 1)] if rem else [])


def _array_work(p: MapperProblem, tm: int, tk: int, tn: int) -> tuple[int, int, int, int]:
    """Fold cycles (without the one-off fill), ifmap, weight and ofmap SRAM words summed over tiles."""
    r_dim, c_dim, t_dim, _ = DATAFLOW_ROLES[p.dataflow]
    cyc = a_rd = b_rd = o_wr = 0
    for sm, cm in _classes(p.m, tm):
        for sk, ck in _classes(p.k, tk):
            for sn, cn in _classes(p.n, tn):
                many = cm * ck * cn
                dims = {"M": sm, "K": sk, "N": sn}
                rf, cf = cdiv(dims[r_dim], p.rows), cdiv(dims[c_dim], p.cols)
                folds = {r_dim: rf, c_dim: cf}
                cyc += many * rf * cf * max(dims[t_dim], p.rows)
                a_rd += many * sm * sk * folds.get("N", 1)
                b_rd += many * sk * sn * folds.get("M", 1)
                o_wr += many * sm * sn * folds.get("K", 1)
    return cyc, a_rd, b_rd, o_wr


def dram_factor(order: str, trips: dict[str, int], indexed: str) -> int:
    """How many times an operand indexed by ``indexed`` is fetched under loop ``order``."""
    active = [d for d in order if trips[d] > 1]
    inner = max((i for i, d in enumerate(active) if d in indexed), default=-1)
    factor = 1
    for d in active[:max(inner, 0)]:
        if d not in indexed:
            factor *= trips[d]
    return factor


def _footprint(p: MapperProblem, tm: int, tk: int, tn: int, split_k: bool) -> tuple[float, float, float]:
    db = 2 if p.double_buffered else 1
    epi = tm * tn * p.epilogue_bits * (1 if split_k else db)
    if split_k:
        return db * tm * tk * p.a_bits, db * tk * tn * p.b_bits, tm * tn * (p.acc_bits + p.out_bits) + epi
    return db * tm * tk * p.a_bits, db * tk * tn * p.b_bits, db * tm * tn * p.out_bits + epi


def _fits(p: MapperProblem, fp: tuple[float, float, float]) -> bool:
    if p.unified:
        return sum(fp) <= sum(p.capacity_bits)
    return all(f <= c for f, c in zip(fp, p.capacity_bits, strict=True))


def _score(p: MapperProblem, latency: float, energy: float) -> tuple[float, float]:
    if p.objective == "energy":
        return energy, latency
    if p.objective == "edp":
        return latency * energy, latency
    return latency, energy


@lru_cache(maxsize=4096)
def best_mapping(p: MapperProblem) -> GemmMapping:
    """The mapping of ``p`` minimising ``p.objective`` over tiles x loop orders (module docstring).

    Every tile x order is scored at once with numpy; ties go to the first candidate in the order of
    :func:`best_mapping_reference` (tiles ascending, ``m`` slowest; orders as :data:`ORDERS`).
    """
    if p.objective not in OBJECTIVES:
        raise ValueError(f"mapper objective must be one of {OBJECTIVES}, not {p.objective!r}")
    r_dim, c_dim, _, _ = DATAFLOW_ROLES[p.dataflow]
    units = {"M": 1, "K": 1, "N": 1, r_dim: p.rows, c_dim: p.cols}
    steps = {"M": p.rows, "K": p.rows, "N": p.rows, c_dim: p.cols}
    grids = np.meshgrid(*(np.array(candidates(getattr(p, d.lower()), units[d], steps[d]), dtype=np.int64)
                          for d in "MKN"), indexing="ij")
    tm, tk, tn = (g.ravel() for g in grids)
    k_folds = -(-tk // p.rows) if r_dim == "K" else np.ones_like(tk)
    split = -(-p.k // tk) * k_folds > 1
    db = 2 if p.double_buffered else 1
    fp = np.stack([db * tm * tk * p.a_bits, db * tk * tn * p.b_bits,
                   np.where(split, tm * tn * (p.acc_bits + p.out_bits), db * tm * tn * p.out_bits)
                   + tm * tn * p.epilogue_bits * np.where(split, 1, db)])
    caps = np.array(p.capacity_bits)[:, None]
    fits = fp.sum(0) <= caps.sum() if p.unified else (fp <= caps).all(0)
    cyc, a_rd, b_rd, o_wr = _array_work_vec(p, tm, tk, tn, r_dim, c_dim)
    trips = {"m": -(-p.m // tm), "k": -(-p.k // tk), "n": -(-p.n // tn)}
    mn = p.m * p.n
    out_dram = mn if p.out_to_dram else 0
    preload = p.rows if DATAFLOW_ROLES[p.dataflow][3] != "ofmap" else 0
    compute = preload + cyc + p.rows + p.cols - 2 + (p.rows if p.dataflow == "os" else 0)
    sram_bits = a_rd * p.a_bits + b_rd * p.b_bits + (o_wr - mn) * 2 * p.acc_bits + mn * p.out_bits
    sram_cycles = np.maximum(np.maximum(a_rd / p.sram_words_per_cycle[0], b_rd / p.sram_words_per_cycle[1]),
                             (2 * o_wr - mn) / p.sram_words_per_cycle[2])
    lat, energy, spill = [], [], []
    for order in p.orders:
        dram_a = p.m * p.k * _dram_factor_vec(order, trips, INDEXED_BY["ifmap"])
        dram_b = p.k * p.n * _dram_factor_vec(order, trips, INDEXED_BY["weight"])
        psum = mn * (_dram_factor_vec(order, trips, INDEXED_BY["ofmap"]) - 1)
        dram_bits = dram_a * p.a_bits + dram_b * p.b_bits + out_dram * p.out_bits + 2 * psum * p.acc_bits
        lat.append(np.maximum(np.maximum(compute, sram_cycles), dram_bits / 8 / p.dram_bytes_per_cycle))
        energy.append(dram_bits * p.dram_pj_per_bit + sram_bits * p.sram_pj_per_bit)
        spill.append(psum > 0)
    lat, energy, spill = (np.stack(x, axis=1).ravel() for x in (lat, energy, spill))  # index = tile * 6 + order
    size = np.repeat(fp.sum(0), len(p.orders))
    ok = np.repeat(fits, len(p.orders))
    if ok.any():
        first, second = _score(p, lat, energy)
        keys = (size, second, first, spill)  # np.lexsort: last key is primary
    else:
        keys = (lat, size)
    candidates_idx = np.flatnonzero(ok) if ok.any() else np.arange(ok.size)
    pick = candidates_idx[np.lexsort(tuple(k[candidates_idx] for k in keys))[0]]
    t, o = divmod(int(pick), len(p.orders))
    tile = (int(tm[t]), int(tk[t]), int(tn[t]))
    return _evaluate(p, p.orders[o], *tile, bool(fits[t]), tuple(float(x) for x in fp[:, t]),
                     _array_work(p, *tile))


def _array_work_vec(p: MapperProblem, tm, tk, tn, r_dim: str, c_dim: str):
    """:func:`_array_work` over arrays of tile sizes (full and remainder tiles of every dimension)."""
    classes = []
    for dim, tile in ((p.m, tm), (p.k, tk), (p.n, tn)):
        rem = dim % tile
        classes.append(((tile, dim // tile), (rem, (rem > 0).astype(np.int64))))
    cyc = a_rd = b_rd = o_wr = 0
    t_dim = DATAFLOW_ROLES[p.dataflow][2]
    for (sm, cm), (sk, ck), (sn, cn) in product(*classes):
        many = cm * ck * cn
        dims = {"M": sm, "K": sk, "N": sn}
        rf, cf = -(-dims[r_dim] // p.rows), -(-dims[c_dim] // p.cols)
        folds = {r_dim: rf, c_dim: cf}
        cyc = cyc + many * rf * cf * np.maximum(dims[t_dim], p.rows)
        a_rd = a_rd + many * sm * sk * folds.get("N", 1)
        b_rd = b_rd + many * sk * sn * folds.get("M", 1)
        o_wr = o_wr + many * sm * sn * folds.get("K", 1)
    return cyc, a_rd, b_rd, o_wr


def _dram_factor_vec(order: str, trips: dict, indexed: str):
    """:func:`dram_factor` over arrays of trip counts."""
    inner = np.full(trips["m"].shape, -1)
    for j, d in enumerate(order):
        if d in indexed:
            inner = np.where(trips[d] > 1, j, inner)
    factor = np.ones_like(trips["m"])
    for j, d in enumerate(order):
        if d not in indexed:
            factor = factor * np.where(j < inner, trips[d], 1)
    return factor


def best_mapping_reference(p: MapperProblem) -> GemmMapping:
    """:func:`best_mapping` as a plain loop over tiles and orders (the check of the vectorised search)."""
    if p.objective not in OBJECTIVES:
        raise ValueError(f"mapper objective must be one of {OBJECTIVES}, not {p.objective!r}")
    r_dim, c_dim, _, _ = DATAFLOW_ROLES[p.dataflow]
    units = {"M": 1, "K": 1, "N": 1, r_dim: p.rows, c_dim: p.cols}
    steps = {"M": p.rows, "K": p.rows, "N": p.rows, c_dim: p.cols}
    best, best_key, fallback, fallback_size = None, None, None, None
    for tm in candidates(p.m, units["M"], steps["M"]):
        for tk in candidates(p.k, units["K"], steps["K"]):
            k_folds = cdiv(tk, p.rows) if "K" == r_dim else 1
            split_k = cdiv(p.k, tk) * k_folds > 1
            for tn in candidates(p.n, units["N"], steps["N"]):
                fp = _footprint(p, tm, tk, tn, split_k)
                fits = _fits(p, fp)
                if not fits and (best is not None or (fallback is not None and sum(fp) > fallback_size)):
                    continue
                work = _array_work(p, tm, tk, tn)
                for order in p.orders:
                    mp = _evaluate(p, order, tm, tk, tn, fits, fp, work)
                    if fits:
                        key = (mp.dram_psum_writes > 0, *_score(p, mp.latency_cycles, mp.energy_pj), sum(fp))
                        if best_key is None or key < best_key:
                            best, best_key = mp, key
                    elif best is None and (fallback is None or sum(fp) < fallback_size
                                           or (sum(fp) == fallback_size and mp.latency_cycles
                                               < fallback.latency_cycles)):
                        fallback, fallback_size = mp, sum(fp)
    return best if best is not None else fallback


def _evaluate(p: MapperProblem, order: str, tm: int, tk: int, tn: int, fits: bool,
              fp: tuple[float, float, float], work: tuple[int, int, int, int]) -> GemmMapping:
    trips = {"m": cdiv(p.m, tm), "k": cdiv(p.k, tk), "n": cdiv(p.n, tn)}
    cyc, a_rd, b_rd, o_wr = work
    mn = p.m * p.n
    dram_a = p.m * p.k * dram_factor(order, trips, INDEXED_BY["ifmap"])
    dram_b = p.k * p.n * dram_factor(order, trips, INDEXED_BY["weight"])
    visits = dram_factor(order, trips, INDEXED_BY["ofmap"])  # > 1: k loop outside the output's loops
    psum = mn * (visits - 1)
    preload = p.rows if DATAFLOW_ROLES[p.dataflow][3] != "ofmap" else 0
    drain = p.rows if p.dataflow == "os" else 0
    compute = preload + cyc + p.rows + p.cols - 2 + drain
    out_dram = mn if p.out_to_dram else 0
    dram_bits = dram_a * p.a_bits + dram_b * p.b_bits + out_dram * p.out_bits + 2 * psum * p.acc_bits
    sram_bits = (a_rd * p.a_bits + b_rd * p.b_bits + (o_wr - mn) * 2 * p.acc_bits + mn * p.out_bits)
    sram_cycles = max(a_rd / p.sram_words_per_cycle[0], b_rd / p.sram_words_per_cycle[1],
                      (2 * o_wr - mn) / p.sram_words_per_cycle[2])
    latency = max(compute, sram_cycles, dram_bits / 8 / p.dram_bytes_per_cycle)
    energy = dram_bits * p.dram_pj_per_bit + sram_bits * p.sram_pj_per_bit
    return GemmMapping(order=order, tm=tm, tk=tk, tn=tn, fits=fits, footprint_bits=fp, compute_cycles=compute,
                       sram_ifmap_reads=a_rd, sram_weight_reads=b_rd, sram_ofmap_writes=o_wr,
                       sram_ofmap_reads=o_wr - mn, dram_ifmap_reads=dram_a, dram_weight_reads=dram_b,
                       dram_ofmap_writes=out_dram, dram_psum_writes=psum, dram_psum_reads=psum,
                       latency_cycles=latency, energy_pj=energy)
