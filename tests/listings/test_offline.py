"""Offline harvest listing, the server's side: the service worker and offline page, the outbox's
session, and POST /api/v1/listings taking the browser session with its CSRF token (JSON or a
multipart form with the photo), stored once however often the outbox sends it."""
from __future__ import annotations

import io
import json
import re
from datetime import date, timedelta
from html import unescape

import pytest
from PIL import Image
from sqlalchemy import func, select

from coop.extensions import db
from coop.listings.models import Listing, ListingPhoto

HARVEST = (date.today() - timedelta(days=2)).isoformat()


@pytest.fixture
def coop(make_coop):
    return make_coop(name="Cooperativa Nuevo Horizonte")


@pytest.fixture
def farmer(coop, make_farmer):
    return make_farmer(coop)


def csrf_of(client) -> str:
    response = client.get("/my/outbox/session")
    assert response.status_code == 200, response.data
    return response.json["csrf_token"]


def listings_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Listing))


def jpeg(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def outbox_form(**changes):
    """What the outbox sends: the fields as the farmer typed them on the page, in its locale
    (the farmer's coop is Colombian: es_CO, "120,5")."""
    data = {"crop": "coffee", "grade": "sca85", "quantity_kg": "120,5", "harvested_on": HARVEST,
            "collection_point": "Vereda El Tambo", "notes": ""}
    data.update(changes)
    return data


# ---------------------------------------------------------------- service worker, offline page


def test_the_service_worker_is_served_from_the_root_and_never_cached_long(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert response.headers["Cache-Control"] == "no-cache"
    code = response.get_data(as_text=True)
    shell = json.loads(re.search(r"var SHELL = (\[.*?\]);", code).group(1))
    pages = json.loads(re.search(r"var PAGES = (\[.*?\]);", code).group(1))
    assert pages == ["/my/listings", "/my/listings/new", "/my/sales", "/my/deliveries",
                     "/my/payments", "/my/plots"]
    # A plot's page (the farmer's, the technician's field page) is kept once opened: its
    # boundary is walked without signal.
    seen = json.loads(re.search(r"var SEEN = (\[.*?\]);", code).group(1))
    assert seen == [r"^/manage/coops/\d+/farmers/\d+/plots/\d+/field$", r"^/my/plots/\d+$"]
    assert re.match(seen[1], "/my/plots/12") and not re.match(seen[1], "/my/plots/12/consent")
    assert "/offline" in shell
    # The shell is the fingerprinted files, and each of them is really there.
    assert {re.sub(r"\?v=\w+$", "", url) for url in shell} >= {
        "/static/minga.css", "/static/outbox.js", "/static/icon.svg"}
    for url in shell:
        assert client.get(url).status_code == 200, url
    assert "caches" in code and "addEventListener(\"fetch\"" in code
    assert "sync" not in re.findall(r"addEventListener\(\"(\w+)\"", code)


def test_the_service_worker_changes_when_a_shell_file_changes(client, monkeypatch):
    from coop.common import assets
    first = re.search(r'var VERSION = "(\w+)"', client.get("/sw.js").get_data(as_text=True))
    monkeypatch.setitem(assets._static_hashes, "minga.css", "changed00000")
    second = re.search(r'var VERSION = "(\w+)"', client.get("/sw.js").get_data(as_text=True))
    assert first.group(1) != second.group(1)


def test_the_offline_page_says_what_works_without_signal(client):
    response = client.get("/offline", headers={"Accept-Language": "es"})
    assert response.status_code == 200
    page = unescape(response.get_data(as_text=True))
    assert "Sin señal" in page and "/my/listings" in page


# ---------------------------------------------------------------- pages with and without JS


def test_every_page_loads_the_outbox_script_and_registers_no_inline_script(client, login,
                                                                         farmer):
    login(farmer)
    page = client.get("/my/listings").get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    executable = [(attrs, body) for attrs, body in scripts if "application/json" not in attrs]
    assert executable and all('src="/static/outbox.js?v=' in attrs and not body.strip()
                              for attrs, body in executable)
    assert "script-src 'self'" in client.get("/my/listings").headers["Content-Security-Policy"]


def test_a_farmers_pages_carry_the_outbox_words_in_their_language(client, login, farmer):
    login(farmer)
    client.get("/lang/es")
    page = client.get("/my/listings").get_data(as_text=True)
    words = json.loads(unescape(re.search(
        r'<script type="application/json" id="outbox-i18n">(.*?)</script>', page, re.S).group(1)))
    assert words["pending"] == "Esperando para enviar"
    assert "{n}" in words["waiting_many"] and words["waiting_many"] != "{n} harvests waiting to send"
    assert f'data-outbox-user="{farmer.id}"' in page and 'id="outbox-badge"' in page
    assert 'id="outbox-send"' in page and 'id="outbox"' in page
    client.get("/lang/en")
    page = client.get("/my/listings/new").get_data(as_text=True)
    assert "data-outbox-form" in page and "Waiting to send" in unescape(page)


def test_pages_of_non_farmers_have_no_outbox(client, login, make_buyer):
    assert "outbox-badge" not in client.get("/supply").get_data(as_text=True)
    login(make_buyer())
    page = client.get("/supply").get_data(as_text=True)
    assert "outbox-badge" not in page and "data-outbox-user" not in page
    assert "outbox.js" in page  # it still registers the service worker


def test_without_javascript_the_form_posts_and_its_key_stores_once(client, login, farmer):
    """The no-JS path: the form as the browser sends it. The outbox's fallback fills in
    idempotency_key, so a second post of the same form is not a second listing."""
    login(farmer)
    data = {"product": "coffee/sca85", "quantity_kg": "80", "harvested_on": HARVEST,
            "collection_point": "", "notes": "", "idempotency_key": "form-key-1"}
    assert client.post("/my/listings/new", data=data).status_code == 302
    assert client.post("/my/listings/new", data=data).status_code == 302
    assert listings_count() == 1
    data["idempotency_key"] = ""
    assert client.post("/my/listings/new", data=data).status_code == 302
    assert listings_count() == 2


# ---------------------------------------------------------------- the outbox's session


def test_the_outbox_session_gives_the_farmer_and_a_token(client, login, farmer):
    assert client.get("/my/outbox/session").status_code == 401
    login(farmer)
    response = client.get("/my/outbox/session")
    assert response.json["user_id"] == farmer.id and response.json["csrf_token"]
    assert response.headers["Cache-Control"] == "no-store"


# ---------------------------------------------------------------- sending with the session


def test_the_session_with_its_csrf_token_lists_a_harvest_once(client, login, farmer):
    login(farmer)
    token = csrf_of(client)
    headers = {"X-CSRFToken": token, "Idempotency-Key": "outbox-1"}
    first = client.post("/api/v1/listings", data=outbox_form(), headers=headers,
                        content_type="multipart/form-data")
    assert first.status_code == 201, first.json
    assert first.json["quantity_kg"] == "120.500" and first.json["crop"] == "coffee"
    again = client.post("/api/v1/listings", data=outbox_form(), headers=headers)
    assert again.status_code == 201 and again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert listings_count() == 1
    listing = db.session.get(Listing, first.json["id"])
    assert listing.farmer_user_id == farmer.id and listing.idempotency_key == "outbox-1"


@pytest.mark.parametrize("typed,grams", [("1.200", 1_200_000), ("1.200,5", 1_200_500),
                                         ("1200,5", 1_200_500), ("1.5", None),
                                         ("120.5", None)])
def test_the_outbox_sends_kilograms_as_typed_in_the_pages_locale(client, login, farmer, typed,
                                                                 grams):
    login(farmer)
    response = client.post("/api/v1/listings", data=outbox_form(quantity_kg=typed),
                           content_type="multipart/form-data",
                           headers={"X-CSRFToken": csrf_of(client), "Idempotency-Key": typed})
    if grams is None:
        assert response.status_code == 422 and listings_count() == 0
        assert "Escriba 1.200,5 o 1200,5." in response.json["error"]["fields"]["quantity_kg"][0]
    else:
        assert response.status_code == 201, response.json
        assert db.session.get(Listing, response.json["id"]).quantity_g == grams


def test_a_token_client_keeps_machine_format_in_a_form_too(client, farmer, token):
    headers = {**token(farmer), "Idempotency-Key": "t-1"}
    ok = client.post("/api/v1/listings", data=outbox_form(quantity_kg="120.5"), headers=headers,
                     content_type="multipart/form-data")
    assert ok.status_code == 201 and ok.json["quantity_kg"] == "120.500"
    refused = client.post("/api/v1/listings", data=outbox_form(quantity_kg="120,5"),
                          headers={**headers, "Idempotency-Key": "t-2"},
                          content_type="multipart/form-data")
    assert refused.status_code == 422


def test_the_session_also_sends_json(client, login, farmer):
    login(farmer)
    response = client.post("/api/v1/listings", json=outbox_form(quantity_kg="3"),
                           headers={"X-CSRFToken": csrf_of(client), "Idempotency-Key": "j-1"})
    assert response.status_code == 201 and response.json["quantity_kg"] == "3.000"


def test_the_photo_comes_in_the_same_request_and_is_stored_with_the_listing(client, login,
                                                                            farmer):
    login(farmer)
    data = outbox_form()
    data["photo"] = (io.BytesIO(jpeg()), "photo.jpg", "image/jpeg")
    response = client.post("/api/v1/listings", data=data, content_type="multipart/form-data",
                           headers={"X-CSRFToken": csrf_of(client), "Idempotency-Key": "p-1"})
    assert response.status_code == 201, response.json
    listing = db.session.get(Listing, response.json["id"])
    photo = db.session.scalar(select(ListingPhoto).where(ListingPhoto.listing_id == listing.id))
    assert photo is not None and photo.content_type == "image/webp"
    assert listing.photo_digest == photo.digest


def test_a_bad_photo_refuses_the_whole_listing(client, login, farmer):
    login(farmer)
    data = outbox_form()
    data["photo"] = (io.BytesIO(b"not a photo at all"), "photo.jpg", "image/jpeg")
    response = client.post("/api/v1/listings", data=data, content_type="multipart/form-data",
                           headers={"X-CSRFToken": csrf_of(client), "Idempotency-Key": "p-2"})
    assert response.status_code == 422 and response.json["error"]["code"] == "invalid_photo"
    assert listings_count() == 0


@pytest.mark.parametrize("headers", [{}, {"X-CSRFToken": ""}, {"X-CSRFToken": "forged"}])
def test_the_session_without_a_valid_csrf_token_is_refused(client, login, farmer, headers):
    login(farmer)
    response = client.post("/api/v1/listings", data=outbox_form(), headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == ("csrf_invalid" if headers else "csrf_invalid")
    assert listings_count() == 0


def test_another_sessions_token_is_refused(app, client, login, farmer, coop, make_farmer):
    login(farmer)
    token = csrf_of(client)
    other = app.test_client()
    other.post("/login", data={"login": make_farmer(coop).email,
                               "password": "correct-horse-battery"})
    response = other.post("/api/v1/listings", data=outbox_form(), headers={"X-CSRFToken": token})
    assert response.status_code == 401
    assert listings_count() == 0


def test_no_session_and_no_token_is_401(client):
    response = client.post("/api/v1/listings", data=outbox_form(), headers={"X-CSRFToken": "x"})
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"


def test_a_token_from_days_ago_still_sends(app, client, login, farmer, monkeypatch):
    """The outbox may send days after the page was kept: tokens do not expire by age."""
    assert app.config["WTF_CSRF_TIME_LIMIT"] is None
    login(farmer)
    token = csrf_of(client)
    import itsdangerous.timed
    later = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: later(self) + 10 * 24 * 3600)
    response = client.post("/api/v1/listings", data=outbox_form(),
                           headers={"X-CSRFToken": token, "Idempotency-Key": "late"})
    assert response.status_code == 201


def test_a_bearer_token_still_works_and_wins_over_the_session(client, login, farmer, token):
    headers = token(farmer)
    response = client.post("/api/v1/listings", json=outbox_form(quantity_kg="120.5"),
                           headers=headers)  # a token client: machine format
    assert response.status_code == 201
    bad = client.post("/api/v1/listings", json=outbox_form(),
                      headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


@pytest.mark.parametrize("crop,code", [("coca", "prohibited_crop"),
                                       ("opium-poppy", "prohibited_crop"),
                                       ("turnips", "unknown_crop")])
def test_a_refused_harvest_gets_the_servers_reason_and_stores_nothing(client, login, farmer,
                                                                     crop, code):
    """What the outbox shows beside a refused harvest: the code, a message, the field."""
    login(farmer)
    client.get("/lang/es")
    response = client.post("/api/v1/listings", data=outbox_form(crop=crop),
                           headers={"X-CSRFToken": csrf_of(client), "Idempotency-Key": "r-1"})
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == code and error["message"]
    assert listings_count() == 0
    # Corrected, the same key may be used: nothing was stored under it.
    fixed = client.post("/api/v1/listings", data=outbox_form(),
                        headers={"X-CSRFToken": csrf_of(client), "Idempotency-Key": "r-1"})
    assert fixed.status_code == 201 and listings_count() == 1


def test_multipart_fields_are_checked_like_json(client, login, farmer):
    login(farmer)
    headers = {"X-CSRFToken": csrf_of(client)}
    bad_coop = client.post("/api/v1/listings", data=outbox_form(coop_id="abc"), headers=headers)
    assert bad_coop.status_code == 422 and "coop_id" in bad_coop.json["error"]["fields"]
    missing = outbox_form()
    del missing["harvested_on"]
    response = client.post("/api/v1/listings", data=missing, headers=headers)
    assert response.status_code == 422 and "harvested_on" in response.json["error"]["fields"]
    assert listings_count() == 0


def test_a_buyers_session_cannot_list(client, login, make_buyer):
    login(make_buyer())
    token = client.get("/my/outbox/session")
    assert token.status_code == 403
    page = client.get("/supply").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/api/v1/listings", data=outbox_form(), headers={"X-CSRFToken": csrf})
    assert response.status_code == 403
