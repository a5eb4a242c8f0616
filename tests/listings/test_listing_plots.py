"""A harvest listing names the plots it came from (issue 13): required for coffee and cacao
(a clear message on the field, the input kept, nothing written), a farmer with exactly one plot
gets it by default (pre-checked in the form, applied when the API is not told), only the
farmer's own plots in that coop (another's: a field error, never a 500), through the HTML
form, the offline outbox's multipart post and the JSON API alike."""
from __future__ import annotations

from datetime import date, timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.listings import services
from coop.listings.models import Listing, ListingPlot
from coop.plots import services as plots


def _day() -> str:
    return (date.today() - timedelta(days=3)).isoformat()


def form(**overrides) -> dict:
    data = {"product": "coffee/sca85", "quantity_kg": "120.5", "harvested_on": _day(),
            "collection_point": "Vereda El Tambo", "notes": "", "plot_ids_shown": "1"}
    data.update(overrides)
    return data


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def linked(listing_id: int) -> list[int]:
    db.session.expire_all()
    return services.plots_of([listing_id])[listing_id]


def listing_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Listing))


def link_count() -> int:
    return db.session.scalar(select(func.count()).select_from(ListingPlot))


def profile_of(user, coop) -> FarmerProfile:
    return db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.coop_id == coop.id, FarmerProfile.user_id == user.id))


def own_plots(user, coop) -> list[int]:
    return [p.id for p in services.farmer_plots(user, coop.id)]


@pytest.fixture
def coop(make_coop):
    return make_coop(name="Cooperativa Nuevo Horizonte")


@pytest.fixture
def farmer(coop, make_farmer):
    return make_farmer(coop, name="Rosa Quispe")           # one plot


@pytest.fixture
def farmer2(coop, make_farmer):
    return make_farmer(coop, name="Luz Mamani", plots=2)


@pytest.fixture
def as_(login, client):
    def do(user):
        login(user)
        client.get("/lang/en")
        return client
    return do


# ---------------------------------------------------------------- the HTML form

def test_one_plot_is_pre_checked_and_linked(as_, farmer, coop):
    client = as_(farmer)
    [plot] = own_plots(farmer, coop)
    page = text(client.get("/my/listings/new"))
    assert f'name="plot_ids" value="{plot}" checked' in page
    response = client.post("/my/listings/new", data=form(plot_ids=str(plot)),
                           content_type="multipart/form-data")
    assert response.status_code == 302
    listing = db.session.scalars(select(Listing)).one()
    assert linked(listing.id) == [plot]
    mine = text(client.get("/my/listings"))
    assert "From: Finca" in mine


def test_coffee_without_a_plot_is_refused_on_the_field_input_kept(as_, farmer2, coop):
    client = as_(farmer2)
    page = text(client.get("/my/listings/new"))
    assert " checked" not in page.split('name="plot_ids"', 1)[1].split("</fieldset>")[0]
    response = client.post("/my/listings/new", data=form(quantity_kg="333"),
                           content_type="multipart/form-data")
    assert response.status_code == 422
    body = text(response)
    assert 'id="plot_ids-err"' in body and "Choose the plot (or plots)" in body
    assert 'value="333"' in body
    assert listing_count() == 0 and link_count() == 0
    # avocado needs no plot
    ok = client.post("/my/listings/new", data=form(product="avocado/extra"),
                     content_type="multipart/form-data")
    assert ok.status_code == 302
    assert link_count() == 0


def test_two_plots_both_chosen_and_edited(as_, farmer2, coop):
    client = as_(farmer2)
    a, b = own_plots(farmer2, coop)
    response = client.post("/my/listings/new", data=form(plot_ids=[str(a), str(b)]),
                           content_type="multipart/form-data")
    assert response.status_code == 302
    listing = db.session.scalars(select(Listing)).one()
    assert linked(listing.id) == sorted([a, b])
    edit = text(client.get(f"/my/listings/{listing.id}/edit"))
    assert f'value="{a}" checked' in edit and f'value="{b}" checked' in edit
    response = client.post(f"/my/listings/{listing.id}/edit", data=form(plot_ids=str(b)),
                           content_type="multipart/form-data")
    assert response.status_code == 302
    assert linked(listing.id) == [b]
    # unticking all of a coffee listing's plots is refused; the plots stay
    response = client.post(f"/my/listings/{listing.id}/edit", data=form(),
                           content_type="multipart/form-data")
    assert response.status_code == 422 and "Choose the plot" in text(response)
    assert linked(listing.id) == [b]


def test_another_farmers_plot_is_a_field_error(as_, farmer, farmer2, coop, make_coop,
                                               make_farmer):
    client = as_(farmer)
    theirs = own_plots(farmer2, coop)[0]
    response = client.post("/my/listings/new", data=form(plot_ids=str(theirs)),
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose among your own plots" in text(response) and 'id="plot_ids-err"' in text(response)
    assert listing_count() == 0
    junk = client.post("/my/listings/new", data=form(plot_ids="abc"),
                       content_type="multipart/form-data")
    assert junk.status_code == 422 and listing_count() == 0


def test_an_old_copy_of_the_form_gets_the_default(as_, farmer, coop):
    """A page kept on the phone from before plots (no plot boxes): the farmer's one plot."""
    client = as_(farmer)
    data = form()
    data.pop("plot_ids_shown")
    assert client.post("/my/listings/new", data=data,
                       content_type="multipart/form-data").status_code == 302
    assert linked(db.session.scalars(select(Listing)).one().id) == own_plots(farmer, coop)


def test_service_refuses_a_plot_of_the_farmers_other_coop(farmer, coop, make_coop):
    from coop.common.errors import ValidationFailed
    from coop.cooperatives import services as coops
    other = make_coop(name="Otra")
    profile = coops.add_farmer(other, name=farmer.name, email=farmer.email, password="x" * 12,
                               phone=None, member_number="O-1", national_id="998877")
    elsewhere = plots.add_plot(profile, name="Allá", hectares="1", replaced_crop=None,
                               illicit_hectares="0")
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        services.create_listing(farmer, crop="coffee", grade="sca85", quantity_kg="10",
                                harvested_on=_day(), coop_id=coop.id, plot_ids=[elsewhere.id])
    assert "plot_ids" in refused.value.fields
    db.session.rollback()
    # a farmer with no plot in the coop: told to ask the manager
    third = make_coop(name="Tercera")
    coops.add_farmer(third, name=farmer.name, email=farmer.email, password="x" * 12,
                     phone=None, member_number="T-1", national_id="998878")
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        services.create_listing(farmer, crop="cacao", grade="fine", quantity_kg="10",
                                harvested_on=_day(), coop_id=third.id)
    assert "ask your manager" in str(refused.value.fields["plot_ids"][0])


# ---------------------------------------------------------------- the API and the outbox

def test_api_plot_ids_default_explicit_foreign_and_patch(client, token, farmer, farmer2, coop):
    one = token(farmer)
    body = {"crop": "coffee", "grade": "sca85", "quantity_kg": "50", "harvested_on": _day()}
    made = client.post("/api/v1/listings", json=body, headers=one)
    assert made.status_code == 201 and made.json["plot_ids"] == own_plots(farmer, coop)
    got = client.get(f"/api/v1/listings/{made.json['id']}", headers=one)
    assert got.json["plot_ids"] == own_plots(farmer, coop)
    assert client.get("/api/v1/listings", headers=one).json["items"][0]["plot_ids"] \
        == own_plots(farmer, coop)

    two = token(farmer2)
    missing = client.post("/api/v1/listings", json=body, headers=two)
    assert missing.status_code == 422 and "plot_ids" in missing.json["error"]["fields"]
    foreign = client.post("/api/v1/listings", json={**body, "plot_ids": own_plots(farmer, coop)},
                          headers=two)
    assert foreign.status_code == 422 and "plot_ids" in foreign.json["error"]["fields"]
    for bad in ("1", [True], ["x"], [0], {"a": 1}, [2**40]):
        refused = client.post("/api/v1/listings", json={**body, "plot_ids": bad}, headers=two)
        assert refused.status_code == 422, (bad, refused.json)
    a, b = own_plots(farmer2, coop)
    made = client.post("/api/v1/listings", json={**body, "plot_ids": [b, a]}, headers=two)
    assert made.status_code == 201 and made.json["plot_ids"] == sorted([a, b])
    patched = client.patch(f"/api/v1/listings/{made.json['id']}", json={"plot_ids": [a]},
                           headers=two)
    assert patched.status_code == 200 and patched.json["plot_ids"] == [a]
    emptied = client.patch(f"/api/v1/listings/{made.json['id']}", json={"plot_ids": []},
                           headers=two)
    assert emptied.status_code == 422 and linked(made.json["id"]) == [a]


def test_outbox_multipart_sends_each_plot(as_, farmer2, coop):
    """The offline outbox posts the form as multipart with the session: one plot_ids each,
    a single empty one when none is ticked."""
    client = as_(farmer2)
    csrf = client.get("/my/outbox/session").json["csrf_token"]
    a, b = own_plots(farmer2, coop)
    data = {"crop": "coffee", "grade": "sca85", "quantity_kg": "12.5", "harvested_on": _day(),
            "collection_point": "Vereda El Tambo"}
    none = client.post("/api/v1/listings", data={**data, "plot_ids": ""},
                       headers={"X-CSRFToken": csrf, "Idempotency-Key": "k-none-1"},
                       content_type="multipart/form-data")
    assert none.status_code == 422 and "plot_ids" in none.json["error"]["fields"]
    both = client.post("/api/v1/listings", data={**data, "plot_ids": [str(a), str(b)]},
                       headers={"X-CSRFToken": csrf, "Idempotency-Key": "k-both-1"},
                       content_type="multipart/form-data")
    assert both.status_code == 201, both.json
    assert both.json["plot_ids"] == sorted([a, b])
