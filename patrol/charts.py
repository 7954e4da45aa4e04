"""Charts as SVG markup, drawn on the server: crisp in print, no JavaScript.

Pure Python (no Flask, no database): data in, `Markup` out, for a page or a WeasyPrint
PDF alike. A chart must tell the truth, so every chart here:
  * starts its value axis at zero, and every bar grows from the zero line;
  * draws a group or period with no data (value None) as a gap with the words for
    "no data", never as a zero bar (a zero is drawn as a zero: a hairline and "0");
  * marks a value from a small sample (`Datum.small`): a pale, outlined bar and a "*"
    after its value, explained under the chart (`Texts.small`);
  * carries a <title> and a <desc> (every label and value in words) for screen readers,
    and the caller prints the same numbers as a table beside it for print;
  * escapes every label: company and compound names are user text.

`hbars()` draws labelled horizontal bars (categories, companies: long Chinese names read
well on the left); `columns()` draws one column group per period (weeks).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

FONT = "Noto Sans CJK SC, sans-serif"
GAP_FILL = "#f3f3f3"
AXIS = "#666"
GRID = "#ddd"
TEXT = "#222"


@dataclass(frozen=True)
class Series:
    name: str
    colour: str


@dataclass(frozen=True)
class Datum:
    label: str
    values: tuple[float | None, ...]      # one per series; None: no data (a gap)
    small: bool = False                   # from a small sample: marked "*"
    note: str = ""                        # said after the label in the description


@dataclass(frozen=True)
class Texts:
    """The words a chart writes itself (translated by the caller)."""
    no_data: str = "no data"
    small: str = "* small sample"


def nice_scale(peak: float, ticks: int = 4, *, integer: bool = True) -> tuple[float, float]:
    """(top, step) of a value axis from zero: a step of 1, 2 or 5 × 10^k giving at most
    `ticks` intervals, and the top a multiple of it at or above `peak`. Counts
    (`integer`) never get a fractional step."""
    if not peak or peak <= 0 or math.isnan(peak):
        return 1.0, 1.0
    raw = peak / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    top = math.ceil(peak / step - 1e-9) * step
    return float(top), float(step)


def number(value: float | None, no_data: str = "—") -> str:
    """12 → '12', 3.25 → '3.3' (one decimal at most, half up), None → `no_data`."""
    if value is None:
        return no_data
    rounded = math.floor(value * 10 + 0.5) / 10
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def describe(intro: str, data: list[Datum], series: list[Series], texts: Texts) -> str:
    """The chart in words: '<intro> label: series value, …; label: no data.'"""
    parts = []
    for d in data:
        label = f"{d.label} ({d.note})" if d.note else d.label
        values = [f"{s.name} {number(v, texts.no_data)}" if len(series) > 1
                  else number(v, texts.no_data) for s, v in zip(series, d.values, strict=True)]
        mark = f" {texts.small}" if d.small else ""
        parts.append(f"{label}: {', '.join(values)}{mark}")
    return f"{intro} {'; '.join(parts)}." if parts else intro


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


def _open(chart_id: str, width: float, height: float, title: str, desc: str) -> list[str]:
    i = escape(chart_id)
    return [
        f'<svg class="chart" id="{i}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width:g} {height:g}" width="{width:g}" height="{height:g}" '
        f'role="img" aria-labelledby="{i}-title {i}-desc" font-family="{FONT}">',
        f'<title id="{i}-title">{escape(title)}</title>',
        f'<desc id="{i}-desc">{escape(desc)}</desc>',
    ]


def _legend(series: list[Series], texts: Texts, any_small: bool, x: float, y: float) -> list[str]:
    out = []
    if len(series) > 1:
        for s in series:
            out.append(f'<rect x="{x:g}" y="{y - 8:g}" width="9" height="9" '
                       f'fill="{escape(s.colour)}"/>')
            out.append(f'<text x="{x + 12:g}" y="{y:g}" font-size="10" fill="{TEXT}">'
                       f'{escape(s.name)}</text>')
            x += 24 + 11 * len(s.name)
    if any_small:
        out.append(f'<text class="small-note" x="{x:g}" y="{y:g}" font-size="10" '
                   f'fill="{TEXT}">{escape(texts.small)}</text>')
    return out


def _bar_attrs(colour: str, small: bool) -> str:
    if small:  # pale, outlined: the eye reads it as tentative before the "*" is seen
        return (f'fill="{escape(colour)}" fill-opacity="0.35" stroke="{escape(colour)}" '
                f'stroke-width="1" stroke-dasharray="3 2"')
    return f'fill="{escape(colour)}"'


def hbars(data: list[Datum], series: list[Series], *, chart_id: str, title: str, intro: str,
          texts: Texts = Texts(), width: int = 520, label_width: int = 150,
          label_chars: int = 13, integer: bool = True) -> Markup:
    """Horizontal bars, one row per datum, one bar per series, from a zero axis."""
    bar_h, pad = 11, 4
    row_h = bar_h * len(series) + 2 * pad
    top_pad, axis_h = 6, 18
    any_small = any(d.small for d in data)
    legend_h = 16 if (len(series) > 1 or any_small) else 0
    height = top_pad + max(len(data), 1) * row_h + axis_h + legend_h
    plot_x, plot_w = label_width, width - label_width - 40   # room for the value on the right
    peak = max((v for d in data for v in d.values if v is not None), default=0)
    top, step = nice_scale(peak, integer=integer)
    scale = plot_w / top
    out = _open(chart_id, width, height, title, describe(intro, data, series, texts))
    plot_bottom = top_pad + max(len(data), 1) * row_h
    ticks = int(round(top / step))
    for k in range(ticks + 1):
        tick = k * step
        x = plot_x + tick * scale
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top_pad}" y2="{plot_bottom}" '
                   f'stroke="{AXIS if k == 0 else GRID}" stroke-width="1"/>')
        out.append(f'<text x="{x:.1f}" y="{plot_bottom + 12}" font-size="9" fill="{AXIS}" '
                   f'text-anchor="middle">{number(tick)}</text>')
    for r, d in enumerate(data):
        y0 = top_pad + r * row_h
        out.append(f'<text x="{plot_x - 4}" y="{y0 + row_h / 2 + 4:.1f}" font-size="10" '
                   f'fill="{TEXT}" text-anchor="end">{escape(_short(d.label, label_chars))}</text>')
        for j, (s, v) in enumerate(zip(series, d.values, strict=True)):
            y = y0 + pad + j * bar_h
            if v is None:
                out.append(f'<rect class="gap" x="{plot_x}" y="{y}" width="{plot_w}" '
                           f'height="{bar_h - 1}" fill="{GAP_FILL}"/>')
                out.append(f'<text x="{plot_x + 4}" y="{y + bar_h - 3}" font-size="9" '
                           f'fill="{AXIS}">{escape(texts.no_data)}</text>')
                continue
            w = v * scale
            out.append(f'<rect class="bar" x="{plot_x}" y="{y}" width="{w:.1f}" '
                       f'height="{bar_h - 1}" {_bar_attrs(s.colour, d.small)}>'
                       f'<title>{escape(d.label)} · {escape(s.name)}: {number(v)}</title></rect>')
            mark = "*" if d.small else ""
            out.append(f'<text x="{plot_x + w + 3:.1f}" y="{y + bar_h - 2}" font-size="9" '
                       f'fill="{TEXT}">{number(v)}{mark}</text>')
    if not data:
        out.append(f'<text x="{plot_x + 4}" y="{top_pad + row_h / 2 + 4:.1f}" font-size="10" '
                   f'fill="{AXIS}">{escape(texts.no_data)}</text>')
    out += _legend(series, texts, any_small, 4, height - 4)
    out.append("</svg>")
    return Markup("\n".join(out))


def columns(data: list[Datum], series: list[Series], *, chart_id: str, title: str, intro: str,
            texts: Texts = Texts(), width: int = 520, height: int = 180,
            integer: bool = True) -> Markup:
    """Column groups, one per period (left to right), from a zero axis; a period with no
    data is a shaded gap with the words for it."""
    left, top_pad, bottom = 30, 8, 30
    any_small = any(d.small for d in data)
    legend_h = 16 if (len(series) > 1 or any_small) else 0
    plot_h = height - top_pad - bottom - legend_h
    plot_w = width - left - 6
    peak = max((v for d in data for v in d.values if v is not None), default=0)
    top, step = nice_scale(peak, integer=integer)
    base = top_pad + plot_h
    out = _open(chart_id, width, height, title, describe(intro, data, series, texts))
    ticks = int(round(top / step))
    for k in range(ticks + 1):
        tick = k * step
        y = base - plot_h * tick / top
        out.append(f'<line x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="{AXIS if k == 0 else GRID}" stroke-width="1"/>')
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="9" fill="{AXIS}" '
                   f'text-anchor="end">{number(tick)}</text>')
    slot = plot_w / max(len(data), 1)
    bar_w = max(slot * 0.7 / max(len(series), 1), 2)
    for i, d in enumerate(data):
        x0 = left + i * slot + slot * 0.15
        centre = left + i * slot + slot / 2
        if all(v is None for v in d.values):
            out.append(f'<rect class="gap" x="{x0:.1f}" y="{top_pad}" width="{slot * 0.7:.1f}" '
                       f'height="{plot_h}" fill="{GAP_FILL}"/>')
            out.append(f'<text x="{centre:.1f}" y="{base - 4}" font-size="9" fill="{AXIS}" '
                       f'text-anchor="middle">{escape(texts.no_data)}</text>')
        else:
            for j, (s, v) in enumerate(zip(series, d.values, strict=True)):
                if v is None:
                    continue
                h = plot_h * v / top
                x = x0 + j * bar_w
                out.append(f'<rect class="bar" x="{x:.1f}" y="{base - h:.1f}" '
                           f'width="{bar_w:.1f}" height="{h:.1f}" '
                           f'{_bar_attrs(s.colour, d.small)}><title>{escape(d.label)} · '
                           f'{escape(s.name)}: {number(v)}</title></rect>')
                mark = "*" if d.small else ""
                out.append(f'<text x="{x + bar_w / 2:.1f}" y="{base - h - 2:.1f}" font-size="9" '
                           f'fill="{TEXT}" text-anchor="middle">{number(v)}{mark}</text>')
        out.append(f'<text x="{centre:.1f}" y="{base + 12}" font-size="9" fill="{TEXT}" '
                   f'text-anchor="middle">{escape(d.label)}</text>')
        if d.note:
            out.append(f'<text x="{centre:.1f}" y="{base + 23}" font-size="8" fill="{AXIS}" '
                       f'text-anchor="middle">{escape(d.note)}</text>')
    out += _legend(series, texts, any_small, left, height - 4)
    out.append("</svg>")
    return Markup("\n".join(out))
