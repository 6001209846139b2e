"""Run reports: figures, Markdown and HTML from a real simulated run folder."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.perf.api import simulate
from hwsim.perf.workload import GemmOp
from hwsim.reports.run_report import build_report, energy_components, load_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    ops = [GemmOp(name="fc1", m=64, k=256, n=512), GemmOp(name="fc2", m=64, k=512, n=256)]
    simulate(ops, None).write(out)
    return out


def test_report_files_and_contents(run_dir):
    paths = build_report(run_dir)
    assert {"cycles_per_op.png", "energy_per_op.png", "energy_breakdown.png", "report.md",
            "report.html"} <= set(paths)
    for name in ("cycles_per_op.png", "energy_breakdown.png"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = paths["report.html"].read_text()
    assert page.count("data:image/png;base64,") == 3
    summary = json.loads((run_dir / "summary.json").read_text())
    frame = pd.read_csv(run_dir / "per_op.csv")
    assert "fc1" in page and "fc2" in page
    assert f"{summary['total_cycles']:,}" in paths["report.md"].read_text()
    assert int(frame["total_cycles"].sum()) == summary["total_cycles"]


def test_energy_components_are_the_breakdown(run_dir):
    frame, summary = load_run(run_dir)
    components = energy_components(frame)
    assert "total" not in components and "mac" in components
    total = sum(frame[f"energy_{c}_pj"].sum() for c in components)
    assert total == pytest.approx(summary["energy_total_pj"], rel=1e-9)


def test_missing_summary_names_the_file(tmp_path, run_dir):
    (tmp_path / "per_op.csv").write_text((run_dir / "per_op.csv").read_text())
    with pytest.raises(FileNotFoundError, match="summary.json"):
        build_report(tmp_path)


def test_bad_json_is_a_config_error(tmp_path, run_dir):
    (tmp_path / "per_op.csv").write_text((run_dir / "per_op.csv").read_text())
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ConfigError, match="summary.json"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_cli_report_error_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "per_op.csv" in err[0]
