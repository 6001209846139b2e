"""Sweep specs and evaluation: axes, links, derived values, constraints, validation, cached == reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.perf.api import simulate
from hwsim.perf.arch import default_arch
from hwsim.sweep import check_points, load_sweep, sweep_from_dict
from hwsim.sweep_eval import SweepSetup, evaluate_chunk, evaluate_chunk_reference
from hwsim.sweep_models import resolve_workloads
from hwsim.sweep_run import run_sweep, static_plan

WORKLOAD = {"version": 1, "name": "two-gemms",
            "ops": [{"name": "fc1", "type": "gemm", "m": 64, "k": 256, "n": 256},
                    {"name": "fc2", "type": "gemm", "m": 64, "k": 256, "n": 512},
                    {"name": "fc3", "type": "gemm", "m": 64, "k": 256, "n": 256},
                    {"name": "ln", "type": "layernorm", "rows": 64, "cols": 256}]}


@pytest.fixture
def workload(tmp_path):
    path = tmp_path / "wl.yaml"
    path.write_text(yaml.safe_dump(WORKLOAD))
    return path


def _spec(tmp_path, **extra):
    data = {"version": 1, "name": "t", "workload": "wl.yaml",
            "grid": {"array.rows": [8, 16, 32], "array.cols": [8, 16, 32], "array.dataflow": ["ws", "os"],
                     "clock_mhz": [250, 1000], "energy.technology_scale": [1.0, 0.4]},
            "link": [["array.rows", "array.cols"]], "chunk_size": 5, **extra}
    return sweep_from_dict(data, source=str(tmp_path / "s.yaml"), base_dir=tmp_path)


def _table(spec, tmp_path, reference=False):
    setup = SweepSetup(spec, resolve_workloads(spec, tmp_path / "cache"))
    fn = evaluate_chunk_reference if reference else evaluate_chunk
    return pd.concat([fn(setup, n) for n in static_plan(spec)], ignore_index=True)


def test_linked_axes_zip_and_row_major_numbering(tmp_path, workload):
    spec = _spec(tmp_path)
    assert spec.size == 3 * 2 * 2 * 2
    cols = spec.columns(np.arange(spec.size))
    assert (cols["array.rows"] == cols["array.cols"]).all()
    assert spec.point(0) == {"array.rows": 8, "array.cols": 8, "array.dataflow": "ws", "clock_mhz": 250,
                             "energy.technology_scale": 1.0}
    assert spec.point(1)["energy.technology_scale"] == 0.4  # the last axis varies fastest


def test_cached_vectorised_equals_one_simulate_per_point(tmp_path, workload):
    spec = _spec(tmp_path, set={"energy.sram": "capacity"}, derived={"buffers.ofmap.size_kib": "array.rows * 4"})
    fast, ref = _table(spec, tmp_path), _table(spec, tmp_path, reference=True)
    assert len(fast) == spec.size and list(fast["point"]) == list(range(spec.size))
    cols = sorted(fast.columns)
    assert sorted(ref.columns) == cols
    pd.testing.assert_frame_equal(fast[cols], ref[cols], check_dtype=False, rtol=1e-12)


def test_point_matches_a_direct_simulation(tmp_path, workload):
    spec = _spec(tmp_path)
    row = _table(spec, tmp_path).set_index("point").loc[13]
    point = spec.point(13)
    data = yaml.safe_load(Path(default_arch().source).read_text())
    data["array"] = {"rows": point["array.rows"], "cols": point["array.cols"], "dataflow": point["array.dataflow"]}
    data["clock_mhz"] = point["clock_mhz"]
    data["energy"] = {"technology_scale": point["energy.technology_scale"]}
    expected = simulate(str(workload), data).summary()
    assert row["total_cycles"] == expected["total_cycles"]
    assert row["latency_us"] == pytest.approx(expected["latency_us"])
    assert row["energy_total_pj"] == pytest.approx(expected["energy_total_pj"], rel=1e-12)


def test_constraints_drop_points_before_simulation(tmp_path, workload):
    spec = _spec(tmp_path, constraints=["pes <= 256", "array.dataflow == 'ws' or area_mm2 < 3"])
    table = _table(spec, tmp_path)
    assert (table["pes"] <= 256).all()
    assert ((table["array.dataflow"] == "ws") | (table["area_mm2"] < 3)).all()
    full = _table(_spec(tmp_path), tmp_path)
    keep = (full["pes"] <= 256) & ((full["array.dataflow"] == "ws") | (full["area_mm2"] < 3))
    assert 0 < len(table) == int(keep.sum()) < spec.size


def test_each_bad_value_reported_once_with_its_reach(tmp_path, workload):
    spec = _spec(tmp_path, grid={"array.rows": [16, -4], "array.dataflow": ["ws", "wss", "os"],
                                 "clock_mhz": [1, 2, 3, 4]}, link=None)
    with pytest.raises(ConfigError) as info:
        check_points(spec)
    problems = info.value.problems
    assert len(problems) == 2
    assert any("array.rows=-4" in p and "arch.array.rows" in p and "(12 of 24 points)" in p for p in problems)
    assert any("array.dataflow='wss'" in p and "(8 of 24 points)" in p for p in problems)


def test_structural_problems_named_with_key_paths(tmp_path):
    with pytest.raises(ConfigError) as info:
        sweep_from_dict({"grid": {"array.rows": [8, 16], "array.cols": [8]}, "link": [["array.rows", "array.cols"]],
                         "constraints": ["__import__('os')"], "search": {"method": "anneal"},
                         "objectives": {"speed": "max"}, "colour": 1})
    text = str(info.value)
    for key in ("sweep.link[0]: linked axes need equal lengths", "sweep.constraints[0]", "sweep.search.method",
                "sweep.objectives.speed", "sweep.colour: unknown key"):
        assert key in text


def test_unknown_constraint_name_is_an_error(tmp_path, workload):
    with pytest.raises(ConfigError, match=r"sweep.constraints\[0\]: unknown name 'area'"):
        check_points(_spec(tmp_path, constraints=["area < 4"]))


def test_random_search_is_seeded_and_distinct(tmp_path, workload):
    spec = _spec(tmp_path, search={"method": "random", "samples": 10, "seed": 3})
    plan = np.concatenate(static_plan(spec))
    assert len(plan) == len(set(plan.tolist())) == 10 and (np.diff(plan) > 0).all()
    assert np.array_equal(plan, np.concatenate(static_plan(_spec(tmp_path, search={"method": "random",
                                                                                   "samples": 10, "seed": 3}))))
    other = np.concatenate(static_plan(_spec(tmp_path, search={"method": "random", "samples": 10, "seed": 4})))
    assert not np.array_equal(plan, other)


def test_nsga2_search_runs_and_resumes_without_duplicates(tmp_path, workload):
    pytest.importorskip("optuna")
    spec = _spec(tmp_path, search={"method": "nsga2", "trials": 24, "population": 8, "seed": 1},
                 objectives={"latency_us": "min", "energy_uj": "min"})
    first = run_sweep(spec, tmp_path / "a", workers=1).frame
    assert 0 < len(first) <= 24 and first["point"].is_unique
    again = run_sweep(spec, tmp_path / "a", workers=1)
    assert again.evaluated == 0 and again.skipped_chunks == 3
    pd.testing.assert_frame_equal(first, again.frame)


def test_cli_writes_results_and_resumes(tmp_path, workload, capsys):
    spec = {"name": "t", "workload": "wl.yaml", "grid": {"array.rows": [8, 16], "array.cols": [8, 32]},
            "chunk_size": 3}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 0
    assert "4 points (4 evaluated now, 0 chunks resumed)" in capsys.readouterr().out
    table = pd.read_parquet(out / "results" / "results.parquet")
    assert len(table) == 4 and table["pareto"].any()
    assert len(pd.read_csv(out / "results" / "results.csv")) == 4
    assert json.loads((out / "results" / "summary.json").read_text())["rows"] == 4
    assert "<img" in (out / "results" / "report.html").read_text()
    assert main(["sweep", "--resume", str(out), "--workers", "1"]) == 0
    assert "(0 evaluated now, 2 chunks resumed)" in capsys.readouterr().out


def test_other_spec_in_the_same_folder_is_refused(tmp_path, workload, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"workload": "wl.yaml", "grid": {"array.rows": [8, 16]}}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--workers", "1"]) == 0
    path.write_text(yaml.safe_dump({"workload": "wl.yaml", "grid": {"array.rows": [8, 32]}}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "holds the results of another sweep" in err and "Traceback" not in err


def test_cli_bad_sweep_is_one_clear_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("grid: [1, 2]\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "sweep.grid" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_example_specs_validate():
    for path in sorted(Path(__file__).resolve().parents[2].joinpath("examples", "sweeps").glob("*.yaml")):
        spec = load_sweep(path)
        assert spec.size > 0


def test_cached_workload_round_trips_through_json():
    from hwsim.perf.int_units import IntUnit
    from hwsim.perf.sources import default_workload
    from hwsim.perf.workload import VectorOp, Workload
    from hwsim.sweep_models import workload_from_json, workload_to_json

    units = (IntUnit("adder", "add", 3, 32), IntUnit("multiplier", "mul", 2, 16, 8))
    ops = (*default_workload().ops, VectorOp(name="sm", kind="softmax", elements=8, int_units=units, lut_bytes=64))
    wl = Workload("w", ops)
    back = workload_from_json(json.loads(json.dumps(workload_to_json(wl))))
    assert back == wl and len({hash(op) for op in back.ops}) > 1


def test_llm_and_default_models_get_one_front_each(tmp_path):
    from hwsim.reports.sweep_report import pareto_flags

    spec = sweep_from_dict({"grid": {"model": ["default", "llm:smollm2-135m"], "array.rows": [16, 32]},
                            "models": {"llm:smollm2-135m": {"phase": "decode", "kv_len": 64}}},
                           source=str(tmp_path / "s.yaml"), base_dir=tmp_path)
    table = run_sweep(spec, tmp_path / "o", workers=1).frame
    assert sorted(table["model"].unique()) == ["default", "llm:smollm2-135m"]
    assert table.groupby("model")["macs"].nunique().eq(1).all() and table["macs"].nunique() == 2
    flags = pareto_flags(table, spec.objectives)
    assert all(flags[(table["model"] == m).to_numpy()].any() for m in table["model"].unique())
    with pytest.raises(ConfigError, match="models.llm:smollm2-135m.colour: unknown option"):
        check_points(sweep_from_dict({"grid": {"model": ["llm:smollm2-135m"]},
                                      "models": {"llm:smollm2-135m": {"colour": 1}}}))


def test_recipe_names_must_be_distinct(tmp_path):
    inline = {"name": "w8a8", "recipe": [{"rtn": {"weights": "int8", "activations": "int8"}}]}
    with pytest.raises(ConfigError, match="two recipes are named 'w8a8'"):
        check_points(sweep_from_dict({"grid": {"model": ["minilm"], "recipe": ["w8a8", inline]}}))
