"""Pricing a workload whose GEMMs multiply pairs the array lacks, on the array with those pairs added."""

import pytest

from hwsim.perf.api import simulate
from hwsim.perf.arch import default_arch
from hwsim.perf.derived_arch import describe_pairs, required_pairs, with_required_pairs
from hwsim.perf.energy import load_energy_table
from hwsim.perf.format_info import format_info
from hwsim.perf.mac_energy import mac_pj
from hwsim.perf.workload import GemmOp

OPS = [GemmOp(name="a", m=64, k=256, n=128, b_format="nf4"),
       GemmOp(name="b", m=64, k=256, n=128, a_format="int16", b_format="int16"),
       GemmOp(name="c", m=64, k=256, n=128, b_format="nf4"),
       GemmOp(name="d", m=64, k=256, n=128, b_format="int4")]


def test_only_missing_pairs_are_added_and_nothing_else_changes():
    arch = default_arch()
    with pytest.raises(ValueError, match=r"does not support the \(activation, weight\) format pair \(int8, nf4\)"):
        simulate(OPS, arch)
    assert required_pairs(OPS, arch) == [("int8", "nf4"), ("int16", "int16")]
    derived, added = with_required_pairs(OPS, arch)
    assert added == [("int8", "nf4"), ("int16", "int16")] and derived.name == arch.name + "+pairs"
    assert derived.with_(name=arch.name, pe=arch.pe) == arch
    same, none = with_required_pairs(OPS[3:], arch)
    assert same is arch and none == []


def test_added_pairs_cost_the_width_rule_and_the_same_cycles_per_mac():
    arch = default_arch()
    derived, _ = with_required_pairs(OPS, arch)
    run = simulate(OPS, derived)
    nf4, int4 = run.layers[0], run.layers[3]
    assert nf4.counts.compute_cycles == int4.counts.compute_cycles
    table = load_energy_table("default")
    width = table.mult_pj(format_info("int8"), format_info("nf4")) + table.int_add_pj(arch.pe.accumulator_bits)
    assert mac_pj(table, "int8", "nf4", arch.pe.accumulator_bits) == pytest.approx(width)
    assert run.layers[1].energy.total > nf4.energy.total  # int16 x int16 costs more than int8 x nf4


def test_fitted_codebooks_are_counted_by_type():
    pairs = [("int8", "quantile4:" + "0" * 128), ("int8", "quantile4:" + "1" * 128), ("int16", "int16")]
    assert describe_pairs(pairs) == "int8 x quantile4 (2 codebooks), int16 x int16"
