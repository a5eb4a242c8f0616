"""Bar charts as inline SVG geometry, computed on the server: no script, no chart library.
The template draws them (impact/_chart.html); every number is also in a table."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from dataclasses import dataclass, field

WIDTH = 640
LABEL_W = 190
BAR_W = 330
ROW_H = 30
TOP = 8
COLOURS = ("#1f5f3a", "#b5892b")


@dataclass
class Bar:
    x: int
    y: int
    width: int
    height: int
    colour: str
    text: str
    text_x: int
    text_y: int


@dataclass
class Row:
    label: str
    label_y: int
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Chart:
    id: str
    title: str
    desc: str
    height: int
    rows: list[Row]
    legend: list[tuple[str, str]]  # (colour, series name)


def bar_chart(chart_id: str, title: str, desc: str, items: list[tuple[str, list]],
              series: list[str] | None = None) -> Chart | None:
    """items: (label, [(value or None, text), ...one per series]). A None value (hidden or
    missing) draws no bar, only its text. None when there is nothing to draw."""
    if not items:
        return None
    nseries = max(len(values) for _label, values in items)
    # Exact values (int or Decimal): only the bar width in whole pixels is rounded.
    top = max([Decimal(v) for _l, values in items for v, _t in values if v is not None]
              or [Decimal(0)])
    bar_h = 18 if nseries == 1 else 11
    row_h = ROW_H if nseries == 1 else 10 + 13 * nseries
    rows = []
    for i, (label, values) in enumerate(items):
        y0 = TOP + i * row_h
        row = Row(label=label, label_y=y0 + row_h // 2 + 4)
        for j, (value, text) in enumerate(values):
            width = 0 if value is None or top <= 0 else max(
                1 if Decimal(value) > 0 else 0,
                int((BAR_W * Decimal(value) / top).to_integral_value(ROUND_HALF_UP)))
            y = y0 + 4 + j * (bar_h + 2) if nseries > 1 else y0 + (row_h - bar_h) // 2
            row.bars.append(Bar(x=LABEL_W, y=y, width=width, height=bar_h,
                                colour=COLOURS[j % len(COLOURS)], text=text,
                                text_x=LABEL_W + width + 6, text_y=y + bar_h - 3))
        rows.append(row)
    legend = [(COLOURS[j % len(COLOURS)], name) for j, name in enumerate(series or [])] \
        if nseries > 1 else []
    return Chart(id=chart_id, title=title, desc=desc, height=TOP * 2 + row_h * len(items),
                 rows=rows, legend=legend)
