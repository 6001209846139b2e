"""YAML bombs, deep nesting, duplicate keys, non-UTF-8 files and NaN/inf in every config section."""

from __future__ import annotations

import pytest
from robust_helpers import ADDRESS_SPACE_LIMIT, assert_one_line_error

from hwsim.errors import ConfigError
from hwsim.perf.arch import arch_from_dict, load_arch
from hwsim.perf.energy import energy_table_from_dict, load_energy_table
from hwsim.perf.workload import workload_from_dict
from hwsim.safe_yaml import load_yaml, parse_yaml
from hwsim.sweep import pareto_mask, sweep_from_dict


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    names = [f"l{i}" for i in range(levels + 1)]
    lines = [f"{names[0]}: &{names[0]} [" + ", ".join(["x"] * width) + "]"]
    for prev, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_refused_quickly_with_a_short_message(tmp_path, hwsim):
    bomb = tmp_path / "arch.yaml"
    bomb.write_text(_alias_bomb())
    assert len(bomb.read_bytes()) < 1400
    done = hwsim(["run", "--workload", "x.yaml", "--arch", bomb], limit=ADDRESS_SPACE_LIMIT, timeout=30)
    err = assert_one_line_error(done, str(bomb), "alias expansion", "HWSIM_MAX_YAML_NODES")
    assert len(err) < 1000


def test_deep_nesting_is_one_line(tmp_path, hwsim):
    deep = tmp_path / "w.yaml"
    deep.write_text("ops: " + "[" * 500 + "]" * 500 + "\n")
    done = hwsim(["run", "--workload", deep])
    assert_one_line_error(done, str(deep), "nesting depth")


def test_recursive_alias_refused():
    with pytest.raises(ConfigError, match="recursive alias"):
        parse_yaml("a: &a [*a]\n", source="s", what="w")


def test_duplicate_keys_are_errors_naming_the_line(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("array:\n  rows: 8\n  rows: 16\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'rows' \(first on line 2\)"):
        load_yaml(path, what="arch")
    # a merge key overridden by an explicit key is not a duplicate
    assert parse_yaml("b: &b {x: 1}\nc: {<<: *b, x: 2}\n", source="s", what="w")["c"] == {"x": 2}


def test_non_utf8_file_names_file_and_byte(tmp_path):
    path = tmp_path / "arch.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        load_arch(path)
    assert str(path) in str(err.value) and "not UTF-8" in str(err.value) and "byte 9" in str(err.value)


def test_oversized_yaml_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setenv("HWSIM_MAX_INPUT_BYTES", "100")
    path = tmp_path / "arch.yaml"
    path.write_text("name: x\n" + "#" * 200 + "\n")
    with pytest.raises(ConfigError, match="HWSIM_MAX_INPUT_BYTES"):
        load_yaml(path, what="arch")


def test_huge_value_is_quoted_short():
    with pytest.raises(ConfigError) as err:
        arch_from_dict({"array": {"rows": "x" * 1_000_000, "cols": 8}})
    assert len(str(err.value)) < 600


_BASE_ARCH = {"array": {"rows": 8, "cols": 8}}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("path", ["clock_mhz", "buffers.ifmap.size_kib", "buffers.weight.bandwidth_words_per_cycle",
                                  "dram.bandwidth_bytes_per_cycle", "dram.bandwidth_gb_per_s",
                                  "vector.ops_per_cycle", "energy.technology_scale"])
def test_nan_inf_refused_in_arch(path, bad):
    data = {"array": {"rows": 8, "cols": 8}}
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = bad
    with pytest.raises(ConfigError, match=rf"arch\.{path}: expected a finite number"):
        arch_from_dict(data)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_nan_inf_refused_in_energy_table(bad):
    source = load_energy_table().source
    data = load_yaml(source, what="energy")
    component = next(iter(data["components"]))
    action = next(iter(data["components"][component]))
    data["components"][component][action] = bad
    with pytest.raises(ConfigError, match=rf"energy\.components\.{component}\.{action}: expected a finite number"):
        energy_table_from_dict(data)
    data = load_yaml(source, what="energy")
    data["technology_scale"] = bad
    with pytest.raises(ConfigError, match="energy.technology_scale: expected a finite number"):
        energy_table_from_dict(data)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 10**30], ids=["nan", "inf", "1e30"])
def test_nan_inf_and_huge_refused_in_workload(bad):
    with pytest.raises(ConfigError, match=r"workload\.ops\[0\]\.m: expected a positive integer"):
        workload_from_dict({"ops": [{"type": "gemm", "m": bad, "k": 4, "n": 4}]})


def test_upper_bounds_on_array_and_accumulator():
    with pytest.raises(ConfigError) as err:
        arch_from_dict({"array": {"rows": 10**30, "cols": 8}, "pe": {"accumulator_bits": 1000}})
    assert "arch.array.rows" in str(err.value) and "arch.pe.accumulator_bits" in str(err.value)


def test_nan_refused_in_sweep_grid(tmp_path):
    with pytest.raises(ConfigError, match=r"clock_mhz: expected a finite number"):
        from hwsim.sweep import check_points

        check_points(sweep_from_dict({"grid": {"clock_mhz": [500, float("nan")]}}))


def test_nan_point_never_pareto_and_front_matches_brute_force():
    import numpy as np

    rng = np.random.default_rng(4)
    lat = rng.integers(0, 20, 300).astype(float)
    en = rng.integers(0, 20, 300).astype(float)
    brute = [not any(lo <= la and eo <= ea and (lo < la or eo < ea) for lo, eo in zip(lat, en, strict=True))
             for la, ea in zip(lat, en, strict=True)]
    assert pareto_mask(np.c_[lat, en]).tolist() == brute
    assert pareto_mask([[1.0, 2.0], [float("nan"), 0.0], [2.0, 1.0]]).tolist() == [True, False, True]


def test_sweep_grid_budget_refused_before_building(tmp_path):
    grid = {f"k{i}": list(range(10)) for i in range(7)}  # 10^7 points
    with pytest.raises(ConfigError, match="HWSIM_MAX_SWEEP_POINTS"):
        sweep_from_dict({"grid": grid})


def test_conv_kernel_single_item_list_means_square():
    wl = workload_from_dict({"ops": [{"type": "conv", "in_h": 8, "in_w": 8, "in_channels": 2, "out_channels": 4,
                                      "kernel": [3]}]})
    assert (wl.ops[0].m, wl.ops[0].k) == (36, 18)


def test_huge_count_refused():
    with pytest.raises(ConfigError, match="exceed 2\\^60"):
        workload_from_dict({"ops": [{"type": "gemm", "m": 2**30, "k": 2**30, "n": 2**30, "count": 8}]})


def test_thousands_of_problems_are_counted_not_all_listed(tmp_path):
    from hwsim.perf.scalesim_io import read_topology

    path = tmp_path / "bad.csv"
    path.write_text("Layer, M, N, K,\n" + "x, 0, 0, 0,\n" * 5000)
    with pytest.raises(ConfigError) as err:
        read_topology(path)
    text = str(err.value)
    assert "5000 problems" in text and "... and 4,950 more" in text and len(text) < 10_000
