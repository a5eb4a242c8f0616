"""Numbers the way people type them (issue 8, section 1): every form reads kilograms, money,
hectares and percentages in the page's regional locale (es_CO "1.200,5", es_PE and English
"1,200.5"), refuses what is ambiguous there with an example of how to write it and keeps
the input; prefilled values parse back to the same number; a price or cost far from the
usual asks again; the API keeps machine format."""
from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from flask_babel import force_locale
from hypothesis import given, settings, strategies as st
from sqlalchemy import func, select

from coop.common.models import utcnow
from coop.common.money import format_money, parse_major, parse_money_input
from coop.common.numbers import (KG_FORMAT, NumberInputError, format_money_input,
                                 format_number, how_to_write, parse_kg_input, parse_number)
from coop.common.quantities import QuantityError, grams_to_decimal, parse_kg
from coop.cooperatives import finance
from coop.extensions import db
from coop.ledger.models import LedgerEntry
from coop.listings.models import Listing
from coop.pools import services as pools
from coop.pools.models import Order, Pool
from coop.pricing import services as pricing
from coop.pricing.models import PriceVersion

from tests.support.confirm import confirm, is_confirmation, post_confirmed
from tests.support.settle import close_and_settle

VISA = "pm_card_visa"
LOCALES = ("es_CO", "es_PE", "en")

# (locale, typed, kilograms read or None for refused)
KG_CASES = [
    ("es_CO", "1.200", Decimal("1200")), ("es_CO", "1.200,5", Decimal("1200.5")),
    ("es_CO", "1200,5", Decimal("1200.5")), ("es_CO", "1200", Decimal("1200")),
    ("es_CO", "0,5", Decimal("0.5")), ("es_CO", "1.200.000", Decimal("1200000")),
    ("es_CO", "1.5", None), ("es_CO", "1.20.0", None), ("es_CO", "1,200.5", None),
    ("es_CO", "1200.5", None), ("es_CO", "1e3", None), ("es_CO", "NaN", None),
    ("es_CO", "12 kg", None), ("es_CO", "", None),
    ("es_PE", "1,200.5", Decimal("1200.5")), ("es_PE", "1200.5", Decimal("1200.5")),
    ("es_PE", "1.5", Decimal("1.5")), ("es_PE", "1,200", Decimal("1200")),
    ("es_PE", "1.200,5", None), ("es_PE", "1200,5", None), ("es_PE", "1.20.0", None),
    ("en", "1,200.5", Decimal("1200.5")), ("en", "1200.5", Decimal("1200.5")),
    ("en", "1.200", Decimal("1.2")), ("en", "1.5", Decimal("1.5")),
    ("en", "1200,5", None), ("en", "1.200,5", None), ("en", "1,20", None),
]


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def input_value(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    assert match, name
    value = re.search(r'value="([^"]*)"', match.group(0))
    return unescape(value.group(1)) if value else ""


def client_for(app, user, locale: str):
    """A client for `user` (None: a visitor) whose pages come out in `locale`: the language
    by the switch, the region by the coop (members) or the browser (buyers, visitors)."""
    client = app.test_client()
    language, _sep, region = locale.partition("_")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = f"{language}-{region}" if region else language
    with client.session_transaction() as session:
        session["lang"] = language
        if user is not None:
            session["_user_id"] = user.get_id()  # "<id>:<session version>"
            session["login_factor"] = "password"
            session["_fresh"] = True
    return client


def lang_tag(response) -> str:
    return re.search(r'<html lang="([^"]+)">', response.get_data(as_text=True)).group(1)


COUNTRY = {"es_CO": ("CO", "COP"), "es_PE": ("PE", "PEN"), "en": ("CO", "COP")}


@pytest.fixture
def world(make_coop, make_user, make_farmer, make_listing, make_buyer):
    """Build, for a page locale, a coop of the matching country with a coffee price, two
    farmers listing 3,000 kg each, a treasurer and a buyer."""
    def build(locale: str):
        class World:
            pass
        w = World()
        country, currency = COUNTRY[locale]
        w.locale = locale
        w.treasurer = make_user(name="Tesorera")
        w.coop = make_coop(country=country, currency=currency, treasurer=w.treasurer)
        w.manager = next(m.user for m in w.coop.memberships if m.role == "manager")
        pricing.set_price(w.coop, w.manager, crop="coffee", grade="sca85", floor="24000",
                          farmer_price="28000", commission_kind="bps", commission="800",
                          premium="1800")
        db.session.commit()
        w.farmers = [make_farmer(w.coop) for _ in range(2)]
        w.listings = [make_listing(f, kg="3000") for f in w.farmers]
        w.buyer = make_buyer()
        return w
    return build


# ---------------------------------------------------------------- the parser


@pytest.mark.parametrize("locale,typed,expected", KG_CASES)
def test_parse_number_reads_the_locale_strictly(locale, typed, expected):
    if expected is None:
        with pytest.raises(NumberInputError):
            parse_number(typed, locale)
    else:
        assert parse_number(typed, locale) == expected


@pytest.mark.parametrize("locale,message", [
    ("es_CO", "Escriba 1.200,5 o 1200,5."), ("es_PE", "Escriba 1,200.5 o 1200.5."),
    ("en", "Write it like 1,200.5 or 1200.5.")])
def test_the_refusal_shows_how_to_write_it_in_that_locale(locale, message):
    with force_locale(locale):
        with pytest.raises(NumberInputError) as refused:
            parse_number("1.20.0")
        assert refused.value.message == message == how_to_write()


def test_kilograms_and_money_parsers():
    assert parse_kg_input("1.200,5", "es_CO") == 1_200_500
    assert parse_kg_input("1,200.5", "es_PE") == 1_200_500
    assert parse_money_input("36.000", "COP", "es_CO") == 3_600_000
    assert parse_money_input("36.000,50", "COP", "es_CO") == 3_600_050
    assert parse_money_input("36,000.50", "PEN", "es_PE") == 3_600_050
    with pytest.raises(ValueError):
        parse_money_input("36.000,505", "COP", "es_CO")  # more decimals than the currency has
    with pytest.raises(QuantityError):
        parse_kg_input("0,0001", "es_CO")


def test_machine_format_stays_strict_for_the_api():
    assert parse_kg("1200.5") == 1_200_500 and parse_kg(Decimal("1.5")) == 1_500
    for bad in ("1,5", "1.200,5", "1 200", "1e3", "+5", "", "kg"):
        with pytest.raises(QuantityError):
            parse_kg(bad)
    assert parse_major("36000.50", "COP") == 3_600_050
    for bad in ("36,000.50", "36.000,50", "1e3"):
        with pytest.raises(ValueError):
            parse_major(bad, "COP")
    assert parse_major("36,000.50", "COP", locale="en") == 3_600_050  # bank CSV files


@settings(max_examples=150, deadline=None)
@given(grams=st.integers(min_value=1, max_value=10_000_000_000),
       locale=st.sampled_from(LOCALES))
def test_kilograms_round_trip_in_every_locale(grams, locale):
    shown = format_number(grams_to_decimal(grams), KG_FORMAT, locale)
    assert parse_kg_input(shown, locale) == grams


@settings(max_examples=150, deadline=None)
@given(minor=st.integers(min_value=0, max_value=10**14),
       locale=st.sampled_from(LOCALES), currency=st.sampled_from(["COP", "PEN", "MXN"]))
def test_money_round_trips_in_every_locale(minor, locale, currency):
    shown = format_money_input(Decimal(minor).scaleb(-2), locale)
    assert parse_money_input(shown, currency, locale) == minor
    # What the pages show reads back too, once the currency code or sign is taken off.
    with force_locale(locale):
        shown_on_page = re.sub(r"[^\d.,-]", "", format_money(minor, currency))
    assert parse_money_input(shown_on_page, currency, locale) == minor


# ---------------------------------------------------------------- the regional locale


def test_a_members_pages_use_the_coops_country(app, make_coop, make_farmer):
    peru = make_coop(country="PE", currency="PEN")
    colombia = make_coop(country="CO", currency="COP")
    for coop, tag, word in ((peru, "es-PE", "Mis cosechas"), (colombia, "es-CO", "Mis cosechas")):
        client = client_for(app, make_farmer(coop), "es")
        page = client.get("/my/listings")
        assert page.status_code == 200 and lang_tag(page) == tag
        assert page.headers["Content-Language"] == tag
        assert word in text(page)  # the Spanish catalog serves es_PE and es_CO
    english = client_for(app, make_farmer(peru), "en")
    assert lang_tag(english.get("/my/listings")) == "en"


@pytest.mark.parametrize("header,tag", [("es-PE,es;q=0.9", "es-PE"), ("es-MX", "es-MX"),
                                        ("es", "es-CO"), ("en-US", "en-US"), ("en", "en"),
                                        ("es-XX", "es-CO")])
def test_a_visitors_region_comes_from_the_browser(client, header, tag):
    response = client.get("/supply", headers={"Accept-Language": header})
    assert lang_tag(response) == tag
    assert ("Oferta disponible" if tag.startswith("es") else "Supply on offer") in text(response)


def test_dates_and_money_follow_the_region(app, world):
    from babel.dates import format_date
    for locale in ("es_CO", "es_PE"):
        w = world(locale)
        page = text(client_for(app, w.farmers[0], "es").get("/my/listings"))
        assert "3.000 kg" in page if locale == "es_CO" else "3,000 kg" in page
        day = date.today() - timedelta(days=5)
        assert format_date(day, "medium", locale=locale) in page
        prices = text(client_for(app, w.manager, "es").get(
            f"/manage/coops/{w.coop.id}/prices"))
        assert ("28.000,00\u00a0COP" if locale == "es_CO" else "28,000.00\u00a0PEN") in prices


# ---------------------------------------------------------------- every form


def kg_cases(*locales):
    picked = [(loc, typed, value) for loc, typed, value in KG_CASES
              if loc in locales and typed in ("1.200", "1.200,5", "1200,5", "1,200.5", "1.5")]
    return picked


FORM_CASES = kg_cases(*LOCALES)


def _refused(response, typed, locale):
    body = text(response)
    assert response.status_code == 422, body[:300]
    assert f'value="{typed}"' in body  # the input kept
    with force_locale(locale):
        assert how_to_write() in body or how_to_write(Decimal("36000.5"), "#,##0.00") in body \
            or how_to_write(Decimal("2.5"), "#,##0.####") in body \
            or how_to_write(Decimal("12.5"), "#,##0.##") in body \
            or how_to_write(Decimal("1200"), "#,##0") in body


@pytest.mark.parametrize("locale,typed,expected", FORM_CASES)
def test_listing_a_harvest(app, world, locale, typed, expected):
    w = world(locale)
    client = client_for(app, w.farmers[0], locale)
    response = client.post("/my/listings/new", content_type="multipart/form-data", data={
        "product": "coffee/sca85", "quantity_kg": typed,
        "harvested_on": (date.today() - timedelta(days=2)).isoformat(),
        "collection_point": "Vereda El Tambo"})
    count = db.session.scalar(select(func.count(Listing.id)))
    if expected is None:
        _refused(response, typed, locale)
        assert count == 2
    else:
        assert response.status_code == 302, text(response)[:500]
        newest = db.session.scalars(select(Listing).order_by(Listing.id.desc())).first()
        assert newest.quantity_g == int(expected * 1000)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("grams", [1_200_500, 400_000, 1_234_567_125, 500])
def test_the_listing_edit_form_prefills_a_number_that_reads_back(app, world, make_listing,
                                                                 locale, grams):
    w = world(locale)
    listing = make_listing(w.farmers[0], kg=str(grams_to_decimal(grams)))
    client = client_for(app, w.farmers[0], locale)
    html = client.get(f"/my/listings/{listing.id}/edit").get_data(as_text=True)
    shown = input_value(html, "quantity_kg")
    assert shown == format_number(grams_to_decimal(grams), KG_FORMAT, locale)
    response = client.post(f"/my/listings/{listing.id}/edit", content_type="multipart/form-data",
                           data={"product": "coffee/sca85", "quantity_kg": shown,
                                 "harvested_on": listing.harvested_on.isoformat(),
                                 "collection_point": listing.collection_point or ""})
    assert response.status_code == 302, text(response)[:400]
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).quantity_g == grams


def _local_input(hours=48) -> str:
    return (utcnow() + timedelta(hours=hours)).astimezone(ZoneInfo("America/Bogota")) \
        .strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize("locale,typed,expected", FORM_CASES)
def test_opening_a_pool(app, world, locale, typed, expected):
    w = world(locale)
    client = client_for(app, w.manager, locale)
    response = client.post(f"/manage/coops/{w.coop.id}/pools", data={
        "product": "coffee/sca85", "min_kg": typed, "max_kg": "2000",
        "closes_at": _local_input()})
    pool = db.session.scalar(select(Pool))
    if expected is None:
        _refused(response, typed, locale)
        assert pool is None
    else:
        assert response.status_code == 302, text(response)[:500]
        assert pool.min_g == int(expected * 1000) and pool.max_g == 2_000_000


@pytest.mark.usefixtures("stripe_clean")
@pytest.mark.parametrize("locale,typed,expected", FORM_CASES)
def test_ordering_from_a_pool(app, world, locale, typed, expected):
    w = world(locale)
    pool = pools.open_pool(w.coop, w.manager, crop="coffee", grade="sca85", min_kg="1",
                           max_kg="5000", closes_at=utcnow() + timedelta(days=3))
    db.session.commit()
    client = client_for(app, w.buyer, locale)
    response = client.post(f"/pools/{pool.id}", data={"quantity_kg": typed,
                                                      "payment_method": VISA})
    if expected is None:
        _refused(response, typed, locale)
        assert db.session.scalar(select(Order)) is None
    else:
        # The first POST shows the kilograms as read and holds nothing; "Yes" holds.
        assert is_confirmation(response), text(response)[:500]
        with force_locale(locale):
            shown = format_number(expected, locale=locale)
        assert f"{shown} kg" in text(response)
        assert db.session.scalar(select(Order)) is None
        response = confirm(client, response)
        order = db.session.scalar(select(Order))
        assert response.status_code == 302, text(response)[:500]
        assert order.quantity_g == int(expected * 1000) and order.status == "authorized"


@pytest.mark.usefixtures("stripe_clean")
@pytest.mark.parametrize("locale", LOCALES)
def test_changing_an_order(app, world, locale):
    w = world(locale)
    pool = pools.open_pool(w.coop, w.manager, crop="coffee", grade="sca85", min_kg="1",
                           max_kg="5000", closes_at=utcnow() + timedelta(days=3))
    order, _created = pools.place_order(w.buyer, pool.id, quantity_kg="400", payment_method=VISA)
    db.session.commit()
    client = client_for(app, w.buyer, locale)
    # Prefilled "400" (never "400.000", which es_CO reads as 400,000 kg), and it reads back.
    html = client.get("/my/orders").get_data(as_text=True)
    shown = input_value(html, "quantity_kg")
    assert shown == "400"
    assert post_confirmed(client, f"/my/orders/{order.id}/change",
                          data={"quantity_kg": shown}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Order, order.id).quantity_g == 400_000
    for loc, typed, expected in FORM_CASES:
        if loc != locale:
            continue
        response = post_confirmed(client, f"/my/orders/{order.id}/change",
                                  data={"quantity_kg": typed})
        db.session.expire_all()
        got = db.session.get(Order, order.id).quantity_g
        if expected is None:
            _refused(response, typed, locale)
            assert got == 400_000
        else:
            assert response.status_code == 302
            assert got == int(expected * 1000)
            post_confirmed(client, f"/my/orders/{order.id}/change",
                           data={"quantity_kg": format_number(Decimal(400), locale=locale)})
            db.session.expire_all()
            assert db.session.get(Order, order.id).quantity_g == 400_000


# (locale, typed, major units read or None)
MONEY_CASES = [
    ("es_CO", "36.000", Decimal("36000")), ("es_CO", "36.000,5", Decimal("36000.5")),
    ("es_CO", "36000,5", Decimal("36000.5")), ("es_CO", "1.200", Decimal("1200")),
    ("es_CO", "1.5", None), ("es_CO", "36,000.50", None),
    ("es_PE", "36,000.50", Decimal("36000.5")), ("es_PE", "36000.5", Decimal("36000.5")),
    ("es_PE", "36.000,50", None),
    ("en", "36,000.50", Decimal("36000.5")), ("en", "1,200.5", Decimal("1200.5")),
    ("en", "36000,5", None),
]


@pytest.mark.parametrize("locale,typed,expected", MONEY_CASES)
def test_setting_a_price(app, world, locale, typed, expected):
    w = world(locale)
    client = client_for(app, w.manager, locale)
    response = client.post(f"/manage/coops/{w.coop.id}/prices", data={
        "product": "coffee/sca85", "floor": typed, "farmer_price": typed,
        "commission_kind": "per_kg", "commission": typed, "premium": typed,
        "confirm": "y"})
    versions = db.session.scalar(select(func.count(PriceVersion.id)))
    if expected is None:
        _refused(response, typed, locale)
        assert versions == 1
        return
    body = text(response)
    if response.status_code == 422:  # far from the current 28,000: asks again first
        assert versions == 1
        token = input_value(body, "confirm_token")
        response = client.post(f"/manage/coops/{w.coop.id}/prices", data={
            "product": "coffee/sca85", "floor": typed, "farmer_price": typed,
            "commission_kind": "per_kg", "commission": typed, "premium": typed,
            "confirm": "y", "confirm_token": token})
    assert response.status_code == 302, text(response)[:600]
    v = pricing.current(w.coop.id, w.listings[0].crop_id, w.listings[0].grade_id)
    minor = int(expected * 100)
    assert (v.floor_per_kg_minor, v.farmer_price_per_kg_minor, v.commission_value,
            v.premium_per_kg_minor) == (minor, minor, minor, minor)


@pytest.mark.parametrize("locale,tiers,expected", [
    ("es_CO", "1.000 500\n2.500,5 250,5", [(1_000_000, 50_000), (2_500_500, 25_050)]),
    ("es_PE", "1,000 500\n2,500.5 250.5", [(1_000_000, 50_000), (2_500_500, 25_050)]),
    ("en", "1,000 500", [(1_000_000, 50_000)]),
    ("es_CO", "1.5 500", None), ("en", "1000 500,5", None)])
def test_price_tiers_are_read_in_the_locale(app, world, locale, tiers, expected):
    w = world(locale)
    client = client_for(app, w.manager, locale)
    floor = format_money_input(Decimal(24000), locale)
    response = client.post(f"/manage/coops/{w.coop.id}/prices", data={
        "product": "coffee/sca85", "floor": floor,
        "farmer_price": format_money_input(Decimal(28000), locale),
        "commission_kind": "per_kg", "commission": format_money_input(Decimal(1000), locale),
        "premium": "0", "tiers": tiers})
    if expected is None:
        assert response.status_code == 422
        assert tiers in text(response)
        with force_locale(locale):
            assert how_to_write() in text(response) or \
                how_to_write(Decimal("36000.5"), "#,##0.00") in text(response)
        return
    assert response.status_code == 302, text(response)[:600]
    v = pricing.current(w.coop.id, w.listings[0].crop_id, w.listings[0].grade_id)
    assert pricing.tiers(v) == expected and v.premium_per_kg_minor == 0


@pytest.mark.parametrize("locale", LOCALES)
def test_a_farmer_price_far_from_the_current_asks_again(app, world, locale):
    w = world(locale)
    client = client_for(app, w.manager, locale)
    # "36.00" in es_PE/en, the old bug's 36,00: 800 times below the current 28,000.
    typed = "36,00" if locale == "es_CO" else "36.00"
    data = {"product": "coffee/sca85", "floor": "30", "farmer_price": typed,
            "commission_kind": "bps", "commission": "800", "premium": "1800"}
    first = client.post(f"/manage/coops/{w.coop.id}/prices", data=data)
    body = text(first)
    assert first.status_code == 422
    assert db.session.scalar(select(func.count(PriceVersion.id))) == 1  # nothing saved
    assert input_value(body, "farmer_price") == typed
    with force_locale(locale):
        assert format_money(3600, w.coop.currency) in body
        assert format_money(2_800_000, w.coop.currency) in body
    assert 'name="confirm"' in body
    token = input_value(body, "confirm_token")
    # Without ticking the box: asked again, still nothing saved.
    again = client.post(f"/manage/coops/{w.coop.id}/prices", data={**data, "confirm_token": token})
    assert again.status_code == 422
    # The box ticked for other numbers than those warned about: asked again.
    other = client.post(f"/manage/coops/{w.coop.id}/prices",
                        data={**data, "farmer_price": "37", "confirm": "y",
                              "confirm_token": token})
    assert other.status_code == 422
    assert db.session.scalar(select(func.count(PriceVersion.id))) == 1
    done = client.post(f"/manage/coops/{w.coop.id}/prices",
                       data={**data, "confirm": "y", "confirm_token": token})
    assert done.status_code == 302
    v = pricing.current(w.coop.id, w.listings[0].crop_id, w.listings[0].grade_id)
    assert v.farmer_price_per_kg_minor == 3600 and v.version == 2


def test_a_price_near_the_current_is_saved_at_once(app, world):
    w = world("es_CO")
    client = client_for(app, w.manager, "es_CO")
    response = client.post(f"/manage/coops/{w.coop.id}/prices", data={
        "product": "coffee/sca85", "floor": "30.000", "farmer_price": "36.000",
        "commission_kind": "bps", "commission": "800", "premium": "1.800"})
    assert response.status_code == 302
    v = pricing.current(w.coop.id, w.listings[0].crop_id, w.listings[0].grade_id)
    assert (v.floor_per_kg_minor, v.farmer_price_per_kg_minor, v.premium_per_kg_minor) == \
        (3_000_000, 3_600_000, 180_000)


def _cost(client, w, amount, **extra):
    return client.post(f"/manage/coops/{w.coop.id}/treasury/costs", data={
        "amount": amount, "spent_on": date.today().isoformat(), "description": "Transporte",
        "key": extra.pop("key", uuid.uuid4().hex), **extra})


def _costs() -> list[int]:
    db.session.expire_all()
    return [p.amount_minor for e in db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.kind == "operating_cost").order_by(LedgerEntry.id))
        for p in e.postings if p.amount_minor > 0]


@pytest.mark.parametrize("locale,typed,expected", MONEY_CASES)
def test_recording_an_operating_cost(app, world, locale, typed, expected):
    w = world(locale)
    client = client_for(app, w.treasurer, locale)
    response = _cost(client, w, typed)
    if expected is None:
        _refused(response, typed, locale)
        assert _costs() == []
    else:
        assert response.status_code == 302, text(response)[:500]
        assert _costs() == [int(expected * 100)]


@pytest.mark.parametrize("locale", LOCALES)
def test_a_cost_a_thousand_times_the_usual_asks_again(app, world, locale):
    w = world(locale)
    client = client_for(app, w.treasurer, locale)
    usual = format_money_input(Decimal(150000), locale)
    for _ in range(3):
        assert _cost(client, w, usual).status_code == 302
    assert _costs() == [15_000_000] * 3
    # "150,00" (es_CO) / "150.00": the old bug, a thousand times below.
    typed = "150,00" if locale == "es_CO" else "150.00"
    key = uuid.uuid4().hex
    first = _cost(client, w, typed, key=key)
    body = text(first)
    assert first.status_code == 422 and input_value(body, "amount") == typed
    with force_locale(locale):
        assert format_money(15_000, w.coop.currency) in body
    assert _costs() == [15_000_000] * 3  # nothing recorded
    token = input_value(body, "confirm_token")
    assert _cost(client, w, typed, key=key, confirm_token=token).status_code == 422
    done = _cost(client, w, typed, key=key, confirm="y", confirm_token=token)
    assert done.status_code == 302
    assert _costs() == [15_000_000] * 3 + [15_000]
    # A thousand times above asks too; an ordinary one does not.
    assert _cost(client, w, format_money_input(Decimal(150_000_000), locale)).status_code == 422
    assert _cost(client, w, format_money_input(Decimal(200000), locale)).status_code == 302


@pytest.mark.parametrize("locale", LOCALES)
def test_share_settings_prefill_reads_back_and_locale_input(app, world, locale):
    w = world(locale)
    client = client_for(app, w.manager, locale)
    client.post(f"/manage/coops/{w.coop.id}/shares/settings", data={
        "par_value": format_money_input(Decimal("1234567.5"), locale),
        "min_shares": format_number(Decimal(1200), "#,##0", locale),
        "withholding_pct": format_number(Decimal("12.5"), "#,##0.##", locale),
        "advance_pct": format_number(Decimal("20.25"), "#,##0.##", locale)})
    conf = finance.settings(w.coop)
    db.session.refresh(conf)
    expected = (123_456_750, 1200, 1250, 2025)
    assert (conf.share_par_minor, conf.share_min_shares, conf.share_withholding_bps,
            conf.advance_bps) == expected
    html = client.get(f"/manage/coops/{w.coop.id}/shares/settings").get_data(as_text=True)
    shown = {name: input_value(html, name)
             for name in ("par_value", "min_shares", "withholding_pct", "advance_pct")}
    if locale == "es_CO":
        assert shown == {"par_value": "1.234.567,50", "min_shares": "1.200",
                         "withholding_pct": "12,5", "advance_pct": "20,25"}
    assert client.post(f"/manage/coops/{w.coop.id}/shares/settings",
                       data=shown).status_code == 302
    db.session.refresh(conf)
    assert (conf.share_par_minor, conf.share_min_shares, conf.share_withholding_bps,
            conf.advance_bps) == expected
    wrong = {**shown, "withholding_pct": "1.20.0"}
    response = client.post(f"/manage/coops/{w.coop.id}/shares/settings", data=wrong)
    _refused(response, "1.20.0", locale)


@pytest.mark.parametrize("locale,typed,expected", MONEY_CASES)
def test_a_share_payment(app, world, locale, typed, expected):
    from coop.shares import services as shares
    w = world(locale)
    member = w.farmers[0]
    client = client_for(app, w.treasurer, locale)
    assert client.post(f"/manage/coops/{w.coop.id}/shares/settings", data={
        "par_value": format_money_input(Decimal(50000), locale), "min_shares": "1",
        "withholding_pct": "0", "advance_pct": "0"}).status_code == 302
    # The subscription's count is read in the locale too: "1.200" shares in es_CO.
    count = format_number(Decimal(1200), "#,##0", locale)
    assert client.post(f"/manage/coops/{w.coop.id}/shares/subscriptions",
                       data={"member": str(member.id), "shares": count}).status_code == 302
    assert shares.member_accounts(member)[0].subscribed_shares == 1200
    response = client.post(f"/manage/coops/{w.coop.id}/shares/payments", data={
        "member": str(member.id), "amount": typed, "via": "cash",
        "idempotency_key": uuid.uuid4().hex})
    account = next((a for a in shares.member_accounts(member)), None)
    paid = account.paid_minor if account else 0
    if expected is None:
        _refused(response, typed, locale)
        assert paid == 0
    else:
        assert response.status_code == 302, re.findall(r'class="(?:err|flash[^"]*)"[^>]*>([^<]*)',
                                                       text(response))
        assert paid == int(expected * 100)


@pytest.mark.parametrize("locale,typed,expected", [
    ("es_CO", "2,5", 25_000), ("es_CO", "1.200", 12_000_000), ("es_CO", "1.200,5", 12_005_000),
    ("es_CO", "1.5", None), ("es_PE", "2.5", 25_000), ("es_PE", "1,200.5", 12_005_000),
    ("es_PE", "2,5", None), ("en", "1,200.5", 12_005_000), ("en", "1200,5", None)])
def test_plot_hectares(app, world, locale, typed, expected):
    from coop.cooperatives import services as coops
    from coop.cooperatives.models import Plot
    w = world(locale)
    profile = coops.farmer_profile(w.coop.id, w.farmers[0].id)
    client = client_for(app, w.manager, locale)
    response = client.post(f"/manage/coops/{w.coop.id}/farmers/{profile.id}/plots", data={
        "plot-name": "La Loma", "plot-hectares": typed, "plot-replaced_crop": "coca",
        "plot-illicit_hectares": typed, "plot-licit_crop": "cacao"})
    # (the farmer's first plot, which their coffee listing names, aside)
    plots = db.session.scalars(select(Plot).where(Plot.name == "La Loma")).all()
    if expected is None:
        _refused(response, typed, locale)
        assert plots == []
    else:
        assert response.status_code == 302, text(response)[:500]
        assert [(p.area_m2, p.illicit_area_m2) for p in plots] == [(expected, expected)]


@pytest.mark.usefixtures("stripe_clean")
@pytest.mark.parametrize("locale,typed,expected", [
    ("es_CO", "99,5", 99_500), ("es_CO", "1.200", 1_200_000), ("es_CO", "99.5", None),
    ("en", "99.5", 99_500), ("en", "99,5", None)])
def test_intake_received_kilograms(app, world, locale, typed, expected):
    from coop.intake.models import Intake
    w = world(locale)
    pool = pools.open_pool(w.coop, w.manager, crop="coffee", grade="sca85", min_kg="100",
                           max_kg="200", closes_at=utcnow() + timedelta(days=3))
    pools.place_order(w.buyer, pool.id, quantity_kg="200", payment_method=VISA)
    close_and_settle(pool.id)
    db.session.commit()
    allocation = pools.pool_allocations(pool.id)[0]
    client = client_for(app, w.manager, locale)
    response = post_confirmed(client, f"/manage/allocations/{allocation.id}/intake", data={
        "received_kg": typed, "grade": "sca85", "idempotency_key": uuid.uuid4().hex})
    intake = db.session.scalar(select(Intake))
    if expected is None:
        assert response.status_code == 422 and f'value="{typed}"' in text(response)
        assert intake is None
    else:
        assert response.status_code == 302, text(response)[:500]
        assert intake.received_g == expected


def test_the_api_keeps_machine_format(client, world, token):
    w = world("es_CO")
    headers = {**token(w.farmers[0]), "Accept-Language": "es-CO"}
    ok = client.post("/api/v1/listings", headers=headers, json={
        "crop": "coffee", "grade": "sca85", "quantity_kg": "1200.5",
        "harvested_on": (date.today() - timedelta(days=1)).isoformat()})
    assert ok.status_code == 201 and ok.json["quantity_kg"] == "1200.500"
    for typed in ("1.200,5", "1,200.5", "1200,5"):
        refused = client.post("/api/v1/listings", headers=headers, json={
            "crop": "coffee", "grade": "sca85", "quantity_kg": typed,
            "harvested_on": (date.today() - timedelta(days=1)).isoformat()})
        assert refused.status_code == 422, typed
        assert "quantity_kg" in refused.json["error"]["fields"]


def test_a_buyer_chooses_the_region(app, make_buyer):
    buyer = make_buyer()
    client = client_for(app, buyer, "es")  # the browser says only "es": es_CO
    page = client.get("/account")
    assert lang_tag(page) == "es-CO"
    assert "Perú (1,234.5)" in text(page) and "Colombia (1.234,5)" in text(page)
    assert client.get("/lang/es-PE", query_string={"next": "/account"}).status_code == 302
    assert lang_tag(client.get("/supply")) == "es-PE"
    # The language switch keeps the region; an unknown region changes nothing.
    client.get("/lang/es-ZZ")
    client.get("/lang/xx-PE")
    assert lang_tag(client.get("/supply")) == "es-PE"
    client.get("/lang/en")
    assert lang_tag(client.get("/supply")) == "en"  # CLDR has no en_PE: plain English
    client.get("/lang/es")
    assert lang_tag(client.get("/supply")) == "es-PE"


def test_a_members_region_is_the_coops_even_if_chosen_otherwise(app, make_coop, make_farmer):
    farmer = make_farmer(make_coop(country="CO", currency="COP"))
    client = client_for(app, farmer, "es")
    client.get("/lang/es-PE")
    assert lang_tag(client.get("/my/listings")) == "es-CO"
    assert "Números y fechas" not in text(client.get("/account"))
