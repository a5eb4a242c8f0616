"""Farmers' phones: Minga on the home screen (a manifest with real icons), pages kept for use
without signal with the time of their copy, harvest dates no later than today, a crop select
that names crop and grade with nothing chosen, photos in the sizes pages need, and farmers
without e-mail who log in with their phone and a PIN they choose."""
from __future__ import annotations

import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import func, select

from coop.auth import services as auth_services
from coop.auth.models import ApiToken, User
from coop.extensions import db
from coop.listings import photos as photo_module
from coop.listings import services as listing_services
from coop.listings.models import Listing
from tests.support import PASSWORD


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def noisy_photo(width=1280, height=960) -> bytes:
    """The hardest photo to compress: noise in every channel (a real photo is smaller)."""
    image = Image.merge("RGB", [Image.effect_noise((width, height), s) for s in (40, 60, 80)])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def beans_photo(width=1280, height=960, seed=1) -> bytes:
    """Like a phone's photo of a harvest: hundreds of beans on a gradient, with grain."""
    import random

    from PIL import ImageDraw, ImageFilter
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image = Image.blend(image, Image.new("RGB", (width, height), (110, 70, 35)), 0.7)
    draw = ImageDraw.Draw(image)
    for _ in range(900):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randint(width // 60, width // 35), rng.randint(height // 70, height // 45)
        shade = rng.randint(60, 160)
        draw.ellipse((x, y, x + w, y + h), fill=(shade, shade * 2 // 3, shade // 3),
                     outline=(shade // 2, shade // 3, 10))
    grain = Image.effect_noise((width, height), 18).convert("RGB")
    image = Image.blend(image, grain, 0.12).filter(ImageFilter.GaussianBlur(0.6))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


@pytest.fixture
def coop(make_coop):
    return make_coop(name="Cooperativa Nuevo Horizonte")


@pytest.fixture
def farmer(coop, make_farmer):
    return make_farmer(coop, name="Rosa Quispe", phone="573001112233")


def harvest(farmer, photo=None, days_ago=3, **kw):
    listing, _ = listing_services.create_listing(
        farmer, crop="coffee", grade="sca85", quantity_kg="100",
        harvested_on=date.today() - timedelta(days=days_ago), photo=photo, **kw)
    db.session.commit()
    return listing


# ----------------------------------------------------------------------------- manifest

def test_the_manifest_is_json_with_the_app_fields_and_real_icons(client):
    response = client.get("/manifest.webmanifest", headers={"Accept-Language": "es"})
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data(as_text=True))
    assert manifest["short_name"] == "Minga" and manifest["name"].startswith("Minga")
    assert "cooperativas" in manifest["name"]
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["background_color"])
    declared = {}
    for icon in manifest["icons"]:
        assert icon["type"] == "image/png"
        png = client.get(icon["src"])
        assert png.status_code == 200 and png.mimetype == "image/png"
        with Image.open(io.BytesIO(png.data)) as image:
            assert image.format == "PNG"
            declared[icon["sizes"]] = f"{image.width}x{image.height}"
    assert declared == {"192x192": "192x192", "512x512": "512x512"}
    english = json.loads(client.get("/manifest.webmanifest",
                                    headers={"Accept-Language": "en"}).data)
    assert "cooperatives" in english["name"] and english["lang"].startswith("en")


def test_every_page_links_the_manifest(client, login, farmer, make_buyer):
    for path in ("/", "/login", "/supply", "/pools", "/offline"):
        assert '<link rel="manifest" href="/manifest.webmanifest">' in text(client.get(path))
    login(farmer)
    for path in ("/my/listings", "/my/sales", "/my/payments", "/my/listings/new"):
        assert '<link rel="manifest" href="/manifest.webmanifest">' in text(client.get(path))


# ----------------------------------------------------------------------------- offline pages

def test_the_service_worker_keeps_the_money_pages(client):
    code = client.get("/sw.js").get_data(as_text=True)
    pages = json.loads(re.search(r"var PAGES = (\[.*?\]);", code).group(1))
    assert {"/my/sales", "/my/deliveries", "/my/payments", "/my/listings"} <= set(pages)
    assert 'var START = "/"' in code


def test_an_offline_endpoint_missing_from_the_app_is_left_out(app, client, monkeypatch):
    from coop.listings import offline
    monkeypatch.setattr(offline, "OFFLINE_PAGES", offline.OFFLINE_PAGES + ("pools.no_such",))
    code = client.get("/sw.js").get_data(as_text=True)
    pages = json.loads(re.search(r"var PAGES = (\[.*?\]);", code).group(1))
    assert "/my/sales" in pages and len(pages) == len(offline.OFFLINE_PAGES) - 1


def test_kept_pages_carry_the_time_of_their_copy_hidden_until_offline(client, login, farmer):
    login(farmer)
    for path in ("/my/sales", "/my/deliveries", "/my/payments", "/my/listings"):
        body = text(client.get(path))
        stamp = re.search(r'<p id="offline-stamp"[^>]*>([^<]*)</p>', body)
        assert stamp, path
        assert " hidden" in stamp.group(0)
        now = datetime.now(ZoneInfo("America/Bogota"))
        assert stamp.group(1).startswith("Actualizado el ") and str(now.year) in stamp.group(1)
    # The form is the same every time: no date on it; other people's pages are not kept.
    assert 'id="offline-stamp"' not in text(client.get("/my/listings/new"))


def test_pages_that_are_not_kept_have_no_stamp(client, login, make_buyer):
    assert 'id="offline-stamp"' not in text(client.get("/supply"))
    login(make_buyer())
    assert 'id="offline-stamp"' not in text(client.get("/supply"))


# ----------------------------------------------------------------------------- the form

def test_the_crop_select_names_crop_and_grade_and_chooses_nothing(client, login, farmer):
    login(farmer)
    body = text(client.get("/my/listings/new"))
    select_html = re.search(r'<select[^>]*name="product".*?</select>', body, re.S).group(0)
    options = re.findall(r'<option([^>]*)>([^<]*)</option>', select_html)
    assert options[0][1] == "Elija el cultivo y el grado" and 'value=""' in options[0][0]
    assert not any("selected" in attrs for attrs, _label in options)
    labels = [label for _attrs, label in options]
    assert "Café pergamino — Excelente, SCA 85–89" in labels
    assert "<optgroup" not in select_html  # the closed select shows crop and grade at once


def test_no_crop_chosen_is_refused_with_a_clear_message(client, login, farmer):
    login(farmer)
    response = client.post("/my/listings/new", data={
        "product": "", "quantity_kg": "120", "harvested_on": (date.today() - timedelta(days=1)).isoformat()})
    assert response.status_code == 422
    body = text(response)
    assert "Elija el cultivo y el grado de la cosecha." in body and 'value="120"' in body
    assert db.session.scalar(select(func.count()).select_from(Listing)) == 0


def test_a_harvest_date_later_than_today_is_refused_on_the_field(client, login, farmer):
    login(farmer)
    tomorrow = (listing_services.local_today("CO") + timedelta(days=1)).isoformat()
    response = client.post("/my/listings/new", data={
        "product": "coffee/sca85", "quantity_kg": "120", "harvested_on": tomorrow})
    assert response.status_code == 422
    body = text(response)
    field = re.search(r'<p class="err" id="harvested_on-err">([^<]*)</p>', body)
    assert field and "Posterior a hoy" in field.group(1)
    assert f'value="{tomorrow}"' in body
    assert db.session.scalar(select(func.count()).select_from(Listing)) == 0


def test_the_api_refuses_a_future_harvest_in_its_error_format(client, farmer, token):
    headers = token(farmer)
    tomorrow = (listing_services.local_today("CO") + timedelta(days=1)).isoformat()
    response = client.post("/api/v1/listings", headers=headers, json={
        "crop": "coffee", "grade": "sca85", "quantity_kg": "50", "harvested_on": tomorrow})
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "validation_failed" and "harvested_on" in error["fields"]
    today = listing_services.local_today("CO").isoformat()
    assert client.post("/api/v1/listings", headers=headers, json={
        "crop": "coffee", "grade": "sca85", "quantity_kg": "50",
        "harvested_on": today}).status_code == 201


def test_today_is_the_coops_today():
    bogota = datetime.now(timezone.utc).astimezone(ZoneInfo("America/Bogota")).date()
    lima = datetime.now(timezone.utc).astimezone(ZoneInfo("America/Lima")).date()
    assert listing_services.local_today("CO") == bogota
    assert listing_services.local_today("PE") == lima
    assert listing_services.local_today(None) == datetime.now(timezone.utc).date()
    with pytest.raises(Exception) as refused:
        listing_services.parse_harvest_date(date(2026, 5, 2), today=date(2026, 5, 1))
    assert refused.value.fields["harvested_on"]
    assert listing_services.parse_harvest_date("2026-05-01", today=date(2026, 5, 1)) == \
        date(2026, 5, 1)


def test_the_outbox_sends_first_and_keeps_only_what_could_not_be_sent():
    """outbox.js: with signal a harvest goes straight to the API; a refusal comes back to the
    form; only a failed connection (or Minga unable to answer) stores it on the phone."""
    from pathlib import Path
    code = (Path(__file__).resolve().parents[2] / "static" / "outbox.js").read_text()
    submit = code[code.index('form.addEventListener("submit"'):]
    assert "sendNow(rec)" in submit and 'outcome.kind === "refused"' in submit
    assert "showRefusal(form, outcome.error)" in submit
    # The record is stored only when the outcome is not "sent" and not "refused".
    keep = submit[submit.index("var keep"):submit.index("var keep") + 120]
    assert 'outcome.kind === "sent" ? Promise.resolve() : put(rec)' in keep


# ----------------------------------------------------------------------------- photos

def test_photos_come_in_the_sizes_pages_ask_for_and_are_small(client, farmer):
    listing = harvest(farmer, photo=noisy_photo())
    v = listing.photo_digest[:8]
    for width, height in ((160, 120), (320, 240)):
        response = client.get(f"/listings/{listing.id}/photo/{width}?v={v}")
        assert response.status_code == 200 and response.mimetype == "image/webp"
        with Image.open(io.BytesIO(response.data)) as image:
            assert (image.width, image.height) == (width, height)
        assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
        assert response.headers["ETag"]
    thumb = client.get(f"/listings/{listing.id}/photo/320?v={v}")
    assert len(thumb.data) <= 8 * 1024, len(thumb.data)  # noise: a real photo is smaller
    for size in ((4000, 3000), (1280, 960), (800, 600)):
        real = harvest(farmer, photo=beans_photo(*size))
        small = client.get(f"/listings/{real.id}/photo/320?v={real.photo_digest[:8]}")
        assert len(small.data) <= 5 * 1024, (size, len(small.data))
    again = client.get(f"/listings/{listing.id}/photo/320?v={v}",
                       headers={"If-None-Match": thumb.headers["ETag"]})
    assert again.status_code == 304
    assert client.get(f"/listings/{listing.id}/photo/200").status_code == 404


def test_a_thumbnail_is_derived_once_and_served_from_the_cache(client, farmer, count_queries):
    listing = harvest(farmer, photo=noisy_photo(640, 480))
    photo_module._thumbs.clear()
    url = f"/listings/{listing.id}/photo/320"
    with count_queries() as first:
        assert client.get(url).status_code == 200
    assert photo_module.cached_thumbnail(listing.photo_digest, 320) is not None
    with count_queries() as second:
        assert client.get(url).status_code == 200
    assert not any("listing_photos" in s for s in second.statements)
    assert any("listing_photos" in s for s in first.statements)


def test_buyers_see_photos_of_harvests_on_offer_only(client, app, login, farmer, make_buyer,
                                                     coop, make_farmer):
    listing = harvest(farmer, photo=noisy_photo(400, 300))
    url = f"/listings/{listing.id}/photo/160"
    assert client.get(url).status_code == 200                       # a visitor
    login(make_buyer())
    assert client.get(url).status_code == 200
    listing_services.withdraw_listing(farmer, listing.id)
    db.session.commit()
    assert client.get(url).status_code == 404                       # withdrawn: not the buyer's
    login(make_farmer(coop))
    assert client.get(url).status_code == 404
    login(farmer)
    assert client.get(url).status_code == 200                       # always its farmer's
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    login(manager)
    assert client.get(url).status_code == 200
    no_photo = harvest(farmer)
    assert client.get(f"/listings/{no_photo.id}/photo/160").status_code == 404
    assert client.get("/listings/999999/photo/160").status_code == 404


def _imgs(body: str) -> list[str]:
    return re.findall(r'<img [^>]*class="harvest-photo"[^>]*>', body)


def _check_img(tag: str) -> None:
    assert 'loading="lazy"' in tag and 'width="160"' in tag and 'height="120"' in tag
    assert re.search(r'srcset="[^"]*/photo/160\?v=\w+ 160w, [^"]*/photo/320\?v=\w+ 320w"', tag)
    alt = re.search(r'alt="([^"]+)"', tag).group(1)
    assert alt.startswith("Foto de")


def test_the_supply_and_the_coops_page_show_a_photo_per_crop_and_grade(client, coop, farmer,
                                                                       count_queries):
    harvest(farmer, photo=noisy_photo(400, 300))
    body = text(client.get("/supply"))
    tags = _imgs(body)
    assert len(tags) == 1
    _check_img(tags[0])
    assert "Café pergamino, Excelente" in tags[0]
    assert len(_imgs(text(client.get(f"/coops/{coop.slug}")))) == 1
    client.get("/supply")
    db.session.expire_all()
    with count_queries() as one:
        client.get("/supply")
    for crop, grade in (("cacao", "export"), ("coffee", "sca90"), ("avocado", "extra")):
        listing_services.create_listing(farmer, crop=crop, grade=grade, quantity_kg="50",
                                        harvested_on=listing_services.local_today("CO"),
                                        photo=noisy_photo(200, 150))
        db.session.commit()
    db.session.expire_all()
    with count_queries() as many:
        body = text(client.get("/supply"))
    assert len(_imgs(body)) == 4
    assert many.count == one.count


def test_the_pool_page_shows_photos_of_its_harvests(client, market):
    first = market.listings[0]
    listing_services.update_listing(market.farmers[0], first.id, photo=noisy_photo(400, 300))
    db.session.commit()
    pool = market.open_pool()
    body = text(client.get(f"/pools/{pool.id}"))
    tags = _imgs(body)
    assert len(tags) == 1
    _check_img(tags[0])
    assert f"/listings/{first.id}/photo/160" in tags[0]


def test_my_harvests_with_photos_uses_the_thumbnails(client, login, farmer, count_queries):
    for n in range(3):
        harvest(farmer, photo=noisy_photo(300 + n, 200))
    login(farmer)
    client.get("/my/listings")
    db.session.expire_all()
    with count_queries() as three:
        body = text(client.get("/my/listings"))
    tags = _imgs(body)
    assert len(tags) == 3
    for tag in tags:
        _check_img(tag)
    for n in range(5):
        harvest(farmer, photo=noisy_photo(300, 200 + n))
    db.session.expire_all()
    with count_queries() as eight:
        assert len(_imgs(text(client.get("/my/listings")))) == 8
    assert eight.count == three.count


def test_my_harvests_with_photos_stays_under_30_kb_counting_the_photos_a_phone_loads(
        client, login, farmer):
    """First view on a phone (2x screen: the 320 px thumbnails): the page, its CSS, script,
    icons and manifest, and the photos the browser loads at once, 30 KB at most."""
    from tests.support.pages import BUDGET, weigh
    for n in range(6):
        harvest(farmer, photo=beans_photo(800, 600, seed=n) if n % 2 == 0 else None,
                days_ago=n + 1)
    login(farmer)
    total, sizes = weigh(client, "/my/listings")
    body = client.get("/my/listings").get_data(as_text=True)
    for tag in _imgs(body):
        url = re.search(r'(\S+/photo/320\?v=\w+) 320w', unescape(tag)).group(1)
        photo = client.get(url)
        assert photo.status_code == 200
        total += len(photo.data) + 200  # headers
    assert total <= BUDGET, (total, sizes)


# ----------------------------------------------------------------------------- PIN

def _manager(coop):
    return next(m.user for m in coop.memberships if m.role == "manager")


NEW_FARMER = {"name": "Teresa Quispe", "email": "", "phone": "+57 310 555 0101",
              "password": "", "member_number": "M-900", "national_id": "9001001",
              "payout_rail": "cash", "gender": "female"}


def _add_phone_farmer(client, login, coop, **overrides) -> str:
    login(_manager(coop))
    client.get("/lang/es")
    response = client.post(f"/manage/coops/{coop.id}/farmers/new",
                           data={**NEW_FARMER, **overrides})
    assert response.status_code == 302, text(response)[:2000]
    page = text(client.get(response.headers["Location"]))
    code = re.search(r"Código de primer ingreso de Teresa Quispe: (\d{8})", page)
    assert code, page[:3000]
    client.post("/logout")
    return code.group(1)


def test_a_manager_adds_a_farmer_with_a_phone_only(client, login, coop):
    code = _add_phone_farmer(client, login, coop)
    user = db.session.scalar(select(User).where(User.phone == "+573105550101"))
    assert user.email is None and user.must_set_pin
    assert code not in user.password_hash


def test_without_e_mail_the_phone_is_required_and_checked(client, login, coop):
    login(_manager(coop))
    client.get("/lang/es")
    for phone, message in (("", "Obligatorio cuando no hay correo electrónico."),
                           ("12ab", "Solo dígitos")):
        response = client.post(f"/manage/coops/{coop.id}/farmers/new",
                               data={**NEW_FARMER, "phone": phone})
        assert response.status_code == 422
        body = text(response)
        assert message in body and 'value="Teresa Quispe"' in body
    assert db.session.scalar(select(func.count()).select_from(User).where(
        User.name == "Teresa Quispe")) == 0


def _log_in(client, login, secret):
    return client.post("/login", data={"login": "3105550101", "password": secret})


def test_the_farmer_chooses_a_pin_before_anything_else(client, login, coop):
    code = _add_phone_farmer(client, login, coop)
    response = _log_in(client, login, code)
    assert response.status_code == 302 and response.headers["Location"] == "/account/pin"
    for path in ("/my/listings", "/my/payments", "/supply", "/account", "/my/outbox/session"):
        redirect = client.get(path)
        assert redirect.status_code == 302 and redirect.headers["Location"] == "/account/pin"
    page = text(client.get("/account/pin"))
    assert "Elija su PIN" in page and "¿Olvidó su contraseña o su PIN?" in page
    assert 'inputmode="numeric"' in page and 'autocomplete="new-password"' in page
    # The first-login code gets no API token either.
    api = client.post("/api/v1/auth/tokens", json={"email": "3105550101", "password": code})
    assert api.status_code == 403 and api.json["error"]["code"] == "pin_required"


@pytest.mark.parametrize("pin,confirm,message", [
    ("0000", "0000", "demasiado fácil"),
    ("1234", "1234", "demasiado fácil"),
    ("9876", "9876", "demasiado fácil"),
    ("123456", "123456", "demasiado fácil"),
    ("2580", "2580", "demasiado fácil"),
    ("0101", "0101", "demasiado fácil"),           # the end of the farmer's phone number
    ("12", "12", "de 4 a 6 dígitos"),
    ("1234567", "1234567", "de 4 a 6 dígitos"),
    ("48a1", "48a1", "de 4 a 6 dígitos"),
    ("٤٨٣١", "٤٨٣١", "de 4 a 6 dígitos"),            # digits, but not 0-9
    ("4831", "4832", "no son iguales"),
])
def test_weak_or_malformed_pins_are_refused(client, login, coop, pin, confirm, message):
    code = _add_phone_farmer(client, login, coop)
    _log_in(client, login, code)
    response = client.post("/account/pin", data={"pin": pin, "pin_confirm": confirm})
    assert response.status_code == 422
    assert message in text(response)
    user = db.session.scalar(select(User).where(User.phone == "+573105550101"))
    db.session.refresh(user)
    assert user.must_set_pin


def test_the_pin_replaces_the_code_and_is_hashed(client, login, coop):
    code = _add_phone_farmer(client, login, coop)
    _log_in(client, login, code)
    response = client.post("/account/pin", data={"pin": "4831", "pin_confirm": "4831"})
    assert response.status_code == 302 and response.headers["Location"] == "/my/listings"
    user = db.session.scalar(select(User).where(User.phone == "+573105550101"))
    db.session.refresh(user)
    assert not user.must_set_pin and "4831" not in user.password_hash
    assert user.password_hash.split(":")[0] in ("pbkdf2", "scrypt")
    assert client.get("/my/listings").status_code == 200
    assert client.get("/account/pin").status_code == 302
    client.post("/logout")
    assert _log_in(client, login, code).status_code == 401        # the code is spent
    assert _log_in(client, login, "4831").status_code == 302
    assert client.get("/my/listings").status_code == 200


def test_a_forgotten_pin_gets_a_new_code_from_the_manager(client, login, coop):
    code = _add_phone_farmer(client, login, coop)
    _log_in(client, login, code)
    client.post("/account/pin", data={"pin": "4831", "pin_confirm": "4831"})
    user = db.session.scalar(select(User).where(User.phone == "+573105550101"))
    auth_services.issue_token(user)
    db.session.commit()
    client.post("/logout")
    assert "¿Olvidó su contraseña o su PIN?" in text(client.get("/login"))
    login(_manager(coop))
    client.get("/lang/es")
    from coop.cooperatives import services as coop_services
    profile = coop_services.farmer_profile(coop.id, user.id)
    page = text(client.get(f"/manage/coops/{coop.id}/farmers/{profile.id}"))
    assert "Entra con el número de teléfono +573105550101 y un PIN." in page
    response = client.post(f"/manage/coops/{coop.id}/farmers/{profile.id}/pin")
    assert response.status_code == 302
    page = text(client.get(response.headers["Location"]))
    new_code = re.search(r"Nuevo código de primer ingreso de Teresa Quispe: (\d{8})", page)
    assert new_code
    client.post("/logout")
    assert _log_in(client, login, "4831").status_code == 401      # the old PIN is gone
    assert db.session.scalar(select(func.count()).select_from(ApiToken).where(
        ApiToken.user_id == user.id)) == 0
    response = _log_in(client, login, new_code.group(1))
    assert response.headers["Location"] == "/account/pin"


def test_failed_logins_are_limited_per_account_whatever_the_address(app, client, login, coop):
    _add_phone_farmer(client, login, coop)
    answers = []
    for n in range(12):
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = f"10.0.{n}.1"
        answers.append(other.post("/login", data={"login": "+57 310 555 0101",
                                                  "password": f"{1000 + n}"}).status_code)
    # PIN guesses (digits) are limited hardest: PIN_RATE_LIMIT, 5 per 15 minutes per account.
    assert answers[:5] == [401] * 5 and answers[5:] == [429] * 7


def test_farmers_with_e_mail_keep_their_password(client, login, farmer):
    response = client.post("/login", data={"login": farmer.email, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/my/listings"
