"""The manager's plot pages: who reaches them, every form's refusals (input kept, message
on the field), the list's filter and counts in constant queries, the consent's confirmation
step, the register import's report, the settings."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.plots import geometry as geo
from coop.plots import services as plots
from coop.plots.models import PlotDocument, PlotSettings, PlotVersion, TraceConsent

PDF = b"%PDF-1.4\n% title\n%%EOF\n"
POLYGON = ("2,440000 -76,600000\n2,440000 -76,599000\n2,441000 -76,599000\n"
           "2,441000 -76,600000\n2,440000 -76,600000\n")


def profile_of(user):
    return db.session.scalar(select(FarmerProfile).where(FarmerProfile.user_id == user.id))


@pytest.fixture
def world(make_coop, make_farmer, make_buyer):
    coop = make_coop()
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    farmer = make_farmer(coop, name="Rosa", plots=0)
    profile = profile_of(farmer)
    plot = plots.add_plot(profile, name="La Loma", hectares="1.23", replaced_crop=None,
                          illicit_hectares="0")
    big = plots.add_plot(profile, name="Grande", hectares="6", replaced_crop=None,
                         illicit_hectares="0")
    other = make_coop(name="Otra")
    other_manager = next(m.user for m in other.memberships if m.role == "manager")
    buyer = make_buyer()
    db.session.commit()

    class W:
        pass
    w = W()
    w.coop, w.manager, w.farmer, w.profile, w.plot, w.big = coop, manager, farmer, profile, \
        plot, big
    w.other_manager, w.buyer = other_manager, buyer
    w.base = f"/manage/coops/{coop.id}/farmers/{profile.id}/plots/{plot.id}"
    return w


def pages(w):
    return [f"/manage/coops/{w.coop.id}/plots", w.base,
            f"/manage/coops/{w.coop.id}/plots/import",
            f"/manage/coops/{w.coop.id}/plots/settings"]


def test_each_page_for_each_role(client, login, world):
    w = world
    for url in pages(w):
        assert client.get(url).status_code == 302  # a visitor: to the login page
    login(w.farmer)
    assert {client.get(u).status_code for u in pages(w)} == {403}
    login(w.buyer)
    assert {client.get(u).status_code for u in pages(w)} == {404}
    login(w.other_manager)
    assert {client.get(u).status_code for u in pages(w)} == {404}
    login(w.manager)
    assert {client.get(u).status_code for u in pages(w)} == {200}
    # Another coop's farmer or plot under this coop's URL: 404.
    assert client.get(f"/manage/coops/{w.coop.id}/farmers/{w.profile.id}/plots/999999"
                      ).status_code == 404
    login(w.other_manager)
    assert client.post(w.base + "/point", data={"point-latitude": "2,440000",
                                                "point-longitude": "-76,600000"}
                       ).status_code == 404


def test_a_typed_point_in_spanish_decimals_and_with_a_point(client, login, world):
    w = world
    login(w.manager)
    response = client.post(w.base + "/point", data={"point-latitude": "2,440000",
                                                    "point-longitude": "-76,600000"})
    assert response.status_code == 302
    db.session.expire_all()
    assert w.plot.current.geometry_json == '{"type":"Point","coordinates":[-76.600000,2.440000]}'
    assert w.plot.current.geometry_source == "typed"
    response = client.post(w.base + "/point", data={"point-latitude": "2.441000",
                                                    "point-longitude": "-76.600000"})
    assert response.status_code == 302
    db.session.expire_all()
    assert w.plot.current.version == 2
    page = client.get(w.base).get_data(as_text=True)
    assert "Versi" in page


@pytest.mark.parametrize("lat, lon, where, words", [
    ("", "-76,600000", "latitude", "obligatorio"),
    ("dos", "-76,600000", "latitude", "grados decimales"),
    ("2,44", "-76,6", "latitude", "6 decimales"),
    ("-76,600000", "2,440000", "latitude", "invertid"),
    ("48,000000", "2,000000", "latitude", "país de la cooperativa"),
    ("95,000000", "-76,600000", "latitude", "fuera de rango"),
])
def test_a_bad_point_is_refused_on_the_field_with_the_input_kept(client, login, world, lat,
                                                                 lon, where, words):
    w = world
    login(w.manager)
    response = client.post(w.base + "/point", data={"point-latitude": lat,
                                                    "point-longitude": lon})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'id="point-{where}-err">(.*?)</p>', html, re.S)
    assert error and words.lower() in error.group(1).lower(), html[html.find("has-error"):][:600]
    assert f'value="{lat}"' in html and f'value="{lon}"' in html
    db.session.expire_all()
    assert w.plot.current_version_id is None


def test_a_point_for_a_plot_above_4_ha_is_refused(client, login, world):
    w = world
    login(w.manager)
    url = f"/manage/coops/{w.coop.id}/farmers/{w.profile.id}/plots/{w.big.id}/point"
    response = client.post(url, data={"point-latitude": "2,440000",
                                      "point-longitude": "-76,600000"})
    assert response.status_code == 422
    assert "4 ha" in response.get_data(as_text=True)


def test_a_typed_boundary_and_its_refusals(client, login, world):
    w = world
    login(w.manager)
    for text, words in [("", "obligatorio"),
                        ("2,440000 -76,600000\nhola\n", "Línea 2"),
                        ("2,440000 -76,600000\n2,440000 -76,599000\n2,440000 -76,600000\n",
                         "4 posiciones"),
                        (POLYGON.rsplit("\n", 2)[0] + "\n", "cerrado"),
                        ("2,440000 -76,600000\n2,441000 -76,599000\n2,440000 -76,599000\n"
                         "2,441000 -76,600000\n2,440000 -76,600000\n", "se cruza")]:
        response = client.post(w.base + "/polygon", data={"polygon-positions": text})
        assert response.status_code == 422, text
        html = response.get_data(as_text=True)
        error = re.search(r'id="polygon-positions-err">(.*?)</p>', html, re.S)
        assert error and words.lower() in error.group(1).lower(), (text, error and error.group(1))
        if text:
            assert text.split("\n")[0] in html
    response = client.post(w.base + "/polygon", data={"polygon-positions": POLYGON})
    assert response.status_code == 302
    db.session.expire_all()
    assert w.plot.current.geometry_kind == "polygon"
    assert 12_200 < w.plot.current.computed_area_m2 < 12_400


def test_one_plot_from_a_file_and_its_refusals(client, login, world):
    w = world
    login(w.manager)
    good = (b'{"type":"Feature","properties":{},"geometry":{"type":"Point",'
            b'"coordinates":[-76.600000,2.440000]}}')
    kml = (b'<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><Point><coordinates>'
           b'-76.600001,2.440001,1700</coordinates></Point></Placemark></kml>')
    for data, name, words in [(b"", "a.geojson", "Elija"), (b"{no", "a.geojson", "JSON"),
                              (b'<!DOCTYPE x><kml/>', "a.kml", "DOCTYPE"),
                              (b'{"type":"FeatureCollection","features":[' + good + b"," + good
                               + b"]}", "a.geojson", "importación del registro"),
                              (b'{"type":"LineString","coordinates":[]}', "a.geojson",
                               "LineString")]:
        response = client.post(w.base + "/file", data={"file-file": (io.BytesIO(data), name)},
                               content_type="multipart/form-data")
        assert response.status_code == 422, name
        html = response.get_data(as_text=True)
        error = re.search(r'id="file-file-err">(.*?)</p>', html, re.S)
        assert error and words.lower() in error.group(1).lower(), (data, html[:0])
    for data, name, source in [(good, "p.geojson", "geojson"), (kml, "p.kml", "kml")]:
        response = client.post(w.base + "/file", data={"file-file": (io.BytesIO(data), name)},
                               content_type="multipart/form-data")
        assert response.status_code == 302
        db.session.expire_all()
        assert w.plot.current.geometry_source == source


def test_the_cutoff_and_legality_forms(client, login, world):
    w = world
    login(w.manager)
    response = client.post(w.base + "/cutoff", data={"cutoff-land_use": "",
                                                     "cutoff-evidence_kind": "photo",
                                                     "cutoff-evidence_ref": "ref 1"})
    assert response.status_code == 422
    assert 'value="ref 1"' in response.get_data(as_text=True)
    response = client.post(w.base + "/cutoff", data={"cutoff-land_use": "not_forest",
                                                     "cutoff-evidence_kind": "satellite",
                                                     "cutoff-note": "sin referencia"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "sin referencia" in html and "evidencia" in html.lower()
    response = client.post(w.base + "/cutoff", data={
        "cutoff-land_use": "not_forest", "cutoff-evidence_kind": "document",
        "cutoff-document": (io.BytesIO(b"not a pdf nor photo"), "x.txt")},
        content_type="multipart/form-data")
    assert response.status_code == 422 and "PDF" in response.get_data(as_text=True)
    response = client.post(w.base + "/cutoff", data={
        "cutoff-land_use": "not_forest", "cutoff-evidence_kind": "certifier",
        "cutoff-document": (io.BytesIO(PDF), "informe.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(func.count(PlotDocument.id))) == 1  # refused ones: none
    assert w.plot.current.cutoff_document_id is not None
    response = client.post(w.base + "/legality", data={"legality-tenure_type": "nope"})
    assert response.status_code == 422
    response = client.post(w.base + "/legality", data={"legality-tenure_type": "title"})
    assert response.status_code == 422
    assert "referencia" in response.get_data(as_text=True).lower()
    response = client.post(w.base + "/legality", data={"legality-tenure_type": "title",
                                                       "legality-tenure_reference": "120-4"})
    assert response.status_code == 302
    db.session.expire_all()
    assert plots.gaps(w.plot.current) == ["no_geometry"]
    page = client.get(w.base).get_data(as_text=True)
    document_url = re.search(r'href="([^"]*/documents/\d+)"', page).group(1)
    download = client.get(document_url)
    assert download.status_code == 200 and download.data == PDF


def test_consent_on_paper_and_its_withdrawal_after_a_confirmation(client, login, world):
    w = world
    login(w.manager)
    assert client.post(w.base + "/consent", data={}).status_code == 422
    assert client.post(w.base + "/consent", data={"consent-signed": "y"}).status_code == 302
    row = db.session.scalar(select(TraceConsent))
    assert row.recorded_by_id == w.manager.id and row.locale.startswith("es")
    assert "Reglamento (UE) 2023/1115" in row.text
    first = client.post(w.base + "/consent/withdraw", data={})
    assert first.status_code == 200 and "confirm_token" in first.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(TraceConsent)).withdrawn_at is None  # nothing yet
    token = re.search(r'name="confirm_token" value="([^"]+)"',
                      first.get_data(as_text=True)).group(1)
    done = client.post(w.base + "/consent/withdraw", data={"confirm_token": token,
                                                           "confirm": "yes"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(TraceConsent)).withdrawn_by_id == w.manager.id


def test_the_list_filters_incomplete_with_reasons_and_counts(client, login, world,
                                                             count_queries, make_farmer):
    w = world
    # One plot complete: geometry, declarations, consent.
    plots.record_geometry(w.plot, geo.loads('{"type":"Point","coordinates":[-76.600000,'
                                            '2.440000]}'), country="CO", source="typed",
                          by=w.manager)
    plots.declare_cutoff(w.plot, land_use="not_forest", evidence_kind="satellite",
                         evidence_ref="GFW 1", by=w.manager)
    plots.declare_legality(w.plot, tenure_type="title", reference="T-1", by=w.manager)
    plots.record_consent(w.profile, by=w.manager, locale="es")
    db.session.commit()
    login(w.manager)
    url = f"/manage/coops/{w.coop.id}/plots"
    html = client.get(url).get_data(as_text=True)
    assert "2 parcelas: 1 completas" in html or "2 parcelas: 1 completa" in html, html[:3000]
    only = client.get(url + "?incomplete=1").get_data(as_text=True)
    assert "Grande" in only and "La Loma" not in only
    assert "sin geometría" in only
    found = client.get(url + f"?q={w.profile.member_number}").get_data(as_text=True)
    assert "La Loma" in found
    assert "La Loma" not in client.get(url + "?q=nadie").get_data(as_text=True)
    with count_queries() as small:
        client.get(url)
    for n in range(8):
        farmer = make_farmer(w.coop, name=f"Más {n}", plots=0)
        plots.add_plot(profile_of(farmer), name=f"P{n}", hectares="1", replaced_crop=None,
                       illicit_hectares="0")
        plots.record_consent(profile_of(farmer), by=w.manager, locale="es")
    db.session.commit()
    with count_queries() as big:
        client.get(url)
    assert big.count == small.count
    page = client.get(url + "?cursor=zzz&incomplete=1")  # a stale cursor: page 1
    assert page.status_code == 200


def test_register_import_page_reports_each_row(client, login, world):
    w = world
    login(w.manager)
    url = f"/manage/coops/{w.coop.id}/plots/import"
    data = ('{"type":"FeatureCollection","features":['
            '{"type":"Feature","properties":{"member_number":"%s","plot_name":"Nueva",'
            '"Area":1.23},"geometry":{"type":"Polygon","coordinates":[[[-76.600000,2.440000],'
            '[-76.599000,2.440000],[-76.599000,2.441000],[-76.600000,2.441000],'
            '[-76.600000,2.440000]]]}},'
            '{"type":"Feature","properties":{"member_number":"X-404","plot_name":"A"},'
            '"geometry":{"type":"Point","coordinates":[-76.6,2.44]}}]}'
            % w.profile.member_number).encode()
    response = client.post(url, data={"register-file": (io.BytesIO(data), "r.geojson")},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "1 parcelas guardadas" in html or "1 parcela" in html, html[-2500:]
    assert "X-404" in html and "Rechazada" in html
    assert client.post(url, data={"register-file": (io.BytesIO(b"<!DOCTYPE x>"), "r.kml")},
                       content_type="multipart/form-data").status_code == 422
    assert client.post(url, data={}).status_code == 422


def test_the_settings_form(client, login, world):
    w = world
    login(w.manager)
    url = f"/manage/coops/{w.coop.id}/plots/settings"
    html = client.get(url).get_data(as_text=True)
    assert 'value="20"' in html and 'value="15"' in html
    for data, words in [({"area_tolerance": "150", "gps_accuracy_max_m": "10"}, "100"),
                        ({"area_tolerance": "abc", "gps_accuracy_max_m": "10"}, "número"),
                        ({"area_tolerance": "12,555", "gps_accuracy_max_m": "10"}, "2 decimales"),
                        ({"area_tolerance": "10", "gps_accuracy_max_m": "0"}, "1.000"),
                        ({"area_tolerance": "10", "gps_accuracy_max_m": "x"}, "")]:
        response = client.post(url, data=data)
        assert response.status_code == 422, data
        html = response.get_data(as_text=True)
        assert words in html and data["area_tolerance"] in html
    assert client.post(url, data={"area_tolerance": "12,5",
                                  "gps_accuracy_max_m": "20"}).status_code == 302
    row = db.session.get(PlotSettings, w.coop.id)
    assert (row.area_tolerance_bps, row.gps_accuracy_max_m) == (1250, 20)
