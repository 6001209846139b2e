"""Capacity-dependent SRAM energy/area (hwsim.perf.sram) and the area column (hwsim.perf.area)."""

from __future__ import annotations

import pytest

from hwsim.errors import ConfigError
from hwsim.perf.api import simulate
from hwsim.perf.arch import arch_from_dict, default_arch
from hwsim.perf.area import arch_area, pe_nand2
from hwsim.perf.sram import load_sram_model, sram_model_from_dict
from hwsim.perf.workload import GemmOp

OPS = [GemmOp(name="fc", m=64, k=256, n=256)]


def test_energy_points_of_the_source_are_reproduced():
    m = load_sram_model()
    assert m.access_pj(8) == pytest.approx(10.0)
    assert m.access_pj(32) == pytest.approx(20.0)
    assert m.access_pj(1024) == pytest.approx(100.0)
    assert m.energy_factor(8) == pytest.approx(1.0)
    # between the points: log-log interpolation, monotone
    assert 20.0 < m.access_pj(256) < 100.0
    assert m.access_pj(4) < m.access_pj(8) and m.access_pj(2048) > 100.0


def test_area_is_bitcells_over_efficiency():
    m = load_sram_model()
    assert m.area_mm2(1024) == pytest.approx(1024 * 8192 * 0.346 / 0.7 * 1e-6)


def test_bad_model_names_key_paths():
    with pytest.raises(ConfigError) as info:
        sram_model_from_dict({"energy_points_kib_pj": [[8, 10]], "bitcell_um2": -1, "array_efficiency": 2,
                              "nand2_um2": 1})
    text = str(info.value)
    assert "sram.energy_points_kib_pj" in text and "sram.bitcell_um2" in text and "sram.array_efficiency" in text


def _arch(sram: str, kib: float):
    return arch_from_dict({"array": {"rows": 16, "cols": 16},
                           "buffers": {x: {"size_kib": kib} for x in ("ifmap", "weight", "ofmap")},
                           "energy": {"sram": sram}})


def test_energy_model_uses_the_capacity_factor_per_buffer():
    flat = simulate(OPS, _arch("flat", 256)).layers[0].energy
    cap = simulate(OPS, _arch("capacity", 256)).layers[0].energy
    factor = load_sram_model().energy_factor(256)
    assert cap.sram_weight == pytest.approx(flat.sram_weight * factor)
    assert cap.sram_ifmap == pytest.approx(flat.sram_ifmap * factor)
    assert cap.mac == flat.mac and cap.dram_weight == flat.dram_weight
    # 8 KiB buffers are the table's own point: capacity == flat there for SRAM energy per access
    assert load_sram_model().energy_factor(8) == pytest.approx(1.0)


def test_default_arch_keeps_flat_sram_energy():
    assert default_arch().sram_energy == "flat"
    with pytest.raises(ConfigError) as info:
        arch_from_dict({"array": {"rows": 4, "cols": 4}, "energy": {"sram": "cacti"}})
    assert "arch.energy.sram" in str(info.value)


def test_area_uses_the_synthesised_pe_of_each_pair():
    arch = _arch("flat", 64)
    int8 = arch_area(arch, {("int8", "int8")})
    fp4 = arch_area(arch, {("float4_e2m1fn", "float4_e2m1fn")})
    both = arch_area(arch, {("int8", "int8"), ("float8_e4m3fn", "float8_e4m3fn")})
    assert int8["pe_nand2"] == 1894.0 and fp4["pe_nand2"] == 981.0 and both["pe_nand2"] == 2529.0
    assert int8["area_array_mm2"] == pytest.approx(256 * 1894.0 * 0.798e-6)
    assert int8["area_sram_mm2"] == pytest.approx(3 * load_sram_model().area_mm2(64))
    assert pe_nand2("int8", "int4") == pe_nand2("int4", "int8") == pytest.approx(1418.7)
