"""The sections of a run report, as HTML and as Markdown (see :mod:`hwsim.reports.run_report`).

Every summary entry is shown somewhere: the known ones in their own sections (headline, accuracy,
performance, energy), anything else (entries added by newer commands, e.g. per-format performance)
rendered generically under "Run details" as tables. So adding keys to ``summary.json`` never breaks
the report or hides a result.
"""

from __future__ import annotations

import html
import math
import re

#: Summary keys with their own section (everything else goes to "Run details").
_KNOWN = {"model", "workload", "arch", "architecture", "formats", "accuracy", "performance", "total_cycles",
          "compute_cycles", "stall_cycles", "latency_us", "energy_pj", "energy_breakdown_pj", "energy_total_pj",
          "energy_total_uj", "markdown", "dataflow", "timing_mode", "array", "clock_mhz", "macs", "utilization",
          "tops", "tops_per_w", "power_w", "energy_per_mac_pj", "ops", "performance_by_format"}
#: Per-op table: column -> (header with unit, scale applied to the value).
_OP_COLUMNS = {"format": ("format", None), "name": ("op", None), "kind": ("kind", None), "m": ("M", None),
               "k": ("K", None), "n": ("N", None),
               "macs": ("MACs", None), "compute_cycles": ("compute (cycles)", None),
               "stall_cycles": ("stall (cycles)", None), "total_cycles": ("total (cycles)", None),
               "utilization": ("utilization (%)", 100.0), "latency_us": ("latency (µs)", None),
               "sram_bytes": ("SRAM traffic (B)", None), "dram_bytes": ("DRAM traffic (B)", None),
               "energy_total_pj": ("energy (µJ)", 1e-6)}
_ENERGY = re.compile(r"^energy_(?P<c>.+)_pj$")
_HEADLINE = (("total_cycles", "cycles", "{:,.0f}"), ("latency_us", "latency", "{:,.2f} µs"),
             ("energy_total_pj", "energy", None), ("utilization", "PE utilization", "{:.1%}"),
             ("tops_per_w", "efficiency", "{:.3f} TOPS/W"))


def lookup(summary: dict, key: str):
    """``summary[key]``, else ``summary['performance'][key]`` (model runs nest the performance figures)."""
    if key in summary:
        return summary[key]
    perf = summary.get("performance")
    return perf.get(key) if isinstance(perf, dict) else None


def fmt(value) -> str:
    """Human-readable cell text: thousands separators, 4 significant digits for floats."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.4g}" if abs(value) < 1e3 else f"{value:,.0f}"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(str(v) for v in value)
    return str(value)


def energy_text(pj) -> str:
    """Energy in the largest readable unit (pJ ... J)."""
    for unit, scale in (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:,.3f} {unit}"
    return f"{pj:,.1f} pJ"


def headline(summary: dict) -> list[tuple[str, str]]:
    """(label, value) pairs for the top of the report: model, formats, architecture, cycles, energy..."""
    items = []
    for key, label in (("model", "model"), ("workload", "workload")):
        if summary.get(key):
            items.append((label, str(summary[key])))
    if summary.get("formats"):
        items.append(("formats", fmt(summary["formats"])))
    arch = summary.get("arch") or summary.get("architecture")
    if arch:
        extra = [str(lookup(summary, k)) for k in ("array", "dataflow") if lookup(summary, k)]
        clock = lookup(summary, "clock_mhz")
        extra += [f"{clock:g} MHz"] if clock else []
        name = arch.get("name", "") if isinstance(arch, dict) else str(arch)
        items.append(("architecture", name + (f" ({' '.join(extra)})" if extra else "")))
    several = isinstance(summary.get("performance_by_format"), dict) and len(summary["performance_by_format"]) > 1
    suffix = f" ({summary['formats'][0]})" if several and summary.get("formats") else ""
    for key, label, pattern in _HEADLINE:
        value = lookup(summary, key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            items.append((label + suffix, energy_text(value) if pattern is None else pattern.format(value)))
    return items


def energy_rows(summary: dict, frame, components) -> list[tuple[str, float, float]]:
    """(component, µJ, % of total), from the summary's breakdown or the per-op columns."""
    breakdown = lookup(summary, "energy_pj") or lookup(summary, "energy_breakdown_pj")
    if not isinstance(breakdown, dict):
        breakdown = {c: float(frame[f"energy_{c}_pj"].sum()) for c in components}
    total = sum(breakdown.values()) or 1.0
    return [(k, round(v * 1e-6, 3), round(100 * v / total, 1)) for k, v in breakdown.items()]


def flatten(value, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dicts as (dotted key, scalar) pairs: ``array.rows``, ``buffers.ifmap.size_kib``..."""
    if isinstance(value, dict):
        pairs = []
        for k, v in value.items():
            pairs += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return pairs
    return [(prefix, value)]


def records(value) -> list[dict] | None:
    """A list of flat dicts, or a dict of dicts (key becomes the first column), as rows; else None."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [dict(flatten(v)) for v in value]
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return [{"": k, **dict(flatten(v))} for k, v in value.items()]
    return None


def format_rows(formats: dict[str, dict]) -> list[dict]:
    """One row per format run: cycles, latency, energy and energy per component (µJ)."""
    rows = []
    for name, f in formats.items():
        row = {"format": name}
        for key, label, scale in (("macs", "MACs", 1), ("total_cycles", "cycles", 1), ("stall_cycles", "stall", 1),
                                  ("latency_us", "latency (µs)", 1), ("utilization", "utilization (%)", 100),
                                  ("energy_total_pj", "energy (µJ)", 1e-6)):
            if isinstance(f.get(key), int | float):
                row[label] = f[key] * scale if scale != 1 else f[key]
        row.update({f"{c} (µJ)": v * 1e-6 for c, v in f.get("energy_pj", {}).items()})
        rows.append(row)
    return rows


def _primary(frame, summary: dict):
    from hwsim.reports.run_report import per_format, primary_rows

    formats = per_format(frame, summary)
    primary = primary_rows(frame, summary)
    label = f", format {primary['format'].iloc[0]}" if formats and "format" in primary and len(primary) else ""
    return primary, formats, label


def extras(summary: dict) -> list[tuple[str, object]]:
    """Summary entries without a section of their own, in file order."""
    return [(k, v) for k, v in summary.items() if k not in _KNOWN]


def op_table(frame, components):
    """The per-op table with unit-bearing headers: known columns first, then energy per component (µJ)."""
    columns = {c: spec for c, spec in _OP_COLUMNS.items() if c in frame.columns}
    table = frame[list(columns)].copy()
    for column, (_, scale) in columns.items():
        if scale is not None:
            table[column] = table[column] * scale
    table.columns = [header for header, _ in columns.values()]
    for c in components:
        table[f"{c} (µJ)"] = frame[f"energy_{c}_pj"] * 1e-6
    return table


# ----------------------------------------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1250px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
.cards{display:flex;flex-wrap:wrap;gap:.6em;margin:1em 0}
.card{border:1px solid #ccc;border-radius:6px;padding:.4em .8em;min-width:9em;background:#fafafa}
.card .k{font-size:.8em;color:#666}.card .v{font-size:1.15em;font-weight:600}
table{border-collapse:collapse;font-size:13px;margin:.4em 0}
td,th{padding:2px 8px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
.scroll{max-height:70vh;overflow:auto;border:1px solid #ccc}
.scroll thead th{position:sticky;top:0;z-index:1}
.charts{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
svg{max-width:100%;height:auto}details{margin:.4em 0}summary{cursor:pointer}
"""


def _e(text) -> str:
    return html.escape(str(text))


def html_table(rows: list[dict], *, scroll: bool = False) -> str:
    """Rows of dicts as an HTML table (union of keys as columns)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(fmt(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>' if scroll else table


def _kv_table(pairs) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(fmt(v))}</td></tr>" for k, v in pairs) + "</table>"


def _is_scalar(value) -> bool:
    return not isinstance(value, dict | list) or (isinstance(value, list) and records(value) is None
                                                  and not any(isinstance(v, dict | list) for v in value))


def _generic_html(key: str, value) -> str:
    """One non-scalar summary entry: a table of records, or nested details of a dict."""
    rows = records(value)
    if rows is not None:
        return f"<details open><summary><b>{_e(key)}</b></summary>{html_table(rows, scroll=len(rows) > 20)}</details>"
    if isinstance(value, dict):
        scalars = [(k, v) for k, v in value.items() if _is_scalar(v)]
        inner = "".join(_generic_html(f"{key}.{k}", v) for k, v in value.items() if not _is_scalar(v))
        return f"<details open><summary><b>{_e(key)}</b></summary>{_kv_table(scalars) if scalars else ''}{inner}" \
               "</details>"
    return _kv_table([(key, value)])


def page(frame, summary: dict, arch: dict | None, charts: dict) -> str:
    """The complete, self-contained ``report.html``."""
    from hwsim.reports.run_report import energy_components, title_of

    primary, formats, label = _primary(frame, summary)
    components = energy_components(frame)
    title = title_of(summary)
    parts = [f"<h1>{_e(title)}</h1>", '<div class="cards">']
    parts += [f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div></div>'
              for k, v in headline(summary)]
    parts.append("</div>")
    if isinstance(summary.get("accuracy"), list) and summary["accuracy"]:
        parts += ["<h2>Accuracy of every format vs float</h2>", html_table(summary["accuracy"])]
    if formats:
        shown = [charts[n].svg for n in ("energy_by_format.svg", "cycles_by_format.svg") if n in charts]
        parts += ["<h2>Cost of every format</h2>", html_table(format_rows(formats), scroll=True),
                  '<div class="charts">', *shown, "</div>"]
    perf = summary.get("performance")
    perf_pairs = ([(k, v) for k, v in perf.items() if not isinstance(v, dict | list)] if isinstance(perf, dict)
                  else [(k, summary[k]) for k in summary if k in _KNOWN and not isinstance(summary[k], dict | list)
                        and k not in ("model", "workload", "arch", "architecture", "markdown")])
    if isinstance(perf, str):
        parts += ["<h2>Performance</h2>", f"<p>{_e(perf)}</p>"]
    elif perf_pairs:
        parts += [f"<h2>Performance{_e(label.replace(', format', ' of'))}</h2>", _kv_table(perf_pairs)]
    if components:
        rows = energy_rows(summary, primary, components)
        parts += [f"<h2>Energy by component{_e(label)}</h2>", '<div class="charts">',
                  html_table([{"component": c, "energy (µJ)": uj, "share (%)": pct} for c, uj, pct in rows]),
                  charts["energy_breakdown.svg"].svg, "</div>"]
    parts.append(f"<h2>Where cycles and energy go ({len(primary)} ops{_e(label)})</h2>")
    for group in (("energy_by_kind.svg", "cycles_by_kind.svg"), ("energy_by_block.svg", "cycles_by_block.svg"),
                  ("energy_top_ops.svg", "cycles_top_ops.svg"), ("roofline.svg",)):
        shown = [charts[name].svg for name in group if name in charts]
        if shown:
            parts += ['<div class="charts">', *shown, "</div>"]
    if arch:
        note = ("<p>Resolved from the architecture file; each format run sets the PE weight/activation formats "
                "to its own.</p>" if summary.get("formats") else "")
        parts += ["<h2>Architecture (every resolved parameter)</h2>", note, _kv_table(flatten(arch))]
    scalars = [(k, v) for k, v in extras(summary) if _is_scalar(v)]
    more = [_generic_html(k, v) for k, v in extras(summary) if not _is_scalar(v)]
    if scalars or more:
        parts += ["<h2>Run details</h2>", _kv_table(scalars) if scalars else "", *more]
    table = op_table(frame, components)
    parts += [f"<h2>Per op ({len(frame)} rows; scroll inside the table)</h2>",
              html_table(table.to_dict(orient="records"), scroll=True)]
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<meta name='viewport' content='width=device-width'><style>{_STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


# ------------------------------------------------------------------------------------------- Markdown

def _md_cell(value) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def md_table(rows: list[dict]) -> list[str]:
    """Rows of dicts as a GitHub-flavoured Markdown table (numbers right-aligned)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    align = ["---:" if all(isinstance(r.get(c), int | float) for r in rows if r.get(c) is not None) else "---"
             for c in columns]
    lines = ["| " + " | ".join(c or " " for c in columns) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_md_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return lines


def _md_generic(items, level: int) -> list[str]:
    """Summary entries as Markdown: scalars in one table, records as tables, dicts as sub-sections."""
    lines, scalars = [], [{"entry": k, "value": v} for k, v in items if _is_scalar(v)]
    if scalars:
        lines += md_table(scalars) + [""]
    for key, value in items:
        if _is_scalar(value):
            continue
        rows = records(value)
        lines += [f"{'#' * level} {key}", ""]
        lines += md_table(rows) + [""] if rows is not None else _md_generic(list(value.items()), min(level + 1, 6))
    return lines


def markdown(frame, summary: dict, arch: dict | None, charts: dict) -> str:
    """``report.md``: the report as Markdown (tables, charts linked as SVG files)."""
    from hwsim.reports.run_report import energy_components, title_of

    primary, formats, label = _primary(frame, summary)
    components = energy_components(frame)
    lines = [f"# {title_of(summary)}", ""]
    lines += md_table([{"": k, "value": v} for k, v in headline(summary)]) + [""]
    if isinstance(summary.get("accuracy"), list) and summary["accuracy"]:
        lines += ["## Accuracy of every format vs float", "", *md_table(summary["accuracy"]), ""]
    if formats:
        lines += ["## Cost of every format", "", *md_table(format_rows(formats)), ""]
    if components:
        rows = energy_rows(summary, primary, components)
        lines += [f"## Energy by component{label}", "",
                  *md_table([{"component": c, "energy (µJ)": uj, "share (%)": pct} for c, uj, pct in rows]), ""]
    lines += ["## Charts", ""]
    for name, chart in charts.items():
        lines += [f"![{chart.title}]({name})", ""]
    if arch:
        lines += ["## Architecture", "", *md_table([{"parameter": k, "value": v} for k, v in flatten(arch)]), ""]
    details = extras(summary)
    if details:
        lines += ["## Run details", "", *_md_generic(details, level=3)]
    table = op_table(frame, components)
    lines += [f"## Per op ({len(frame)} ops)", "", *md_table(table.to_dict(orient="records")), ""]
    return "\n".join(lines)
