"""A pool's delivery terms: EXW at the coop's collection point unless the manager says FCA at a
named place, with an expected date that is not past; set when the pool opens (form and API),
changed by the manager while it is open, shown to buyers in their language and in the API."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from coop.common.errors import Conflict, ValidationFailed
from coop.common.models import utcnow
from coop.extensions import db
from coop.pools import services as pools
from coop.pools.models import Pool
from coop.pools.terms import local_today
from tests.support.settle import cancel_and_settle

pytestmark = pytest.mark.usefixtures("stripe_clean")


def client_as(app, user, lang="en"):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = lang
    with client.session_transaction() as session:
        session["lang"] = lang
        if user is not None:
            session["_user_id"] = user.get_id()
            session["login_factor"] = "password"
            session["_fresh"] = True
    return client


def _local_input(hours=48) -> str:
    return (utcnow() + timedelta(hours=hours)).astimezone(ZoneInfo("America/Bogota")) \
        .strftime("%Y-%m-%dT%H:%M")


def _csrf(client, url):
    """The page's CSRF token, when the app checks them (the test app does not)."""
    import re
    page = client.get(url).get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    return found.group(1) if found else ""


def test_a_pool_opens_exw_at_the_collection_point_unless_told(market):
    plain = market.open_pool()
    assert (plain.delivery_terms, plain.delivery_place, plain.delivery_expected_on) == (
        "EXW", "Acopio central", None)
    later = local_today() + timedelta(days=20)
    fca = market.open_pool(min_kg="10", max_kg="50", delivery_terms="FCA",
                           delivery_place="  Almacafé,   Popayán ",
                           delivery_expected_on=later.isoformat())
    assert (fca.delivery_terms, fca.delivery_place, fca.delivery_expected_on) == (
        "FCA", "Almacafé, Popayán", later)


@pytest.mark.parametrize("terms, field", [
    ({"delivery_terms": "FCA"}, "delivery_place"),
    ({"delivery_terms": "FCA", "delivery_place": "   "}, "delivery_place"),
    ({"delivery_terms": "CIF", "delivery_place": "Buenaventura"}, "delivery_terms"),
    ({"delivery_terms": 7}, "delivery_terms"),
    ({"delivery_place": "x" * 201}, "delivery_place"),
    ({"delivery_place": "a\x00b"}, "delivery_place"),
    ({"delivery_expected_on": "2020-01-01"}, "delivery_expected_on"),
    ({"delivery_expected_on": "mañana"}, "delivery_expected_on"),
    ({"delivery_expected_on": "9999-12-31"}, "delivery_expected_on"),
])
def test_bad_terms_are_refused_on_their_field_and_no_pool_opens(market, terms, field):
    with pytest.raises(ValidationFailed) as refused:
        market.open_pool(**terms)
    assert list(refused.value.fields) == [field]
    db.session.rollback()
    assert db.session.query(Pool).count() == 0


def test_the_manager_changes_the_terms_while_the_pool_is_open_only(market):
    pool = market.open_pool()
    today = local_today()
    pools.change_terms(pool, delivery_terms="FCA", delivery_place="Puerto de Buenaventura",
                       delivery_expected_on=today.isoformat())
    db.session.commit()
    assert (pool.delivery_terms, pool.delivery_expected_on) == ("FCA", today)
    cancel_and_settle(pool.id)
    db.session.expire_all()
    pool = db.session.get(Pool, pool.id)
    with pytest.raises(Conflict):
        pools.change_terms(pool, delivery_terms="EXW", delivery_place="",
                           delivery_expected_on="")
    db.session.rollback()
    assert db.session.get(Pool, pool.id).delivery_terms == "FCA"


def test_the_forms_keep_what_was_typed_and_the_buyer_reads_the_terms(app, market):
    manager = client_as(app, market.manager)
    url = f"/manage/coops/{market.coop.id}/pools"
    token = _csrf(manager, url)
    base = {"csrf_token": token, "product": "coffee/sca85", "min_kg": "100", "max_kg": "200",
            "closes_at": _local_input(48)}
    refused = manager.post(url, data={**base, "delivery_terms": "FCA", "delivery_place": "",
                                      "delivery_expected_on": "2031-01-01"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="delivery_place-err"' in page
    assert "FCA needs the place" in page and 'value="2031-01-01"' in page
    assert '<option selected value="FCA">' in page or 'value="FCA" selected' in page
    assert db.session.query(Pool).count() == 0
    expected = local_today() + timedelta(days=10)
    opened = manager.post(url, data={**base, "delivery_terms": "FCA",
                                     "delivery_place": "Almacafé Popayán",
                                     "delivery_expected_on": expected.isoformat()})
    assert opened.status_code == 302
    pool = db.session.query(Pool).one()
    assert (pool.delivery_terms, pool.delivery_place) == ("FCA", "Almacafé Popayán")

    # changed on the pool's page: a past date is refused on its field, the input kept
    pool_url = f"/manage/pools/{pool.id}"
    past = manager.post(pool_url + "/terms", data={
        "csrf_token": token, "delivery_terms": "EXW", "delivery_place": "Bodega 2",
        "delivery_expected_on": (local_today() - timedelta(days=1)).isoformat()})
    body = past.get_data(as_text=True)
    assert past.status_code == 422 and 'id="delivery_expected_on-err"' in body
    assert 'value="Bodega 2"' in body
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).delivery_place == "Almacafé Popayán"
    saved = manager.post(pool_url + "/terms", data={
        "csrf_token": token, "delivery_terms": "EXW", "delivery_place": "",
        "delivery_expected_on": expected.isoformat()})
    assert saved.status_code == 302
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).delivery_place == "Acopio central"
    # the treasurer and a buyer may not change them
    assert client_as(app, market.treasurer).post(pool_url + "/terms", data={
        "delivery_terms": "FCA"}).status_code in (400, 403)
    assert client_as(app, market.buyers[0]).post(pool_url + "/terms", data={
        "delivery_terms": "FCA"}).status_code in (400, 404)

    page = client_as(app, market.buyers[0], "es").get(f"/pools/{pool.id}").get_data(
        as_text=True)
    assert "Recogida en el centro de acopio (EXW)" in page and "Acopio central" in page
    from babel.dates import format_date
    assert format_date(expected, "long", locale="es_CO") in page
    page = client_as(app, None, "en").get(f"/pools/{pool.id}").get_data(as_text=True)
    assert "Pickup at the collection point (EXW)" in page
    assert format_date(expected, "long", locale="en") in page


def test_the_api_takes_and_gives_the_terms(client, token, market):
    closes = (utcnow() + timedelta(hours=30)).isoformat()
    body = {"coop_id": market.coop.id, "crop": "coffee", "grade": "sca85", "min_kg": "10",
            "max_kg": "100", "closes_at": closes}
    headers = token(market.manager)
    bad = client.post("/api/v1/pools", headers=headers,
                      json={**body, "delivery_terms": "FCA"})
    assert bad.status_code == 422 and "delivery_place" in bad.json["error"]["fields"]
    later = (local_today() + timedelta(days=9)).isoformat()
    made = client.post("/api/v1/pools", headers=headers, json={
        **body, "delivery_terms": "FCA", "delivery_place": "Popayán",
        "delivery_expected_on": later})
    assert made.status_code == 201, made.json
    assert (made.json["delivery_terms"], made.json["delivery_place"],
            made.json["delivery_expected_on"]) == ("FCA", "Popayán", later)
    plain = client.post("/api/v1/pools", headers=headers, json={**body, "max_kg": "50"})
    assert (plain.json["delivery_terms"], plain.json["delivery_place"],
            plain.json["delivery_expected_on"]) == ("EXW", "Acopio central", None)
    got = client.get(f"/api/v1/pools/{made.json['id']}", headers=token(market.buyers[0]))
    assert got.json["delivery_place"] == "Popayán"
