"""The farmer's own plot pages and the capture from the phone in the field: who reaches each
page and endpoint, the capture's refusals (message, nothing stored), the client key that makes
a capture sent twice one version, the consent given and withdrawn after a confirmation."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.plots import services as plots
from coop.plots.models import PlotVersion, TraceConsent
from coop.staff import services as staff
from tests.support.confirm import confirm

# A walk around a plot of about 1.4 ha near El Tambo (Cauca), [longitude, latitude].
WALK = [["-76.6075000", "2.5225000"], ["-76.6064000", "2.5225200"],
        ["-76.6063800", "2.5236000"], ["-76.6069000", "2.5238500"],
        ["-76.6075200", "2.5236100"]]


def profile_of(user):
    return db.session.scalar(select(FarmerProfile).where(FarmerProfile.user_id == user.id))


@pytest.fixture
def world(make_coop, make_farmer, make_buyer, make_user):
    coop = make_coop()
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    farmer = make_farmer(coop, name="Rosa")
    profile = profile_of(farmer)
    plot = plots.add_plot(profile, name="La Loma", hectares="1.4", replaced_crop=None,
                          illicit_hectares="0")
    neighbour = make_farmer(coop, name="Luis")
    neighbour_plot = plots.add_plot(profile_of(neighbour), name="El Alto", hectares="2",
                                    replaced_crop=None, illicit_hectares="0")
    other = make_coop(name="Otra")
    other_manager = next(m.user for m in other.memberships if m.role == "manager")
    buyer = make_buyer()
    staffer = make_user(email="staff-field@example.org", name="Personal")
    staff.grant(staffer.email)
    db.session.commit()

    class W:
        pass
    w = W()
    w.coop, w.manager, w.farmer, w.profile, w.plot = coop, manager, farmer, profile, plot
    w.neighbour, w.neighbour_plot = neighbour, neighbour_plot
    w.other_manager, w.buyer, w.staff = other_manager, buyer, staffer
    w.manage = f"/manage/coops/{coop.id}/farmers/{profile.id}/plots/{plot.id}"
    w.mine = f"/my/plots/{plot.id}"
    return w


def walk(positions=WALK, source="gps_walk", accuracy=5):
    return {"source": source, "positions": positions, "accuracy_m": accuracy}


def post(client, url, body, key="key-1"):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(url, json=body, headers=headers)


def versions_count():
    return db.session.scalar(select(func.count(PlotVersion.id)))


# ---------------------------------------------------------------- access

def test_the_farmer_pages_for_each_role(client, login, world):
    w = world
    pages = ["/my/plots", w.mine]
    for url in pages:
        assert client.get(url).status_code == 302              # a visitor: to the login page
    for who in (w.buyer, w.manager, w.other_manager, w.staff):
        login(who)
        assert {client.get(u).status_code for u in pages} == {403}, who.email
    login(w.neighbour)                                          # another farmer
    assert client.get("/my/plots").status_code == 200
    assert client.get(w.mine).status_code == 404
    assert "La Loma" not in client.get("/my/plots").get_data(as_text=True)
    assert client.post(w.mine + "/point", data={"point-latitude": "2,522500",
                                                "point-longitude": "-76,607500"}
                       ).status_code == 404
    assert client.post(w.mine + "/consent").status_code == 404
    login(w.farmer)
    assert {client.get(u).status_code for u in pages} == {200}
    assert client.get("/my/plots/999999").status_code == 404


def test_the_field_page_for_each_role(client, login, world):
    w = world
    url = w.manage + "/field"
    assert client.get(url).status_code == 302
    for who, status in ((w.farmer, 403), (w.neighbour, 403), (w.buyer, 404),
                        (w.other_manager, 404), (w.staff, 404), (w.manager, 200)):
        login(who)
        assert client.get(url).status_code == status, who.email
    page = client.get(url).get_data(as_text=True)
    # The GPS capture (hidden until the script finds a GPS) and the typed forms without it.
    assert 'id="capture"' in page and "hidden" in page
    assert f'action="{w.manage}/point"' in page and f'action="{w.manage}/polygon"' in page
    assert "plotcapture.js" in page
    # The plot's page links to it.
    assert url in client.get(w.manage).get_data(as_text=True)


def test_the_capture_endpoints_for_each_role(client, login, world):
    w = world
    farmer_url, manager_url = w.mine + "/capture", w.manage + "/capture"
    response = post(client, farmer_url, walk())
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"
    assert post(client, manager_url, walk()).status_code == 401
    # Not their plot: 404; a farmer of the coop is no manager of it: 403.
    for who, statuses in ((w.buyer, (404, 404)), (w.other_manager, (404, 404)),
                          (w.staff, (404, 404)), (w.neighbour, (404, 403))):
        login(who)
        got = (post(client, farmer_url, walk()).status_code,
               post(client, manager_url, walk()).status_code)
        assert got == statuses, (who.email, got)
    login(w.farmer)                     # a farmer of the coop is no manager of it
    assert post(client, manager_url, walk()).status_code == 403
    assert versions_count() == 0
    assert post(client, farmer_url, walk()).status_code == 201
    login(w.manager)
    assert post(client, manager_url, walk(), key="key-2").status_code == 201
    assert versions_count() == 2


def test_the_session_endpoint_gives_a_token_to_whoever_is_logged_in(client, login, world):
    assert client.get("/plots/outbox/session").status_code == 401
    login(world.manager)
    answer = client.get("/plots/outbox/session")
    assert answer.status_code == 200 and answer.json["user_id"] == world.manager.id
    assert answer.json["csrf_token"] and answer.headers["Cache-Control"] == "no-store"


# ---------------------------------------------------------------- what is stored

def test_a_walk_is_stored_once_as_a_closed_polygon_from_the_gps(client, login, world):
    w = world
    login(w.manager)
    first = post(client, w.manage + "/capture", walk(), key="walk-abc")
    assert first.status_code == 201, first.json
    assert first.json["version"] == 1 and first.json["source"] == "gps_walk"
    again = post(client, w.manage + "/capture", walk(), key="walk-abc")
    assert again.status_code == 200 and again.json["repeated"] is True
    assert again.json["version"] == 1
    db.session.expire_all()
    rows = db.session.scalars(select(PlotVersion).where(PlotVersion.plot_id == w.plot.id)).all()
    assert len(rows) == 1
    version = rows[0]
    assert version.geometry_kind == "polygon" and version.geometry_source == "gps_walk"
    assert version.gps_accuracy_m == 5 and version.client_key == "walk-abc"
    ring = __import__("json").loads(version.geometry_json)["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == len(WALK) + 1
    assert 10_000 < version.computed_area_m2 < 20_000
    # Another key is another version; the farmer sees the walk as the current geometry.
    assert post(client, w.manage + "/capture", walk(), key="walk-def").json["version"] == 2
    login(w.farmer)
    page = client.get("/my/plots").get_data(as_text=True)
    assert '<path class="plot' in page
    assert "GPS del teléfono, borde recorrido" in client.get(w.mine).get_data(as_text=True)


def test_positions_sent_as_json_numbers_keep_their_decimals(client, login, world):
    w = world
    login(w.manager)
    body = ('{"source":"gps_walk","accuracy_m":4.2,"positions":['
            + ",".join(f"[{lon},{lat}]" for lon, lat in WALK) + "]}")
    answer = client.post(w.manage + "/capture", data=body,
                         headers={"Content-Type": "application/json", "Idempotency-Key": "n"})
    assert answer.status_code == 201, answer.json
    db.session.expire_all()
    assert w.plot.current.geometry_json.startswith(
        '{"type":"Polygon","coordinates":[[[-76.6075000,2.5225000],')
    assert w.plot.current.gps_accuracy_m == 5      # 4.2 m, rounded up


def test_a_point_from_the_farmer_and_the_warnings_after_sending(client, login, world):
    w = world
    plots.update_settings(w.coop.id, area_tolerance_bps=2000, gps_accuracy_max_m=15)
    db.session.commit()
    login(w.farmer)
    answer = post(client, w.mine + "/capture",
                  walk([["-76.6070000", "2.5230000"]], "gps_point", 40), key="pt-1")
    assert answer.status_code == 201, answer.json
    assert any("40 m" in m for m in answer.json["warnings"])
    db.session.expire_all()
    assert w.plot.current.geometry_source == "gps_point"
    assert w.plot.current.geometry_json == \
        '{"type":"Point","coordinates":[-76.6070000,2.5230000]}'


def test_an_overlap_is_warned_without_naming_the_other_farmer_to_the_farmer(client, login,
                                                                         world):
    w = world
    login(w.manager)
    neighbour = profile_of(w.neighbour)
    url = f"/manage/coops/{w.coop.id}/farmers/{neighbour.id}/plots/{w.neighbour_plot.id}"
    assert post(client, url + "/capture", walk(), key="n-1").status_code == 201
    manager_answer = post(client, w.manage + "/capture", walk(), key="m-1")
    assert any(w.neighbour.name in m for m in manager_answer.json["warnings"])
    login(w.farmer)
    farmer_answer = post(client, w.mine + "/capture", walk(), key="f-1")
    assert farmer_answer.status_code == 201
    assert farmer_answer.json["warnings"]
    assert not any(w.neighbour.name in m for m in farmer_answer.json["warnings"])


# ---------------------------------------------------------------- refusals

SWAPPED = [[lat, lon] for lon, lat in WALK]
CROSSING = [WALK[0], WALK[2], WALK[1], WALK[3]]


@pytest.mark.parametrize("body, field, words", [
    (walk([["-76.6075000", "95.0000000"]], "gps_point"), "geometry", "fuera de rango"),
    (walk([["-196.6075000", "2.5225000"]], "gps_point"), "geometry", "fuera de rango"),
    (walk(SWAPPED), "geometry", "invertid"),
    (walk(WALK[:2]), "geometry", "al menos 3"),
    (walk(WALK[:2] + [WALK[0]]), "geometry", "al menos 3"),
    (walk(CROSSING), "geometry", "se cruza"),
    (walk([]), "geometry", "ninguna posición"),
    (walk(["hola"]), "geometry", "longitud, latitud"),
    (walk(WALK, "typed"), "source", "punto"),
    (walk(WALK, accuracy="lejos"), "accuracy_m", "metros"),
    (walk(WALK, accuracy=-3), "accuracy_m", "metros"),
    (walk([["-76.6075", "2.5225"]], "gps_point"), "geometry", "6 decimales"),
    (walk(WALK[:3], "gps_point"), "geometry", "una sola posición"),
    ([1, 2], "geometry", "captura"),
])
def test_a_bad_capture_is_refused_with_its_message_and_stores_nothing(client, login, world,
                                                                      body, field, words):
    w = world
    login(w.manager)
    client.get("/lang/es")
    answer = post(client, w.manage + "/capture", body)
    assert answer.status_code == 422, answer.json
    error = answer.json["error"]
    assert words.lower() in error["message"].lower(), error
    assert field in error["fields"] and error["fields"][field]
    assert versions_count() == 0
    # Refused, the key made nothing: a corrected capture with that key is stored.
    assert post(client, w.manage + "/capture", walk()).status_code == 201


def test_a_body_that_is_no_json_is_refused(client, login, world):
    login(world.manager)
    answer = client.post(world.manage + "/capture", data="no json",
                         headers={"Content-Type": "text/plain"})
    assert answer.status_code == 422 and answer.json["error"]["message"]
    assert versions_count() == 0


def test_a_point_for_a_plot_above_4_ha_is_refused(client, login, world):
    w = world
    big = plots.add_plot(w.profile, name="Grande", hectares="6", replaced_crop=None,
                         illicit_hectares="0")
    db.session.commit()
    login(w.farmer)
    client.get("/lang/es")
    answer = post(client, f"/my/plots/{big.id}/capture",
                  walk([["-76.6070000", "2.5230000"]], "gps_point"))
    assert answer.status_code == 422 and "4 ha" in answer.json["error"]["message"]
    assert versions_count() == 0


# ---------------------------------------------------------------- the farmer's typed forms

def test_the_farmer_types_a_point_and_a_bad_one_is_refused_on_the_field(client, login, world):
    w = world
    login(w.farmer)
    client.get("/lang/es")
    bad = client.post(w.mine + "/point", data={"point-latitude": "-76,607500",
                                               "point-longitude": "2,522500"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    error = re.search(r'id="point-latitude-err">(.*?)</p>', html, re.S)
    assert error and "invertid" in error.group(1)
    assert 'value="-76,607500"' in html
    assert versions_count() == 0
    good = client.post(w.mine + "/point", data={"point-latitude": "2,522500",
                                                "point-longitude": "-76,607500"})
    assert good.status_code == 302
    db.session.expire_all()
    assert w.plot.current.geometry_source == "typed"
    bad = client.post(w.mine + "/polygon", data={"polygon-positions": "2,5 -76,6\n"})
    assert bad.status_code == 422 and versions_count() == 1


# ---------------------------------------------------------------- the farmer's consent

def test_the_farmer_gives_and_withdraws_consent_after_confirming(client, login, world):
    w = world
    login(w.farmer)
    client.get("/lang/es")
    page = client.get(w.mine).get_data(as_text=True)
    assert "No dado." in page
    step = client.post(w.mine + "/consent")
    assert step.status_code == 200 and "confirm-step" in step.get_data(as_text=True)
    assert db.session.scalar(select(func.count(TraceConsent.id))) == 0
    assert str(plots.CONSENT_TEXT)[:20] in step.get_data(as_text=True) or \
        "Acepto" in step.get_data(as_text=True)
    done = confirm(client, step)
    assert done.status_code == 302
    row = db.session.scalar(select(TraceConsent))
    assert row.farmer_id == w.profile.id and row.recorded_by_id == w.farmer.id
    assert row.locale.startswith("es") and row.text and row.withdrawn_at is None
    assert "Acepto" in row.text or "agree" in row.text
    # Again: nothing new.
    assert client.post(w.mine + "/consent").status_code == 302
    assert db.session.scalar(select(func.count(TraceConsent.id))) == 1
    step = client.post(w.mine + "/consent/withdraw")
    assert step.status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(TraceConsent)).withdrawn_at is None
    assert confirm(client, step).status_code == 302
    db.session.expire_all()
    row = db.session.scalar(select(TraceConsent))
    assert row.withdrawn_at is not None and row.withdrawn_by_id == w.farmer.id
    assert "no ha consentido" in client.get("/my/plots").get_data(as_text=True)


def test_the_farmer_map_shows_every_plot_and_what_is_missing(client, login, world):
    w = world
    other = plots.add_plot(w.profile, name="El Bajo", hectares="0.5", replaced_crop=None,
                           illicit_hectares="0")
    db.session.commit()
    login(w.manager)
    assert post(client, w.manage + "/capture", walk()).status_code == 201
    login(w.farmer)
    client.get("/lang/es")
    page = client.get("/my/plots").get_data(as_text=True)
    assert "La Loma" in page and "El Bajo" in page and other.name in page
    assert page.count('<path class="plot') == 1
    assert "Incompleta para la UE" in page
    assert "31 de diciembre de 2020" in page
    assert f'href="/my/plots/{w.plot.id}"' in page
    # The navigation links to it.
    assert 'href="/my/plots"' in client.get("/my/listings").get_data(as_text=True)


def test_the_same_capture_sent_by_two_tabs_at_once_is_one_version(client, login, world,
                                                                 monkeypatch):
    """The other tab won the insert between this request's look-up and its own insert: the
    unique client key refuses the second row, and the answer is the winner's version."""
    w = world
    login(w.manager)
    real = plots.record_geometry
    calls = []

    def racing(plot, geometry, **kwargs):
        calls.append(1)
        if len(calls) == 1:              # the other tab's request, committed first
            real(plot, geometry, **kwargs)
            db.session.commit()
            # This request's own insert then meets the unique key.
            db.session.add(PlotVersion(plot_id=plot.id, version=99, change="geometry",
                                       declared_area_m2=plot.area_m2,
                                       client_key=kwargs["client_key"]))
            db.session.flush()
        return real(plot, geometry, **kwargs)
    monkeypatch.setattr(plots, "record_geometry", racing)
    answer = post(client, w.manage + "/capture", walk(), key="tab-key")
    assert answer.status_code == 200 and answer.json["repeated"] is True, answer.json
    assert answer.json["version"] == 1 and len(calls) == 2
    db.session.expire_all()
    assert versions_count() == 1
