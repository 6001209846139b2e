"""``hwsim run``: the main job (a model through the datapath, with cycles, energy and a report)."""

from __future__ import annotations

import json

from hwsim.cli import main


def test_run_model_path_writes_summary_and_report(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--sentences", "1", "--layers", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    for key in ("model", "architecture", "formats", "cosine_vs_float", "total_cycles", "latency_us", "energy_pj"):
        assert key in summary
    assert 0.9 < summary["cosine_vs_float"] <= 1.0 + 1e-9
    assert summary["total_cycles"] > 0 and sum(summary["energy_pj"].values()) > 0
    assert f"{summary['performance']['total_cycles']:,}" in printed
    page = (out / "report.html").read_text()
    assert "<svg" in page and "Accuracy of every format" in page and "Architecture (every resolved" in page
    assert (out / "summary.md").read_text().startswith("# hwsim run")


def test_run_rejects_bad_arch_before_running(tmp_path, capsys):
    bad = tmp_path / "arch.yaml"
    bad.write_text("array: {rows: -4, cols: 8, dataflow: wss}\n")
    assert main(["run", "--arch", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "arch.array.rows" in err and "arch.array.dataflow" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_mode_needs_a_workload(capsys):
    assert main(["run", "--mode", "scalesim"]) == 2
    assert "--mode applies to --workload runs only" in capsys.readouterr().err
