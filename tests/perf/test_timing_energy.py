"""Timing model properties and the energy model recomputed by hand from counts and the table."""

from pathlib import Path

import pytest
import yaml

from hwsim.perf.api import simulate
from hwsim.perf.arch import arch_from_dict
from hwsim.perf.energy import EnergyBreakdown, energy_table_from_dict, load_energy_table
from hwsim.perf.timing import compute_cycles, map_gemm
from hwsim.perf.workload import GemmOp, NormOp, VectorOp

TABLE_PATH = Path(__file__).resolve().parents[2] / "hwsim" / "data" / "energy_45nm.yaml"
AREA_PATH = TABLE_PATH.with_name("pe_area_45nm.yaml")


def _arch(**over):
    base = {"array": {"rows": 16, "cols": 16, "dataflow": "ws"},
            "pe": {"weight_format": "int8", "activation_format": "int8", "accumulator_bits": 32},
            "clock_mhz": 500,
            "buffers": {"ifmap": {"size_kib": 256}, "weight": {"size_kib": 256},
                        "ofmap": {"size_kib": 128, "word_bits": 32}},
            "dram": {"bandwidth_bytes_per_cycle": 1e9, "latency_cycles": 0},
            "requant": {"lanes": 16, "latency": 0}}
    for key, val in over.items():
        if isinstance(val, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **val}
        else:
            base[key] = val
    return arch_from_dict(base)


@pytest.mark.parametrize("df", ["ws", "os", "is"])
@pytest.mark.parametrize("mkn", [(128, 384, 384), (50, 30, 70), (7, 9, 100), (300, 16, 20)])
def test_pipelined_never_slower_than_scalesim_schedule(df, mkn):
    m, k, n = mkn
    fm = map_gemm(m, k, n, 16, 8, df)
    assert compute_cycles(fm, "pipelined") <= compute_cycles(fm, "scalesim") + 1
    assert compute_cycles(fm, "pipelined") >= -(-m * k * n // (16 * 8))  # never beats the MAC bound


def test_fold_roles_follow_dataflow():
    def roles(df):
        fm = map_gemm(100, 40, 70, 16, 8, df)
        return fm.sr, fm.sc, fm.t, fm.row_folds, fm.col_folds

    assert roles("os") == (100, 70, 40, 7, 9)
    assert roles("ws") == (40, 70, 100, 3, 9)
    assert roles("is") == (40, 100, 70, 3, 13)


def test_bandwidth_stalls_and_double_buffering():
    op = [GemmOp(name="g", m=256, k=512, n=512)]
    fast = simulate(op, _arch()).layers[0].counts
    slow_arch = _arch(dram={"bandwidth_bytes_per_cycle": 1.0})
    slow = simulate(op, slow_arch).layers[0].counts
    assert fast.stall_cycles == 0 and slow.stall_cycles > 0
    assert slow.total_cycles >= slow.dram_bytes() / 1.0
    single = simulate(op, _arch(dram={"bandwidth_bytes_per_cycle": 1.0},
                                buffers={"double_buffered": False})).layers[0].counts
    assert single.total_cycles > slow.total_cycles
    sram_bound = simulate(op, _arch(buffers={"ifmap": {"size_kib": 256, "bandwidth_words_per_cycle": 1}}))
    assert sram_bound.layers[0].counts.total_cycles >= sram_bound.layers[0].counts.sram_ifmap_reads


def test_fold_model_refetches_when_operand_does_not_fit():
    """``mapper: folds``: no DRAM tiling, an operand is resident whole or refetched per fold."""
    op = [GemmOp(name="g", m=512, k=512, n=256)]
    folds = {"timing": {"mapper": "folds"}}
    big = simulate(op, _arch(buffers={"ifmap": {"size_kib": 1024}}, **folds)).layers[0].counts
    small = simulate(op, _arch(buffers={"ifmap": {"size_kib": 16}}, **folds)).layers[0].counts
    assert big.dram_ifmap_reads == 512 * 512
    assert small.dram_ifmap_reads == 512 * 512 * (256 // 16)  # once per column fold
    tiny_ofmap = simulate(op, _arch(buffers={"ofmap": {"size_kib": 4}}, **folds)).layers[0].counts
    assert tiny_ofmap.dram_psum_writes == 512 * 256 * (512 // 16 - 1)


def test_count_repeats_and_units():
    arch = _arch(requant={"latency": 5}, layernorm={"lanes": 8, "latency": 3, "passes": 2, "arithmetic": "float"},
                 vector={"lanes": 4, "latency": 2})
    one = simulate([GemmOp(name="g", m=64, k=32, n=48)], arch).layers[0].counts
    three = simulate([GemmOp(name="g", m=64, k=32, n=48, count=3)], arch).layers[0].counts
    assert three.total_cycles == 3 * one.total_cycles and three.macs == 3 * one.macs
    assert one.total_cycles == one.compute_cycles + 5  # requant latency charged after the drain
    ln = simulate([NormOp(name="ln", kind="layernorm", rows=10, cols=20)], arch).layers[0].counts
    assert ln.compute_cycles == 2 * 10 * 3 + 3
    add = simulate([VectorOp(name="a", kind="add", elements=10)], arch).layers[0].counts
    assert add.compute_cycles == 3 + 2
    fast_vec = _arch(vector={"lanes": 4, "latency": 2, "ops_per_cycle": 8})
    sm = simulate([VectorOp(name="s", kind="softmax", elements=10)], fast_vec).layers[0].counts
    assert sm.compute_cycles == -(-10 * 12 // 8) + 2  # softmax: 7 adds + 5 multiplies per element


def test_layer_energy_recomputed_by_hand():
    """Energy of one GEMM from its access counts (to_frame) and the raw YAML table numbers."""
    t = yaml.safe_load(TABLE_PATH.read_text())["components"]
    arch = _arch(pe={"weight_format": "int4", "activation_format": "int8", "accumulator_bits": 24},
                 buffers={"ofmap": {"size_kib": 2}}, requant={"multiplier_bits": 16}, timing={"mapper": "folds"})
    row = simulate([GemmOp(name="g", m=96, k=200, n=72)], arch).to_frame().iloc[0]
    macs = 96 * 200 * 72
    assert row["macs"] == macs
    # the int4xint8 PE's area times the int8xint8 MAC energy (8x8 multiply + 32-bit add) per unit area
    areas = yaml.safe_load(AREA_PATH.read_text())["pes"]
    ref = t["int_mult"]["op_pj"] * 8 * 8 / 32 ** 2 + t["int_add"]["op_pj"]
    per_mac = ref * areas["int4xint8"]["nand2_eq"] / areas["int8xint8"]["nand2_eq"]
    assert row["energy_mac_pj"] == pytest.approx(macs * per_mac)
    assert row["energy_rf_pj"] == pytest.approx(macs * (8 + 4 + 2 * 24) * t["register_file"]["access_pj"] / 32)
    sram = t["sram"]["access_pj"] / 32
    dram = t["dram"]["access_pj"] / 32
    assert row["energy_sram_ifmap_pj"] == pytest.approx(row["sram_ifmap_reads"] * 8 * sram)
    assert row["energy_sram_weight_pj"] == pytest.approx(row["sram_weight_reads"] * 4 * sram)
    final = row["sram_ofmap_writes"] - row["sram_psum_writes"]
    assert row["energy_sram_ofmap_pj"] == pytest.approx(
        (final * 8 + (row["sram_psum_writes"] + row["sram_ofmap_reads"]) * 24) * sram)
    assert row["dram_psum_writes"] > 0  # the 2 KiB ofmap buffer forces partial-sum spills
    assert row["energy_dram_ofmap_pj"] == pytest.approx(
        (row["dram_ofmap_writes"] * 8 + (row["dram_psum_writes"] + row["dram_psum_reads"]) * 24) * dram)
    assert row["energy_dram_ifmap_pj"] == pytest.approx(row["dram_ifmap_reads"] * 8 * dram)
    assert row["energy_dram_weight_pj"] == pytest.approx(row["dram_weight_reads"] * 4 * dram)
    for level, pj in (("sram", sram), ("dram", dram)):  # energy per operand = bytes * 8 * pJ/bit
        for operand in ("ifmap", "weight", "ofmap"):
            assert row[f"energy_{level}_{operand}_pj"] == pytest.approx(row[f"{level}_{operand}_bytes"] * 8 * pj)
    assert row["dram_bytes"] == pytest.approx(sum(row[f"dram_{o}_bytes"] for o in ("ifmap", "weight", "ofmap")))
    requant_each = (t["int_mult"]["op_pj"] * 24 * 16 / 32 ** 2 + t["int_add"]["op_pj"] * 24 / 32
                    + 3 * t["int_add"]["op_pj"])
    assert row["energy_requant_pj"] == pytest.approx(96 * 72 * requant_each)
    parts = [c for c in row.index if c.startswith("energy_") and c.endswith("_pj") and c != "energy_total_pj"]
    assert row["energy_total_pj"] == pytest.approx(sum(row[c] for c in parts))
    assert row["energy_per_mac_pj"] == pytest.approx(row["energy_total_pj"] / macs)


def test_float_mac_energy_scales_with_significands():
    table = load_energy_table()
    from hwsim.perf.format_info import format_info

    e4m3, f32 = format_info("float8_e4m3fn"), format_info("float32")
    assert table.mult_pj(f32, f32) == pytest.approx(3.7 + 0.1 * 8 / 32)
    assert table.mult_pj(e4m3, e4m3) == pytest.approx(3.7 * 16 / 576 + 0.1 * 4 / 32)
    assert table.fp_add_pj(e4m3) == pytest.approx(0.9 * 4 / 24)
    i8, i4 = format_info("int8"), format_info("int4")
    assert table.mult_pj(i8, i8) == pytest.approx(4 * table.mult_pj(i4, i4))  # (bit reduction)^2
    assert table.int_add_pj(8) == pytest.approx(table.int_add_pj(16) / 2)  # proportional to bits


def test_technology_scale_and_summary_metrics():
    wl = [GemmOp(name="g", m=64, k=64, n=64), NormOp(name="ln", kind="rmsnorm", rows=64, cols=64),
          VectorOp(name="s", kind="softmax", elements=4096)]
    base = simulate(wl, _arch())
    half = simulate(wl, _arch(energy={"technology_scale": 0.5}))
    assert half.energy.total == pytest.approx(base.energy.total / 2)
    s = base.summary()
    assert s["tops_per_w"] == pytest.approx(2 * s["macs"] / s["energy_total_pj"])
    assert s["latency_us"] == pytest.approx(s["total_cycles"] / 500)
    assert s["energy_total_uj"] == pytest.approx(s["energy_total_pj"] * 1e-6)
    assert base.energy.norm > 0 and base.energy.vector > 0
    assert isinstance(base.energy + half.energy, EnergyBreakdown)


def test_energy_table_errors():
    with pytest.raises(ValueError) as err:
        energy_table_from_dict({"components": {"int_add": {"op_pj": -1}, "sram": {"read_pj": 5}}})
    text = str(err.value)
    assert "energy.components.int_add.op_pj" in text and "energy.components.sram.read_pj" in text
    assert "energy.components.dram: required component is missing" in text


def test_user_energy_table_overrides_default(tmp_path):
    data = yaml.safe_load(TABLE_PATH.read_text())
    data["components"]["dram"]["access_pj"] *= 2
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "arch.yaml").write_text(yaml.safe_dump({"version": 1, "name": "a", "array": {"rows": 8, "cols": 8},
                                                         "energy": {"table": "mine.yaml"}}))
    wl = [GemmOp(name="g", m=64, k=64, n=64)]
    base = simulate(wl, {"array": {"rows": 8, "cols": 8}}).energy
    mine = simulate(wl, tmp_path / "arch.yaml").energy  # relative table path resolved next to the arch file
    assert mine.dram_ifmap == pytest.approx(2 * base.dram_ifmap) and mine.dram_ifmap > 0
    assert mine.sram_ifmap == pytest.approx(base.sram_ifmap)
    via_arg = simulate(wl, {"array": {"rows": 8, "cols": 8}}, energy_table=tmp_path / "mine.yaml").energy
    assert via_arg.dram_weight == pytest.approx(2 * base.dram_weight)
