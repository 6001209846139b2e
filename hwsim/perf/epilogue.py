"""The work around a GEMM that is not multiply-accumulate: operand quantization and output epilogues.

Each rule charges the unit that does the work (all counts per repetition of the op)::

    per-token activation   A[M,K] quantized at run time with one scale per row: a row-amax reduction
    (a_dynamic; b_dynamic  (one compare, counted as an add, per element) and a scale multiply per
    for a matmul's B)      element, on the vector unit, before the array starts (the row must be
                           complete before its scale is known): quant_adds = quant_mults = M*K
    group / MX weights     one exact accumulator per output and group of ``g`` along K, combined by
    (group_size = g)       the vector unit: per output and group one scale multiply and one add:
                           epilogue_mults = epilogue_adds = M*N*ceil(K/g)
    float epilogue         output without a QuantSpec on a quantized op: one dequantization multiply
    (epilogue = float)     per output on the vector unit: epilogue_mults += M*N
    requant                output with a QuantSpec (integer or float format), or an unquantized op
    (epilogue = requant)   priced at the PE defaults: the requant unit, requant_elements = M*N

The epilogue units stream the array's drain: with ``compute`` the array cycles, the op takes::

    extra = pre + sum(latency of each epilogue unit used) + max(0, max(unit cycles) - compute)
    pre   = ceil(2*M*K / vector throughput) + vector latency          (per-token operands only)
    unit cycles: vector = ceil((epilogue_adds + epilogue_mults) / throughput), requant = ceil(M*N / lanes)

With no per-token operand, group or float epilogue this is today's requant rule
(``latency + max(0, ceil(M*N/lanes) - compute)``). The group partial accumulators are taken from the
array drain; their SRAM traffic is the partial-sum traffic of the fold model. Energy: quantization and
epilogue adds/multiplies at the vector format (``energy.act_quant``, ``energy.epilogue``), requant with
the requant recipe (:mod:`hwsim.perf.energy`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.perf.arch import ArchSpec
from hwsim.perf.workload import GemmOp

EPILOGUES = ("requant", "float")


def _cdiv(a: int, b: float) -> int:
    return int(-(-a // b))


@dataclass(frozen=True)
class SideWork:
    """Non-MAC work of one GEMM repetition (counts in the module docstring)."""

    quant_adds: int = 0
    quant_mults: int = 0
    epilogue_adds: int = 0
    epilogue_mults: int = 0
    requant_elements: int = 0


def side_work(op: GemmOp) -> SideWork:
    """Operand-quantization and epilogue counts of one repetition of ``op``."""
    if op.epilogue not in EPILOGUES:
        raise ValueError(f"op {op.name!r}: epilogue must be one of {list(EPILOGUES)}, not {op.epilogue!r}")
    m, k, n = op.m, op.k, op.n
    quant = (m * k if op.a_dynamic else 0) + (k * n if op.b_dynamic else 0)
    groups = -(-k // op.group_size) if op.group_size else 0
    float_mults = m * n if op.epilogue == "float" else 0
    return SideWork(quant_adds=quant, quant_mults=quant, epilogue_adds=m * n * groups,
                    epilogue_mults=m * n * groups + float_mults,
                    requant_elements=m * n if op.epilogue == "requant" else 0)


def side_cycles(arch: ArchSpec, work: SideWork, compute_cycles: int) -> int:
    """Cycles ``work`` adds to an op whose array takes ``compute_cycles`` (module docstring)."""
    vec, rq = arch.vector, arch.requant
    pre = 0
    if work.quant_adds or work.quant_mults:
        pre = _cdiv(work.quant_adds + work.quant_mults, vec.throughput) + vec.latency
    latency, busy = 0, 0
    vector_ops = work.epilogue_adds + work.epilogue_mults
    if vector_ops:
        latency += vec.latency
        busy = max(busy, _cdiv(vector_ops, vec.throughput))
    if work.requant_elements:
        latency += rq.latency
        busy = max(busy, _cdiv(work.requant_elements, rq.lanes))
    return pre + latency + max(0, busy - compute_cycles)
