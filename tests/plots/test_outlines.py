"""The country check reads Natural Earth outlines (coop/plots/countries.geojson), not boxes:
a point across the border, inside the old bounding box, is outside the country now; a
swapped pair is still named as swapped."""
from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from coop.plots import geometry as geo


@pytest.mark.parametrize("country, lon, lat, expected", [
    ("CO", "-74.072100", "4.711000", True),     # Bogotá
    ("CO", "-76.606000", "2.444000", True),     # Popayán, Cauca
    ("CO", "-69.940000", "-4.200000", True),    # Leticia, on the Amazon
    ("CO", "-78.467800", "-0.180600", False),   # Quito: Ecuador, inside Colombia's box
    ("CO", "-67.500000", "1.000000", False),    # Venezuela/Brazil, inside Colombia's box
    ("PE", "-71.967500", "-13.531900", True),   # Cusco
    ("PE", "-73.840000", "-12.500000", True),   # Pichari (VRAEM)
    ("PE", "-76.373000", "-6.487000", True),    # Tarapoto, San Martín
    ("PE", "-69.000000", "-10.000000", False),  # Acre, Brazil: inside Peru's old box
    ("PE", "-80.500000", "-0.500000", False),   # the Pacific off Ecuador
    ("EC", "-78.467800", "-0.180600", True),
    ("BO", "-68.119300", "-16.489700", True),   # La Paz
    ("BO", "-65.000000", "-21.900000", True),
    ("MX", "-99.133200", "19.432600", True),    # a box still, for Mexico
])
def test_inside_reads_the_outline(country, lon, lat, expected):
    assert geo.inside(country, D(lon), D(lat)) is expected


def test_the_vendored_file_is_small_and_has_the_four_countries():
    assert geo.OUTLINES_FILE.stat().st_size < 200_000
    data = json.loads(geo.OUTLINES_FILE.read_text())
    assert sorted(f["properties"]["country"] for f in data["features"]) == \
        ["BO", "CO", "EC", "PE"]


def test_a_swapped_peruvian_pair_is_named_and_a_far_one_is_outside():
    swapped = geo.check(geo.loads('{"type":"Point","coordinates":[-12.500000,-73.840000]}'),
                        declared_area_m2=10_000, country="PE")
    assert [p.code for p in swapped.errors] == ["swapped"]
    brazil = geo.check(geo.loads('{"type":"Point","coordinates":[-69.000000,-10.000000]}'),
                       declared_area_m2=10_000, country="PE")
    assert [p.code for p in brazil.errors] == ["outside_country"]
    # One corner across the border is enough to refuse the polygon, naming it.
    ring = ("[[-78.467800,-0.180600],[-78.460000,-0.180600],[-78.460000,-0.170000],"
            "[-78.467800,-0.170000],[-78.467800,-0.180600]]")
    quito = geo.check(geo.loads('{"type":"Polygon","coordinates":[' + ring + ']}'),
                      declared_area_m2=10_000, country="CO")
    assert [p.code for p in quito.errors] == ["outside_country"]
    assert "-78.467800" in str(quito.errors[0].message)
