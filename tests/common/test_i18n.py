"""Spanish by default, English on request (Accept-Language or the switch on every page);
numbers and dates written the reader's way; the switch never sends anyone off Minga."""
from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from pathlib import Path

import pytest
from babel.dates import format_date
from babel.messages.pofile import read_po

from coop.extensions import db

ROOT = Path(__file__).resolve().parents[2]


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def lang_of(response) -> str:
    """The page's language; <html lang> carries the region too ("es-CO"), as the header does."""
    match = re.search(r'<html lang="([a-z]{2})(-[A-Z]{2})?">', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:200]
    assert response.headers["Content-Language"] == match.group(1) + (match.group(2) or "")
    return match.group(1)


@pytest.fixture
def coop(make_coop):
    return make_coop(name="Cooperativa Nuevo Horizonte")


@pytest.fixture
def farmer(coop, make_farmer):
    return make_farmer(coop)


# ---------------------------------------------------------------- choosing the language


def test_spanish_is_the_default(client, coop):
    response = client.get("/supply")
    assert lang_of(response) == "es"
    page = text(response)
    assert "Oferta disponible" in page and "Nada en oferta por ahora." in page
    assert "Supply on offer" not in page
    assert 'hreflang="en"' in page and ">English</a>" in page


@pytest.mark.parametrize("header,expected", [
    ("en", "en"), ("en-US,en;q=0.9", "en"), ("en-GB", "en"), ("de-DE, en;q=0.5", "en"),
    ("es-CO,es;q=0.9,en;q=0.8", "es"), ("fr-FR", "es"), ("qu", "es"), ("*", "es"),
    ("", "es"), ("en;q=0.2, es;q=0.9", "es"), ("garbage;;q=x", "es"),
])
def test_accept_language_chooses_english_or_spanish(client, header, expected):
    response = client.get("/supply", headers={"Accept-Language": header})
    assert response.status_code == 200 and lang_of(response) == expected
    assert ("Supply on offer" if expected == "en" else "Oferta disponible") in text(response)


def test_the_switch_remembers_the_choice_for_the_session(client, app):
    response = client.get("/lang/en", query_string={"next": "/supply?crop=cacao"})
    assert response.status_code == 302 and response.headers["Location"] == "/supply?crop=cacao"
    assert lang_of(client.get("/supply")) == "en"
    # The choice beats the browser's preference.
    assert lang_of(client.get("/supply", headers={"Accept-Language": "es"})) == "en"
    client.get("/lang/es")
    assert lang_of(client.get("/supply", headers={"Accept-Language": "en"})) == "es"
    # Another visitor is not affected.
    assert lang_of(app.test_client().get("/supply")) == "es"


def test_the_switch_also_works_by_post(client):
    response = client.post("/lang/en", data={"next": "/coops"})
    assert response.status_code == 302 and response.headers["Location"] == "/coops"
    assert lang_of(client.get("/coops")) == "en"


def test_a_logged_in_users_choice_is_kept_on_their_account(client, app, login, farmer):
    login(farmer)
    assert lang_of(client.get("/my/listings")) == "es"
    client.get("/lang/en")
    db.session.expire_all()
    assert farmer.locale == "en"
    # A new session on another phone starts in the language they chose.
    other = app.test_client()
    other.post("/login", data={"login": farmer.email, "password": "correct-horse-battery"})
    assert lang_of(other.get("/my/listings")) == "en"


def test_an_unknown_language_changes_nothing(client):
    response = client.get("/lang/fr", query_string={"next": "/supply"})
    assert response.status_code == 302
    assert lang_of(client.get("/supply")) == "es"
    assert client.get("/lang/" + "x" * 300).status_code == 302


# ---------------------------------------------------------------- the switch on every page


def pages_for(coop, listing) -> dict[str, list[str]]:
    public = ["/", "/supply", "/supply?crop=coffee", "/coops", f"/coops/{coop.slug}", "/crops",
              "/login", "/signup", "/no-such-page"]
    farmer = ["/supply", "/my/listings", "/my/listings/new", f"/my/listings/{listing.id}/edit",
              "/account", f"/my/listings/{listing.id + 1000}/edit"]
    manager = ["/manage", f"/manage/coops/{coop.id}", f"/manage/coops/{coop.id}/farmers/new"]
    return {"visitor": public, "farmer": farmer, "manager": manager}


@pytest.mark.parametrize("who", ["visitor", "farmer", "manager"])
def test_every_page_has_the_switch_to_the_other_language(client, login, coop, farmer,
                                                         make_listing, who):
    listing = make_listing(farmer)
    if who == "farmer":
        login(farmer)
    elif who == "manager":
        login(coop.memberships[0].user)
    for url in pages_for(coop, listing)[who]:
        for lang, other, label in (("es", "en", "English"), ("en", "es", "Español")):
            client.get(f"/lang/{lang}")
            response = client.get(url)
            assert response.status_code in (200, 404), (url, response.status_code)
            assert lang_of(response) == lang, url
            html = response.get_data(as_text=True)
            link = re.search(rf'<a href="(/lang/{other}\?next=[^"]*)"[^>]*>{label}</a>', html)
            assert link, (url, lang)
            # Following it comes back to the same page, in the other language.
            back = client.get(unescape(link.group(1)))
            assert back.status_code == 302
            assert back.headers["Location"].rstrip("?") == url.rstrip("?"), url
            client.get(f"/lang/{lang}")


def test_error_pages_are_translated(client):
    es = text(client.get("/no-such-page"))
    assert "No encontramos esa página." in es
    en = text(client.get("/no-such-page", headers={"Accept-Language": "en"}))
    assert "We could not find that page." in en


# ---------------------------------------------------------------- numbers and dates


def test_kilograms_and_dates_on_the_farmers_page_follow_the_locale(client, login, farmer,
                                                                    make_listing):
    listing = make_listing(farmer, kg="1234.5", days_ago=10)
    make_listing(farmer, kg="1234567.125", days_ago=2)
    day = date.today() - timedelta(days=10)
    login(farmer)
    es = text(client.get("/my/listings"))
    assert "1.234,5 kg" in es and "1.234.567,125 kg" in es
    assert "1,234.5" not in es
    assert format_date(day, "medium", locale="es_CO") in es  # the coop's country: Colombia
    assert "En oferta" in es and "Mis cosechas" in es
    client.get("/lang/en")
    en = text(client.get("/my/listings"))
    assert "1,234.5 kg" in en and "1,234,567.125 kg" in en
    assert "1.234,5" not in en
    assert format_date(day, "medium", locale="en") in en
    assert "On offer" in en and "My harvests" in en
    assert listing.id


def test_supply_numbers_and_dates_follow_the_locale(client, farmer, make_listing):
    make_listing(farmer, crop="cacao", grade="export", kg="2500.75", days_ago=30)
    make_listing(farmer, crop="cacao", grade="export", kg="1000", days_ago=5)
    first, last = date.today() - timedelta(days=30), date.today() - timedelta(days=5)
    es = text(client.get("/supply"))
    assert "3.500,75" in es and "Cacao (grano seco fermentado)" in es
    assert f"{format_date(first, 'short', locale='es')} – {format_date(last, 'short', locale='es')}" in es
    en = text(client.get("/supply", headers={"Accept-Language": "en"}))
    assert "3,500.75" in en and "Cacao (fermented dry beans)" in en
    assert f"{format_date(first, 'short', locale='en')} – {format_date(last, 'short', locale='en')}" in en


def test_form_messages_are_translated(client, login, farmer):
    login(farmer)
    response = client.post("/my/listings/new", content_type="multipart/form-data", data={
        "product": "coca/x", "quantity_kg": "10",
        "harvested_on": (date.today() - timedelta(days=1)).isoformat()})
    assert response.status_code == 422
    assert "no se pueden publicar en Minga" in text(response)
    response = client.post("/my/listings/new", content_type="multipart/form-data", data={
        "product": "coffee/sca85", "quantity_kg": "-4",
        "harvested_on": (date.today() - timedelta(days=1)).isoformat()})
    assert "Los kilogramos deben ser más que cero." in text(response)


def test_api_messages_follow_accept_language(client, token, farmer):
    headers = token(farmer)
    body = {"crop": "coca", "grade": "x", "quantity_kg": "1",
            "harvested_on": (date.today() - timedelta(days=1)).isoformat()}
    en = client.post("/api/v1/listings", json=body, headers={**headers, "Accept-Language": "en"})
    assert "cannot be listed on Minga" in en.get_json()["error"]["message"]
    assert en.get_json()["error"]["code"] == "prohibited_crop"


def test_every_message_has_a_spanish_translation():
    with open(ROOT / "translations" / "es" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f)
    missing = [m.id for m in catalog if m.id and not (
        m.string if isinstance(m.id, str) else all(m.string))]
    assert not missing, f"{len(missing)} messages without Spanish: {missing[:10]}"
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, fuzzy[:10]


# ---------------------------------------------------------------- no open redirect


@pytest.mark.parametrize("target", [
    "https://evil.example/", "http://evil.example", "//evil.example", "///evil.example",
    "/\\evil.example", "\\\\evil.example", "/\\/evil.example", "http:evil.example",
    "https:/evil.example", "javascript:alert(1)", "data:text/html,hi", " //evil.example",
    "/\t/evil.example", "\t//evil.example", "/\r\nSet-Cookie: pwned=1", "evil.example",
    "%2F%2Fevil.example", "", "ftp://evil.example",
])
@pytest.mark.parametrize("method", ["get", "post"])
def test_the_switch_only_redirects_to_local_paths(client, target, method):
    if method == "get":
        response = client.get("/lang/en", query_string={"next": target})
    else:
        response = client.post("/lang/en", data={"next": target})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == "/", (target, location)
    assert "Set-Cookie: pwned" not in str(response.headers)


@pytest.mark.parametrize("target", ["/supply", "/coops/cooperativa-x?tab=1", "/my/listings",
                                    "/supply?crop=caf%C3%A9"])
def test_local_paths_are_kept(client, target):
    response = client.get("/lang/en", query_string={"next": target})
    assert response.status_code == 302 and response.headers["Location"] == target


def test_the_access_refusals_are_in_the_callers_language(client, make_coop, make_buyer,
                                                         make_farmer, token):
    """An outsider's 404 and a member's 403 from coop/common/access.py are translated."""
    coop = make_coop()
    outsider = client.get(f"/api/v1/coops/{coop.id}/payables",
                          headers={**token(make_buyer()), "Accept-Language": "es-CO"})
    assert outsider.status_code == 404
    assert outsider.json["error"]["message"] == "No encontrado."
    member = client.get(f"/api/v1/coops/{coop.id}/ledger/trial-balance",
                        headers={**token(make_farmer(coop)), "Accept-Language": "es-CO"})
    assert member.status_code == 403, member.json
    assert member.json["error"]["message"] == "Su rol en esta cooperativa no permite hacer esto."
