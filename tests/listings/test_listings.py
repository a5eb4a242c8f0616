"""Harvest listings through the HTML pages: a farmer lists, edits and withdraws; bad input is
refused with a clear message, the input kept and nothing written; nobody touches another
farmer's listing; buyers and visitors see the supply aggregated, without farmers' data."""
from __future__ import annotations

import io
import re
from datetime import date, timedelta
from html import unescape

import pytest
from PIL import Image
from sqlalchemy import func, select

from coop.extensions import db
from coop.listings.services import local_today
from coop.listings.models import Listing, ListingPhoto
from tests.support.confirm import confirm, is_confirmation, post_confirmed


def listing_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Listing))


def photo_count() -> int:
    return db.session.scalar(select(func.count()).select_from(ListingPhoto))


def jpeg_bytes(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 80, 40)).save(out, format="JPEG")
    return out.getvalue()


def form(**overrides) -> dict:
    data = {"product": "coffee/sca85", "quantity_kg": "120.5",
            "harvested_on": (date.today() - timedelta(days=3)).isoformat(),
            "collection_point": "Vereda El Tambo", "notes": "Secado en marquesina"}
    data.update(overrides)
    return data


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


@pytest.fixture
def coop(make_coop):
    return make_coop(name="Cooperativa Nuevo Horizonte")


@pytest.fixture
def farmer(coop, make_farmer):
    return make_farmer(coop, name="Rosa Quispe", phone="573001112233")


@pytest.fixture
def as_farmer(farmer, login, client):
    """The farmer, logged in, reading English so the tests can read the messages."""
    login(farmer)
    client.get("/lang/en")
    return client


def stored(listing_id: int) -> Listing:
    db.session.expire_all()
    return db.session.get(Listing, listing_id)


# ---------------------------------------------------------------- listing a harvest


def test_farmer_lists_a_harvest_without_photo(as_farmer, farmer, coop):
    page = as_farmer.get("/my/listings/new")
    assert page.status_code == 200
    assert 'name="quantity_kg"' in text(page) and 'enctype="multipart/form-data"' in text(page)

    response = as_farmer.post("/my/listings/new", data=form(), content_type="multipart/form-data")
    assert response.status_code == 302 and response.headers["Location"].endswith("/my/listings")
    listing = db.session.scalars(select(Listing)).one()
    assert listing.farmer_user_id == farmer.id and listing.coop_id == coop.id
    assert listing.crop.slug == "coffee" and listing.grade.code == "sca85"
    assert listing.quantity_g == 120_500 and listing.committed_g == 0
    assert listing.status == "available" and listing.photo_digest is None
    assert listing.collection_point == "Vereda El Tambo"
    assert photo_count() == 0

    mine = text(as_farmer.get("/my/listings"))
    assert "120.5 kg" in mine and "On offer" in mine and "Harvest listed." in mine


def test_farmer_lists_a_harvest_with_a_photo(as_farmer):
    data = form(photo=(io.BytesIO(jpeg_bytes((2000, 1500))), "cosecha.jpg", "image/jpeg"))
    response = as_farmer.post("/my/listings/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 302
    listing = db.session.scalars(select(Listing)).one()
    photo = db.session.scalars(select(ListingPhoto)).one()
    assert photo.listing_id == listing.id and listing.photo_digest == photo.digest
    assert photo.content_type == "image/webp" and max(photo.width, photo.height) <= 1280
    mine = text(as_farmer.get("/my/listings"))
    assert f"/listings/{listing.id}/photo" in mine


def test_farmer_in_two_coops_chooses_where_to_list(as_farmer, farmer, make_coop, make_farmer):
    from coop.cooperatives import services as coops
    other = make_coop(name="Cooperativa Valle Verde", country="PE", currency="PEN")
    from coop.plots import services as plots
    profile = coops.add_farmer(other, name=farmer.name, email=farmer.email, password="x" * 12,
                               phone=None, member_number="VV-1", national_id="44556677")
    plots.add_plot(profile, name="Chacra", hectares="2", replaced_crop=None,
                   illicit_hectares="0")   # coffee names its plot (EUDR)
    db.session.commit()
    missing = as_farmer.post("/my/listings/new", data=form(), content_type="multipart/form-data")
    assert missing.status_code == 422 and "Choose the cooperative" in text(missing)
    assert listing_count() == 0
    ok = as_farmer.post("/my/listings/new", data=form(coop_id=str(other.id)),
                        content_type="multipart/form-data")
    assert ok.status_code == 302
    assert db.session.scalars(select(Listing)).one().coop_id == other.id


def test_farmer_cannot_list_in_a_coop_they_do_not_farm_in(as_farmer, farmer, make_coop,
                                                           make_farmer, coop):
    from coop.cooperatives import services as coops
    second = make_coop(name="Second")
    coops.add_farmer(second, name=farmer.name, email=farmer.email, password="x" * 12, phone=None,
                     member_number="S-1", national_id="1")
    db.session.commit()
    stranger = make_coop(name="Stranger")
    response = as_farmer.post("/my/listings/new", data=form(coop_id=str(stranger.id)),
                              content_type="multipart/form-data")
    assert response.status_code == 404
    assert listing_count() == 0


# ---------------------------------------------------------------- bad input


BAD_QUANTITIES = [
    ("", "This field is required."),
    ("   ", "This field is required."),
    ("-5", "more than zero"),
    ("0", "more than zero"),
    ("0.000", "more than zero"),
    ("20000000", "more than 10,000 tonnes"),
    ("diez", "Give kilograms as a number"),
    ("12,5kg", "Give kilograms as a number"),
    ("NaN", "Give kilograms as a number"),
    ("Infinity", "Give kilograms as a number"),
    ("1.2345", "at most 3 decimals"),
    ("1e400", "Give kilograms as a number"),  # nobody types an exponent: refused as such
    ("12345678901234.1234", "more than 10,000 tonnes"),
    ("1234.5678", "at most 3 decimals"),
    ("1" * 21, "more than 10,000 tonnes"),
    ("1" * 40, "too long for a number"),
    ("1,5", "Write it like 1,200.5 or 1200.5."),  # English: a comma is no decimal point
]


@pytest.mark.parametrize("quantity,message", BAD_QUANTITIES)
def test_bad_kilograms_are_refused_clearly_and_the_input_kept(as_farmer, quantity, message):
    data = form(quantity_kg=quantity, collection_point="Vereda La Esperanza",
                notes="Cosecha de traviesa")
    response = as_farmer.post("/my/listings/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    body = text(response)
    assert message in body
    assert 'value="Vereda La Esperanza"' in body and "Cosecha de traviesa" in body
    assert f'value="{data["harvested_on"]}"' in body
    if quantity.strip():
        assert f'value="{quantity}"' in body
    assert listing_count() == 0


def test_comma_decimal_is_understood_in_spanish_and_refused_in_english(as_farmer):
    # The farmer's coop is Colombian: in Spanish (es_CO) "80,25" is 80.25 kg ...
    as_farmer.get("/lang/es")
    response = as_farmer.post("/my/listings/new", data=form(quantity_kg="80,25"),
                              content_type="multipart/form-data")
    assert response.status_code == 302
    assert db.session.scalars(select(Listing)).one().quantity_g == 80_250
    # ... in English it is no number: refused, the input kept, nothing listed.
    as_farmer.get("/lang/en")
    response = as_farmer.post("/my/listings/new", data=form(quantity_kg="80,25"),
                              content_type="multipart/form-data")
    assert response.status_code == 422 and 'value="80,25"' in text(response)
    assert "Write it like 1,200.5 or 1200.5." in text(response)
    assert listing_count() == 1


@pytest.mark.parametrize("product", ["coca/x", "coca/", "amapola", "Marihuána/extra",
                                     "MARIHUANA", "hoja-de-coca/primera", "Cannabis Sativa/x",
                                     "opium_poppy/sca85"])
def test_prohibited_crops_are_refused_with_a_clear_message(as_farmer, product):
    response = as_farmer.post("/my/listings/new", data=form(product=product),
                              content_type="multipart/form-data")
    assert response.status_code == 422
    body = text(response)
    assert "cannot be listed on Minga" in body and "This crop is prohibited." in body
    assert 'value="120.5"' in body
    assert listing_count() == 0


@pytest.mark.parametrize("product,message", [
    ("bananas/first", "Unknown crop."),
    ("", "Choose the crop and grade of the harvest."),
    ("coffee/", "Choose a grade of this crop."),
    ("coffee/grade-z", "Choose a grade of this crop."),
    ("co\x00ffee/sca85", "Remove the control characters (such as NUL) from this field."),
    ("x" * 5000 + "/sca85", "Unknown crop."),
])
def test_unknown_crops_and_grades_are_refused(as_farmer, product, message):
    response = as_farmer.post("/my/listings/new", data=form(product=product),
                              content_type="multipart/form-data")
    assert response.status_code == 422
    assert message in text(response)
    assert listing_count() == 0


@pytest.mark.parametrize("harvested_on,message", [
    ("2019-03-01", "more than a year ago"),
    ((date.today() - timedelta(days=366 * 3)).isoformat(), "more than a year ago"),
    ((date.today() + timedelta(days=200)).isoformat(), "later than today"),
    ((date.today() + timedelta(days=2)).isoformat(), "Later than today. Give the day it was"),
    ("9999-12-31", "later than today"),
    ("2026-02-30", "YYYY-MM-DD"),
    ("mañana", "YYYY-MM-DD"),
    ("20260102", "YYYY-MM-DD"),
    ("", "This field is required."),
])
def test_bad_harvest_dates_are_refused(as_farmer, harvested_on, message):
    response = as_farmer.post("/my/listings/new", data=form(harvested_on=harvested_on),
                              content_type="multipart/form-data")
    assert response.status_code == 422
    body = text(response)
    assert message in body and 'value="120.5"' in body
    assert listing_count() == 0


def test_a_harvest_picked_today_and_one_from_months_ago_are_accepted(as_farmer):
    for day in (local_today("CO"), date.today() - timedelta(days=300)):
        response = as_farmer.post("/my/listings/new", data=form(harvested_on=day.isoformat()),
                                  content_type="multipart/form-data")
        assert response.status_code == 302
    assert listing_count() == 2


@pytest.mark.parametrize("field,value", [
    ("collection_point", "x" * 161),
    ("collection_point", "Vereda " * 20_000),
    ("notes", "n" * 501),
    ("notes", "Nota larga " * 40_000),
])
def test_huge_text_is_refused(as_farmer, field, value):
    response = as_farmer.post("/my/listings/new", data=form(**{field: value}),
                              content_type="multipart/form-data")
    assert response.status_code == 422
    body = text(response)
    assert "Field cannot be longer than" in body and 'value="120.5"' in body
    assert listing_count() == 0


def test_text_beyond_what_a_form_may_carry_is_refused_clearly(as_farmer):
    response = as_farmer.post("/my/listings/new", data=form(notes="n" * 600_000),
                              content_type="multipart/form-data")
    assert response.status_code == 413
    assert "too large" in text(response)
    assert listing_count() == 0


def test_control_characters_in_text_are_refused_not_a_server_error(as_farmer):
    response = as_farmer.post("/my/listings/new",
                              data=form(collection_point="Vereda\x00El Tambo"),
                              content_type="multipart/form-data")
    assert response.status_code == 422
    assert "control characters" in text(response)
    assert listing_count() == 0


def test_a_bad_photo_refuses_the_whole_listing(as_farmer):
    data = form(photo=(io.BytesIO(b"%PDF-1.4 not a photo"), "factura.pdf", "application/pdf"))
    response = as_farmer.post("/my/listings/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    body = text(response)
    assert "JPEG, PNG or WebP" in body and 'value="120.5"' in body
    assert listing_count() == 0 and photo_count() == 0


def test_only_farmers_list_harvests(client, login, make_buyer, coop):
    buyer = make_buyer()
    login(buyer)
    assert client.get("/my/listings/new").status_code == 403
    assert client.post("/my/listings/new", data=form(),
                       content_type="multipart/form-data").status_code == 403
    assert client.get("/my/listings").status_code == 403
    manager = coop.memberships[0].user
    login(manager)
    assert client.post("/my/listings/new", data=form(),
                       content_type="multipart/form-data").status_code == 403
    assert listing_count() == 0


def test_visitors_are_sent_to_log_in(client):
    response = client.get("/my/listings/new")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.post("/my/listings/new", data=form()).status_code == 302
    assert listing_count() == 0


# ---------------------------------------------------------------- editing and withdrawing


def test_farmer_edits_a_listing(as_farmer, farmer, make_listing):
    listing = make_listing(farmer, kg="100")
    page = text(as_farmer.get(f"/my/listings/{listing.id}/edit"))
    assert 'value="100"' in page and 'value="Vereda El Tambo"' in page
    assert '<option selected value="coffee/sca85">' in page

    new_day = (date.today() - timedelta(days=1)).isoformat()
    response = as_farmer.post(f"/my/listings/{listing.id}/edit",
                              data=form(product="coffee/sca90", quantity_kg="150.250",
                                        harvested_on=new_day, collection_point="Acopio central",
                                        notes=""),
                              content_type="multipart/form-data")
    assert response.status_code == 302
    changed = stored(listing.id)
    assert changed.quantity_g == 150_250 and changed.grade.code == "sca90"
    assert changed.harvested_on.isoformat() == new_day
    assert changed.collection_point == "Acopio central" and changed.notes == ""


def test_editing_with_bad_input_keeps_the_listing_and_the_input(as_farmer, farmer, make_listing):
    listing = make_listing(farmer, kg="100")
    response = as_farmer.post(f"/my/listings/{listing.id}/edit",
                              data=form(quantity_kg="-3", collection_point="Nuevo acopio"),
                              content_type="multipart/form-data")
    assert response.status_code == 422
    body = text(response)
    assert "more than zero" in body and 'value="-3"' in body and 'value="Nuevo acopio"' in body
    unchanged = stored(listing.id)
    assert unchanged.quantity_g == 100_000 and unchanged.collection_point == "Vereda El Tambo"


def test_editing_cannot_turn_a_listing_into_another_or_a_prohibited_crop(as_farmer, farmer,
                                                                          make_listing):
    listing = make_listing(farmer)
    for product, message in (("coca/x", "cannot be listed on Minga"),
                             ("cacao/export", "The crop cannot change")):
        response = as_farmer.post(f"/my/listings/{listing.id}/edit",
                                  data=form(product=product), content_type="multipart/form-data")
        assert response.status_code == 422 and message in text(response)
    assert stored(listing.id).crop.slug == "coffee"


def test_the_listings_service_refuses_another_crop_whoever_calls_it(farmer, make_listing):
    # The rule lives in the service, so every caller (page or API) meets it.
    from coop.common.errors import ValidationFailed
    from coop.listings import services as listing_services
    listing = make_listing(farmer)
    for crop, message in (("coca", "cannot be listed on Minga"),
                          ("cacao", "The crop cannot change")):
        with pytest.raises(ValidationFailed) as refused:
            listing_services.update_listing(farmer, listing.id, crop=crop, notes="changed")
        assert message in refused.value.message
        db.session.rollback()
    assert stored(listing.id).crop.slug == "coffee" and stored(listing.id).notes != "changed"
    listing_services.update_listing(farmer, listing.id, crop="coffee", notes="same crop")
    assert stored(listing.id).notes == "same crop"


def test_farmer_withdraws_a_listing(as_farmer, farmer, make_listing):
    listing = make_listing(farmer)
    first = as_farmer.post(f"/my/listings/{listing.id}/withdraw")
    # The first POST asks; only "Yes" withdraws.
    assert is_confirmation(first) and "Withdraw this harvest?" in text(first)
    assert stored(listing.id).status == "available"
    response = confirm(as_farmer, first)
    assert response.status_code == 302
    assert stored(listing.id).status == "withdrawn"
    mine = text(as_farmer.get("/my/listings"))
    assert "Withdrawn" in mine and f"/my/listings/{listing.id}/edit" not in mine
    # A withdrawn listing cannot be edited back onto the market.
    again = as_farmer.post(f"/my/listings/{listing.id}/edit", data=form(),
                           content_type="multipart/form-data")
    assert again.status_code == 409 and "was withdrawn" in text(again)
    assert stored(listing.id).status == "withdrawn"


def test_a_committed_listing_cannot_be_edited_or_withdrawn(as_farmer, farmer, make_listing):
    listing = make_listing(farmer, kg="100")
    row = stored(listing.id)
    row.committed_g, row.status = 40_000, "committed"
    db.session.commit()
    edit = as_farmer.post(f"/my/listings/{listing.id}/edit", data=form(quantity_kg="10"),
                          content_type="multipart/form-data")
    assert edit.status_code == 409 and "already committed" in text(edit)
    withdraw = post_confirmed(as_farmer, f"/my/listings/{listing.id}/withdraw",
                              follow_redirects=True)
    assert "already committed" in text(withdraw)
    after = stored(listing.id)
    assert after.status == "committed" and after.quantity_g == 100_000
    mine = text(as_farmer.get("/my/listings"))
    assert "In a pool" in mine and "40 kg committed" in mine


def test_farmer_sees_each_listing_and_its_status(as_farmer, farmer, make_listing):
    on_offer = make_listing(farmer, crop="cacao", grade="export", kg="1234.5")
    gone = make_listing(farmer, kg="7")
    post_confirmed(as_farmer, f"/my/listings/{gone.id}/withdraw")
    sold = make_listing(farmer, crop="avocado", grade="extra", kg="50")
    row = stored(sold.id)
    row.committed_g, row.status = 50_000, "sold"
    db.session.commit()
    page = text(as_farmer.get("/my/listings"))
    assert "Cacao (fermented dry beans)" in page and "1,234.5 kg" in page
    assert "Avocado (Hass)" in page
    for status in ("On offer", "Withdrawn", "Sold"):
        assert status in page
    assert page.index("Avocado") < page.index("Cacao")  # newest first
    assert f"/my/listings/{on_offer.id}/edit" in page
    assert f"/my/listings/{sold.id}/edit" not in page


def test_a_farmer_cannot_see_edit_or_withdraw_anothers_listing(as_farmer, coop, make_farmer,
                                                               make_listing, make_coop):
    neighbour = make_farmer(coop, name="Neighbour")
    elsewhere = make_farmer(make_coop(), name="Elsewhere")
    for other in (neighbour, elsewhere):
        theirs = make_listing(other, kg="100")
        assert as_farmer.get(f"/my/listings/{theirs.id}/edit").status_code == 404
        assert as_farmer.post(f"/my/listings/{theirs.id}/edit", data=form(quantity_kg="1"),
                              content_type="multipart/form-data").status_code == 404
        assert as_farmer.post(f"/my/listings/{theirs.id}/withdraw").status_code == 404
        after = stored(theirs.id)
        assert after.quantity_g == 100_000 and after.status == "available"
        assert "100 kg" not in text(as_farmer.get("/my/listings"))
    assert as_farmer.get("/my/listings/999999/edit").status_code == 404
    assert as_farmer.post("/my/listings/999999/withdraw").status_code == 404


def test_a_manager_of_the_coop_cannot_edit_a_farmers_listing(client, login, coop, farmer,
                                                              make_listing):
    listing = make_listing(farmer)
    login(coop.memberships[0].user)
    assert client.post(f"/my/listings/{listing.id}/withdraw").status_code in (403, 404)
    assert stored(listing.id).status == "available"


# ---------------------------------------------------------------- supply for buyers and visitors


@pytest.fixture
def market(coop, make_coop, make_farmer, make_listing):
    """Two farmers in one coop list coffee and cacao; a farmer in another coop lists cacao."""
    from coop.cooperatives import services as coops
    a = make_farmer(coop, name="Rosa Quispe", phone="573001112233")
    b = make_farmer(coop, name="Ana Mamani", phone="573004445566")
    make_listing(a, crop="coffee", grade="sca85", kg="1000", days_ago=20)
    make_listing(b, crop="coffee", grade="sca85", kg="234.5", days_ago=3)
    make_listing(a, crop="cacao", grade="export", kg="300", days_ago=10)
    withdrawn = make_listing(b, crop="cacao", grade="export", kg="999")
    from coop.listings import services
    services.withdraw_listing(b, withdrawn.id)
    committed = make_listing(b, crop="coffee", grade="sca90", kg="100")
    row = db.session.get(Listing, committed.id)
    row.committed_g, row.status = 100_000, "committed"  # all of it taken: nothing on offer
    other_coop = make_coop(name="Cooperativa Valle Verde", country="PE", currency="PEN")
    other_coop.region = "San Martín"
    db.session.commit()
    c = make_farmer(other_coop, name="Pedro Huamán", phone="51987654321")
    make_listing(c, crop="cacao", grade="fine", kg="50")
    profiles = coops.farmer_profiles(coop) + coops.farmer_profiles(other_coop)
    return {"coop": coop, "other": other_coop, "farmers": [a, b, c], "profiles": profiles}


def supply_rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        rows.append([re.sub(r"<[^>]+>", "", td).strip()
                     for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)])
    return rows


def assert_no_personal_data(html: str, market) -> None:
    for user in market["farmers"]:
        assert user.name not in html and user.email not in html
        assert user.name.split()[0] not in html
        assert user.phone not in html and user.phone[-10:] not in html
    for profile in market["profiles"]:
        assert profile.national_id not in html
        assert profile.member_number not in html
    assert "Vereda El Tambo" not in html  # a collection point can name a farm


@pytest.mark.parametrize("who", ["visitor", "buyer", "farmer"])
def test_supply_is_aggregated_per_crop_and_grade(client, login, make_buyer, market, who):
    if who == "buyer":
        login(make_buyer())
    elif who == "farmer":
        login(market["farmers"][2])
    client.get("/lang/en")
    response = client.get("/supply")
    assert response.status_code == 200
    html = text(response)
    rows = supply_rows(html)
    coffee = [r for r in rows if r[0] == "Coffee (parchment)"]
    assert len(coffee) == 1  # two farmers' coffee, one row
    crop, grade, kg, window, coop_name, region = coffee[0]
    assert grade == "Excellent, SCA 85–89" and kg == "1,234.5"
    assert coop_name == "Cooperativa Nuevo Horizonte" and region == "Cauca"
    first, last = date.today() - timedelta(days=20), date.today() - timedelta(days=3)
    assert window == f"{first.month}/{first.day}/{first:%y} – {last.month}/{last.day}/{last:%y}"
    cacao = sorted((r[1], r[2], r[4]) for r in rows if r[0].startswith("Cacao"))
    assert cacao == [("Export: >80% fermented, <7% moisture, <1% slaty", "300",
                      "Cooperativa Nuevo Horizonte"),
                     ("Fine flavour", "50", "Cooperativa Valle Verde")]
    assert not [r for r in rows if "SCA 90+" in r[1]]  # fully committed: nothing left on offer
    assert len(rows) == 3
    assert_no_personal_data(html, market)


def test_supply_filters_by_crop_and_ignores_junk(client, market):
    client.get("/lang/en")
    rows = supply_rows(text(client.get("/supply?crop=cacao")))
    assert {r[0] for r in rows} == {"Cacao (fermented dry beans)"} and len(rows) == 2
    for junk in ("coca", "%00", "x" * 3000):
        response = client.get(f"/supply?crop={junk}")
        assert response.status_code == 200 and len(supply_rows(text(response))) == 3


def test_coop_page_shows_only_its_supply(client, login, make_buyer, market):
    login(make_buyer())
    client.get("/lang/en")
    response = client.get(f"/coops/{market['coop'].slug}")
    assert response.status_code == 200
    html = text(response)
    rows = supply_rows(html)
    assert sorted((r[0], r[2]) for r in rows) == [("Cacao (fermented dry beans)", "300"),
                                                 ("Coffee (parchment)", "1,234.5")]
    assert all(r[-1] == "Cauca" for r in rows)
    assert "Fine flavour" not in html
    assert_no_personal_data(html, market)
    other = supply_rows(text(client.get(f"/coops/{market['other'].slug}")))
    assert [(r[0], r[2], r[-1]) for r in other] == [("Cacao (fermented dry beans)", "50",
                                                    "San Martín")]


def test_supply_is_empty_before_anything_is_listed(client, coop):
    client.get("/lang/en")
    assert "Nothing on offer right now." in text(client.get("/supply"))
    assert "Nothing on offer right now." in text(client.get(f"/coops/{coop.slug}"))
