"""Design-space sweeps: grid expansion, validation of every point, Pareto flags, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.perf.api import simulate
from hwsim.perf.arch import default_arch
from hwsim.sweep import load_sweep, pareto_mask, run_sweep, sweep_from_dict

WORKLOAD = {"version": 1, "name": "two-gemms",
            "ops": [{"name": "fc1", "type": "gemm", "m": 64, "k": 256, "n": 256},
                    {"name": "fc2", "type": "gemm", "m": 64, "k": 256, "n": 512}]}


@pytest.fixture
def sweep_file(tmp_path):
    (tmp_path / "wl.yaml").write_text(yaml.safe_dump(WORKLOAD))
    spec = {"version": 1, "name": "t", "arch": "default", "workload": "wl.yaml",
            "grid": {"array.rows": [8, 16], "array.cols": [8, 32], "array.dataflow": ["ws", "os"]}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_grid_points_match_individual_simulations(sweep_file):
    spec = load_sweep(sweep_file)
    frame = run_sweep(spec)
    assert len(frame) == 8
    row = frame[(frame["array.rows"] == 16) & (frame["array.cols"] == 8) & (frame["array.dataflow"] == "os")]
    data = yaml.safe_load(Path(default_arch().source).read_text())
    data["array"] = {"rows": 16, "cols": 8, "dataflow": "os"}
    expected = simulate(str(sweep_file.parent / "wl.yaml"), data).summary()
    assert int(row["total_cycles"].iloc[0]) == expected["total_cycles"]
    assert float(row["energy_total_pj"].iloc[0]) == pytest.approx(expected["energy_total_pj"])


def test_pareto_mask_is_the_non_dominated_set():
    latency = [1.0, 2.0, 3.0, 2.0, 1.0]
    energy = [5.0, 3.0, 1.0, 4.0, 6.0]
    assert pareto_mask(latency, energy) == [True, True, True, False, False]


def test_every_bad_point_is_reported_together(tmp_path):
    data = {"grid": {"array.dataflow": ["ws", "wss"], "array.rows": [16, -4]}, "colour": "red"}
    with pytest.raises(ConfigError) as info:
        sweep_from_dict(data, source="s.yaml")
    assert "sweep.colour: unknown key" in str(info.value)
    spec = sweep_from_dict({"grid": data["grid"]}, source="s.yaml")
    with pytest.raises(ConfigError) as info:
        run_sweep(spec)
    text = str(info.value)
    assert text.startswith("s.yaml:")
    assert "array.dataflow=wss" in text and "arch.array.dataflow" in text
    assert "array.rows=-4" in text and "arch.array.rows" in text


def test_cli_writes_outputs(sweep_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(sweep_file), "--out", str(out)]) == 0
    records = json.loads((out / "sweep.json").read_text())
    assert len(records) == 8 and any(r["pareto"] for r in records)
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "8 points" in capsys.readouterr().out


def test_cli_bad_sweep_is_one_clear_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("grid: [1, 2]\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "sweep.grid" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_default_workload_is_the_minilm_graph():
    from hwsim.perf.sources import default_graph

    spec = sweep_from_dict({"version": 1, "name": "d", "grid": {"pe.weight_format": ["int8", "int4"]}})
    frame = run_sweep(spec)
    assert list(frame["workload"]) == ["minilm-l6-seq128"] * 2
    int8 = frame[frame["pe.weight_format"] == "int8"].iloc[0]
    assert int(int8["total_cycles"]) == simulate(default_graph(), None).summary()["total_cycles"]
