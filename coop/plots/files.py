"""Plot files as coops receive them: GeoJSON (RFC 7946) and KML (Google Earth, GPS apps), read
into features — a geometry as a GeoJSON mapping with Decimal numbers (geometry.check's
input) and the properties that match it to a member and a plot.

KML is parsed with the standard library's XML parser after refusing any DOCTYPE (no entity
can be declared, so none can expand: the "billion laughs" and external entities need one).
A Placemark's `<Point>`, `<Polygon>` (outer and inner boundaries) or `<MultiGeometry>` of
those is read from its `<coordinates>lon,lat[,alt] ...</coordinates>`; the altitude is
dropped. Its properties: each `<ExtendedData>` `<Data name="..."><value>` and
`<SchemaData><SimpleData name="...">`, and `<name>` as "name". No database here."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

from . import geometry as geo

MAX_FEATURES = 20_000


class FileRefused(ValueError):
    """The file as a whole cannot be read (not one row of it)."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


@dataclass
class Feature:
    """One feature of a file: its geometry (a GeoJSON mapping, or None with `error`), its
    properties (keys as in the file) and where it is (1-based)."""
    number: int
    geometry: object = None
    properties: dict = field(default_factory=dict)
    error: object = None  # a message: this feature's geometry could not be read

    def prop(self, *names):
        """The first of these properties present (names compared without case, "_" or
        spaces), as text stripped; None if none is."""
        wanted = [_key(n) for n in names]
        found = {_key(k): v for k, v in self.properties.items()}
        for name in wanted:
            value = found.get(name)
            if value is not None and str(value).strip() != "":
                return str(value).strip()
        return None


def _key(name) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def kind_of(filename: str, data: bytes) -> str:
    """"kml" or "geojson", from the name, else the first bytes."""
    name = (filename or "").lower()
    if name.endswith(".kml"):
        return "kml"
    if name.endswith((".geojson", ".json")):
        return "geojson"
    head = data.lstrip()[:200]
    return "kml" if head.startswith(b"<") else "geojson"


def read(filename: str, data: bytes) -> list[Feature]:
    """Every feature of a GeoJSON or KML file; FileRefused when it is neither."""
    if not data or not data.strip():
        raise FileRefused(_l("The file is empty."))
    return read_kml(data) if kind_of(filename, data) == "kml" else read_geojson(data)


# ---------------------------------------------------------------- GeoJSON

def read_geojson(data: bytes) -> list[Feature]:
    try:
        doc = geo.loads(data)
    except geo.Refused as refused:
        raise FileRefused(refused.problem.message)
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        raw = doc.get("features")
        if not isinstance(raw, list):
            raise FileRefused(_l("A FeatureCollection needs a list of features."))
    elif isinstance(doc, dict) and (doc.get("type") == "Feature" or "coordinates" in doc):
        raw = [doc]
    else:
        raise FileRefused(_l("This is not GeoJSON: give a FeatureCollection, a Feature or a "
                             "geometry."))
    if len(raw) > MAX_FEATURES:
        raise FileRefused(_l("The file has more than %(n)d plots: split it.", n=MAX_FEATURES))
    features = []
    for number, item in enumerate(raw, start=1):
        if isinstance(item, dict) and item.get("type") == "Feature":
            props = item.get("properties")
            features.append(Feature(number, item.get("geometry"),
                                    props if isinstance(props, dict) else {}))
        elif isinstance(item, dict) and "coordinates" in item:
            features.append(Feature(number, item, {}))
        else:
            features.append(Feature(number, None, {}, _l("This feature is not a GeoJSON "
                                                         "Feature.")))
    return features


# ---------------------------------------------------------------- KML

_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(node, name):
    return [c for c in node if _local(c.tag) == name]


def _descendants(node, name):
    return [c for c in node.iter() if _local(c.tag) == name]


def parse_xml(data: bytes):
    """The root element; FileRefused for a DOCTYPE or an entity declaration (refused before
    parsing: nothing can expand) or XML that is not well formed."""
    if _DOCTYPE.search(data):
        raise FileRefused(_l("This KML file declares a DOCTYPE or entities, which Minga does "
                             "not read: export it again without them."))
    try:
        return ET.fromstring(data)
    except ET.ParseError:
        raise FileRefused(_l("This is not a KML file: its XML is not well formed."))


def _coordinates(node) -> list[list[Decimal]]:
    """The positions of a <coordinates> element: "lon,lat[,alt]" separated by whitespace."""
    text = (node.text or "").strip() if node is not None else ""
    if not text:
        raise geo.Refused(geo.Problem("bad_position", _l("A <coordinates> element is empty.")))
    positions = []
    for chunk in text.split():
        parts = chunk.split(",")
        if len(parts) not in (2, 3):
            raise geo.Refused(geo.Problem("bad_position", _l(
                "KML coordinates are longitude,latitude[,altitude] (%(text)s is not).",
                text=chunk[:40])))
        try:
            lon, lat = Decimal(parts[0]), Decimal(parts[1])
        except InvalidOperation:
            raise geo.Refused(geo.Problem("not_number", _l("A coordinate is not a number.")))
        positions.append([lon, lat])
    return positions


def _ring_of(boundary) -> list:
    rings = _descendants(boundary, "coordinates")
    if not rings:
        raise geo.Refused(geo.Problem("bad_ring", _l("A polygon's boundary has no "
                                                     "coordinates.")))
    return _coordinates(rings[0])


def _polygon(node) -> list:
    outer = _children(node, "outerBoundaryIs")
    if not outer:
        raise geo.Refused(geo.Problem("bad_ring", _l("A polygon has no outer boundary.")))
    return [_ring_of(outer[0])] + [_ring_of(b) for b in _children(node, "innerBoundaryIs")]


def _kml_geometry(placemark) -> dict:
    """The Placemark's geometry as a GeoJSON mapping (Point, Polygon or MultiPolygon)."""
    points = [n for n in placemark.iter() if _local(n.tag) == "Point"]
    polygons = [n for n in placemark.iter() if _local(n.tag) == "Polygon"]
    if polygons and points:
        raise geo.Refused(geo.Problem("bad_type", _l(
            "A plot is a point or its boundary, not both: this placemark has both.")))
    if polygons:
        rings = [_polygon(p) for p in polygons]
        if len(rings) == 1:
            return {"type": "Polygon", "coordinates": rings[0]}
        return {"type": "MultiPolygon", "coordinates": rings}
    if len(points) == 1:
        coords = _coordinates(next(iter(_descendants(points[0], "coordinates")), None))
        if len(coords) != 1:
            raise geo.Refused(geo.Problem("bad_position", _l("A point has one position.")))
        return {"type": "Point", "coordinates": coords[0]}
    if points:
        raise geo.Refused(geo.Problem("bad_type", _l(
            "A plot is one point or its boundary: this placemark has several points.")))
    raise geo.Refused(geo.Problem("no_geometry", _l(
        "This placemark has no Point or Polygon (a LineString is no plot: close it into a "
        "polygon).")))


def _kml_properties(placemark) -> dict:
    props = {}
    for data in _descendants(placemark, "Data"):
        values = _children(data, "value")
        if data.get("name"):
            props[data.get("name")] = (values[0].text or "") if values else ""
    for simple in _descendants(placemark, "SimpleData"):
        if simple.get("name"):
            props[simple.get("name")] = simple.text or ""
    names = _children(placemark, "name")
    if names and names[0].text:
        props.setdefault("name", names[0].text.strip())
    descriptions = _children(placemark, "description")
    if descriptions and descriptions[0].text:
        props.setdefault("description", descriptions[0].text.strip())
    return props


def read_kml(data: bytes) -> list[Feature]:
    root = parse_xml(data)
    if _local(root.tag) != "kml":
        raise FileRefused(_l("This is not a KML file (its root is not <kml>)."))
    placemarks = _descendants(root, "Placemark")
    if len(placemarks) > MAX_FEATURES:
        raise FileRefused(_l("The file has more than %(n)d plots: split it.", n=MAX_FEATURES))
    features = []
    for number, placemark in enumerate(placemarks, start=1):
        props = _kml_properties(placemark)
        try:
            features.append(Feature(number, _kml_geometry(placemark), props))
        except geo.Refused as refused:
            features.append(Feature(number, None, props, refused.problem.message))
    return features


def one_geometry(filename: str, data: bytes):
    """The geometry of a file of one plot (GeoJSON or KML); FileRefused otherwise."""
    features = read(filename, data)
    if len(features) != 1:
        raise FileRefused(_l("This file has %(n)d plots: send one here; a file of several "
                             "plots goes to the register import.", n=len(features)))
    feature = features[0]
    if feature.error is not None:
        raise FileRefused(feature.error)
    return feature.geometry


# ---------------------------------------------------------------- typed coordinates

_COORDINATE = re.compile(r"-?[0-9]{1,3}([.,][0-9]+)?")


def coordinate(text) -> Decimal:
    """A latitude or longitude as a person types it: "2,440000" (the decimal comma of
    Colombia's pages) or "2.440000", with a minus for south and west. No thousands
    separator can occur in a coordinate, so either mark is read as the decimal one and the
    decimals are kept as typed."""
    raw = str(text or "").strip().replace("\u2212", "-")
    if not raw:
        raise ValueError(_l("Required."))
    if not _COORDINATE.fullmatch(raw):
        raise ValueError(_l("Write a coordinate in decimal degrees, like -76,600000 or "
                            "-76.600000."))
    return Decimal(raw.replace(",", "."))


def typed_point(latitude, longitude) -> dict:
    """A point from its latitude and longitude fields (ValueError per field, by name)."""
    errors, values = {}, {}
    for name, text in (("latitude", latitude), ("longitude", longitude)):
        try:
            values[name] = coordinate(text)
        except ValueError as exc:
            errors[name] = exc.args[0]
    if errors:
        raise TypedRefused(errors)
    return {"type": "Point", "coordinates": [values["longitude"], values["latitude"]]}


class TypedRefused(ValueError):
    def __init__(self, fields: dict):
        super().__init__(str(next(iter(fields.values()))))
        self.fields = fields


def _split_line(line: str) -> list[str]:
    """The two numbers of a line: separated by spaces, a tab or a semicolon, or a comma
    followed by a space ("2,44, -76,6"); a single comma between two numbers written with
    decimal points ("2.44,-76.6") too."""
    parts = [p for p in re.split(r"[;\s]+|,(?=\s)", line.strip()) if p and p != ","]
    if len(parts) == 1 and parts[0].count(",") == 1 and "." in parts[0]:
        parts = parts[0].split(",")
    return [p.rstrip(",") for p in parts]


def typed_polygon(text, *, max_lines: int = 2000) -> dict:
    """A polygon from a textarea, one position per line, latitude then longitude (as a GPS
    app or a map shows them); the first position again at the end closes the ring. Blank
    lines are skipped. TypedRefused names the line that cannot be read."""
    lines = [line for line in str(text or "").splitlines() if line.strip()]
    if not lines:
        raise TypedRefused({"positions": _l("Required.")})
    if len(lines) > max_lines:
        raise TypedRefused({"positions": _l("At most %(n)d positions.", n=max_lines)})
    ring = []
    for number, line in enumerate(lines, start=1):
        parts = _split_line(line)
        if len(parts) != 2:
            raise TypedRefused({"positions": _l(
                "Line %(n)d: give latitude and longitude separated by a space, like "
                "2,440000 -76,600000.", n=number)})
        try:
            lat, lon = coordinate(parts[0]), coordinate(parts[1])
        except ValueError as exc:
            raise TypedRefused({"positions": _l("Line %(n)d: %(why)s", n=number,
                                                why=exc.args[0])})
        ring.append([lon, lat])
    return {"type": "Polygon", "coordinates": [ring]}
