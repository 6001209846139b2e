"""Energy/latency report of one simulation run: figures, Markdown and a self-contained HTML page.

Input is a run folder written by ``hwsim run`` (``per_op.csv`` with one row per op and ``summary.json``).
Output (written atomically next to them, or into ``out_dir``): ``cycles_per_op.png``,
``energy_per_op.png``, ``energy_breakdown.png``, ``report.md`` and ``report.html`` (images embedded, so
the page can be mailed or attached to a CI run as one file).
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

from hwsim.atomic_io import write_bytes_atomic, write_text_atomic
from hwsim.errors import ConfigError

_ENERGY_COLUMN = re.compile(r"^energy_(?P<component>.+)_pj$")
_NOT_COMPONENTS = {"total", "per_mac"}
REQUIRED_COLUMNS = ("name", "total_cycles")


def load_run(run_dir):
    """Read ``per_op.csv`` and ``summary.json`` of a run folder; errors name the file and what is missing."""
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
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(str(summary_path), [f"line {exc.lineno}: not valid JSON ({exc.msg})"]) from None
    if not isinstance(summary, dict):
        raise ConfigError(str(summary_path), [f"top level: expected a JSON object, not {type(summary).__name__}"])
    return frame, summary


def energy_components(frame) -> list[str]:
    """Energy component names present as ``energy_<component>_pj`` columns (totals excluded)."""
    names = []
    for column in frame.columns:
        match = _ENERGY_COLUMN.match(column)
        if match and match["component"] not in _NOT_COMPONENTS:
            names.append(match["component"])
    return names


def _figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _new_axes(n_ops: int):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * n_ops + 2), 3.8))
    return plt, fig, ax


def cycles_figure(frame) -> bytes:
    """Stacked bar: compute and stall cycles per op."""
    plt, fig, ax = _new_axes(len(frame))
    compute = frame["compute_cycles"] if "compute_cycles" in frame else frame["total_cycles"]
    stall = frame["total_cycles"] - compute
    ax.bar(frame["name"], compute, label="compute")
    ax.bar(frame["name"], stall, bottom=compute, label="stall")
    ax.set_ylabel("cycles")
    ax.set_title("Cycles per op")
    ax.tick_params(axis="x", labelrotation=75, labelsize=7)
    ax.legend()
    data = _figure_png(fig)
    plt.close(fig)
    return data


def energy_figure(frame) -> bytes:
    """Stacked bar: energy per op by component (µJ)."""
    plt, fig, ax = _new_axes(len(frame))
    bottom = None
    colors = plt.get_cmap("tab20")
    for i, component in enumerate(energy_components(frame)):
        values = frame[f"energy_{component}_pj"] * 1e-6
        ax.bar(frame["name"], values, bottom=bottom, label=component, color=colors(i % 20))
        bottom = values if bottom is None else bottom + values
    ax.set_ylabel("energy (µJ)")
    ax.set_title("Energy per op by component")
    ax.tick_params(axis="x", labelrotation=75, labelsize=7)
    ax.legend(fontsize=7, ncol=2)
    data = _figure_png(fig)
    plt.close(fig)
    return data


def breakdown_figure(frame) -> bytes:
    """Horizontal bar: total energy by component (µJ)."""
    components = energy_components(frame)
    totals = [frame[f"energy_{c}_pj"].sum() * 1e-6 for c in components]
    plt, fig, ax = _new_axes(0)
    ax.barh(components, totals)
    ax.set_xlabel("energy (µJ)")
    ax.set_title("Total energy by component")
    data = _figure_png(fig)
    plt.close(fig)
    return data


def _summary_rows(summary: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in summary.items():
        if isinstance(value, dict | list):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            text = str(value)
        else:
            text = f"{value:,}" if isinstance(value, int) else f"{value:,.6g}"
        rows.append((key, text))
    return rows


def _markdown(frame, summary: dict, figures: dict[str, bytes]) -> str:
    lines = ["# hwsim run report", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _summary_rows(summary)]
    lines += ["", *[f"![{name}]({name})" for name in figures], "", "## Per op", ""]
    columns = [c for c in ("name", "kind", "macs", "total_cycles", "stall_cycles", "utilization",
                           "latency_us", "energy_total_pj") if c in frame.columns]
    lines.append(frame[columns].to_markdown(index=False) if _has_tabulate() else frame[columns].to_string(index=False))
    return "\n".join(lines) + "\n"


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def _html(frame, summary: dict, figures: dict[str, bytes]) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in _summary_rows(summary))
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"</figure>" for name, png in figures.items())
    table = frame.to_html(index=False, float_format=lambda v: f"{v:,.4g}", border=0, classes="ops")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
             "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right;font-size:12px}"
             "figure{display:inline-block;margin:0 1em 1em 0}img{max-width:100%}")
    title = html.escape(f"hwsim report: {summary.get('workload', summary.get('model', ''))} on "
                        f"{summary.get('arch', summary.get('architecture', ''))}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style>"
            f"</head><body><h1>{title}</h1><table>{rows}</table>{images}<h2>Per op</h2>{table}</body></html>\n")


def build_report(run_dir, out_dir=None) -> dict[str, Path]:
    """Write the figures, ``report.md`` and ``report.html`` for a run folder; return their paths."""
    frame, summary = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    figures = {"cycles_per_op.png": cycles_figure(frame)}
    if energy_components(frame):
        figures["energy_per_op.png"] = energy_figure(frame)
        figures["energy_breakdown.png"] = breakdown_figure(frame)
    paths = {name: write_bytes_atomic(out / name, png) for name, png in figures.items()}
    paths["report.md"] = write_text_atomic(out / "report.md", _markdown(frame, summary, figures))
    paths["report.html"] = write_text_atomic(out / "report.html", _html(frame, summary, figures))
    return paths
