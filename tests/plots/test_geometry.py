"""The plots' geometry rules (EUDR / RFC 7946) and their versions."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from shapely.geometry import shape

from coop.common.errors import ValidationFailed
from coop.extensions import db
from coop.plots import geometry as geo
from coop.plots import services as plots

def decimals(text):
    return geo.loads(text)


def codes(checked):
    return [p.code for p in checked.errors]


def test_a_good_polygon_is_kept_exactly_and_measured():
    checked = geo.check(decimals('{"type":"Polygon","coordinates":[[[-76.600000,2.440000],'
                                 '[-76.599000,2.440000],[-76.599000,2.441000],'
                                 '[-76.600000,2.441000],[-76.600000,2.440000]]]}'),
                        declared_area_m2=12_300, country="CO")
    assert checked.ok, checked.errors
    assert checked.kind == "polygon"
    assert "-76.600000,2.440000" in checked.geometry_json  # six decimals kept, no float noise
    assert 12_200 < checked.computed_area_m2 < 12_400  # 111.3 m x 110.6 m
    assert checked.bbox_e7 == (-766000000, 24400000, -765990000, 24410000)
    assert shape(json.loads(checked.geometry_json)).is_valid
    assert checked.warnings == []


def test_a_clockwise_ring_is_stored_counter_clockwise():
    ring = ('[[-76.600000,2.440000],[-76.600000,2.441000],[-76.599000,2.441000],'
            '[-76.599000,2.440000],[-76.600000,2.440000]]')
    checked = geo.check(decimals('{"type":"Polygon","coordinates":[' + ring + ']}'),
                        declared_area_m2=12_300, country="CO")
    from shapely.geometry.polygon import LinearRing
    stored = json.loads(checked.geometry_json)["coordinates"][0]
    assert LinearRing(stored).is_ccw


@pytest.mark.parametrize("text, code", [
    ('{"type":"LineString","coordinates":[[-76.600000,2.440000],[-76.5,2.4]]}', "bad_type"),
    ('{"type":"Point","coordinates":[2.440000,-76.600000]}', "swapped"),
    ('{"type":"Point","coordinates":[-76.600000,2.4]}', "few_decimals"),
    ('{"type":"Point","coordinates":[-190.000000,2.440000]}', "out_of_range"),
    ('{"type":"Point","coordinates":[-3.700000,40.400000]}', "outside_country"),
    ('{"type":"Polygon","coordinates":[[[-76.600000,2.440000],[-76.599000,2.440000],'
     '[-76.600000,2.440000]]]}', "few_positions"),
    ('{"type":"Polygon","coordinates":[[[-76.600000,2.440000],[-76.599000,2.440000],'
     '[-76.599000,2.441000],[-76.600000,2.441000]]]}', "not_closed"),
    # a bow tie: the boundary crosses itself
    ('{"type":"Polygon","coordinates":[[[-76.600000,2.440000],[-76.599000,2.441000],'
     '[-76.599000,2.440000],[-76.600000,2.441000],[-76.600000,2.440000]]]}', "invalid_polygon"),
    ('{"type":"Point","coordinates":"x"}', "bad_position"),
    ('{"type":"Point","coordinates":[true,2.440000]}', "not_number"),
])
def test_each_broken_rule_is_refused_with_its_reason(text, code):
    assert codes(geo.check(decimals(text), declared_area_m2=10_000, country="CO")) == [code]


def test_a_point_is_enough_up_to_4_ha_only():
    point = decimals('{"type":"Point","coordinates":[-76.600000,2.440000]}')
    assert geo.check(point, declared_area_m2=40_000, country="CO").ok
    assert codes(geo.check(point, declared_area_m2=40_001, country="CO")) == ["point_too_large"]


def test_area_and_accuracy_warn_but_do_not_refuse():
    text = ('{"type":"Polygon","coordinates":[[[-76.600000,2.440000],[-76.599000,2.440000],'
            '[-76.599000,2.441000],[-76.600000,2.441000],[-76.600000,2.440000]]]}')
    checked = geo.check(decimals(text), declared_area_m2=30_000, country="CO", accuracy_m=40)
    assert checked.ok
    assert [w.code for w in checked.warnings] == ["area_differs", "poor_accuracy"]
    within = geo.check(decimals(text), declared_area_m2=13_000, country="CO",
                       tolerance_bps=1000)
    assert within.warnings == []


def test_not_json_is_refused_clearly():
    with pytest.raises(geo.Refused) as refused:
        geo.loads("{nope")
    assert refused.value.problem.code == "not_json"


def test_versions_copy_the_rest_and_the_plot_points_at_the_last(app, make_coop, make_farmer):
    from coop.cooperatives.models import FarmerProfile
    coop = make_coop()
    farmer = make_farmer(coop)
    profile = db.session.scalar(db.select(FarmerProfile).where(FarmerProfile.user_id == farmer.id))
    plot = plots.add_plot(profile, name="La Loma", hectares=Decimal("1.23"), replaced_crop=None,
                          illicit_hectares="0")
    assert plots.gaps(None) == ["no_geometry", "no_cutoff", "no_tenure"]
    text = ('{"type":"Polygon","coordinates":[[[-76.600000,2.440000],[-76.599000,2.440000],'
            '[-76.599000,2.441000],[-76.600000,2.441000],[-76.600000,2.440000]]]}')
    first = plots.record_geometry(plot, geo.loads(text), country="CO", source="geojson",
                                  by=farmer, client_key="k1")
    again = plots.record_geometry(plot, geo.loads(text), country="CO", source="geojson",
                                  by=farmer, client_key="k1")
    assert again.repeated and again.version.id == first.version.id
    cutoff = plots.declare_cutoff(plot, land_use="not_forest", evidence_kind="satellite",
                                  evidence_ref="GFW 2026-11-30 #12", by=farmer)
    assert cutoff.version == 2 and cutoff.geometry_json == first.version.geometry_json
    assert plots.gaps(cutoff) == ["no_tenure"]
    legal = plots.declare_legality(plot, tenure_type="title", reference="120-45678", by=farmer)
    assert plots.gaps(legal) == []
    assert plot.current_version_id == legal.id
    assert [v.version for v in plots.versions(plot)] == [1, 2, 3]
    assert plots.versions(plot)[0].land_use_2020 is None  # earlier versions never change
    with pytest.raises(ValidationFailed) as refused:
        plots.record_geometry(plot, geo.loads('{"type":"Point","coordinates":[2.440000,'
                                              '-76.600000]}'), country="CO", source="typed",
                              by=farmer)
    assert "swapped" in refused.value.fields["geometry"][0]
    assert plot.current_version_id == legal.id
    with pytest.raises(ValidationFailed):
        plots.declare_cutoff(plot, land_use="not_forest", evidence_kind="photo", by=farmer)
    db.session.commit()
