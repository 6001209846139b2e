"""Run reports: SVG charts, Markdown and HTML from a real simulated run folder."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.perf.api import simulate
from hwsim.perf.workload import GemmOp
from hwsim.reports.run_report import TOP_N, aggregate, block_of, build_charts, build_report, energy_components, load_run
from hwsim.reports.svg_chart import hbar_chart

_SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    ops = [GemmOp(name=f"layer.{i}.fc{j}", m=64, k=256 * j, n=512 // j) for i in range(2) for j in (1, 2)]
    simulate(ops, None).write(out)
    return out


@pytest.fixture(scope="module")
def many_ops_dir(tmp_path_factory):
    """A 40-block, 840-op run: the charts must stay readable (aggregated, top-N)."""
    out = tmp_path_factory.mktemp("many")
    ops = [GemmOp(name=f"blk.{b}.op{j}", m=16, k=64 * (1 + j % 3), n=64 + b) for b in range(40) for j in range(21)]
    simulate(ops, None).write(out)
    return out


def _label_and_bar_rows(svg: str):
    """(label text, label baseline y, [(bar top, bar height)]) per row parsed back from the SVG."""
    root = ET.fromstring(svg)
    labels = [(t.find(f"{_SVG}title").text, float(t.get("y"))) for t in root.iter(f"{_SVG}text")
              if t.get("class") == "label"]
    bars: dict[int, list] = {}
    for rect in root.iter(f"{_SVG}rect"):
        if rect.get("class") == "bar":
            bars.setdefault(int(rect.get("data-row")), []).append((float(rect.get("y")), float(rect.get("height")),
                                                                    rect.find(f"{_SVG}title").text))
    return labels, bars


def test_every_label_sits_on_its_own_bar(run_dir):
    frame, summary = load_run(run_dir)
    charts = build_charts(frame, summary, None)
    assert {"energy_by_kind.svg", "cycles_by_block.svg", "energy_top_ops.svg", "roofline.svg"} <= set(charts)
    for name, chart in charts.items():
        if name == "roofline.svg":
            continue
        labels, bars = _label_and_bar_rows(chart.svg)
        assert len(labels) == len(chart.rows) and bars, name
        for row, (text, baseline) in enumerate(labels):
            assert text == chart.rows[row].label
            for top, height, tooltip in bars.get(row, []):
                assert top < baseline - 4 < top + height, (name, text)  # glyph centre inside the bar
                assert tooltip.startswith(f"{text} - "), (name, text, tooltip)  # the bar names the same op


def test_label_alignment_check_catches_a_shifted_label():
    chart = hbar_chart(["a", "b", "c"], {"x": [1.0, 2.0, 3.0]}, title="t", unit="u")
    labels, bars = _label_and_bar_rows(chart.svg)
    shifted = labels[1][1] + 18  # one row down: must fall outside row 1's bar
    top, height, _ = bars[1][0]
    assert not top < shifted - 4 < top + height


def test_charts_stay_bounded_for_800_ops(many_ops_dir):
    frame, summary = load_run(many_ops_dir)
    assert len(frame) == 840
    charts = build_charts(frame, summary, None)
    assert len(charts["energy_top_ops.svg"].rows) == TOP_N
    assert len(charts["energy_by_block.svg"].rows) == 40
    for chart in charts.values():
        width = float(ET.fromstring(chart.svg).get("width"))
        assert width <= 1100, (chart.title, width)


def test_aggregates_add_up_to_the_run(run_dir):
    frame, summary = load_run(run_dir)
    by_block = aggregate(frame, "block")
    assert list(by_block.index) and set(by_block.index) == {"layer.0", "layer.1"}
    assert int(by_block["total_cycles"].sum()) == summary["total_cycles"]
    assert by_block["energy_total_pj"].sum() == pytest.approx(summary["energy_total_pj"], rel=1e-12)
    assert block_of("encoder.layer.3.attention.self.query") == "encoder.layer.3"
    assert block_of("blk.12.attn_q") == "blk.12" and block_of("pooler") == "pooler"


def test_report_files_and_contents(run_dir):
    paths = build_report(run_dir)
    assert {"energy_breakdown.svg", "roofline.svg", "report.md", "report.html"} <= set(paths)
    page = paths["report.html"].read_text()
    assert "<svg" in page and "<img" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    summary = json.loads((run_dir / "summary.json").read_text())
    frame = pd.read_csv(run_dir / "per_op.csv")
    assert "layer.0.fc1" in page and 'class="scroll"' in page and "latency (µs)" in page
    md = paths["report.md"].read_text()
    assert f"| cycles | {summary['total_cycles']:,} |" in md
    per_op = md[md.index("## Per op"):].splitlines()
    assert per_op[2].startswith("| op | kind |") and per_op[3].startswith("|---|")
    assert sum(line.startswith("| layer.") for line in per_op) == len(frame)
    assert int(frame["total_cycles"].sum()) == summary["total_cycles"]


def test_energy_shares_and_components(run_dir):
    frame, summary = load_run(run_dir)
    components = energy_components(frame)
    assert "total" not in components and "mac" in components
    total = sum(frame[f"energy_{c}_pj"].sum() for c in components)
    assert total == pytest.approx(summary["energy_total_pj"], rel=1e-9)
    page = build_report(run_dir)["report.html"].read_text()
    assert " %)" in page  # each component bar is annotated with its share


def test_added_summary_keys_are_shown_not_fatal(tmp_path, run_dir):
    for name in ("per_op.csv", "summary.json"):
        (tmp_path / name).write_text((run_dir / name).read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())
    summary["future_by_format"] = {"w8a8": {"total_cycles": 123456789, "energy_total_pj": 5.0},
                                   "w4a8": {"total_cycles": 98765432, "energy_total_pj": 3.0}}
    summary["new_list"] = [{"format": "fp8", "cosine": 0.99}]
    summary["nested"] = {"a": {"b": [1, 2]}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    paths = build_report(tmp_path)
    page, md = paths["report.html"].read_text(), paths["report.md"].read_text()
    for text in ("future_by_format", "123,456,789", "98,765,432", "new_list", "fp8"):
        assert text in page and text in md


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


def test_several_formats_one_block_of_rows_each(tmp_path, run_dir):
    """A model run over several formats (per-op rows tagged by format, performance_by_format in the
    summary): per-op charts show the first format only, a cost table and charts compare the formats."""
    frame = pd.read_csv(run_dir / "per_op.csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    doubled = frame.assign(**{c: frame[c] * 2 for c in frame.columns if c.startswith("energy_") and c.endswith("_pj")})
    both = pd.concat([frame.assign(format="w8a8"), doubled.assign(format="w4a8")], ignore_index=True)
    both.to_csv(tmp_path / "per_op.csv", index=False)
    perf = {name: {"total_cycles": summary["total_cycles"], "compute_cycles": summary["compute_cycles"],
                   "stall_cycles": summary["stall_cycles"], "latency_us": summary["latency_us"],
                   "energy_pj": {k: v * scale for k, v in summary["energy_breakdown_pj"].items()},
                   "energy_total_pj": summary["energy_total_pj"] * scale} for name, scale in (("w8a8", 1), ("w4a8", 2))}
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "formats": ["w8a8", "w4a8"],
                                                       "performance_by_format": perf}))
    loaded, loaded_summary = load_run(tmp_path)
    charts = build_charts(loaded, loaded_summary, None)
    assert [r.label for r in charts["energy_by_format.svg"].rows] == ["w8a8", "w4a8"]
    totals = [r.total for r in charts["energy_by_format.svg"].rows]
    assert totals[1] == pytest.approx(2 * totals[0])
    by_block = {r.label: r.total for r in charts["energy_by_block.svg"].rows}  # first format only, not the sum
    assert sum(by_block.values()) == pytest.approx(summary["energy_total_pj"] * 1e-6, rel=1e-9)
    page = build_report(tmp_path)["report.html"].read_text()
    assert "Cost of every format" in page and "format w8a8" in page


def test_energy_unit_keeps_at_most_four_integer_digits():
    from hwsim.reports.run_report import energy_unit

    assert energy_unit(36.5e9) == ("mJ", 1e-9)  # SmolLM2's GEMMs: 36.5 mJ, not "36.5 k µJ"
    assert energy_unit(7.3e9) == ("µJ", 1e-6)
    assert energy_unit(5e6) == ("nJ", 1e-3) and energy_unit(2e13) == ("J", 1e-12)
