"""Plot geometries as the EUDR and TRACES take them, checked with shapely and measured with
pyproj: RFC 7946 `Point`, `Polygon` or `MultiPolygon` in WGS 84, positions
[longitude, latitude] with at least 6 decimals (about 10 cm), rings closed, of at least 4
positions, not crossing themselves; a plot above 4 ha must be a polygon.

Numbers stay `Decimal`s from the text they were read from to the text that is stored, so a
stored geometry exports exactly as it came in (no float rounding); shapely and pyproj see
them only to check and to measure. No database here: `coop.plots.services` records."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from pyproj import Geod
from shapely.geometry import shape
from shapely.geometry.polygon import LinearRing
from shapely.validation import explain_validity

MIN_DECIMALS = 6
POINT_MAX_M2 = 40_000  # 4 ha: above it a point is not enough
_GEOD = Geod(ellps="WGS84")

# Bounding boxes (lon min, lat min, lon max, lat max) of the producing countries, islands
# included: a coarse "inside the country" for those without a vendored outline (CO, PE, EC
# and BO have one: countries.geojson).
COUNTRY_BOXES = {
    "CO": (-82.0, -4.3, -66.8, 13.6), "PE": (-81.4, -18.4, -68.6, 0.1),
    "EC": (-92.1, -5.1, -75.2, 1.7), "BO": (-69.7, -22.9, -57.4, -9.6),
    "BR": (-74.0, -33.8, -34.7, 5.3), "VE": (-73.4, 0.6, -59.8, 12.2),
    "MX": (-118.5, 14.5, -86.7, 32.8), "GT": (-92.3, 13.7, -88.2, 17.9),
    "HN": (-89.4, 12.9, -83.1, 16.6), "NI": (-87.7, 10.7, -82.6, 15.1),
    "CR": (-86.0, 8.0, -82.5, 11.3), "PA": (-83.1, 7.2, -77.1, 9.7),
    "DO": (-72.1, 17.5, -68.3, 20.0), "SV": (-90.2, 13.1, -87.6, 14.5),
}


@dataclass(frozen=True)
class Problem:
    """One reason a geometry is refused (an error) or worth a second look (a warning)."""
    code: str
    message: str


@dataclass
class Checked:
    """What `check` found: the geometry (canonical text, kind, shapely shape, geodesic area,
    bounding box in 1e-7 degrees) when it can be stored, and the errors and warnings."""
    kind: str | None = None
    geometry_json: str | None = None
    shape: object = None
    computed_area_m2: int | None = None
    bbox_e7: tuple[int, int, int, int] | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class Refused(Exception):
    def __init__(self, problem: Problem):
        super().__init__(str(problem.message))
        self.problem = problem


def _refuse(code: str, message) -> Refused:
    return Refused(Problem(code, message))


def loads(text: str | bytes) -> object:
    """JSON with every number a Decimal (so "2.400000" keeps its six decimals)."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, RecursionError):
        raise _refuse("not_json", _l("This is not a GeoJSON file: it is not valid JSON."))


def _decimal(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise _refuse("not_number", _l("A coordinate is not a number."))
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise _refuse("not_number", _l("A coordinate is not a number."))
    if not number.is_finite():
        raise _refuse("not_number", _l("A coordinate is not a number."))
    return number


def _position(raw) -> tuple[Decimal, Decimal]:
    """[lon, lat] (an altitude, as KML and GPS give it, is dropped)."""
    if not isinstance(raw, (list, tuple)) or len(raw) < 2:
        raise _refuse("bad_position", _l("Each position must be [longitude, latitude]."))
    return _decimal(raw[0]), _decimal(raw[1])


def _ring(raw) -> list[tuple[Decimal, Decimal]]:
    if not isinstance(raw, (list, tuple)):
        raise _refuse("bad_ring", _l("A polygon's ring must be a list of positions."))
    return [_position(p) for p in raw]


def normalise(geometry) -> tuple[str, list]:
    """(kind, coordinates as Decimal tuples) of a GeoJSON geometry, a Feature with one, or a
    FeatureCollection of exactly one Feature. Refuses any other type."""
    if isinstance(geometry, dict) and geometry.get("type") == "FeatureCollection":
        features = geometry.get("features") or []
        if len(features) != 1:
            raise _refuse("many_features", _l("Send one plot here; a file of several plots "
                                              "goes to the register import."))
        geometry = features[0]
    if isinstance(geometry, dict) and geometry.get("type") == "Feature":
        geometry = geometry.get("geometry")
    if not isinstance(geometry, dict):
        raise _refuse("no_geometry", _l("No geometry was given."))
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Point":
        return "point", _position(coords)
    if kind == "Polygon":
        if not isinstance(coords, (list, tuple)) or not coords:
            raise _refuse("bad_ring", _l("A polygon needs at least one ring."))
        return "polygon", [_ring(r) for r in coords]
    if kind == "MultiPolygon":
        if not isinstance(coords, (list, tuple)) or not coords:
            raise _refuse("bad_ring", _l("A multipolygon needs at least one polygon."))
        polygons = []
        for polygon in coords:
            if not isinstance(polygon, (list, tuple)) or not polygon:
                raise _refuse("bad_ring", _l("A polygon needs at least one ring."))
            polygons.append([_ring(r) for r in polygon])
        return "multipolygon", polygons
    raise _refuse("bad_type", _l("A plot is a Point, a Polygon or a MultiPolygon "
                                 "(this is %(kind)s).", kind=str(kind)[:40]))


def _positions(kind: str, coords) -> list[tuple[Decimal, Decimal]]:
    if kind == "point":
        return [coords]
    rings = coords if kind == "polygon" else [r for p in coords for r in p]
    return [pos for ring in rings for pos in ring]


def _decimals(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


OUTLINES_FILE = Path(__file__).with_name("countries.geojson")


@lru_cache(maxsize=1)
def _outlines() -> dict:
    """The vendored outlines (coop/plots/countries.geojson, made by
    devtools/country_outlines.py from Natural Earth), prepared for fast point tests."""
    import shapely
    data = json.loads(OUTLINES_FILE.read_text(encoding="utf-8"))
    outlines = {f["properties"]["country"]: shape(f["geometry"]) for f in data["features"]}
    for outline in outlines.values():
        shapely.prepare(outline)
    return outlines


def inside(country: str, lon: Decimal, lat: Decimal) -> bool | None:
    """Whether (lon, lat) falls inside the country: its outline (Colombia, Peru, Ecuador,
    Bolivia: Natural Earth's, buffered by about 3 km), else its bounding box; None for a
    country not known."""
    return inside_many(country, [(lon, lat)])[0]


def inside_many(country: str, positions) -> list:
    """`inside` for many positions at once (one vectorised test against the outline)."""
    outline = _outlines().get(country)
    if outline is not None:
        import shapely
        lons = [float(p[0]) for p in positions]
        lats = [float(p[1]) for p in positions]
        return [bool(v) for v in shapely.contains_xy(outline, lons, lats)]
    box = COUNTRY_BOXES.get(country)
    if box is None:
        return [None] * len(positions)
    low_lon, low_lat = Decimal(str(box[0])), Decimal(str(box[1]))
    high_lon, high_lat = Decimal(str(box[2])), Decimal(str(box[3]))
    return [low_lon <= lon <= high_lon and low_lat <= lat <= high_lat
            for lon, lat in positions]


def _oriented(ring: list, ccw: bool) -> list:
    """RFC 7946: exterior rings counter-clockwise, holes clockwise (reversed if not)."""
    return ring if LinearRing(ring).is_ccw == ccw else list(reversed(ring))


def _text(number: Decimal) -> str:
    return format(number, "f")


def dumps(kind: str, coords) -> str:
    """The canonical RFC 7946 text of a normalised geometry (no spaces, numbers as given)."""
    def pos(p):
        return f"[{_text(p[0])},{_text(p[1])}]"

    def ring(r):
        return "[" + ",".join(pos(p) for p in r) + "]"

    def polygon(rings):
        return "[" + ",".join(ring(r) for r in rings) + "]"

    if kind == "point":
        return '{"type":"Point","coordinates":' + pos(coords) + "}"
    if kind == "polygon":
        return '{"type":"Polygon","coordinates":' + polygon(coords) + "}"
    return ('{"type":"MultiPolygon","coordinates":['
            + ",".join(polygon(p) for p in coords) + "]}")


def area_m2(geom) -> int:
    """The geodesic area of a shapely polygon or multipolygon on the WGS 84 ellipsoid, m2."""
    area, _perimeter = _GEOD.geometry_area_perimeter(geom)
    return int(round(abs(area)))


def check(geometry, *, declared_area_m2: int, country: str | None,
          accuracy_m: int | None = None, tolerance_bps: int = 2000,
          max_accuracy_m: int = 15) -> Checked:
    """Checks a geometry for a plot of `declared_area_m2` in `country`. Errors (nothing can
    be stored): not a Point/Polygon/MultiPolygon, a position out of range, fewer than 6
    decimals, a swapped [lat, lon] pair, a position outside the country, a ring not closed
    or of fewer than 4 positions, a self-intersection, a point for a plot above 4 ha.
    Warnings: the computed area off the declared one by more than `tolerance_bps`, a GPS
    accuracy worse than `max_accuracy_m`."""
    result = Checked()
    try:
        kind, coords = normalise(geometry)
    except Refused as refused:
        result.errors.append(refused.problem)
        return result
    positions = _positions(kind, coords)
    if not positions:
        result.errors.append(Problem("bad_ring", _l("A polygon's ring has no positions.")))
        return result
    found = inside_many(country, positions) if country else [None] * len(positions)
    for (lon, lat), within in zip(positions, found):
        # A latitude beyond 90 is a longitude in its place, unless read the other way round
        # it is still not in the coop's country (then it is only out of range).
        swapped = abs(lon) <= 90 and abs(lat) <= 180 and (
            (abs(lat) > 90 and not (country and inside(country, lat, lon) is False)) or (
                country and within is False and inside(country, lat, lon)))
        if swapped:
            result.errors.append(Problem("swapped", _l(
                "Latitude and longitude are swapped: GeoJSON gives [longitude, latitude] "
                "(%(lat)s, %(lon)s read the other way round falls in the country).",
                lat=_text(lat), lon=_text(lon))))
            return result
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            result.errors.append(Problem("out_of_range", _l(
                "A position is out of range: longitude goes from -180 to 180 and latitude "
                "from -90 to 90 (%(lon)s, %(lat)s).", lon=_text(lon), lat=_text(lat))))
            return result
        if country and within is False:
            result.errors.append(Problem("outside_country", _l(
                "The position %(lon)s, %(lat)s is not in the coop's country.",
                lon=_text(lon), lat=_text(lat))))
            return result
        if min(_decimals(lon), _decimals(lat)) < MIN_DECIMALS:
            result.errors.append(Problem("few_decimals", _l(
                "Give every coordinate with at least 6 decimals (about 10 cm): "
                "%(lon)s, %(lat)s has fewer.", lon=_text(lon), lat=_text(lat))))
            return result
    if kind == "point":
        if declared_area_m2 > POINT_MAX_M2:
            result.errors.append(Problem("point_too_large", _l(
                "A plot above 4 ha must be drawn as a polygon (walk its boundary or upload "
                "it); a point is enough only up to 4 ha.")))
            return result
    else:
        polygons = [coords] if kind == "polygon" else coords
        for rings in polygons:
            for ring in rings:
                if len(ring) < 4:
                    result.errors.append(Problem("few_positions", _l(
                        "A polygon's ring needs at least 4 positions (3 corners and the first "
                        "again to close it).")))
                    return result
                if ring[0] != ring[-1]:
                    result.errors.append(Problem("not_closed", _l(
                        "A polygon's ring must be closed: its last position must be its "
                        "first.")))
                    return result
        oriented = [[_oriented(r, ccw=(i == 0)) for i, r in enumerate(rings)]
                    for rings in polygons]
        coords = oriented[0] if kind == "polygon" else oriented
    geom = shape({"type": {"point": "Point", "polygon": "Polygon",
                           "multipolygon": "MultiPolygon"}[kind], "coordinates": coords})
    if kind != "point" and not geom.is_valid:
        result.errors.append(Problem("invalid_polygon", _l(
            "The boundary crosses itself or its parts overlap (%(why)s): walk it again or "
            "correct the file.", why=explain_validity(geom))))
        return result
    result.kind, result.shape = kind, geom
    result.geometry_json = dumps(kind, coords)
    lons = [p[0] for p in positions]
    lats = [p[1] for p in positions]
    result.bbox_e7 = tuple(int(v.scaleb(7).to_integral_value())
                           for v in (min(lons), min(lats), max(lons), max(lats)))
    if kind != "point":
        result.computed_area_m2 = area_m2(geom)
        off = abs(result.computed_area_m2 - declared_area_m2) * 10_000
        if declared_area_m2 and off > tolerance_bps * declared_area_m2:
            result.warnings.append(Problem("area_differs", _l(
                "The boundary measures %(computed)s ha but the plot is declared as "
                "%(declared)s ha.",
                computed=_hectares(result.computed_area_m2),
                declared=_hectares(declared_area_m2))))
    if accuracy_m is not None and accuracy_m > max_accuracy_m:
        result.warnings.append(Problem("poor_accuracy", _l(
            "The GPS accuracy was %(accuracy)d m (the coop accepts up to %(max)d m): take it "
            "again in the open, away from trees and roofs, if you can.",
            accuracy=accuracy_m, max=max_accuracy_m)))
    return result


def _hectares(m2: int) -> str:
    from ..common.numbers import format_number
    return format_number(Decimal(m2) / 10_000, "#,##0.00")
