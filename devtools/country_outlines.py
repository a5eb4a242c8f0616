"""Makes coop/plots/countries.geojson, the simplified outlines of the producing countries that
the plots' "inside the coop's country" check reads (coop/plots/geometry.py), once, from
Natural Earth's public-domain boundaries as the npm package `world-atlas` (ISC) ships them:

    cd /tmp && npm pack world-atlas@2 && tar xzf world-atlas-2.0.2.tgz
    .venv/bin/python -m devtools.country_outlines /tmp/package/countries-50m.json

The TopoJSON arcs are decoded (delta-encoded, quantised), each country's polygons rebuilt,
buffered outwards by BUFFER_DEG (a farm on the border must not be refused because the 1:50m
outline cuts a corner), simplified, and written with 3 decimals (about 100 m): a few KB
per country."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.ops import unary_union

# ISO 3166-1 numeric (the TopoJSON ids) -> alpha-2, the countries of Minga's coops.
COUNTRIES = {"170": "CO", "604": "PE", "218": "EC", "068": "BO"}
BUFFER_DEG = 0.03       # about 3 km outwards
SIMPLIFY_DEG = 0.01     # about 1 km
OUT = Path(__file__).resolve().parent.parent / "coop" / "plots" / "countries.geojson"


def _arcs(topology: dict) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    decoded = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        decoded.append(points)
    return decoded


def _ring(arcs, indexes) -> list[tuple[float, float]]:
    ring: list = []
    for index in indexes:
        points = arcs[index] if index >= 0 else list(reversed(arcs[~index]))
        ring.extend(points if not ring else points[1:])
    return ring


def outlines(topology: dict) -> dict:
    arcs = _arcs(topology)
    features = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        code = COUNTRIES.get(str(geometry.get("id")))
        if code is None:
            continue
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" \
            else [geometry["arcs"]]
        shapes = [Polygon(_ring(arcs, rings[0]), [_ring(arcs, r) for r in rings[1:]])
                  for rings in polygons]
        merged = unary_union([s.buffer(0) for s in shapes]).buffer(BUFFER_DEG)
        simple = merged.simplify(SIMPLIFY_DEG, preserve_topology=True)
        if isinstance(simple, Polygon):
            simple = MultiPolygon([simple])
        geojson = mapping(simple)
        rounded = [[[[round(x, 3), round(y, 3)] for x, y in ring] for ring in polygon]
                   for polygon in geojson["coordinates"]]
        features.append({"type": "Feature", "properties": {"country": code},
                         "geometry": {"type": "MultiPolygon", "coordinates": rounded}})
    features.sort(key=lambda f: f["properties"]["country"])
    return {"type": "FeatureCollection",
            "source": "Natural Earth 1:50m (public domain) via world-atlas 2.0.2, buffered "
                      f"{BUFFER_DEG} deg and simplified {SIMPLIFY_DEG} deg by "
                      "devtools/country_outlines.py",
            "features": features}


def main(path: str) -> None:
    data = outlines(json.loads(Path(path).read_text()))
    OUT.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    print(f"{OUT}: {OUT.stat().st_size} bytes, "
          f"{', '.join(f['properties']['country'] for f in data['features'])}")


if __name__ == "__main__":
    main(sys.argv[1])
