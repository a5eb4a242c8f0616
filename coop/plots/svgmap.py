"""A server-drawn SVG map of plots (no tiles, no third-party request).

`render(shapes)` takes `Shape`s (key, label, GeoJSON geometry as text or dict, complete) and
returns inline SVG: equirectangular projection scaled by cos(mean latitude) around the
shapes' bbox, a margin, a metric scale bar, a north arrow, dashed outlines for incomplete
plots with a legend, and a text list of the plots for screen readers. Coordinates are
rounded to 0.1 px so a 50-vertex polygon stays small. Every label is escaped.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from markupsafe import Markup, escape

_M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class Shape:
    key: str
    label: str
    geometry: str | dict | None
    complete: bool = True


def _rings(geom: dict) -> tuple[list[list[tuple[float, float]]], list[tuple[float, float]]]:
    """(polygon rings, points) of a GeoJSON geometry."""
    t, c = geom.get("type"), geom.get("coordinates")
    if t == "Point":
        return [], [(float(c[0]), float(c[1]))]
    if t == "MultiPoint":
        return [], [(float(p[0]), float(p[1])) for p in c]
    if t == "Polygon":
        return [[(float(p[0]), float(p[1])) for p in r] for r in c], []
    if t == "MultiPolygon":
        return [[(float(p[0]), float(p[1])) for p in r] for poly in c for r in poly], []
    return [], []


def _nice(metres: float) -> float:
    """The largest 1/2/5 × 10^n not above `metres`."""
    if metres <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(metres))
    for f in (5, 2, 1):
        if f * e <= metres:
            return f * e
    return e


def _f(v: float) -> str:
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def render(shapes, *, highlight=(), width: int = 320, height: int = 240, title: str = "Plots",
           legend_complete: str = "complete", legend_incomplete: str = "incomplete (dashed)",
           empty_text: str = "No plot has a geometry yet.") -> Markup:
    parsed = []
    for s in shapes:
        g = s.geometry
        if isinstance(g, str):
            try:
                g = json.loads(g)
            except ValueError:
                g = None
        rings, points = _rings(g) if isinstance(g, dict) else ([], [])
        parsed.append((s, rings, points))
    allpos = [p for _, rs, ps in parsed for r in rs for p in r] + [p for _, _, ps in parsed for p in ps]
    items = "".join(f"<li>{escape(s.label)}{'' if s.complete else ' — ' + str(escape(legend_incomplete))}</li>"
                    for s, _, _ in parsed)
    if not allpos:
        return Markup(f'<div class="plotmap"><p>{escape(empty_text)}</p><ul class="plotmap-list">{items}</ul></div>')
    lons = [p[0] for p in allpos]
    lats = [p[1] for p in allpos]
    lat0 = (min(lats) + max(lats)) / 2
    k = math.cos(math.radians(lat0))
    # metres from the bbox's south-west corner
    x0, y1 = min(lons), max(lats)
    span_x = max((max(lons) - x0) * k * _M_PER_DEG, 20.0)
    span_y = max((y1 - min(lats)) * _M_PER_DEG, 20.0)
    margin = 24
    legend_h = 28
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin - legend_h) / span_y)
    # The shapes centred in the frame (a lone point in the middle, not in a corner).
    left = margin + ((width - 2 * margin) - (max(lons) - x0) * k * _M_PER_DEG * scale) / 2
    top = margin + ((height - 2 * margin - legend_h) - (y1 - min(lats)) * _M_PER_DEG * scale) / 2

    def xy(p):
        return (left + (p[0] - x0) * k * _M_PER_DEG * scale,
                top + (y1 - p[1]) * _M_PER_DEG * scale)

    hl = set(highlight)
    body = []
    for s, rings, points in parsed:
        cls = "plot" + ("" if s.complete else " plot-incomplete") + (" plot-hl" if s.key in hl else "")
        dash = "" if s.complete else ' stroke-dasharray="6 4"'
        sw = 4 if s.key in hl else 3
        lab = escape(s.label)
        for r in rings:
            d = "M" + "L".join(f"{_f(a)} {_f(b)}" for a, b in map(xy, r)) + "Z"
            body.append(f'<path class="{cls}" d="{d}" fill="#2e7d3233" stroke="#1b5e20" '
                        f'stroke-width="{sw}"{dash}/>')
        for p in points:
            a, b = xy(p)
            body.append(f'<circle class="{cls}" cx="{_f(a)}" cy="{_f(b)}" r="7" fill="#c62828" '
                        f'stroke="#fff" stroke-width="2"{dash}/>')
        pts = [xy(p) for r in rings[:1] for p in r] or [xy(p) for p in points[:1]]
        if pts:
            cx = sum(a for a, _ in pts) / len(pts)
            cy = sum(b for _, b in pts) / len(pts) - (12 if not rings else 0)
            body.append(f'<text x="{_f(cx)}" y="{_f(cy)}" text-anchor="middle" font-size="14" '
                        f'font-weight="bold" paint-order="stroke" stroke="#fff" stroke-width="3">{lab}</text>')
    # scale bar
    bar_m = _nice((width - 2 * margin) / scale / 3)
    bar_px = bar_m * scale
    yb = height - 10
    unit = f"{bar_m / 1000:g} km" if bar_m >= 1000 else f"{bar_m:g} m"
    body.append(f'<path d="M{margin} {yb}h{_f(bar_px)}" stroke="#000" stroke-width="3"/>'
                f'<text x="{margin}" y="{yb - 6}" font-size="12">{unit}</text>')
    # north arrow
    nx = width - margin
    body.append(f'<path d="M{nx} 8l6 16h-12z" fill="#000"/>'
                f'<text x="{nx}" y="38" text-anchor="middle" font-size="12">N</text>')
    # legend
    lx = width // 3
    body.append(f'<path d="M{lx} {yb}h20" stroke="#1b5e20" stroke-width="3"/>'
                f'<text x="{lx + 24}" y="{yb + 4}" font-size="12">{escape(legend_complete)}</text>'
                f'<path d="M{lx} {yb - 16}h20" stroke="#1b5e20" stroke-width="3" stroke-dasharray="6 4"/>'
                f'<text x="{lx + 24}" y="{yb - 12}" font-size="12">{escape(legend_incomplete)}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
           f'width="100%" style="max-width:{width * 2}px" aria-labelledby="plotmap-title">'
           f'<title id="plotmap-title">{escape(title)}</title>{"".join(body)}</svg>')
    return Markup(f'<div class="plotmap">{svg}<ul class="plotmap-list">{items}</ul></div>')
