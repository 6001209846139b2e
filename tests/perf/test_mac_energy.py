"""MAC energy from the synthesised PE areas (hwsim.perf.mac_energy)."""

from pathlib import Path

import pytest
import yaml

from hwsim.perf.energy import load_energy_table
from hwsim.perf.format_info import format_info
from hwsim.perf.mac_energy import mac_energy_rows, mac_pj, pe_areas

AREA_PATH = Path(__file__).resolve().parents[2] / "hwsim" / "data" / "pe_area_45nm.yaml"


def test_rule_is_area_times_the_int8_anchor():
    table = load_energy_table()
    raw = yaml.safe_load(AREA_PATH.read_text())["pes"]
    anchor = 3.1 * 8 * 8 / 32**2 + 0.1  # lecture int mult / int add at 32 bits, scaled to 8x8 and 32
    assert mac_pj(table, "int8", "int8", 32) == pytest.approx(anchor)
    for name, pe in raw.items():
        expected = anchor * pe["nand2_eq"] / raw["int8xint8"]["nand2_eq"]
        assert mac_pj(table, pe["a"], pe["b"], pe["accumulator_bits"]) == pytest.approx(expected), name
        assert mac_pj(table, pe["b"], pe["a"], 24) == pytest.approx(expected), name  # unordered, acc as synthesised


def test_energy_order_follows_the_rtl_area_order():
    table = load_energy_table()
    rows = sorted(mac_energy_rows(table), key=lambda r: r["nand2_eq"])
    assert [r["pe"] for r in rows] == ["fp4xfp4", "int4xint8", "dint4xint8", "int8xint8", "uint8xint8",
                                        "e4m3xe4m3", "e4m3xe5m2", "e5m2xe5m2"]
    assert all(a["mac_pj"] < b["mac_pj"] for a, b in zip(rows, rows[1:], strict=False))
    e4m3 = next(r for r in rows if r["pe"] == "e4m3xe4m3")
    assert e4m3["mac_pj"] / mac_pj(table, "int8", "int8", 32) == pytest.approx(2529.0 / 1894.0)


def test_pairs_without_a_synthesised_pe_use_the_width_rule():
    table = load_energy_table()
    assert frozenset(("int4", "int4")) not in pe_areas()
    i4 = format_info("int4")
    assert mac_pj(table, "int4", "int4", 32) == pytest.approx(table.mult_pj(i4, i4) + table.int_add_pj(32))


def test_technology_scale_applies_to_the_rule():
    table = load_energy_table()
    assert mac_pj(table.scaled(0.5), "float8_e4m3fn", "float8_e4m3fn", 32) == pytest.approx(
        0.5 * mac_pj(table, "float8_e4m3fn", "float8_e4m3fn", 32))
