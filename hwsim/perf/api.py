"""Python API of the performance/energy model: ``simulate(workload, arch) -> RunResult``.

>>> from hwsim.perf.api import simulate
>>> from hwsim.perf.workload import GemmOp
>>> r = simulate([GemmOp(name="fc", m=128, k=384, n=384)], None)
>>> r.to_frame().loc[0, "macs"]
np.int64(18874368)
"""

from __future__ import annotations

import logging

from hwsim.perf.arch import ArchSpec, arch_warnings, as_arch, resolved_arch, resolved_arch_lines
from hwsim.perf.energy import EnergyTable, load_energy_table
from hwsim.perf.fused_timing import fused_counts, part_energy
from hwsim.perf.fusion import FusedOp, fuse_workload
from hwsim.perf.results import LayerResult, RunResult
from hwsim.perf.sources import as_workload, default_graph
from hwsim.perf.timing import op_counts

_LOG = logging.getLogger("hwsim.perf")


def energy_table_for(arch: ArchSpec) -> EnergyTable:
    """The arch's energy table with its ``technology_scale`` applied."""
    return load_energy_table(arch.energy_table).scaled(arch.technology_scale)


def evaluate_op(op, arch: ArchSpec, table: EnergyTable, mode: str | None = None) -> LayerResult:
    """Counts, cycles and energy of one op (the per-layer evaluation the benchmark times)."""
    if isinstance(op, FusedOp):
        counts, energy = fused_counts(arch, op, table)
    else:
        counts = op_counts(arch, op, mode)
        energy = part_energy(arch, table, counts, op)
    return LayerResult(counts, energy, arch.array.rows * arch.array.cols, arch.clock_mhz)


def simulate(workload=None, arch=None, *, mode: str | None = None, energy_table=None) -> RunResult:
    """Run every op of ``workload`` on ``arch``.

    Parameters
    ----------
    workload : Workload, list of ops, mapping, YAML/CSV path, hwsim Graph, or None (packaged default)
    arch : ArchSpec, mapping, YAML path, or None (packaged default)
    mode : {"pipelined", "scalesim"}, optional
        Overrides ``arch.timing_mode``.

    A graph workload (and the default) goes through the fusion pass (:mod:`hwsim.perf.fusion`; on for
    ``pipelined`` timing with the mapper unless ``arch.timing.fusion`` is false); the plan is
    ``summary()["fusion"]``.
    energy_table : EnergyTable or path, optional
        Overrides the arch's table (the arch's technology scale still applies).
    """
    arch = as_arch(arch)
    if mode is not None and mode not in ("pipelined", "scalesim"):
        raise ValueError(f"mode must be 'pipelined' or 'scalesim', not {mode!r}")
    if workload is None:
        workload = default_graph()
    plan = None
    if hasattr(workload, "ops") and hasattr(workload, "tensors"):
        wl, plan = fuse_workload(workload, arch, mode)
    else:
        wl = as_workload(workload)
    if energy_table is None:
        table = energy_table_for(arch)
    elif isinstance(energy_table, EnergyTable):
        table = energy_table.scaled(arch.technology_scale)
    else:
        table = load_energy_table(energy_table).scaled(arch.technology_scale)
    result = RunResult(arch.name, wl.name, arch.array.dataflow, mode or arch.timing_mode, arch.array.rows,
                       arch.array.cols, arch.clock_mhz, arch_resolved=resolved_arch(arch))
    result.warnings.extend(arch_warnings(arch))
    if plan is not None:
        result.extra["fusion"] = plan.to_dict()
    if _LOG.isEnabledFor(logging.DEBUG):
        _LOG.debug("resolved architecture:\n  %s", "\n  ".join(resolved_arch_lines(arch)))
    for op in wl.ops:
        layer = evaluate_op(op, arch, table, mode)
        result.layers.append(layer)
        result.warnings.extend(mapping_warnings(layer, table))
    for line in result.warnings:
        _LOG.warning("%s", line)
    return result


def mapping_warnings(layer: LayerResult, table: EnergyTable) -> list[str]:
    """Warnings of one GEMM: a tile that overflows the buffers; partial sums spilled to DRAM (energy share)."""
    c = layer.counts
    out = []
    if not c.mapping_fits:
        out.append(f"op {c.name!r}: no tiling fits the buffers; the smallest tile ({c.mapping}) overflows them")
    if c.dram_psum_writes:
        psum_pj = (c.dram_psum_writes + c.dram_psum_reads) * c.psum_bits * table.per_bit("dram")
        share = psum_pj / layer.energy.total if layer.energy.total else 0.0
        out.append(f"op {c.name!r}: partial sums spill to DRAM ({c.mapping or 'fold model'}); "
                   f"{100 * share:.1f} % of the op's energy")
    return out
