"""``hwsim run`` and the Python API."""

import json
from pathlib import Path

import pandas as pd
import pytest

import hwsim
from hwsim.cli import main
from hwsim.perf.commands import run_workload
from hwsim.perf.sources import default_workload

ROOT = Path(__file__).resolve().parents[2]


EXAMPLE_WORKLOAD = ROOT / "examples" / "workloads" / "minilm_l6_seq128.yaml"


def test_run_workload_file_prints_summary(capsys):
    assert main(["run", "--workload", str(EXAMPLE_WORKLOAD)]) == 0
    out = capsys.readouterr().out
    assert "minilm-l6-seq128" in out and "TOPS/W" in out and "dram_weight" in out


def test_run_with_files_writes_tables(tmp_path, capsys):
    arch = ROOT / "examples" / "arch" / "w4a8_dint4_32x32_ws.yaml"
    wl = ROOT / "examples" / "workloads" / "bert_base_layer_seq128.yaml"
    assert main(["run", "--arch", str(arch), "--workload", str(wl), "--out", str(tmp_path), "--no-report"]) == 0
    assert "w4a8-dint4-32x32-ws" in capsys.readouterr().out
    frame = pd.read_csv(tmp_path / "per_op.csv")
    records = json.loads((tmp_path / "per_op.json").read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(frame) == len(records) == 12
    assert summary["macs"] == frame["macs"].sum()
    assert summary["total_cycles"] == frame["total_cycles"].sum()
    assert summary["energy_total_pj"] == pytest.approx(frame["energy_total_pj"].sum())
    assert set(summary["energy_breakdown_pj"]) == {"mac", "rf", "sram_ifmap", "sram_weight", "sram_ofmap",
                                                   "dram_ifmap", "dram_weight", "dram_ofmap", "requant", "norm",
                                                   "vector", "act_quant", "epilogue"}


def test_run_reads_scalesim_topology_as_workload(tmp_path):
    topo = ROOT / "examples" / "workloads" / "scalesim_minilm_gemm.csv"
    arch = ROOT / "examples" / "arch" / "scalesim_32x32_is.yaml"
    result = run_workload(arch, topo, tmp_path)
    frame = result.to_frame()
    # timing mode scalesim: the array cycles are SCALE-Sim's (minilm_attn_out, 32x32 is: 22943)
    assert frame.loc[frame["name"] == "minilm_attn_out", "compute_cycles"].item() == 22943
    assert (tmp_path / "summary.json").is_file()


def test_top_level_simulate_and_frame():
    result = hwsim.simulate(default_workload(), None)
    frame = result.to_frame()
    assert list(frame["name"]) == [op.name for op in default_workload().ops]
    assert (frame["total_cycles"] >= frame["compute_cycles"]).all()
    gemm = frame["macs"] > 0
    assert ((frame.loc[gemm, "utilization"] > 0) & (frame.loc[gemm, "utilization"] <= 1)).all()
    assert (frame.loc[~gemm, "utilization"] == 0).all()


def test_run_mode_override_and_errors(tmp_path, capsys):
    assert main(["run", "--workload", str(EXAMPLE_WORKLOAD), "--mode", "scalesim"]) == 0
    assert "scalesim timing" in capsys.readouterr().out
    bad = tmp_path / "w.yaml"
    bad.write_text("version: 1\nops:\n  - {type: gemm, m: 4, k: -1, n: 2}\n")
    assert main(["run", "--workload", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "workload.ops[0].k" in err and str(bad) in err
    assert main(["run", "--arch", str(tmp_path / "missing.yaml")]) == 2
