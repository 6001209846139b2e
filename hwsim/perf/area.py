"""Silicon area of an architecture point: PE array + SRAM buffers (mm^2, 45 nm).

::

    pe_nand2(a, w)  = synthesised PE area of the pair (hwsim/data/pe_area_45nm.yaml, NAND2 equivalents)
                      for a pair the RTL has synthesised, else the int8 x int8 PE scaled by the width
                      rule's MAC energy (:func:`hwsim.perf.mac_energy.width_rule_pj`) -- an estimate
    pe_nand2(pairs) = max over the pairs the workload multiplies (a multi-format PE is at least as
                      large as its largest mode: a lower bound)
    area_array      = rows * cols * pe_nand2(pairs) * nand2_um2 * 1e-6
    area_sram       = sum over the ifmap/weight/ofmap buffers of hwsim.perf.sram.sram_area_mm2(size_kib)
    area_mm2        = area_array + area_sram

The pairs are the (activation, weight) multiplier formats of every GEMM of the workload as
:func:`hwsim.perf.timing.gemm_formats` resolves them (a quantized graph: its recipe's formats).
Requant, norm and vector units are not included (their area is not in the data tables).
"""

from __future__ import annotations

from functools import cache

from hwsim.perf.format_info import format_info, multiplier_format
from hwsim.perf.mac_energy import REFERENCE_ACC_BITS, REFERENCE_PAIR, pe_areas, width_rule_pj
from hwsim.perf.sram import load_sram_model
from hwsim.perf.workload import GemmOp

__all__ = ["arch_area", "pe_nand2", "workload_pairs"]


@cache
def pe_nand2(a_format: str, w_format: str) -> float:
    """NAND2-equivalent area of one PE multiplying ``a_format`` by ``w_format`` (module docstring)."""
    a, w = multiplier_format(a_format), multiplier_format(w_format)
    pe = pe_areas().get(frozenset((a, w)))
    if pe is not None:
        return pe.nand2_eq
    from hwsim.perf.energy import load_energy_table

    table = load_energy_table()
    ref = pe_areas()[frozenset(REFERENCE_PAIR)]
    i8 = format_info("int8")
    scale = (width_rule_pj(table, format_info(a), format_info(w), REFERENCE_ACC_BITS)
             / width_rule_pj(table, i8, i8, REFERENCE_ACC_BITS))
    return ref.nand2_eq * scale


def workload_pairs(workload, arch) -> frozenset[tuple[str, str]]:
    """The (activation, weight) multiplier format pairs of every GEMM of ``workload`` on ``arch``."""
    from hwsim.perf.timing import gemm_formats

    return frozenset((multiplier_format(a), multiplier_format(w))
                     for a, w in (gemm_formats(arch, op) for op in workload.ops if isinstance(op, GemmOp)))


def arch_area(arch, pairs) -> dict[str, float]:
    """``area_array_mm2``, ``area_sram_mm2``, ``area_mm2`` and ``pe_nand2`` of ``arch`` for ``pairs``."""
    model = load_sram_model(arch.sram_model)
    pairs = pairs or {(arch.pe.activation_format, arch.pe.weight_format)}
    pe = max(pe_nand2(a, w) for a, w in pairs)
    array = arch.array.rows * arch.array.cols * pe * model.nand2_um2 * 1e-6
    sram = sum(model.area_mm2(arch.buffers.of(x).size_kib) for x in ("ifmap", "weight", "ofmap"))
    return {"pe_nand2": pe, "area_array_mm2": array, "area_sram_mm2": sram, "area_mm2": array + sram}
