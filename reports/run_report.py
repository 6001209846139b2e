"""Report of one simulation run: a self-contained ``report.html``, a Markdown ``report.md`` and SVG charts.

Input is a run folder written by ``hwsim run`` (``per_layer.csv`` or ``per_op.csv`` with one row per
op, ``summary.json``, and ``arch.json`` with the resolved architecture when present). Output (written
atomically next to them, or into ``out_dir``):

- ``report.html``: headline figures, accuracy of every format run, energy by component (with %),
  charts aggregated by op kind and by block plus the top ops (readable for 800+ ops), a roofline, the
  full architecture, any further summary entries, and the per-op table (scrollable, units in headers).
  Charts are inline SVG: the page opens offline and can be mailed as one file.
- ``report.md``: the same content as Markdown tables, charts linked as ``*.svg`` files.

The page is built from strings (no plotting library), so it costs milliseconds, not seconds.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from hwsim.atomic_io import write_text_atomic
from hwsim.errors import ConfigError
from hwsim.reports import report_sections as sections
from hwsim.reports.svg_chart import Chart, hbar_chart, roofline_chart

_ENERGY_COLUMN = re.compile(r"^energy_(?P<component>.+)_pj$")
_NOT_COMPONENTS = {"total", "per_mac"}
REQUIRED_COLUMNS = ("name", "total_cycles")
#: Rows in the "top ops" charts.
TOP_N = 25


def load_run(run_dir):
    """Read the per-op CSV and ``summary.json`` of a run folder; errors name the file and what is missing."""
    import pandas as pd

    run_dir = Path(run_dir)
    per_op, summary_path = run_dir / "per_op.csv", run_dir / "summary.json"
    if not per_op.is_file() and (run_dir / "per_layer.csv").is_file():  # model runs name it per layer
        per_op = run_dir / "per_layer.csv"
    for path in (per_op, summary_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found; expected a folder written by 'hwsim run --out'")
    frame = pd.read_csv(per_op)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigError(str(per_op), [f"columns: expected {', '.join(missing)}, not {list(frame.columns)!r}"])
    summary = _read_json_object(summary_path)
    return frame, summary


def _read_json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), [f"line {exc.lineno}: not valid JSON ({exc.msg})"]) from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), [f"top level: expected a JSON object, not {type(data).__name__}"])
    return data


def load_arch(run_dir, summary: dict) -> dict | None:
    """The resolved architecture: ``arch.json`` of the run folder, else a dict under ``summary['architecture']``."""
    path = Path(run_dir) / "arch.json"
    if path.is_file():
        return _read_json_object(path)
    value = summary.get("architecture")
    return value if isinstance(value, dict) else None


def energy_components(frame) -> list[str]:
    """Energy component names present as ``energy_<component>_pj`` columns (totals excluded)."""
    names = []
    for column in frame.columns:
        match = _ENERGY_COLUMN.match(column)
        if match and match["component"] not in _NOT_COMPONENTS:
            names.append(match["component"])
    return names


def block_of(name: str) -> str:
    """The block an op belongs to: its name up to the first numeric part (``encoder.layer.3``, ``blk.12``)."""
    parts = str(name).split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[:i + 1])
    return parts[0]


def aggregate(frame, by: str):
    """Sum cycles and energy per ``by`` (a column, or ``"block"``): blocks in graph order, else largest energy first."""
    frame = frame.assign(block=frame["name"].map(block_of)) if by == "block" else frame
    numeric = [c for c in ("macs", "compute_cycles", "stall_cycles", "total_cycles", "latency_us", "dram_bytes",
                           "sram_bytes") if c in frame.columns]
    numeric += [c for c in frame.columns if _ENERGY_COLUMN.match(c) and c != "energy_per_mac_pj"]
    grouped = frame.groupby(by, sort=False)[numeric].sum()
    grouped.insert(0, "ops", frame.groupby(by, sort=False).size())
    if by == "block":
        return grouped
    order = "energy_total_pj" if "energy_total_pj" in grouped else "total_cycles"
    return grouped.sort_values(order, ascending=False)


def _cycle_segments(frame) -> dict[str, list[float]]:
    if "compute_cycles" in frame and "stall_cycles" in frame:
        return {"compute": list(frame["compute_cycles"].astype(float)),
                "stall": list(frame["stall_cycles"].astype(float))}
    return {"cycles": list(frame["total_cycles"].astype(float))}


def energy_unit(largest_pj: float) -> tuple[str, float]:
    """(unit, factor from pJ) that shows ``largest_pj`` with at most 4 integer digits: nJ, µJ, mJ or J."""
    for unit, factor in (("J", 1e-12), ("mJ", 1e-9), ("µJ", 1e-6)):
        if largest_pj * factor >= 10:
            return unit, factor
    return "nJ", 1e-3


def _energy_chart(labels, frame_or_rows, components, title: str) -> Chart:
    """Stacked energy bars per label, in the unit that suits the largest bar."""
    pj = {c: [float(v) for v in frame_or_rows[f"energy_{c}_pj"]] for c in components}
    unit, factor = energy_unit(max((sum(row) for row in zip(*pj.values(), strict=True)), default=0.0))
    return hbar_chart(labels, {c: [v * factor for v in values] for c, values in pj.items()},
                      title=f"{title} ({unit})", unit=unit)


def primary_rows(frame, summary: dict):
    """The per-op rows of the headline run: with a ``format`` column (one block of rows per format run),
    those of the first format (``summary['formats'][0]``); otherwise every row."""
    if "format" not in frame.columns or frame["format"].nunique() <= 1:
        return frame
    formats = summary.get("formats") or list(dict.fromkeys(frame["format"]))
    first = formats[0] if formats[0] in set(frame["format"]) else frame["format"].iloc[0]
    return frame[frame["format"] == first].reset_index(drop=True)


def per_format(frame, summary: dict) -> dict[str, dict]:
    """{format: {total_cycles, compute_cycles, stall_cycles, latency_us, energy_pj: {component: pJ}, ...}}
    from ``summary['performance_by_format']``, else from the per-op rows' ``format`` column; {} for one."""
    given = summary.get("performance_by_format")
    if isinstance(given, dict) and len(given) > 1 and all(isinstance(v, dict) for v in given.values()):
        return given
    if "format" not in frame.columns or frame["format"].nunique() <= 1:
        return {}
    components = energy_components(frame)
    out = {}
    for name, rows in frame.groupby("format", sort=False):
        entry = {k: float(rows[k].sum()) for k in ("total_cycles", "compute_cycles", "stall_cycles", "latency_us")
                 if k in rows}
        entry["energy_pj"] = {c: float(rows[f"energy_{c}_pj"].sum()) for c in components}
        entry["energy_total_pj"] = sum(entry["energy_pj"].values())
        out[str(name)] = entry
    return out


def _format_charts(formats: dict[str, dict]) -> dict[str, Chart]:
    names = list(formats)
    components = list(dict.fromkeys(c for f in formats.values() for c in f.get("energy_pj", {})))
    charts = {}
    if components:
        rows = {f"energy_{c}_pj": [formats[n].get("energy_pj", {}).get(c, 0.0) for n in names] for c in components}
        charts["energy_by_format.svg"] = _energy_chart(names, rows, components, "Energy by format")
    if all("compute_cycles" in formats[n] and "stall_cycles" in formats[n] for n in names):
        segments = {"compute": [float(formats[n]["compute_cycles"]) for n in names],
                    "stall": [float(formats[n]["stall_cycles"]) for n in names]}
    else:
        segments = {"cycles": [float(formats[n].get("total_cycles", 0)) for n in names]}
    charts["cycles_by_format.svg"] = hbar_chart(names, segments, title="Cycles by format", unit="cycles")
    return charts


def build_charts(frame, summary: dict, arch: dict | None) -> dict[str, Chart]:
    """Every chart of the report, keyed by its SVG file name (per-op charts: the first format's rows)."""
    charts: dict[str, Chart] = _format_charts(per_format(frame, summary)) if per_format(frame, summary) else {}
    frame = primary_rows(frame, summary)
    components = energy_components(frame)
    if components:
        unit, factor = energy_unit(max(float(frame[f"energy_{c}_pj"].sum()) for c in components))
        totals = [float(frame[f"energy_{c}_pj"].sum()) * factor for c in components]
        grand = sum(totals) or 1.0
        charts["energy_breakdown.svg"] = hbar_chart(
            components, {"energy": totals}, title="Energy by component", unit=unit,
            annotate=[f"{v:,.3f} {unit} ({100 * v / grand:.1f} %)" for v in totals])
    for by, label in (("kind", "op kind"), ("block", "block")):
        if by == "kind" and "kind" not in frame:
            continue
        agg = aggregate(frame, by)
        if components:
            charts[f"energy_by_{by}.svg"] = _energy_chart(list(agg.index), agg, components, f"Energy by {label}")
        charts[f"cycles_by_{by}.svg"] = hbar_chart(
            list(agg.index), _cycle_segments(agg), title=f"Cycles by {label}", unit="cycles")
    top = frame.nlargest(TOP_N, "energy_total_pj") if components else frame.nlargest(TOP_N, "total_cycles")
    if components:
        charts["energy_top_ops.svg"] = _energy_chart(list(top["name"]), top, components,
                                                     f"Top {len(top)} of {len(frame)} ops by energy")
    top = frame.nlargest(TOP_N, "total_cycles")
    charts["cycles_top_ops.svg"] = hbar_chart(list(top["name"]), _cycle_segments(top),
                                              title=f"Top {len(top)} of {len(frame)} ops by cycles", unit="cycles")
    roof = _roofline(frame, summary, arch)
    if roof is not None:
        charts["roofline.svg"] = roof
    return charts


def _roofline(frame, summary: dict, arch: dict | None) -> Chart | None:
    """Roofline of the ops with MACs and DRAM traffic; None when the run lacks the columns."""
    perf = summary.get("performance") if isinstance(summary.get("performance"), dict) else summary
    array, clock = perf.get("array"), perf.get("clock_mhz")
    needed = {"macs", "dram_bytes", "latency_us"}
    if not needed <= set(frame.columns) or not isinstance(array, str) or not clock:
        return None
    rows, cols = (int(v) for v in array.split("x"))
    peak_gops = 2 * rows * cols * float(clock) * 1e-3
    bandwidth = None
    if arch and isinstance(arch.get("dram"), dict):
        bandwidth = float(arch["dram"]["bandwidth_bytes_per_cycle"]) * float(clock) * 1e-3  # GB/s
    ops = frame[(frame["macs"] > 0) & (frame["dram_bytes"] > 0) & (frame["latency_us"] > 0)]
    points = [(r["name"], str(r.get("kind", "op")), 2 * r["macs"] / r["dram_bytes"],
               2 * r["macs"] / r["latency_us"] * 1e-3) for _, r in ops.iterrows()]
    if not points:
        return None
    skipped = int((frame["macs"] > 0).sum()) - len(points)
    title = "Roofline (per op, DRAM traffic)" + (f"; {skipped} ops without DRAM traffic not shown" if skipped else "")
    return roofline_chart(points, peak_gops=peak_gops, bandwidth_gbs=bandwidth, title=title)


def build_report(run_dir, out_dir=None) -> dict[str, Path]:
    """Write the SVG charts, ``report.md`` and ``report.html`` for a run folder; return their paths."""
    frame, summary = load_run(run_dir)
    arch = load_arch(run_dir, summary)
    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    charts = build_charts(frame, summary, arch)
    paths = {name: write_text_atomic(out / name, chart.svg + "\n") for name, chart in charts.items()}
    paths["report.md"] = write_text_atomic(out / "report.md", sections.markdown(frame, summary, arch, charts))
    paths["report.html"] = write_text_atomic(out / "report.html", sections.page(frame, summary, arch, charts))
    return paths


def title_of(summary: dict) -> str:
    """``hwsim report: <model or workload> on <architecture>``."""
    subject = summary.get("model") or summary.get("workload") or "run"
    arch = summary.get("arch") or summary.get("architecture")
    if isinstance(arch, dict):
        arch = arch.get("name")
    return html.unescape(f"hwsim report: {subject}" + (f" on {arch}" if arch else ""))
