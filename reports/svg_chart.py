"""Small, dependency-free SVG charts for reports: stacked horizontal bars and a log-log roofline.

Each chart is returned as a :class:`Chart`: the SVG text plus the layout it drew (for bars, one
:class:`BarRow` per category with the label's baseline and the bar's box), so tests can check that
every label sits on its own bar. Horizontal bars keep long op names readable and grow by one row per
category, so a chart is never wider than the page whatever the op count (aggregate before drawing
hundreds of rows; see :mod:`hwsim.reports.run_report`).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

#: Colour-blind-friendly categorical palette (Okabe-Ito, then tab10 extras).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
           "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#9467bd", "#ff9896")
_FONT = 12  # px
_CHAR_W = 6.6  # px per character at _FONT (sans-serif average), for label column widths
_ROW_H = 18  # px per bar row
_BAR_W = 520  # px of bar area


@dataclass(frozen=True)
class BarRow:
    """Where one category was drawn: label baseline ``label_y`` and bar box ``bar_y``..``bar_y + bar_h`` (px)."""

    label: str
    label_y: float
    bar_y: float
    bar_h: float
    total: float


@dataclass
class Chart:
    """An SVG chart and what it drew."""

    title: str
    svg: str
    rows: list[BarRow] = field(default_factory=list)


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float) -> str:
    """3 significant digits with an SI suffix for large values (84.5 k, 1.45 M)."""
    magnitude = abs(value)
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e4)):
        if magnitude >= scale:
            scale = 1e3 if suffix == "k" else scale
            return f"{value / scale:.3g} {suffix}"
    if value == 0 or magnitude >= 1e-2:
        return f"{value:,.3g}" if magnitude < 100 else f"{value:,.0f}"
    return f"{value:.2e}"


def _svg(width: float, height: float, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="{_FONT}" role="img" '
            f'aria-label="{_esc(title)}"><title>{_esc(title)}</title>' + "".join(body) + "</svg>")


def _legend(names, x0: float, y: float) -> tuple[list[str], float]:
    """Legend swatches in rows starting at (x0, y); return the SVG parts and the y below it."""
    parts, x = [], x0
    for i, name in enumerate(names):
        width = 18 + _CHAR_W * len(name) + 14
        if x + width > x0 + _BAR_W + 120 and x > x0:
            x, y = x0, y + 16
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{x + 16:.1f}" y="{y:.1f}">{_esc(name)}</text>')
        x += width
    return parts, y + 12


def hbar_chart(labels, segments: dict[str, list[float]], *, title: str, unit: str,
               annotate: list[str] | None = None) -> Chart:
    """Stacked horizontal bars, one row per label, segments stacked left to right.

    Parameters
    ----------
    labels : sequence of str
        Category names, drawn top to bottom in this order.
    segments : dict
        Segment name -> one non-negative value per label (same unit).
    title, unit : str
        Chart title and value unit (shown on the axis and after each total).
    annotate : list of str, optional
        Text drawn after each bar instead of its total (e.g. a percentage).
    """
    labels = [str(label) for label in labels]
    names = list(segments)
    totals = [sum(segments[n][i] for n in names) for i in range(len(labels))]
    vmax = max(totals, default=0.0) or 1.0
    label_w = min(360.0, _CHAR_W * max((len(t) for t in labels), default=4) + 12)
    x0 = label_w + 8
    body = [f'<text x="0" y="16" font-weight="bold" font-size="14">{_esc(title)}</text>']
    y = 36.0
    if len(names) > 1:
        legend, y = _legend(names, x0, y)
        body += legend
        y += 6
    rows = []
    for i, label in enumerate(labels):
        top = y + i * _ROW_H + 2
        h = _ROW_H - 4
        center = top + h / 2
        baseline = center + _FONT * 0.35  # text baseline that centres a 12 px glyph on the bar
        x = x0
        body.append(f'<text class="label" x="{label_w:.1f}" y="{baseline:.1f}" text-anchor="end">'
                    f"<title>{_esc(label)}</title>{_esc(_clip(label, label_w))}</text>")
        for j, name in enumerate(names):
            w = _BAR_W * segments[name][i] / vmax
            if w > 0:
                body.append(f'<rect class="bar" data-row="{i}" x="{x:.1f}" y="{top:.1f}" width="{w:.2f}" '
                            f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}"><title>{_esc(label)} - '
                            f"{_esc(name)}: {_fmt(segments[name][i])} {_esc(unit)}</title></rect>")
            x += w
        note = annotate[i] if annotate else f"{_fmt(totals[i])} {unit}"
        body.append(f'<text x="{x + 4:.1f}" y="{baseline:.1f}" fill="#444">{_esc(note)}</text>')
        rows.append(BarRow(label, round(baseline, 1), round(top, 1), round(h, 1), totals[i]))
    bottom = y + len(labels) * _ROW_H + 6
    body.append(f'<line x1="{x0}" y1="{y - 2:.1f}" x2="{x0}" y2="{bottom - 4:.1f}" stroke="#888"/>')
    body.append(f'<text x="{x0}" y="{bottom + 12:.1f}" fill="#444">0</text>'
                f'<text x="{x0 + _BAR_W:.1f}" y="{bottom + 12:.1f}" text-anchor="end" fill="#444">'
                f"{_fmt(vmax)} {_esc(unit)}</text>")
    width = x0 + _BAR_W + 130
    return Chart(title, _svg(width, bottom + 20, body, title), rows)


def _clip(label: str, width_px: float) -> str:
    max_chars = int(width_px / _CHAR_W)
    return label if len(label) <= max_chars else "…" + label[-(max_chars - 1):]


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Decades between ``lo`` and ``hi``, with 2x and 5x steps when the range spans fewer than 3 decades."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    steps = (1, 2, 5) if math.log10(hi / lo) < 3 else (1,)
    return [s * 10.0 ** e for e in decades for s in steps]


def roofline_chart(points: list[tuple[str, str, float, float]], *, peak_gops: float, bandwidth_gbs: float | None,
                   title: str = "Roofline (per op, DRAM traffic)") -> Chart:
    """Log-log roofline: achieved GOP/s against arithmetic intensity (ops per DRAM byte), one dot per op.

    Parameters
    ----------
    points : list of (name, group, intensity_ops_per_byte, achieved_gops)
        Ops to plot; ``group`` picks the colour (op kind).
    peak_gops : float
        Compute roof, 2 x PEs x clock (GOP/s).
    bandwidth_gbs : float or None
        DRAM bandwidth (GB/s) for the sloped roof; omitted when unknown.
    """
    w, h, left, top, right, bottom = 640.0, 380.0, 64.0, 44.0, 20.0, 44.0
    xs = [p[2] for p in points] or [1.0]
    ys = [p[3] for p in points] or [1.0]
    x_lo, x_hi = min(xs) / 2, max(xs) * 2
    if bandwidth_gbs:
        x_lo = min(x_lo, peak_gops / bandwidth_gbs / 4)
        x_hi = max(x_hi, peak_gops / bandwidth_gbs * 4)
    y_lo, y_hi = min(ys) / 2, peak_gops * 2
    lx = (math.log10(x_lo), math.log10(x_hi))
    ly = (math.log10(y_lo), math.log10(y_hi))

    def px(x):
        return left + (math.log10(x) - lx[0]) / (lx[1] - lx[0]) * (w - left - right)

    def py(y):
        return h - bottom - (math.log10(y) - ly[0]) / (ly[1] - ly[0]) * (h - top - bottom)

    body = [f'<text x="0" y="16" font-weight="bold" font-size="14">{_esc(title)}</text>',
            f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="none" '
            f'stroke="#888"/>']
    for t in _log_ticks(x_lo, x_hi):
        if x_lo <= t <= x_hi:
            body.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{h - bottom}" stroke="#eee"/>'
                        f'<text x="{px(t):.1f}" y="{h - bottom + 14}" text-anchor="middle">{t:g}</text>')
    for t in _log_ticks(y_lo, y_hi):
        if y_lo <= t <= y_hi:
            body.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{w - right}" y2="{py(t):.1f}" stroke="#eee"/>'
                        f'<text x="{left - 4}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    body.append(f'<text x="{(left + w - right) / 2}" y="{h - 8}" text-anchor="middle">arithmetic intensity '
                f"(ops per DRAM byte)</text>"
                f'<text x="14" y="{(top + h - bottom) / 2}" text-anchor="middle" '
                f'transform="rotate(-90 14 {(top + h - bottom) / 2})">achieved GOP/s</text>')
    ridge = peak_gops / bandwidth_gbs if bandwidth_gbs else x_lo
    body.append(f'<line x1="{px(max(ridge, x_lo)):.1f}" y1="{py(peak_gops):.1f}" x2="{px(x_hi):.1f}" '
                f'y2="{py(peak_gops):.1f}" stroke="#c00" stroke-width="2"/>'
                f'<text x="{w - right - 4}" y="{py(peak_gops) - 5:.1f}" text-anchor="end" fill="#c00">'
                f"peak {_fmt(peak_gops)} GOP/s</text>")
    if bandwidth_gbs:
        x_start = max(x_lo, y_lo / bandwidth_gbs)
        body.append(f'<line x1="{px(x_start):.1f}" y1="{py(bandwidth_gbs * x_start):.1f}" x2="{px(ridge):.1f}" '
                    f'y2="{py(peak_gops):.1f}" stroke="#c00" stroke-width="2"/>'
                    f'<text x="{px(ridge) - 6:.1f}" y="{py(peak_gops) + 16:.1f}" text-anchor="end" fill="#c00">'
                    f"DRAM {_fmt(bandwidth_gbs)} GB/s</text>")
    groups = list(dict.fromkeys(p[1] for p in points))
    for name, group, x, y in points:
        color = PALETTE[groups.index(group) % len(PALETTE)]
        body.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}" fill-opacity="0.75">'
                    f"<title>{_esc(name)} ({_esc(group)}): {_fmt(x)} ops/B, {_fmt(y)} GOP/s</title></circle>")
    legend, _ = _legend(groups, left, 34)
    return Chart(title, _svg(w, h, body + legend, title))
