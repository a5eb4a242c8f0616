"""The register import (GeoJSON and KML, row by row), KML's safety, typed coordinates, and
the overlap warning."""
from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.plots import files
from coop.plots import geometry as geo
from coop.plots import register
from coop.plots import services as plots
from coop.plots.models import Plot, PlotVersion

def ring(dx=0.0, dy=0.0, size=0.001):
    """A square of about 1.23 ha (111 m a side) in Cauca, moved east by dx and north by dy
    degrees."""
    x, y = -76.600000 + dx, 2.440000 + dy
    return [[f"{x:.6f}", f"{y:.6f}"], [f"{x + size:.6f}", f"{y:.6f}"],
            [f"{x + size:.6f}", f"{y + size:.6f}"], [f"{x:.6f}", f"{y + size:.6f}"],
            [f"{x:.6f}", f"{y:.6f}"]]


def polygon_text(points) -> str:
    return '{"type":"Polygon","coordinates":[[' + ",".join(
        f"[{p[0]},{p[1]}]" for p in points) + "]]}"


def feature(member, plot, points=None, point=None, area=None, **extra):
    geometry = ({"type": "Polygon", "coordinates": [points]} if points is not None else
                {"type": "Point", "coordinates": point})
    props = {"member_number": member, "plot_name": plot, **extra}
    if area is not None:
        props["Area"] = area
    return {"type": "Feature", "properties": props, "geometry": geometry}


def collection(*features) -> bytes:
    # Numbers written as text digits: json.dumps of floats would drop trailing zeros.
    text = json.dumps({"type": "FeatureCollection", "features": list(features)})
    return re.sub(r'"(-?[0-9]+\.[0-9]+)"', r"\1", text).encode()


@pytest.fixture
def farmers(make_coop, make_farmer):
    coop = make_coop()
    users = [make_farmer(coop, name=n) for n in ("Rosa", "Wilson", "Dora")]
    profiles = [db.session.scalar(select(FarmerProfile).where(FarmerProfile.user_id == u.id))
                for u in users]
    return coop, users, profiles


def test_a_geojson_register_stores_warns_and_refuses_each_row_with_its_reason(app, farmers):
    coop, users, (rosa, wilson, dora) = farmers
    existing = plots.add_plot(wilson, name="La Loma", hectares="1.23", replaced_crop=None,
                              illicit_hectares="0")
    data = collection(
        feature(rosa.member_number, "El Alto", ring(), area="1.23"),            # new: stored
        feature(wilson.member_number, "la loma ", ring(0.01), area="9"),        # existing
        feature(dora.member_number, "Bajo", ring(0.02)),                        # area from it
        feature("NOPE-1", "X", ring(0.03), area="1"),                          # no member
        feature(rosa.member_number, "El Alto", ring(0.04), area="1"),          # twice
        feature(dora.member_number, "Punto", point=["-76.610000", "2.450000"]),  # no Area
        feature(dora.member_number, "Grande", point=["-76.620000", "2.450000"], area="5"),
        feature(dora.member_number, "Cruzado", [
            ["-76.600000", "2.440000"], ["-76.599000", "2.441000"], ["-76.599000", "2.440000"],
            ["-76.600000", "2.441000"], ["-76.600000", "2.440000"]], area="1"),
        feature(rosa.member_number, "Volteado", point=["2.460000", "-76.600000"], area="1"),
        feature(rosa.member_number, "Lejos", ring(0.05), area="4"),            # area differs
    )
    report = register.import_register(coop, "registro.geojson", data, by=users[0])
    status = [(r.number, r.status) for r in report.rows]
    assert status == [(1, "stored"), (2, "stored"), (3, "warned"), (4, "refused"),
                      (5, "refused"), (6, "refused"), (7, "refused"), (8, "refused"),
                      (9, "refused"), (10, "warned")], [(r.number, r.messages)
                                                         for r in report.rows]
    why = {r.number: " ".join(r.messages) for r in report.rows}
    assert "Declared area taken from the boundary" in why[3]
    assert "NOPE-1" in why[4]
    assert "already in the file" in why[5]
    assert "needs its Area" in why[6]
    assert "above 4 ha must be drawn as a polygon" in why[7]
    assert "crosses itself" in why[8]
    assert "swapped" in why[9]
    assert "declared as" in why[10]
    assert report.rows[1].plot_id == existing.id and not report.rows[1].created
    db.session.commit()
    assert db.session.get(Plot, existing.id).area_m2 == 12_300  # the file's Area not applied
    created = db.session.get(Plot, report.rows[0].plot_id)
    assert created.farmer_id == rosa.id and created.area_m2 == 12_300
    assert created.current.geometry_source == "geojson" and created.current.version == 1
    assert db.session.scalar(select(func.count(PlotVersion.id))) == 4


def test_kml_placemarks_point_polygon_and_multigeometry(app, farmers):
    coop, users, (rosa, wilson, dora) = farmers
    coords = " ".join(f"{x},{y},1712.5" for x, y in ring())
    kml = f"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
<Placemark><name>El Alto</name>
 <ExtendedData><Data name="member_number"><value>{rosa.member_number}</value></Data>
 <Data name="Area"><value>1.23</value></Data></ExtendedData>
 <Polygon><outerBoundaryIs><LinearRing><coordinates>{coords}</coordinates></LinearRing>
 </outerBoundaryIs></Polygon></Placemark>
<Placemark><name>Casa</name><ExtendedData><SchemaData>
 <SimpleData name="member_number">{wilson.member_number}</SimpleData>
 <SimpleData name="Area">0.5</SimpleData></SchemaData></ExtendedData>
 <Point><coordinates>-76.590000,2.450000,0</coordinates></Point></Placemark>
<Placemark><name>Dos lotes</name><ExtendedData><Data name="member_number">
 <value>{dora.member_number}</value></Data><Data name="Area"><value>2.46</value></Data>
 </ExtendedData><MultiGeometry>
 <Polygon><outerBoundaryIs><LinearRing><coordinates>
 {" ".join(f"{x},{y}" for x, y in ring(0.01))}</coordinates></LinearRing></outerBoundaryIs>
 </Polygon><Polygon><outerBoundaryIs><LinearRing><coordinates>
 {" ".join(f"{x},{y}" for x, y in ring(0.02))}</coordinates></LinearRing></outerBoundaryIs>
 </Polygon></MultiGeometry></Placemark>
<Placemark><name>Camino</name><ExtendedData><Data name="member_number">
 <value>{dora.member_number}</value></Data></ExtendedData>
 <LineString><coordinates>-76.6,2.44 -76.5,2.45</coordinates></LineString></Placemark>
</Document></kml>""".encode()
    report = register.import_register(coop, "plots.kml", kml, by=users[0])
    assert [r.status for r in report.rows] == ["stored", "stored", "stored", "refused"], \
        [r.messages for r in report.rows]
    assert "LineString" in report.rows[3].messages[0]
    kinds = {db.session.get(Plot, r.plot_id).name: db.session.get(Plot, r.plot_id)
             .current.geometry_kind for r in report.rows[:3]}
    assert kinds == {"El Alto": "polygon", "Casa": "point", "Dos lotes": "multipolygon"}
    alto = db.session.get(Plot, report.rows[0].plot_id).current
    assert "1712" not in alto.geometry_json and alto.geometry_source == "kml"


@pytest.mark.parametrize("doc", [
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    b"<kml><Placemark><name>&lol2;</name></Placemark></kml>",
    b'<!DOCTYPE kml SYSTEM "file:///etc/passwd"><kml></kml>',
    b"<kml><Placemark>", b"<html></html>"])
def test_kml_with_a_doctype_entities_or_broken_xml_is_refused_whole(app, farmers, doc):
    coop, users, _profiles = farmers
    with pytest.raises(files.FileRefused):
        register.import_register(coop, "x.kml", doc, by=users[0])


@pytest.mark.parametrize("data", [b"", b"{nope", b'{"type":"Feature"', b"[1, 2]",
                                  b'{"type":"FeatureCollection","features":{}}'])
def test_a_file_that_is_no_geojson_is_refused_whole(app, farmers, data):
    coop, users, _profiles = farmers
    with pytest.raises(files.FileRefused):
        register.import_register(coop, "x.geojson", data, by=users[0])


def test_rows_without_member_or_plot_name_or_geometry_say_so(app, farmers):
    coop, users, (rosa, *_rest) = farmers
    data = json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"plot_name": "A"}, "geometry": None},
        {"type": "Feature", "properties": {"member_number": rosa.member_number},
         "geometry": {"type": "Point", "coordinates": [-76.6, 2.44]}},
        {"type": "Feature", "properties": {"member_number": rosa.member_number,
                                           "plot_name": "B", "Area": "dos"},
         "geometry": {"type": "Point", "coordinates": [-76.6, 2.44]}},
        "nonsense"]}).encode()
    report = register.import_register(coop, "r.json", data, by=users[0])
    assert [r.status for r in report.rows] == ["refused"] * 4
    assert "member number" in report.rows[0].messages[0]
    assert "plot name" in report.rows[1].messages[0]
    assert "Area" in report.rows[2].messages[0]
    assert "not a GeoJSON Feature" in report.rows[3].messages[0]


def test_overlap_with_another_farmers_plot_warns_naming_both(app, farmers):
    coop, users, (rosa, wilson, dora) = farmers
    a = plots.add_plot(rosa, name="Arriba", hectares="1.23", replaced_crop=None,
                       illicit_hectares="0")
    b = plots.add_plot(wilson, name="Abajo", hectares="1.23", replaced_crop=None,
                       illicit_hectares="0")
    c = plots.add_plot(dora, name="Al lado", hectares="1.23", replaced_crop=None,
                       illicit_hectares="0")
    mine = plots.add_plot(rosa, name="Otra mía", hectares="1.23", replaced_crop=None,
                          illicit_hectares="0")
    first = plots.record_geometry(a, geo.loads(polygon_text(ring())), country="CO",
                                  source="typed", by=users[0])
    assert first.warnings == []
    # Half of it on Rosa's plot: warned, naming both farmers and plots.
    half = plots.record_geometry(b, geo.loads(polygon_text(ring(0.0005))), country="CO",
                                 source="typed", by=users[0])
    [overlap] = [w for w in half.warnings if w.code == "overlap"]
    assert "Rosa" in overlap.message and "Wilson" in overlap.message
    assert "Arriba" in overlap.message and "Abajo" in overlap.message
    assert overlap.other_plot_id == a.id and overlap.common_m2 > 2000
    # Touching the border only (the square just west of Rosa's): no warning.
    side = plots.record_geometry(c, geo.loads(polygon_text(ring(0.001, 0.003))),
                                 country="CO", source="typed", by=users[0])
    touching = plots.record_geometry(c, geo.loads(polygon_text(ring(-0.001))), country="CO",
                                     source="typed", by=users[0])
    assert side.warnings == [] and [w.code for w in touching.warnings] == []
    # The same farmer's own plots may share ground (one plot inside a bigger one).
    own = plots.record_geometry(mine, geo.loads(polygon_text(ring())), country="CO",
                                source="typed", by=users[0])
    assert [w.other_plot_id for w in own.warnings if w.code == "overlap"] == [b.id]
    # The plot page's warnings say it too.
    assert sorted(w.other_plot_id for w in plots.plot_warnings(b, b.current)) == [a.id, mine.id]


def test_typed_coordinates_take_a_decimal_comma_or_point_and_name_the_line():
    point = files.typed_point("2,440000", "-76.600000")
    assert point["coordinates"] == [Decimal("-76.600000"), Decimal("2.440000")]
    with pytest.raises(files.TypedRefused) as refused:
        files.typed_point("2,44,0", "")
    assert set(refused.value.fields) == {"latitude", "longitude"}
    polygon = files.typed_polygon("2,440000 -76,600000\n\n2.440000, -76.599000\n"
                                  "2,441000; -76,599000\n2.441000,-76.600000\n"
                                  "2,440000, -76,600000\n")
    ring_ = polygon["coordinates"][0]
    assert ring_[0] == ring_[-1] == [Decimal("-76.600000"), Decimal("2.440000")]
    assert len(ring_) == 5
    with pytest.raises(files.TypedRefused) as refused:
        files.typed_polygon("2,44 -76,6\n2,44 -76,6 3\n")
    assert "Line 2" in str(refused.value.fields["positions"])
    with pytest.raises(files.TypedRefused) as refused:
        files.typed_polygon("2,44 -76,6\nabc -76,6\n")
    assert "Line 2" in str(refused.value.fields["positions"])


@pytest.mark.parametrize("geometry, words", [
    ({"type": "Point", "coordinates": ["-60.000000", "2.440000"]}, "país de la cooperativa"),
    ({"type": "Point", "coordinates": ["-76.6", "2.44"]}, "6 decimales"),
    ({"type": "Polygon", "coordinates": [ring()[:-1]]}, "cerrado"),
    ({"type": "Polygon", "coordinates": [ring()[:2] + ring()[:1]]}, "4 posiciones"),
    ({"type": "Point", "coordinates": ["-76.600000", "95.000000"]}, "fuera de rango"),
    ({"type": "Point", "coordinates": ["x", "2.440000"]}, "no es un número"),
    ({"type": "LineString", "coordinates": []}, "LineString"),
])
def test_each_geometry_rule_refuses_its_row_in_spanish(app, farmers, geometry, words):
    coop, users, (rosa, *_rest) = farmers
    data = collection({"type": "Feature", "geometry": geometry, "properties": {
        "member_number": rosa.member_number, "plot_name": "A", "Area": "1"}})
    from flask_babel import force_locale
    with app.test_request_context(headers={"Accept-Language": "es"}), force_locale("es_CO"):
        report = register.import_register(coop, "r.geojson", data, by=users[0])
        [row] = report.rows
        assert row.status == "refused" and words.lower() in " ".join(row.messages).lower(), \
            row.messages


def test_the_import_costs_the_same_queries_for_5_rows_as_for_60(app, farmers, make_farmer,
                                                               count_queries):
    coop, users, _profiles = farmers
    members = [db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.user_id == make_farmer(coop).id)) for _ in range(60)]

    def run(profiles, name):
        data = collection(*[feature(p.member_number, name, ring(0.003 * i), area="1.23")
                            for i, p in enumerate(profiles)])
        with count_queries() as counter:
            report = register.import_register(coop, "r.geojson", data, by=users[0])
        assert report.stored == len(profiles), [r.messages for r in report.rows][:3]
        return counter.count
    assert run(members[:5], "A") == run(members, "B")  # new plots
    assert run(members[:5], "A") == run(members, "B")  # new versions of existing ones
