"""Per-MAC energy of the PE from one rule: proportional to the synthesised PE area.

Rule (switched capacitance ~ gate count at equal activity; one calibration point)::

    E_mac(a, w) = E_ref * area(a x w) / area(int8 x int8)        for a PE pair the RTL synthesises
    E_ref       = int_mult * 8 * 8 / 32**2 + int_add * 32 / 32      the lecture's 45 nm 32-bit integer
                = 3.1 * 64 / 1024 + 0.1 = 0.294 pJ                   multiply and add entries, scaled by width
                                                                    (one 8x8 multiply + one 32-bit accumulate)
    other pairs: E_mac(a, w) = mult(a, w) + int_add(accumulator_bits)    (the table's width rule, which
                                                                    equals E_ref at int8 x int8)

``area`` is the NAND2-equivalent of the whole PE (multiplier, alignment, accumulator, registers) from
``hwsim rtl area`` (:mod:`hwsim.rtl.area`), shipped as ``hwsim/data/pe_area_45nm.yaml`` so hwsim never
imports the RTL at run time. The pair is unordered (``int8`` activations x ``int4`` weights use the
``int4xint8`` PE). The synthesised PE's accumulator is the one the area was measured with (32 bits for
integer pairs, the exact accumulator for float pairs), whatever ``accumulator_bits`` the architecture
states. The lecture's 32-bit float entries enter through the width rule of the pairs without a
synthesised PE and through the vector/norm units; :func:`mac_energy_rows` puts both rules side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hwsim.perf.config_checks import Checker, load_yaml_mapping
from hwsim.perf.format_info import FormatInfo, format_info

_AREA_PATH = Path(__file__).resolve().parent.parent / "data" / "pe_area_45nm.yaml"
REFERENCE_PAIR = ("int8", "int8")
REFERENCE_ACC_BITS = 32


@dataclass(frozen=True)
class PEArea:
    """One synthesised PE: operand formats, accumulator width and NAND2-equivalent area."""

    config: str
    a: str
    b: str
    accumulator_bits: int
    nand2_eq: float


@cache
def pe_areas(path: str = str(_AREA_PATH)) -> dict[frozenset, PEArea]:
    """The PE area table keyed by the unordered format pair (``frozenset({"int4", "int8"})``)."""
    data = load_yaml_mapping(path, what="pe areas")
    ck = Checker(path)
    top = ck.mapping(data, "pe_areas", ("version", "reference", "pes"))
    pes = ck.mapping(top.get("pes"), "pe_areas.pes", tuple(top.get("pes") or ()))
    out = {}
    for name, raw in pes.items():
        where = f"pe_areas.pes.{name}"
        sec = ck.mapping(raw, where, ("a", "b", "accumulator_bits", "nand2_eq"))
        entry = PEArea(name, ck.string(sec, "a", where), ck.string(sec, "b", where),
                       ck.integer(sec, "accumulator_bits", where), ck.number(sec, "nand2_eq", where, strict=True))
        out[frozenset((entry.a, entry.b))] = entry
    if frozenset(REFERENCE_PAIR) not in out:
        ck.add("pe_areas.pes", "the int8 x int8 reference PE is missing")
    ck.raise_if_any()
    return out


def reference_mac_pj(table) -> float:
    """E_ref: one int8 x int8 multiply + one 32-bit accumulate under the width rule of ``table`` (pJ)."""
    i8 = format_info("int8")
    return table.mult_pj(i8, i8) + table.int_add_pj(REFERENCE_ACC_BITS)


def width_rule_pj(table, a: FormatInfo, w: FormatInfo, accumulator_bits: int) -> float:
    """The table's width rule: one multiply of ``a x w`` plus one accumulate of ``accumulator_bits`` (pJ)."""
    return table.mult_pj(a, w) + table.int_add_pj(accumulator_bits)


def mac_pj(table, a_format: str, w_format: str, accumulator_bits: int) -> float:
    """Energy of one MAC in the PE (pJ) by the module's rule."""
    pe = pe_areas().get(frozenset((a_format, w_format)))
    if pe is None:
        return width_rule_pj(table, format_info(a_format), format_info(w_format), accumulator_bits)
    return reference_mac_pj(table) * pe.nand2_eq / pe_areas()[frozenset(REFERENCE_PAIR)].nand2_eq


def mac_energy_rows(table) -> list[dict]:
    """Each synthesised PE: area, area ratio, the rule's pJ/MAC and the width rule's, side by side."""
    ref = pe_areas()[frozenset(REFERENCE_PAIR)].nand2_eq
    rows = []
    for pe in pe_areas().values():
        a, b = format_info(pe.a), format_info(pe.b)
        rows.append({"pe": pe.config, "nand2_eq": pe.nand2_eq, "area_vs_int8": pe.nand2_eq / ref,
                     "mac_pj": mac_pj(table, pe.a, pe.b, pe.accumulator_bits),
                     "width_rule_pj": width_rule_pj(table, a, b, pe.accumulator_bits)})
    return rows
