"""Cycle-approximate model of a systolic MAC array with SRAM/DRAM traffic: one parameterised model.

Mapping (one table instead of one class per dataflow)
-----------------------------------------------------
A GEMM ``A[M,K] @ B[K,N] = O[M,N]`` is mapped onto an ``R x C`` array by assigning each GEMM
dimension a role: two are *spatial* (array rows, array columns) and one is *temporal* (streamed
through the array, one index per cycle)::

    dataflow   rows (Sr)   cols (Sc)   temporal (T)   stationary operand
    os         M           N           K              ofmap (accumulators)
    ws         K           N           M              weight
    is         K           M           N              ifmap

``row_folds = ceil(Sr/R)``, ``col_folds = ceil(Sc/C)``, ``folds = row_folds * col_folds`` (column
folds outer, row folds inner, as SCALE-Sim orders them).

SRAM traffic (words). Each operand spans two of ``M, K, N``; it is read again for every fold of the
dimension it lacks when that dimension is spatial (a temporal dimension costs no re-read)::

    ifmap reads  = M*K * folds(N)      weight reads = K*N * folds(M)      ofmap writes = M*N * folds(K)

with ``folds(d) = row_folds`` / ``col_folds`` if ``d`` is mapped to rows / columns, else 1.
For ws/is the ofmap writes of ``folds(K) > 1`` are partial sums; the physical model also reads
them back (``sram_ofmap_reads = (folds(K) - 1) * M*N``); SCALE-Sim counts no ofmap reads.
SCALE-Sim's OS mode adds ``R + C`` ofmap writes per fold (it counts the flipped tile's
``rows + cols``): reproduced in ``scalesim`` mode only.

Compute cycles
--------------
Per fold a stationary input (ws/is) is first shifted in (``preload = R`` cycles, 0 for os), then
``T`` temporal steps enter, and the last result leaves after the skew ``(R - 1) + (C - 1)``::

    scalesim:   cycles = folds * (preload + T + R + C - 2) - 1
    pipelined:  cycles = preload + folds * max(T, R) + R + C - 2 + drain,   drain = R for os else 0

    tile:       cycles = folds * (preload + T + R + C - 2)           (ws only)

``scalesim`` is SCALE-Sim 3.0's schedule (each fold drains completely before the next starts; the
``-1`` is its last cycle index). ``pipelined`` is a double-buffered array: the next fold's weights
(ws/is) or the previous fold's accumulators (os) move during the current fold's ``T`` streaming
cycles, so fill and drain overlap and only ``max(T, R)`` cycles per fold remain. ``tile`` is the generated RTL
tile's schedule (:class:`hwsim.rtl.tile.SystolicTile`, :func:`hwsim.latency.ws_tile_cycles`): SCALE-Sim's
fold-by-fold order counted from the first input transfer to the last output transfer, i.e. one
cycle more than SCALE-Sim's last-cycle index (the tile registers the last MAC once more on its way
out); the cocotb tile bench measures exactly this count.

DRAM traffic and stalls
-----------------------
``pipelined`` timing with ``timing.mapper: search`` (the default) tiles each GEMM for the buffers
and picks a loop order (:mod:`hwsim.perf.mapper`); its SRAM/DRAM counts and array cycles replace
the fold model's below, and the stall/total rule at the end of this section is shared. The fold
model (``scalesim`` mode, and ``pipelined`` with ``mapper: folds``) does no DRAM tiling: the fold
loops run column folds outside, row folds inside. An input operand whose missing
dimension is the *outer* loop must stay resident whole between outer iterations; if its missing
dimension is the *inner* loop only its outer block (``R`` or ``C`` wide) must stay. If that
working set fits the operand's buffer (half of it when double buffered) the operand is read from
DRAM once, otherwise once per fold of its missing dimension. The ofmap tile accumulated across
``folds(K)`` is written once (output format) if it fits, else every partial sum is spilled and
re-read at accumulator width. ``dram_cycles = bytes / bandwidth``; with double buffering
``total = max(compute, dram, sram) + latency + first tile``, without it ``compute + dram + latency``.
SRAM port limits add ``max(0, words / bandwidth_words_per_cycle - compute)`` cycles.
Requant (``ceil(outputs/lanes)``) overlaps the array drain; only its ``latency`` and any excess are
added; per-token operand quantization and group/float epilogues follow :mod:`hwsim.perf.epilogue`.
Each GEMM is priced at its own formats (``GemmOp.a_format``/``b_format``/``out_format``, empty = the
PE defaults); grouped weights add their scales to the weight bits
(:func:`hwsim.perf.format_info.weight_storage_bits`). Vector ops run on the vector unit:
``ceil(elements*ops_per_element/ops_per_cycle) + latency`` (``ops_per_cycle`` defaults to the lanes).

Norm unit
---------
``layernorm.arithmetic: float``: ``passes*rows*ceil(cols/lanes) + latency``.
``layernorm.arithmetic: integer`` (hwsim's golden integer LayerNorm/RMSNorm, :mod:`hwsim.layernorm`):
rows pipeline through the unit. The streaming part of a row takes ``P*ceil(cols/lanes)`` cycles
(``P`` = 3 passes for LayerNorm: sum, squared deviations, normalise/γ/β/requant; 2 for RMSNorm) and
its ``D = norm_op_counts(cols, kind, newton_iterations)["div"]`` integer divides (mean for LayerNorm,
one per Newton step, the reciprocal) occupy ``dividers`` divider units of ``div_latency`` cycles each.
The first row takes the unit's full latency, each further row one initiation interval::

    interval = max(P * ceil(cols / lanes), D * div_latency / dividers)
    cycles   = IntNormSpec(lanes, div_latency, newton_iterations, pipeline=latency).latency(cols, kind)
               + ceil((rows - 1) * interval)

i.e. ``rows * interval`` plus a fill of ``latency(cols, kind) - interval``. With
``layernorm.overlap_rows: false`` rows do not overlap, as in the generated RTL unit
(:class:`hwsim.rtl.norm_unit.IntNormUnit`, one divider; :func:`hwsim.latency.int_norm_cycles`)::

    cycles   = rows * (P * ceil(cols / lanes) + D * div_latency) + latency

The per-row integer op counts (adds, multiplies, shifts, divides, requants) are kept for the energy
model; SRAM reads are ``P`` per element.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.latency import int_norm_interval, ws_tile_cycles
from hwsim.layernorm import IntNormSpec, norm_op_counts
from hwsim.perf.arch import OPERANDS, ArchSpec
from hwsim.perf.dataflow import DATAFLOW_ROLES, MISSING_DIM, cdiv
from hwsim.perf.epilogue import side_cycles, side_work
from hwsim.perf.format_info import format_info, weight_storage_bits
from hwsim.perf.workload import MEMORY_KINDS, NORM_RECIPES, VECTOR_RECIPES, GemmOp, MemoryOp, NormOp, VectorOp

#: passes of the integer norm unit over each row (as :meth:`hwsim.layernorm.IntNormSpec.latency`)
INT_NORM_PASSES = {"layernorm": 3, "rmsnorm": 2}


@dataclass(frozen=True)
class FoldMapping:
    """Spatial/temporal sizes and folds of one GEMM on one array."""

    rows: int
    cols: int
    dataflow: str
    sr: int
    sc: int
    t: int
    row_folds: int
    col_folds: int

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def preload(self) -> int:
        return self.rows if DATAFLOW_ROLES[self.dataflow][3] != "ofmap" else 0

    def folds_of(self, dim: str) -> int:
        r, c, _, _ = DATAFLOW_ROLES[self.dataflow]
        return self.row_folds if dim == r else self.col_folds if dim == c else 1

    def is_outer(self, dim: str) -> bool:
        return DATAFLOW_ROLES[self.dataflow][1] == dim


def map_gemm(m: int, k: int, n: int, rows: int, cols: int, dataflow: str) -> FoldMapping:
    """Assign ``M, K, N`` to array rows, columns and time for ``dataflow`` and count folds."""
    dims = {"M": m, "K": k, "N": n}
    r, c, t, _ = DATAFLOW_ROLES[dataflow]
    sr, sc = dims[r], dims[c]
    return FoldMapping(rows, cols, dataflow, sr, sc, dims[t], cdiv(sr, rows), cdiv(sc, cols))


def compute_cycles(fm: FoldMapping, mode: str) -> int:
    """Array cycles of one GEMM (see module docstring for the formulas)."""
    r, c = fm.rows, fm.cols
    if mode == "tile":
        if fm.dataflow != "ws":
            raise ValueError(f"timing mode 'tile' is the RTL weight-stationary tile's schedule; dataflow must be "
                             f"'ws', not {fm.dataflow!r}")
        return ws_tile_cycles(r, c, fm.t, fm.folds)
    if mode == "scalesim":
        return fm.folds * (fm.preload + fm.t + r + c - 2) - 1
    drain = r if fm.dataflow == "os" else 0
    return fm.preload + fm.folds * max(fm.t, r) + r + c - 2 + drain


def sram_words(fm: FoldMapping, m: int, k: int, n: int, mode: str) -> dict[str, int]:
    """SRAM reads/writes in words: ``ifmap_reads, weight_reads, ofmap_writes, ofmap_reads``."""
    kf = fm.folds_of("K")
    out = {
        "ifmap_reads": m * k * fm.folds_of("N"),
        "weight_reads": k * n * fm.folds_of("M"),
        "ofmap_writes": m * n * kf,
        "ofmap_reads": 0 if mode == "scalesim" else m * n * (kf - 1),
    }
    if mode == "scalesim" and fm.dataflow == "os":
        out["ofmap_writes"] += fm.folds * (fm.rows + fm.cols)
    return out


def scalesim_utilizations(fm: FoldMapping) -> tuple[float, float]:
    """SCALE-Sim's (mapping efficiency, compute utilization), fractions averaged over folds.

    Mapping efficiency of a fold is ``used_rows*used_cols/(R*C)``; compute utilization is
    ``used_rows*used_cols*T / (R*C*span)`` where SCALE-Sim's span is the fold's demand-matrix rows +
    columns - 1: ``preload + T + R + C - 2`` plus ``C - 1`` for ws/is.
    """
    rc = fm.rows * fm.cols
    span = fm.preload + fm.t + fm.rows + fm.cols - 2 + (fm.cols - 1 if fm.preload else 0)
    used = fm.sr * fm.sc / (fm.folds * rc)
    return used, used * fm.t / span


@dataclass
class OpCounts:
    """Everything the model counts for one op (all ``count`` repetitions included).

    Word counts are per operand; ``*_bits`` give the width of one word of that stream.
    """

    name: str
    kind: str
    m: int = 0
    k: int = 0
    n: int = 0
    count: int = 1
    macs: int = 0
    elements: int = 0
    row_folds: int = 0
    col_folds: int = 0
    compute_cycles: int = 0
    stall_cycles: int = 0
    total_cycles: int = 0
    mapping_efficiency: float = 0.0
    sram_ifmap_reads: int = 0
    sram_weight_reads: int = 0
    sram_ofmap_writes: int = 0
    sram_ofmap_reads: int = 0
    dram_ifmap_reads: int = 0
    dram_weight_reads: int = 0
    dram_ofmap_writes: int = 0
    dram_psum_writes: int = 0
    dram_psum_reads: int = 0
    requant_elements: int = 0
    norm_elements: int = 0
    norm_rows: int = 0
    norm_arithmetic: str = ""
    norm_newton_iterations: int = 0
    norm_adds: int = 0
    norm_mults: int = 0
    norm_shifts: int = 0
    norm_divides: int = 0
    norm_requants: int = 0
    vector_adds: int = 0
    vector_mults: int = 0
    quant_adds: int = 0
    quant_mults: int = 0
    epilogue_adds: int = 0
    epilogue_mults: int = 0
    int_units: tuple = ()  # fixed-point mode: hwsim.perf.int_units.IntUnit uses (all repetitions)
    int_units_label: str = ""
    lut_bytes: int = 0
    sram_psum_writes: int = 0
    #: causal attention (:mod:`hwsim.perf.flash_attention`): MACs of the fully masked tiles a fused
    #: attention skips (not in ``macs``), and MACs of every masked (query, key) pair
    skipped_macs: int = 0
    masked_macs: int = 0
    mapping: str = ""
    mapping_fits: bool = True
    #: output tiles the mapper's loops visit (pipeline depth of a fused group; 0 = not mapped)
    mapping_tiles: int = 0
    #: tiles along N (output-column blocks) of the mapping
    mapping_n_tiles: int = 0
    #: fused group (:mod:`hwsim.perf.fusion`): its member ops and why they were fused; ``parts`` holds
    #: the members' own counts (DRAM traffic and bound checks read them)
    fused_ops: str = ""
    fusion: str = ""
    parts: tuple = ()
    ifmap_bits: float = 8
    weight_bits: float = 8
    psum_bits: float = 32
    out_bits: float = 8
    #: formats a GEMM is priced at (empty for other ops): ``int8/token``, ``int4/group128``, ...
    a_format: str = ""
    w_format: str = ""
    out_format: str = ""

    def dram_bytes(self) -> float:
        if self.parts:
            return sum(p.dram_bytes() for p in self.parts)
        return (self.dram_ifmap_reads * self.ifmap_bits + self.dram_weight_reads * self.weight_bits
                + self.dram_ofmap_writes * self.out_bits
                + (self.dram_psum_writes + self.dram_psum_reads) * self.psum_bits) / 8


def _capacity_bits(arch: ArchSpec, operand: str) -> float:
    buf = arch.buffers.of(operand)
    return buf.size_bits * (0.5 if arch.buffers.double_buffered else 1.0)


def _dram_traffic(arch: ArchSpec, fm: FoldMapping, op: GemmOp, c: OpCounts) -> None:
    m, k, n = op.m, op.k, op.n
    sizes = {"ifmap": (m * k, {"M": m, "K": k}, c.ifmap_bits), "weight": (k * n, {"K": k, "N": n}, c.weight_bits)}
    for operand, (words, dims, bits) in sizes.items():
        missing = MISSING_DIM[operand]
        refetch = fm.folds_of(missing)
        if refetch > 1:
            # working set: whole operand if the missing dim is the outer loop, else its outer block
            outer_dim = DATAFLOW_ROLES[fm.dataflow][1]
            if fm.is_outer(missing):
                ws_words = words
            else:
                ws_words = words // dims[outer_dim] * min(dims[outer_dim], fm.cols)
            if ws_words * bits <= _capacity_bits(arch, operand):
                refetch = 1
        setattr(c, f"dram_{operand}_reads", words * refetch)
    kf = fm.folds_of("K")
    tile = m * n if fm.is_outer("K") else m * n // fm.sc * min(fm.sc, fm.cols)
    c.dram_ofmap_writes = m * n
    if kf > 1 and tile * c.psum_bits > _capacity_bits(arch, "ofmap"):
        c.dram_psum_writes = m * n * (kf - 1)
        c.dram_psum_reads = m * n * (kf - 1)


def _finish_cycles(arch: ArchSpec, c: OpCounts, first_tile_bytes: float, extra: int) -> None:
    """Combine compute, SRAM-port, DRAM and unit cycles into stall and total cycles."""
    bufs = arch.buffers
    sram = max(c.sram_ifmap_reads / bufs.ifmap.bandwidth_words_per_cycle,
               c.sram_weight_reads / bufs.weight.bandwidth_words_per_cycle,
               (c.sram_ofmap_writes + c.sram_ofmap_reads) / bufs.ofmap.bandwidth_words_per_cycle)
    dram_bytes = c.dram_bytes()
    bw = arch.dram.bandwidth_bytes_per_cycle
    dram = dram_bytes / bw
    latency = arch.dram.latency_cycles if dram_bytes else 0
    busy = c.compute_cycles + extra
    if bufs.double_buffered:
        total = max(busy, sram, dram) + latency + min(first_tile_bytes, dram_bytes) / bw
    else:
        total = max(busy, sram) + dram + latency
    total = int(-(-(total - 1e-6) // 1))  # whole cycles; ignore float dust from huge bandwidths
    c.total_cycles = max(total, c.compute_cycles)
    c.stall_cycles = c.total_cycles - c.compute_cycles


def gemm_formats(arch: ArchSpec, op: GemmOp) -> tuple[str, str]:
    """Formats of A and B: the op's own (from the graph) or the PE's (B of a ``matmul`` = activation).

    Raises ``ValueError`` naming the op and the pair when the PE array does not support it
    (``arch.pe.supported_pairs``).
    """
    a = op.a_format or arch.pe.activation_format
    b = op.b_format or (arch.pe.activation_format if op.b_is_activation else arch.pe.weight_format)
    if not arch.pe.supports(a, b):
        pairs = ", ".join(f"{x} x {y}" for x, y in sorted(arch.pe.pairs()))
        raise ValueError(f"op {op.name!r}: the PE array of {arch.name!r} does not support the (activation, "
                         f"weight) format pair ({a}, {b}); arch.pe.supported_pairs: {pairs}")
    return a, b


def gemm_out_format(arch: ArchSpec, op: GemmOp) -> str:
    """Stored output format: the op's, else the vector format (float epilogue) or ``pe.output_format``."""
    if op.out_format:
        return op.out_format
    return arch.vector.format if op.epilogue == "float" else arch.pe.output_format


def _format_labels(op: GemmOp, a: str, w: str, out: str) -> dict[str, str]:
    """``a_format``/``w_format``/``out_format`` columns: format plus granularity/group."""
    w_label = w
    if op.b_granularity:
        size = op.group_size if op.b_granularity in ("group", "block") else ""
        w_label = f"{w}/{op.b_granularity}{size}"
    elif op.group_size:
        w_label = f"{w}/group{op.group_size}"
    return {"a_format": a + ("/token" if op.a_dynamic else ""), "w_format": w_label + ("/token" if op.b_dynamic
                                                                                       else ""),
            "out_format": out + ("/float-epilogue" if op.epilogue == "float" else "")}


def gemm_counts(arch: ArchSpec, op: GemmOp, mode: str | None = None, *, epilogue_bits: float = 0.0,
                out_to_dram: bool = True, orders: tuple[str, ...] | None = None) -> OpCounts:
    """Counts and cycles of one GEMM op (``op.count`` repetitions) on ``arch``, at the op's own formats.

    ``scalesim``/``tile`` modes and ``pipelined`` with ``mapper: folds`` use the fold model above;
    ``pipelined`` with ``mapper: search`` (the default) the tiling mapper of :mod:`hwsim.perf.mapper`.
    ``epilogue_bits``/``out_to_dram`` describe a fused epilogue, ``orders`` restricts the loop orders
    (:class:`hwsim.perf.mapper.MapperProblem`; mapper only).
    """
    mode = mode or arch.timing_mode
    a_name, w_name = gemm_formats(arch, op)
    out_name = gemm_out_format(arch, op)
    a, o = format_info(a_name), format_info(out_name)
    fm = map_gemm(op.m, op.k, op.n, arch.array.rows, arch.array.cols, arch.array.dataflow)
    c = OpCounts(name=op.name, kind=op.kind, m=op.m, k=op.k, n=op.n, count=op.count, macs=op.macs,
                 row_folds=fm.row_folds, col_folds=fm.col_folds,
                 ifmap_bits=a.storage_bits, weight_bits=weight_storage_bits(w_name, op.group_size),
                 psum_bits=arch.pe.accumulator_bits, out_bits=o.storage_bits,
                 **_format_labels(op, a_name, w_name, out_name))
    c.mapping_efficiency = scalesim_utilizations(fm)[0]
    if mode == "pipelined" and arch.mapper == "search":
        _mapped_counts(arch, op, c, epilogue_bits, out_to_dram, orders)
    else:
        c.compute_cycles = compute_cycles(fm, mode)
        for key, words in sram_words(fm, op.m, op.k, op.n, mode).items():
            setattr(c, f"sram_{key}", words)
        c.sram_psum_writes = op.m * op.n * (fm.folds_of("K") - 1)
        _dram_traffic(arch, fm, op, c)
    work = side_work(op)
    for key, value in vars(work).items():
        setattr(c, key, value)
    requant_extra = side_cycles(arch, work, c.compute_cycles)
    first = (min(op.k, fm.rows) * min(op.n, fm.cols) * c.weight_bits
             + min(op.m, fm.rows) * min(op.k, fm.rows) * c.ifmap_bits) / 8  # the first fold's operands
    _finish_cycles(arch, c, first, requant_extra)
    return _repeat(c, op.count)


def mapper_problem(arch: ArchSpec, op: GemmOp, c: OpCounts, epilogue_bits: float = 0.0, out_to_dram: bool = True,
                   orders: tuple[str, ...] | None = None):
    """The :class:`hwsim.perf.mapper.MapperProblem` of one GEMM on ``arch`` (operand widths from ``c``)."""
    from hwsim.perf.energy import load_energy_table
    from hwsim.perf.mapper import ORDERS, MapperProblem

    bufs = arch.buffers
    table = load_energy_table(arch.energy_table)
    return MapperProblem(
        m=op.m, k=op.k, n=op.n, a_bits=c.ifmap_bits, b_bits=c.weight_bits, acc_bits=c.psum_bits,
        out_bits=c.out_bits, rows=arch.array.rows, cols=arch.array.cols, dataflow=arch.array.dataflow,
        capacity_bits=tuple(bufs.of(x).size_bits for x in OPERANDS), unified=bufs.unified,
        double_buffered=bufs.double_buffered, dram_bytes_per_cycle=arch.dram.bandwidth_bytes_per_cycle,
        sram_words_per_cycle=tuple(bufs.of(x).bandwidth_words_per_cycle for x in OPERANDS),
        sram_pj_per_bit=table.per_bit("sram"), dram_pj_per_bit=table.per_bit("dram"),
        objective=arch.mapper_objective, epilogue_bits=epilogue_bits, out_to_dram=out_to_dram,
        orders=orders or ORDERS)


def _mapped_counts(arch: ArchSpec, op: GemmOp, c: OpCounts, epilogue_bits: float = 0.0,
                   out_to_dram: bool = True, orders: tuple[str, ...] | None = None) -> None:
    """Fill ``c`` from the mapper's best mapping."""
    from hwsim.perf.mapper import best_mapping

    problem = mapper_problem(arch, op, c, epilogue_bits, out_to_dram, orders)
    mp = best_mapping(problem)
    c.mapping_tiles = mp.tiles_of(problem)
    c.mapping_n_tiles = cdiv(op.n, mp.tn)
    c.mapping = mp.describe()
    c.mapping_fits = mp.fits
    c.compute_cycles = mp.compute_cycles
    for key in ("sram_ifmap_reads", "sram_weight_reads", "sram_ofmap_writes", "sram_ofmap_reads",
                "dram_ifmap_reads", "dram_weight_reads", "dram_ofmap_writes", "dram_psum_writes",
                "dram_psum_reads"):
        setattr(c, key, getattr(mp, key))
    c.sram_psum_writes = mp.sram_ofmap_reads


def _repeat(c: OpCounts, count: int) -> OpCounts:
    if count == 1:
        return c
    for key in ("compute_cycles", "stall_cycles", "total_cycles", "sram_ifmap_reads", "sram_weight_reads",
                "sram_ofmap_writes", "sram_ofmap_reads", "sram_psum_writes", "dram_ifmap_reads", "dram_weight_reads",
                "dram_ofmap_writes", "dram_psum_writes", "dram_psum_reads", "requant_elements",
                "norm_elements", "norm_rows", "norm_adds", "norm_mults", "norm_shifts", "norm_divides",
                "norm_requants", "vector_adds", "vector_mults", "quant_adds", "quant_mults", "epilogue_adds",
                "epilogue_mults", "elements"):
        setattr(c, key, getattr(c, key) * count)
    return c


def _resident_traffic(arch: ArchSpec, c: OpCounts, elements: int, bits: int, reads: int, inputs: int = 1) -> None:
    """SRAM/DRAM words of a unit op over ``elements`` activations: DRAM only if they do not fit
    (then each of its ``inputs`` input tensors is read and its output written once)."""
    c.sram_ifmap_reads = reads
    c.sram_ofmap_writes = elements
    if elements * bits > _capacity_bits(arch, "ifmap"):
        c.dram_ifmap_reads = elements * inputs
        c.dram_ofmap_writes = elements


def int_norm_cycles(rows: int, cols: int, kind: str, unit) -> int:
    """Cycles of ``rows`` rows on the integer norm unit ``unit`` (module docstring, "Norm unit")."""
    divides = norm_op_counts(cols, kind, newton_iterations=unit.newton_iterations)["div"]
    spec = IntNormSpec(lanes=unit.lanes, div_latency=unit.div_latency, newton_iterations=unit.newton_iterations,
                       pipeline=unit.latency)
    if not unit.overlap_rows:  # the generated RTL unit (hwsim.rtl.norm_unit): rows one after another
        return rows * int_norm_interval(cols, kind, lanes=unit.lanes, div_latency=unit.div_latency,
                                        newton_iterations=unit.newton_iterations) + unit.latency
    # interval = max(stream, divides * div_latency / dividers), kept as a fraction over `dividers`
    interval_num = max(INT_NORM_PASSES[kind] * cdiv(cols, unit.lanes) * unit.dividers,
                       divides * unit.div_latency)
    return spec.latency(cols, kind) + cdiv((rows - 1) * interval_num, unit.dividers)


def norm_counts(arch: ArchSpec, op: NormOp) -> OpCounts:
    """LayerNorm/RMSNorm on the norm unit (integer or float arithmetic; module docstring)."""
    a = format_info(arch.pe.activation_format)
    unit = arch.layernorm
    c = OpCounts(name=op.name, kind=op.kind, m=op.rows, n=op.cols, count=op.count, elements=op.rows * op.cols,
                 ifmap_bits=a.storage_bits, out_bits=a.storage_bits, psum_bits=arch.pe.accumulator_bits)
    c.norm_elements = c.elements
    c.norm_rows = op.rows
    c.norm_arithmetic = unit.arithmetic
    if unit.arithmetic == "integer":
        per_row = norm_op_counts(op.cols, op.kind, newton_iterations=unit.newton_iterations)
        c.norm_newton_iterations = unit.newton_iterations
        c.norm_adds = op.rows * per_row["add"]
        c.norm_mults = op.rows * per_row["mult"]
        c.norm_shifts = op.rows * per_row["shift"]
        c.norm_divides = op.rows * per_row["div"]
        c.norm_requants = op.rows * per_row["requant"]
        c.compute_cycles = int_norm_cycles(op.rows, op.cols, op.kind, unit)
        passes = INT_NORM_PASSES[op.kind]
    else:
        c.compute_cycles = unit.passes * op.rows * cdiv(op.cols, unit.lanes) + unit.latency
        passes = unit.passes
    _resident_traffic(arch, c, c.elements, a.storage_bits, c.elements * passes)
    _finish_cycles(arch, c, 0.0, 0)
    return _repeat(c, op.count)


def vector_counts(arch: ArchSpec, op: VectorOp) -> OpCounts:
    """Softmax / element-wise op on the vector unit: ``ops_per_cycle`` adds or multiplies per cycle.

    With ``op.int_units`` (fixed-point mode) the integer units are counted instead
    (:mod:`hwsim.perf.int_units`: arithmetic at ``ops_per_cycle``, table reads and divider bits per lane).
    """
    a = format_info(arch.pe.activation_format)
    unit = arch.vector
    adds, mults = VECTOR_RECIPES[op.kind]
    c = OpCounts(name=op.name, kind=op.kind, count=op.count, elements=op.elements,
                 ifmap_bits=a.storage_bits, out_bits=a.storage_bits, psum_bits=arch.pe.accumulator_bits)
    if op.int_units:
        _int_unit_counts(c, op, unit)
    else:
        c.compute_cycles = int(-(-(op.elements * (adds + mults)) // unit.throughput)) + unit.latency
        c.vector_adds = op.elements * adds
        c.vector_mults = op.elements * mults
    reads = op.elements * op.input_tensors
    _resident_traffic(arch, c, op.elements, a.storage_bits, reads, op.input_tensors)
    _finish_cycles(arch, c, 0.0, 0)
    return _repeat(c, op.count)


def _int_unit_counts(c: OpCounts, op: VectorOp, unit) -> None:
    from dataclasses import replace as _replace

    from hwsim.perf.int_units import units_label

    units = tuple(_replace(x, count=x.count * op.count) for x in op.int_units)
    arith = sum(x.count for x in op.int_units if x.op in ("add", "mult"))
    luts = sum(x.count for x in op.int_units if x.op == "lut")
    div_bits = sum(x.count * x.b_bits for x in op.int_units if x.op == "div")
    c.compute_cycles = (int(-(-arith // unit.throughput)) + cdiv(luts, unit.lanes) + cdiv(div_bits, unit.lanes)
                        + unit.latency)
    c.vector_adds = sum(x.count for x in op.int_units if x.op == "add")
    c.vector_mults = sum(x.count for x in op.int_units if x.op == "mult")
    c.int_units, c.int_units_label, c.lut_bytes = units, units_label(op.int_units), op.lut_bytes


def requant_counts(arch: ArchSpec, op: VectorOp) -> OpCounts:
    """A standalone ``requant`` op on the requant unit: ``ceil(elements/lanes) + latency`` cycles."""
    a = format_info(arch.pe.activation_format)
    c = OpCounts(name=op.name, kind=op.kind, count=op.count, elements=op.elements,
                 ifmap_bits=arch.pe.accumulator_bits, out_bits=a.storage_bits, psum_bits=arch.pe.accumulator_bits)
    c.compute_cycles = cdiv(op.elements, arch.requant.lanes) + arch.requant.latency
    c.requant_elements = op.elements
    _resident_traffic(arch, c, op.elements, a.storage_bits, op.elements)
    _finish_cycles(arch, c, 0.0, 0)
    return _repeat(c, op.count)


def memory_counts(arch: ArchSpec, op: MemoryOp) -> OpCounts:
    """KV-cache write (DRAM writes) or embedding gather (DRAM reads) through the vector unit's lanes."""
    a = format_info(arch.pe.activation_format)
    default_bits = a.storage_bits if op.kind == "kv_write" else format_info(arch.pe.weight_format).storage_bits
    bits = op.bits or default_bits
    c = OpCounts(name=op.name, kind=op.kind, count=op.count, elements=op.elements, ifmap_bits=bits,
                 out_bits=bits, psum_bits=arch.pe.accumulator_bits)
    c.compute_cycles = cdiv(op.elements, arch.vector.lanes) + arch.vector.latency
    if op.kind == "kv_write":
        c.sram_ifmap_reads = op.elements
        c.dram_ofmap_writes = op.elements
    else:
        c.dram_ifmap_reads = op.elements
        c.sram_ofmap_writes = op.elements
    _finish_cycles(arch, c, 0.0, 0)
    return _repeat(c, op.count)


def op_counts(arch: ArchSpec, op, mode: str | None = None) -> OpCounts:
    """Dispatch on the op type."""
    if isinstance(op, GemmOp):
        return gemm_counts(arch, op, mode)
    if isinstance(op, NormOp):
        if op.kind not in NORM_RECIPES:
            raise ValueError(f"op {op.name!r}: norm kind must be one of {sorted(NORM_RECIPES)}, not {op.kind!r}")
        return norm_counts(arch, op)
    if isinstance(op, VectorOp):
        if op.kind == "requant":
            return requant_counts(arch, op)
        if op.kind not in VECTOR_RECIPES:
            raise ValueError(f"op {op.name!r}: vector kind must be one of {sorted(VECTOR_RECIPES)}, "
                             f"not {op.kind!r}")
        return vector_counts(arch, op)
    if isinstance(op, MemoryOp):
        if op.kind not in MEMORY_KINDS:
            raise ValueError(f"op {op.name!r}: memory kind must be one of {sorted(MEMORY_KINDS)}, not {op.kind!r}")
        return memory_counts(arch, op)
    raise TypeError(f"expected a GemmOp, NormOp, VectorOp or MemoryOp, not {op!r}")
