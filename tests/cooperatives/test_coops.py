"""Cooperatives: creating one, farmer members with profiles and plots, roles, payout accounts."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from coop.auth.models import User
from coop.common.errors import Conflict, NotFound, ValidationFailed
from coop.cooperatives import invitations, services
from coop.plots import services as plots_services
from coop.cooperatives.models import Cooperative, FarmerProfile, Invitation, Membership, Plot
from coop.cooperatives.payout_accounts import (clabe_is_valid, luhn_is_valid,
                                               validate_payout_account)
from coop.extensions import db
from tests.support import PASSWORD
from tests.support.sent import code_in, last_message

PDF = b"%PDF-1.4\n% registration\n%%EOF\n"
NIT = "800197268-4"  # the DIAN's own NIT, its check digit right


def pdf():
    import io
    return (io.BytesIO(PDF), "registro.pdf")


def accept_all(user):
    """The person accepts every invitation waiting for them (as on their dashboard)."""
    user = db.session.get(User, user.id)
    for invitation in invitations.for_user(user):
        invitations.accept(invitation, user)
    db.session.commit()


@pytest.fixture
def en(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def snapshot() -> tuple[int, ...]:
    return tuple(count(m) for m in (User, Cooperative, Membership, FarmerProfile, Plot))


def input_value(html: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    if not match:
        return None
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


def selected(html: str, name: str) -> str | None:
    select_html = re.search(rf'<select[^>]*name="{re.escape(name)}".*?</select>', html, re.S)
    option = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"|<option[^>]*value="([^"]*)"'
                       r'[^>]*selected', select_html.group(0))
    return (option.group(1) or option.group(2)) if option else None


def roles(user_id: int, coop_id: int) -> set[str]:
    return set(db.session.scalars(select(Membership.role).where(
        Membership.user_id == user_id, Membership.coop_id == coop_id)))


# --- creating a cooperative ------------------------------------------------------------------

def test_manager_creates_a_cooperative(en, login, make_user):
    founder = make_user(name="Rosa")
    login(founder)
    response = en.post("/manage/coops/new", data={"name": "  Cooperativa Café Andino ",
                                                   "country": "co", "currency": "cop",
                                                   "region": "Cauca",
                                                   "legal_name": "Coop Café Andino Ltda.",
                                                   "tax_id": "800.197.268-4",
                                                   "document": pdf()},
                       content_type="multipart/form-data")
    assert response.status_code == 302
    coop = db.session.scalar(select(Cooperative))
    assert response.headers["Location"].endswith(f"/manage/coops/{coop.id}")
    assert (coop.name, coop.country, coop.currency, coop.region) == (
        "Cooperativa Café Andino", "CO", "COP", "Cauca")
    assert coop.slug == "cooperativa-cafe-andino"
    assert roles(founder.id, coop.id) == {"manager"}
    page = en.get(f"/manage/coops/{coop.id}")
    assert page.status_code == 200 and "Cooperativa Café Andino" in page.get_data(as_text=True)
    assert (coop.status, coop.tax_id, coop.legal_name) == ("pending", NIT,
                                                           "Coop Café Andino Ltda.")
    assert "Waiting for Minga" in page.get_data(as_text=True)
    # Public pages list it once Minga's staff verified it, not before.
    assert "Cooperativa Café Andino" not in en.get("/coops").get_data(as_text=True)
    assert en.get(f"/coops/{coop.slug}").status_code == 404
    coop.status = "verified"
    db.session.commit()
    assert "Cooperativa Café Andino" in en.get("/coops").get_data(as_text=True)
    assert en.get(f"/coops/{coop.slug}").status_code == 200


def test_same_name_gets_its_own_slug(make_coop):
    # One name per country; the same name in another country gets its own slug.
    first = make_coop(name="Nuevo Horizonte")
    second = make_coop(name="Nuevo Horizonte", country="PE", currency="PEN")
    assert first.slug == "nuevo-horizonte" and second.slug == "nuevo-horizonte-2"


@pytest.mark.parametrize("data, field, message", [
    ({"name": ""}, "name", "This field is required"),
    ({"name": "N" * 2000}, "name", "cannot be longer than 160 characters"),
    ({"country": "XX"}, "country", "two-letter country code"),
    ({"country": "ZZ"}, "country", "two-letter country code"),  # "Unknown Region"
    ({"country": "EU"}, "country", "two-letter country code"),
    ({"country": "12"}, "country", "two-letter country code"),
    ({"country": "Colombia"}, "country", "exactly 2 characters"),
    ({"currency": "ABC"}, "currency", "three-letter currency code"),
    ({"currency": "XXX"}, "currency", "three-letter currency code"),  # "no currency"
    ({"currency": "ESP"}, "currency", "three-letter currency code"),  # pesetas, long gone
    ({"currency": "pesos"}, "currency", "exactly 3 characters"),
    ({"region": "R" * 500}, "region", "cannot be longer than 120 characters"),
])
def test_bad_cooperative_details_are_refused(en, login, make_user, data, field, message):
    login(make_user())
    form = {"name": "Cooperativa Kept", "country": "PE", "currency": "PEN",
            "region": "San Martín", "legal_name": "Kept SAC", "tax_id": "20100070970",
            **data}
    before = snapshot()
    response = en.post("/manage/coops/new", data={**form, "document": pdf()},
                       content_type="multipart/form-data")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="{field}-err"' in html and message in html
    for name, value in form.items():
        if len(value) < 100:
            assert input_value(html, name) == value   # the user's input is kept
    assert snapshot() == before


def test_create_cooperative_service_rules(make_user):
    founder = make_user()
    from coop.cooperatives.verification import Upload
    doc = Upload("r.pdf", PDF)
    with pytest.raises(ValidationFailed) as exc:
        services.create_cooperative(founder=founder, name=" ", country="XX", currency="XYZ",
                                    region="r" * 121)
    assert set(exc.value.fields) == {"name", "country", "currency", "region"}
    coop = services.create_cooperative(founder=founder, name="Valle", country="mx",
                                       currency="mxn", legal_name="Valle SC de RL",
                                       tax_id="VAL010101AB1", document=doc)
    assert (coop.country, coop.currency, coop.region, coop.status) == ("MX", "MXN", "",
                                                                       "pending")
    # A cooperative may price in another country's currency (exporters often use USD).
    services.create_cooperative(founder=founder, name="Export", country="CO", currency="USD",
                                legal_name="Export Ltda.", tax_id=NIT, document=doc)


# --- farmer members --------------------------------------------------------------------------

FARMER = {"name": "María Quispe", "email": "maria@example.org", "phone": "+57 311 555 0101",
          "password": "first-password-1", "member_number": "NH-0001",
          "national_id": "1087654321", "gender": "female", "household_size": "5",
          "payout_rail": "nequi", "payout_account": "311 555 0101", "bank_name": ""}


def test_manager_adds_a_farmer_member(en, login, make_coop):
    """A new farmer added by phone is a member at once (their account is new; they confirm it
    at the first login); one added by e-mail is invited (tests/cooperatives/)."""
    coop = make_coop()
    login(coop.memberships[0].user)
    response = en.post(f"/manage/coops/{coop.id}/farmers/new", data={**FARMER, "email": ""})
    assert response.status_code == 302
    profile = db.session.scalar(select(FarmerProfile))
    assert response.headers["Location"].endswith(f"/manage/coops/{coop.id}/farmers/{profile.id}")
    assert (profile.member_number, profile.national_id, profile.gender, profile.household_size,
            profile.payout_rail, profile.payout_account) == (
        "NH-0001", "1087654321", "female", 5, "nequi", "3115550101")
    user = profile.user
    assert (user.name, user.email, user.phone) == ("María Quispe", None, "+573115550101")
    assert roles(user.id, coop.id) == {"farmer"}
    page = en.get(f"/manage/coops/{coop.id}").get_data(as_text=True)
    assert "NH-0001" in page and "María Quispe" in page
    # The farmer logs in with the phone number, without the country code, and confirms the
    # account by choosing a PIN.
    en.post("/logout")
    response = en.post("/login", data={"login": "311 555 0101", "password": "first-password-1"})
    assert response.status_code == 302
    assert en.get("/my/listings").headers["Location"].endswith("/account/pin")


def test_farmer_without_password_gets_a_generated_one(en, login, make_coop):
    coop = make_coop()
    login(coop.memberships[0].user)
    response = en.post(f"/manage/coops/{coop.id}/farmers/new",
                       data={**FARMER, "email": "", "password": ""}, follow_redirects=True)
    assert response.status_code == 200
    shown = re.search(r"First-login code for María Quispe: (\d+) ",
                      response.get_data(as_text=True))
    assert shown
    en.post("/logout")
    assert en.post("/login", data={"login": "3115550101", "password": shown.group(1)}
                   ).status_code == 302


@pytest.mark.parametrize("change, field, message, status", [
    ({"member_number": ""}, "member_number", "This field is required", 422),
    ({"national_id": ""}, "national_id", "This field is required", 422),
    ({"name": ""}, "name", "This field is required", 422),
    ({"email": "not-an-email"}, "email", "Invalid email address", 422),
    ({"phone": "call me"}, "phone", "Only digits.", 422),
    ({"password": "short"}, "password", "At least 12 characters", 422),
    ({"household_size": "0"}, "household_size", "between 1 and 50", 422),
    ({"household_size": "many"}, "household_size", "Not a valid integer", 422),
    ({"member_number": "M" * 500}, "member_number", "cannot be longer than 32", 422),
    ({"payout_rail": "paypal"}, "payout_rail", "Not a valid choice", 422),
    ({"payout_account": "12345"}, "payout_account", "10 digits starting with 3", 422),
    ({"payout_rail": "yape", "payout_account": "3115550101"}, "payout_account",
     "9 digits starting with 9", 422),
    ({"payout_rail": "spei", "payout_account": "032180000118359718"}, "payout_account",
     "check digit is wrong", 422),
    ({"payout_rail": "bank", "payout_account": "ABC-123"}, "payout_account",
     "6 to 20 digits", 422),
])
def test_bad_farmer_details_are_refused(en, login, make_coop, change, field, message, status):
    coop = make_coop()
    login(coop.memberships[0].user)
    before = snapshot()
    data = {**FARMER, **change}
    response = en.post(f"/manage/coops/{coop.id}/farmers/new", data=data)
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert f'id="{field}-err"' in html and message in html
    for name in ("name", "email", "phone", "member_number", "national_id"):
        if len(data[name]) < 100:
            assert input_value(html, name) == data[name]
    assert snapshot() == before


def test_member_number_and_national_id_are_unique_in_a_coop(en, login, make_coop):
    coop = make_coop()
    login(coop.memberships[0].user)
    assert en.post(f"/manage/coops/{coop.id}/farmers/new", data=FARMER).status_code == 302
    before = snapshot()
    # Pending invitations hold their member number and national ID too.
    other = {**FARMER, "email": "juan@example.org", "phone": "", "name": "Juan",
             "national_id": "99887766"}
    response = en.post(f"/manage/coops/{coop.id}/farmers/new", data=other)
    assert response.status_code == 409
    assert "Member number NH-0001 is already used" in response.get_data(as_text=True)
    response = en.post(f"/manage/coops/{coop.id}/farmers/new",
                       data={**other, "member_number": "NH-0002", "national_id": "1087654321"})
    assert response.status_code == 409
    assert "national ID 1087654321 already exists" in response.get_data(as_text=True)
    assert snapshot() == before
    # The same address invited again: the one invitation, with the new details.
    response = en.post(f"/manage/coops/{coop.id}/farmers/new",
                       data={**FARMER, "member_number": "NH-0003", "national_id": "5"})
    assert response.status_code == 302
    assert count(Invitation) == 1
    # Once she is a member, the numbers are hers.
    from coop.auth import services as auth_services
    accept_all(auth_services.create_user(
        email="maria@example.org", name="María", password=PASSWORD))
    response = en.post(f"/manage/coops/{coop.id}/farmers/new",
                       data={**other, "member_number": "NH-0003", "national_id": "6"})
    assert response.status_code == 409
    assert "Member number NH-0003 is already used" in response.get_data(as_text=True)


def test_taken_phone_is_invited_not_joined(en, login, make_coop, make_user):
    """A phone that has an account: that person is invited, never joined at once."""
    owner = make_user(phone="573115550101")
    coop = make_coop()
    login(coop.memberships[0].user)
    before = snapshot()
    response = en.post(f"/manage/coops/{coop.id}/farmers/new", data={**FARMER, "email": ""})
    assert response.status_code == 302
    assert snapshot() == before
    invitation = db.session.scalar(select(Invitation))
    assert (invitation.phone, invitation.role) == ("+573115550101", "farmer")
    accept_all(owner)
    assert roles(owner.id, coop.id) == {"farmer"}


def test_add_farmer_service_refuses_bad_household_size(make_coop):
    coop = make_coop()
    for size in (0, 51, "3", True, 2.5):
        with pytest.raises(ValidationFailed) as exc:
            services.add_farmer(coop, name="F", email="f@example.org", password=PASSWORD,
                                phone=None, member_number="1", national_id="2",
                                household_size=size)
        assert "household_size" in exc.value.fields
    assert count(FarmerProfile) == 0 and count(User) == 1


def test_one_person_in_two_coops_with_different_roles(en, login, make_coop, make_user,
                                                      make_listing):
    person = make_user(email="both@example.org")
    managed = make_coop(name="Nuevo Horizonte", manager=person)
    farmed = make_coop(name="Valle Verde", country="PE", currency="PEN")
    login(farmed.memberships[0].user)
    response = en.post(f"/manage/coops/{farmed.id}/farmers/new",
                       data={**FARMER, "email": "BOTH@example.org", "phone": "",
                             "payout_rail": "yape", "payout_account": "987 654 321"})
    assert response.status_code == 302
    assert roles(person.id, farmed.id) == set()  # invited, not yet a member
    accept_all(person)
    assert count(User) == 2  # joined, not duplicated
    assert roles(person.id, managed.id) == {"manager"}
    assert roles(person.id, farmed.id) == {"farmer"}
    assert db.session.get(User, person.id).name == "Test Person"  # their account is unchanged

    login(person)
    assert en.get(f"/manage/coops/{managed.id}").status_code == 200
    assert en.get(f"/manage/coops/{farmed.id}").status_code == 403  # a farmer there
    assert en.get("/my/listings").status_code == 200
    listing = make_listing(db.session.get(User, person.id), crop="avocado", grade="extra")  # no plot yet
    assert listing.coop_id == farmed.id
    # The other coop's manager can add them as a farmer too: a third membership.
    services.add_farmer(managed, name="x", email="both@example.org", password="", phone=None,
                        member_number="NH-9", national_id="1087654321")
    db.session.commit()
    assert roles(person.id, managed.id) == {"manager", "farmer"}


# --- plots -----------------------------------------------------------------------------------

@pytest.fixture
def farmer_page(en, login, make_coop, make_farmer):
    coop = make_coop()
    farmer = make_farmer(coop, rail="nequi", account="3001234567", plots=0)
    profile = services.farmer_profile(coop.id, farmer.id)
    login(coop.memberships[0].user)
    return coop, profile, f"/manage/coops/{coop.id}/farmers/{profile.id}"


def test_manager_adds_plots_with_replaced_illicit_crop(en, farmer_page):
    coop, profile, url = farmer_page
    response = en.post(url + "/plots", data={"plot-name": "La Loma", "plot-hectares": "2.5",
                                             "plot-replaced_crop": "coca",
                                             "plot-illicit_hectares": "1.75",
                                             "plot-licit_crop": "cacao"})
    assert response.status_code == 302
    en.post(url + "/plots", data={"plot-name": "El Bajo", "plot-hectares": "0.5",
                                  "plot-replaced_crop": "", "plot-illicit_hectares": " "})
    plots = db.session.scalars(select(Plot).order_by(Plot.id)).all()
    assert [(p.name, p.area_m2, p.replaced_crop, p.illicit_area_m2, p.licit_crop)
            for p in plots] == [("La Loma", 25000, "coca", 17500, "cacao"),
                                ("El Bajo", 5000, None, 0, None)]
    page = en.get(url).get_data(as_text=True)
    assert "La Loma" in page and "2.5" in page and "1.75" in page


@pytest.mark.parametrize("data, field, message", [
    ({"plot-hectares": "abc"}, "plot-hectares", "Give hectares as a number"),
    ({"plot-hectares": "NaN"}, "plot-hectares", "Give hectares as a number"),
    ({"plot-hectares": "-1"}, "plot-hectares", "more than zero"),
    ({"plot-hectares": "0"}, "plot-hectares", "more than zero"),
    ({"plot-hectares": "1e9"}, "plot-hectares", "Give hectares as a number"),
    ({"plot-hectares": "1000000"}, "plot-hectares", "realistic"),
    ({"plot-hectares": "2,5"}, "plot-hectares", "Write it like 2.5."),  # English
    ({"plot-hectares": ""}, "plot-hectares", "This field is required"),
    ({"plot-illicit_hectares": "-0.5"}, "plot-illicit_hectares", "more than zero"),
    ({"plot-illicit_hectares": "3.01"}, "plot-illicit_hectares",
     "cannot exceed the plot&#39;s hectares"),
    ({"plot-replaced_crop": "", "plot-illicit_hectares": "1"}, "plot-replaced_crop",
     "Say which illicit crop"),
    ({"plot-replaced_crop": "tobacco"}, "plot-replaced_crop", "Not a valid choice"),
    ({"plot-name": ""}, "plot-name", "This field is required"),
    ({"plot-name": "P" * 400}, "plot-name", "cannot be longer than 120"),
])
def test_bad_plots_are_refused(en, farmer_page, data, field, message):
    coop, profile, url = farmer_page
    form = {"plot-name": "La Loma", "plot-hectares": "3", "plot-replaced_crop": "opium_poppy",
            "plot-illicit_hectares": "1", "plot-licit_crop": "coffee", **data}
    before = snapshot()
    response = en.post(url + "/plots", data=form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="{field}-err"' in html
    assert input_value(html, "plot-hectares") == form["plot-hectares"]
    assert selected(html, "plot-licit_crop") == "coffee"
    # The payout form next to it still shows the saved details, not blanks.
    assert input_value(html, "payout-payout_account") == "3001234567"
    assert selected(html, "payout-payout_rail") == "nequi"
    assert snapshot() == before


def test_plot_service_rules(make_coop, make_farmer):
    coop = make_coop()
    profile = services.farmer_profile(coop.id, make_farmer(coop, plots=0).id)
    plot = plots_services.add_plot(profile, name="A", hectares="1.5", replaced_crop="cannabis",
                             illicit_hectares="1.5")
    assert (plot.area_m2, plot.illicit_area_m2) == (15000, 15000)  # all of it: allowed
    with pytest.raises(ValidationFailed):
        plots_services.add_plot(profile, name="B", hectares="1", replaced_crop="coca",
                          illicit_hectares="1.0001")
    with pytest.raises(ValidationFailed):
        plots_services.add_plot(profile, name="B", hectares="1", replaced_crop="maize",
                          illicit_hectares="0")
    with pytest.raises(ValidationFailed):
        plots_services.add_plot(profile, name="B", hectares=None, replaced_crop=None,
                          illicit_hectares=None)
    assert plots_services.parse_hectares("100000", "h") == 1_000_000_000
    with pytest.raises(ValidationFailed):
        plots_services.parse_hectares("100000.01", "h")


# --- payout details --------------------------------------------------------------------------

def test_manager_updates_payout_details(en, farmer_page):
    coop, profile, url = farmer_page
    response = en.post(url + "/payout", data={"payout-payout_rail": "bank",
                                              "payout-payout_account": "0012-3456-7890",
                                              "payout-bank_name": "Bancolombia"})
    assert response.status_code == 200  # the code sent to the farmer is asked for
    notice = last_message("auth.change_code")
    response = en.post(url + "/payout/confirm", data={"code": code_in(notice)})
    assert response.status_code == 302
    db.session.expire_all()
    profile = db.session.get(FarmerProfile, profile.id)
    assert (profile.payout_rail, profile.payout_account, profile.bank_name) == (
        "bank", "001234567890", "Bancolombia")


@pytest.mark.parametrize("rail, account, message", [
    ("daviplata", "2001234567", "10 digits starting with 3"),
    ("plin", "98765432", "9 digits starting with 9"),
    ("breb", "hello", "Bre-B key"),
    ("spei", "4111111111111112", "debit card number is not valid"),
    ("spei", "1234-5678-9012-345a", "SPEI needs"),
    ("bank", "1" * 64, "6 to 20 digits"),
])
def test_bad_payout_details_leave_the_saved_ones(en, farmer_page, rail, account, message):
    coop, profile, url = farmer_page
    response = en.post(url + "/payout", data={"payout-payout_rail": rail,
                                              "payout-payout_account": account})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert input_value(html, "payout-payout_account") == account   # what was typed stays
    assert selected(html, "payout-payout_rail") == rail
    db.session.expire_all()
    saved = db.session.get(FarmerProfile, profile.id)
    assert (saved.payout_rail, saved.payout_account) == ("nequi", "3001234567")


# --- roles -----------------------------------------------------------------------------------

def test_manager_gives_and_removes_roles(en, login, make_coop, make_user):
    coop = make_coop()
    manager = coop.memberships[0].user
    helper = make_user(email="tesorera@example.org", name="Tesorera")
    login(manager)
    url = f"/manage/coops/{coop.id}"
    assert en.post(url + "/roles", data={"email": " Tesorera@Example.org", "role": "treasurer"}
                   ).status_code == 302
    assert roles(helper.id, coop.id) == set()  # invited: a member once she accepts
    accept_all(helper)
    assert roles(helper.id, coop.id) == {"treasurer"}
    # Giving it again changes nothing.
    assert en.post(url + "/roles", data={"email": "tesorera@example.org", "role": "treasurer"}
                   ).status_code == 302
    accept_all(helper)
    assert count(Membership) == 2
    assert en.post(url + "/roles", data={"email": "tesorera@example.org", "role": "manager"}
                   ).status_code == 302
    accept_all(helper)
    assert roles(helper.id, coop.id) == {"treasurer", "manager"}
    page = en.get(url).get_data(as_text=True)
    assert "tesorera@example.org" in page
    assert en.post(f"{url}/roles/{helper.id}/treasurer/revoke").status_code == 302
    assert roles(helper.id, coop.id) == {"manager"}
    # Two managers: one may leave, then the last one may not.
    assert en.post(f"{url}/roles/{helper.id}/manager/revoke").status_code == 302
    assert roles(helper.id, coop.id) == set()
    response = en.post(f"{url}/roles/{manager.id}/manager/revoke", follow_redirects=True)
    assert "A cooperative needs at least one manager." in response.get_data(as_text=True)
    assert roles(manager.id, coop.id) == {"manager"}


@pytest.mark.parametrize("data, message", [
    ({"email": "x@example.org", "role": "farmer"}, "Give a valid e-mail and a role"),
    ({"email": "x@example.org", "role": "owner"}, "Give a valid e-mail and a role"),
    ({"email": "not-an-email", "role": "treasurer"}, "Give a valid e-mail and a role"),
    ({"email": "x" * 2000, "role": "treasurer"}, "Give a valid e-mail and a role"),
])
def test_bad_role_requests_are_refused(en, login, make_coop, make_user, data, message):
    coop = make_coop()
    make_user(email="x@example.org")
    login(coop.memberships[0].user)
    before = snapshot()
    response = en.post(f"/manage/coops/{coop.id}/roles", data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    if len(data["email"]) < 100:
        assert input_value(html, "email") == data["email"]
    assert snapshot() == before


def test_revoking_a_role_nobody_holds(en, login, make_coop, make_user):
    coop = make_coop()
    other = make_user()
    login(coop.memberships[0].user)
    before = snapshot()
    response = en.post(f"/manage/coops/{coop.id}/roles/{other.id}/treasurer/revoke",
                       follow_redirects=True)
    assert "does not hold that role" in response.get_data(as_text=True)
    assert en.post(f"/manage/coops/{coop.id}/roles/999999/manager/revoke").status_code == 404
    assert snapshot() == before


def test_role_services(make_coop, make_user):
    coop = make_coop()
    manager = coop.memberships[0].user
    person = make_user()
    with pytest.raises(ValidationFailed):
        services.grant_role(coop, person, "owner")
    first = services.grant_role(coop, person, "treasurer")
    assert services.grant_role(coop, person, "treasurer").id == first.id
    with pytest.raises(NotFound):
        services.revoke_role(coop, person, "manager")
    with pytest.raises(Conflict) as exc:
        services.revoke_role(coop, manager, "manager")
    assert exc.value.code == "last_manager"
    # The last manager of one coop is not saved by a manager of another.
    make_coop(manager=person)
    with pytest.raises(Conflict):
        services.revoke_role(coop, manager, "manager")


# --- payout accounts -------------------------------------------------------------------------

def clabe_check_digit(first17: str) -> int:
    """Banxico's rule, written out again: weights 3, 7, 1 repeating; each product mod 10;
    the check digit is (10 - sum mod 10) mod 10."""
    weights = [3, 7, 1] * 6
    total = sum((int(d) * w) % 10 for d, w in zip(first17, weights))
    return (10 - total % 10) % 10


def test_clabe_check_digit():
    # 032180000118359719: the example CLABE most references use. By hand:
    # 0*3 3*7 2*1 1*3 8*7 0*1 0*3 0*7 0*1 1*3 1*7 8*1 3*3 5*7 9*1 7*3 1*7 -> mod 10 each:
    # 0+1+2+3+6+0+0+0+0+3+7+8+9+5+9+1+7 = 61 -> (10 - 1) % 10 = 9.
    assert clabe_check_digit("03218000011835971") == 9
    assert clabe_is_valid("032180000118359719")
    assert clabe_is_valid("002010077777777771")
    for wrong in range(10):
        if wrong != 9:
            assert not clabe_is_valid(f"03218000011835971{wrong}")
    # A check digit of 0 (sum already a multiple of 10) is handled.
    base = next(f"0121800012345678{d}" for d in range(10)
                if clabe_check_digit(f"0121800012345678{d}") == 0)
    assert clabe_is_valid(base + "0") and not clabe_is_valid(base + "1")
    assert not clabe_is_valid("03218000011835971")      # 17 digits
    assert not clabe_is_valid("03218000011835971９")     # a full-width digit
    assert validate_payout_account("spei", "032 180 000118359719") == "032180000118359719"
    with pytest.raises(ValidationFailed) as exc:
        validate_payout_account("spei", "032180000118359710")
    assert exc.value.code == "invalid_payout_account"
    assert "payout_account" in exc.value.fields


def test_spei_card_and_phone():
    assert luhn_is_valid("4111111111111111") and not luhn_is_valid("4111111111111112")
    assert validate_payout_account("spei", "4111 1111 1111 1111") == "4111111111111111"
    assert validate_payout_account("spei", "55 1234 5678") == "5512345678"
    assert validate_payout_account("spei", "+52 55 1234 5678") == "5512345678"
    for bad in ("4111111111111112", "123456789", "abcdefghij", "4111-1111-1111-111x", ""):
        with pytest.raises(ValidationFailed):
            validate_payout_account("spei", bad)


@pytest.mark.parametrize("rail", ["nequi", "daviplata"])
def test_colombian_wallets(rail):
    assert validate_payout_account(rail, "3001234567") == "3001234567"
    assert validate_payout_account(rail, "300 123 4567") == "3001234567"
    assert validate_payout_account(rail, "+57 300 123 4567") == "3001234567"
    assert validate_payout_account(rail, "(300) 123-4567") == "3001234567"
    for bad in ("2001234567", "300123456", "30012345678", "30012a4567", "", "３００１２３４５６７"):
        with pytest.raises(ValidationFailed, match="10 digits starting with 3"):
            validate_payout_account(rail, bad)


@pytest.mark.parametrize("rail", ["yape", "plin"])
def test_peruvian_wallets(rail):
    assert validate_payout_account(rail, "987654321") == "987654321"
    assert validate_payout_account(rail, "+51 987 654 321") == "987654321"
    for bad in ("887654321", "98765432", "9876543210", "51987654321x", ""):
        with pytest.raises(ValidationFailed, match="9 digits starting with 9"):
            validate_payout_account(rail, bad)


def test_bank_accounts():
    assert validate_payout_account("bank", "123456") == "123456"
    assert validate_payout_account("bank", "1234-5678-9012-3456-7890") == "12345678901234567890"
    for bad in ("12345", "1" * 21, "ES91 2100 0418", "", "12 34 5"):
        with pytest.raises(ValidationFailed, match="6 to 20 digits"):
            validate_payout_account("bank", bad)


def test_breb_keys():
    assert validate_payout_account("breb", "1.087.654.321") == "1087654321"   # national ID
    assert validate_payout_account("breb", "3001234567") == "3001234567"      # mobile
    assert validate_payout_account("breb", "+57 300 123 4567") == "3001234567"
    assert validate_payout_account("breb", " Maria.Q@Example.org ") == "maria.q@example.org"
    assert validate_payout_account("breb", "@maria2025") == "@MARIA2025"      # code
    for bad in ("hello", "12345", "12345678901", "@ab", "@" + "a" * 21, "maria@", "@ma ria", ""):
        with pytest.raises(ValidationFailed, match="Bre-B key"):
            validate_payout_account("breb", bad)


def test_cash_and_unknown_rails():
    assert validate_payout_account("cash", "anything") == ""
    with pytest.raises(ValidationFailed, match="Unknown payout method"):
        validate_payout_account("paypal", "x@example.org")
    with pytest.raises(ValidationFailed):
        services.update_payout(FarmerProfile(payout_rail="cash"), "swift", "x")
