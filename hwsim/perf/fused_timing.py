"""Counts, cycles and energy of a fused group (:class:`hwsim.perf.fusion.FusedOp`).

Each member keeps its own counts (:class:`~hwsim.perf.timing.OpCounts`, the *parts*): its MACs,
vector/requant work and SRAM traffic as unfused, with the DRAM traffic of the tensors that stay on
chip removed (and, for attention, the tiled traffic of :mod:`hwsim.perf.flash_attention`):

    epilogue   the GEMM mapped with the epilogue's tile space and no DRAM write of its output; each
               element-wise op reads from DRAM only its streamed operands (``dram_inputs`` x elements)
               and writes only the chain's last output; a KV-cache write keeps its DRAM write. An
               element-wise op whose tensors fit the SRAM unfused (no DRAM traffic) stays so.
    attention  :func:`hwsim.perf.flash_attention.attention_parts` with the chosen tile
    rowwise    the element-wise op reads its inputs and writes its output (if read elsewhere) as
               unfused; the norm reads nothing from DRAM and writes its output
    block      the projections' epilogue parts and the attention parts (SRAM split between them)

The group's row sums the parts' counts; its cycles are :func:`hwsim.perf.pipeline.pipeline_cycles`
over the group's tiles (the GEMM mapping's SRAM tiles, or the attention's query x key blocks); its
energy is the sum of the parts' energies, each at its own formats (:func:`part_energy`).
"""

from __future__ import annotations

from hwsim.perf.arch import ArchSpec
from hwsim.perf.energy import EnergyBreakdown, op_energy, sram_factors
from hwsim.perf.flash_attention import attention_parts
from hwsim.perf.pipeline import pipeline_cycles
from hwsim.perf.timing import OpCounts, gemm_counts, gemm_formats, op_counts
from hwsim.perf.workload import GemmOp

#: loop orders of a head-pipelined block's projections: output-column (head) blocks outermost
N_OUTER = ("nmk", "nkm")
#: count fields a group's row sums over its parts
SUMMED = ("macs", "elements", "sram_ifmap_reads", "sram_weight_reads", "sram_ofmap_writes", "sram_ofmap_reads",
          "sram_psum_writes", "dram_ifmap_reads", "dram_weight_reads", "dram_ofmap_writes", "dram_psum_writes",
          "dram_psum_reads", "requant_elements", "norm_elements", "norm_rows", "norm_adds", "norm_mults",
          "norm_shifts", "norm_divides", "norm_requants", "vector_adds", "vector_mults", "quant_adds",
          "quant_mults", "epilogue_adds", "epilogue_mults", "lut_bytes", "skipped_macs", "masked_macs")


def part_energy(arch: ArchSpec, table, counts: OpCounts, op) -> EnergyBreakdown:
    """Energy of one op's counts at its formats (a GEMM's own, else the PE defaults)."""
    a_fmt, w_fmt = gemm_formats(arch, op) if isinstance(op, GemmOp) else (arch.pe.activation_format,
                                                                          arch.pe.weight_format)
    return op_energy(counts, a_format=a_fmt, w_format=w_fmt, accumulator_bits=arch.pe.accumulator_bits,
                     multiplier_bits=arch.requant.multiplier_bits, vector_format=arch.vector.format, table=table,
                     sram_factors=sram_factors(arch))


def epilogue_parts(arch: ArchSpec, op, orders: tuple[str, ...] | None = None) -> tuple[list[OpCounts], int]:
    """``(parts, tiles)`` of a fused GEMM epilogue (module docstring); ``orders`` restricts the mapper."""
    g = gemm_counts(arch, op.gemm, epilogue_bits=op.epilogue_bits, out_to_dram=False, orders=orders)
    parts = [g]
    for w, side, escapes in zip(op.ops, op.dram_inputs, op.escapes, strict=True):
        c = op_counts(arch, w)
        if c.kind != "kv_write" and (c.dram_ifmap_reads or c.dram_ofmap_writes):
            c.dram_ifmap_reads = c.elements * side
            c.dram_ofmap_writes = c.elements if escapes else 0
            c.total_cycles = c.stall_cycles = 0  # priced by the group
        parts.append(c)
    return parts, max(1, g.mapping_tiles) * op.gemm.count


def scaled_sram(arch: ArchSpec, fraction: float) -> ArchSpec:
    """``arch`` with every buffer's capacity times ``fraction`` (a share of the SRAM)."""
    from dataclasses import replace

    bufs = arch.buffers
    return arch.with_(buffers=replace(bufs, **{x: replace(bufs.of(x), size_kib=bufs.of(x).size_kib * fraction)
                                               for x in ("ifmap", "weight", "ofmap")}))


def projection_parts(arch: ArchSpec, subs, split: float) -> tuple[list[OpCounts], int, list]:
    """``(parts, column blocks, workload ops)`` of a block's projections mapped ``n``-outermost in
    ``split`` of the SRAM."""
    proj_arch = scaled_sram(arch, split)
    parts, wops, blocks = [], [], 1
    for unit in subs:
        if isinstance(unit, GemmOp):
            ps, ws = [gemm_counts(proj_arch, unit, orders=N_OUTER)], [unit]
        else:
            ps, _ = epilogue_parts(proj_arch, unit, orders=N_OUTER)
            ws = [unit.gemm, *unit.ops]
        parts += ps
        wops += ws
        blocks = max(blocks, ps[0].mapping_n_tiles)
    return parts, blocks, wops


def block_parts(arch: ArchSpec, op) -> tuple[list[OpCounts], int, list]:
    """Head-pipelined attention block: the projections mapped ``n``-outermost in ``op.sram_split`` of
    the SRAM, the attention tiles in the rest (module docstring of :mod:`hwsim.perf.fusion`)."""
    parts, blocks, wops = projection_parts(arch, op.subs, op.sram_split)
    att = op.attention
    qk, sm, pv = att.ops
    att_arch = scaled_sram(arch, 1.0 - op.sram_split)
    aparts, _ = attention_parts(att_arch, att.shape, att.tile, gemm_counts(arch, qk), op_counts(arch, sm),
                                gemm_counts(arch, pv))
    return parts + list(aparts), blocks, wops + list(att.ops)


def rowwise_parts(arch: ArchSpec, op) -> tuple[list[OpCounts], int]:
    """``(parts, tiles)`` of an element-wise op and the norm reading its output on chip."""
    parts = []
    for w, side, escapes in zip(op.ops, op.dram_inputs, op.escapes, strict=True):
        c = op_counts(arch, w)
        if c.dram_ifmap_reads or c.dram_ofmap_writes:
            c.dram_ifmap_reads = c.elements * side
            c.dram_ofmap_writes = c.elements if escapes else 0
        parts.append(c)
    norm = op.ops[1]
    return parts, -(-norm.rows * norm.count // op.rows_per_tile)


def group_parts(arch: ArchSpec, op) -> tuple[list[OpCounts], int, list]:
    """``(parts, tiles, workload ops of the parts)`` of fused group ``op``."""
    if op.kind == "rowwise":
        parts, tiles = rowwise_parts(arch, op)
        return parts, tiles, list(op.ops)
    if op.kind == "block":
        return block_parts(arch, op)
    if op.kind == "attention":
        qk, sm, pv = op.ops
        parts, tiles = attention_parts(arch, op.shape, op.tile, gemm_counts(arch, qk), op_counts(arch, sm),
                                       gemm_counts(arch, pv))
        return list(parts), tiles, list(op.ops)
    parts, tiles = epilogue_parts(arch, op)
    return parts, tiles, [op.gemm, *op.ops]


def fused_cycles(arch: ArchSpec, op) -> int:
    """Total cycles of fused group ``op`` (:func:`hwsim.perf.pipeline.pipeline_cycles`)."""
    parts, tiles, _ = group_parts(arch, op)
    return pipeline_cycles(arch, parts, tiles)[0]


def fused_counts(arch: ArchSpec, op, table) -> tuple[OpCounts, EnergyBreakdown]:
    """The row (summed counts, pipelined cycles) and energy of fused group ``op``."""
    parts, tiles, wops = group_parts(arch, op)
    anchor = parts[0]
    row = OpCounts(name=op.name, kind="fused", m=anchor.m, k=anchor.k, n=anchor.n, count=anchor.count,
                   row_folds=anchor.row_folds, col_folds=anchor.col_folds,
                   mapping_efficiency=anchor.mapping_efficiency, ifmap_bits=anchor.ifmap_bits,
                   weight_bits=anchor.weight_bits, psum_bits=anchor.psum_bits, out_bits=anchor.out_bits,
                   a_format=anchor.a_format, w_format=anchor.w_format, out_format=parts[-1].out_format)
    for key in SUMMED:
        setattr(row, key, sum(getattr(p, key) for p in parts))
    row.mapping = " | ".join(dict.fromkeys(p.mapping for p in parts if p.mapping))
    row.mapping_fits = all(p.mapping_fits for p in parts)
    row.mapping_tiles = tiles
    row.int_units = tuple(u for p in parts for u in p.int_units)
    row.int_units_label = " ".join(dict.fromkeys(t for p in parts for t in p.int_units_label.split()))
    row.fused_ops = "+".join(op.members)
    row.fusion = op.kind
    row.parts = tuple(parts)
    row.total_cycles, row.compute_cycles = pipeline_cycles(arch, parts, tiles)
    row.stall_cycles = row.total_cycles - row.compute_cycles
    energy = EnergyBreakdown()
    for part, w in zip(parts, wops, strict=True):
        energy = energy + part_energy(arch, table, part, w)
    return row, energy
