"""A person's phone and preferences (issue 11): phones in E.164 validated per country (and
existing digits-only phones migrated), the channel, time zone, language and consent to
announcements the messages domain reads, the account page's changes of PIN, preferences and
phone (confirmed by a code to the old phone, audited), and a farmer's payout account changed
only with a code sent to the farmer's phone (audited)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import select, text
from werkzeug.security import check_password_hash

from coop.audit.models import AuditEvent
from coop.auth import services as auth_services
from coop.auth.models import User
from coop.common.errors import Conflict, ValidationFailed
from coop.cooperatives import services as coop_services
from coop.cooperatives.models import FarmerProfile, Invitation
from coop.extensions import db
from tests.support import PASSWORD
from tests.support.sent import code_in, last_message, messages_to
from tests.support.auth import PIN, logged_in, pin_farmer, replay, session_cookie

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0012_people.py"


@pytest.fixture(autouse=True)
def en(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def _migration():
    spec = importlib.util.spec_from_file_location("migration_0012_people", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- phones in E.164

@pytest.mark.parametrize("typed, region, stored", [
    ("+57 300 123 4567", None, "+573001234567"),
    ("300 123 4567", "CO", "+573001234567"),
    ("(300) 123-4567", None, "+573001234567"),   # Colombia by default
    ("573001234567", "CO", "+573001234567"),
    ("987 654 321", "PE", "+51987654321"),
    ("51987654321", "CO", "+51987654321"),      # digits with a country code
    ("+51 987 654 321", "CO", "+51987654321"),
])
def test_phones_are_stored_in_e164(typed, region, stored):
    assert auth_services.normalise_phone(typed, region) == stored


@pytest.mark.parametrize("typed, region, message", [
    ("987 654 321", "CO", "not a valid phone number in Colombia"),
    ("300 123 4567", "PE", "not a valid phone number in Peru"),
    ("+57 300 123", None, "not a valid phone number in Colombia"),
    ("12ab", None, "only digits"),
    ("+57 300 123 4567 ext 2", None, "only digits"),
    ("٣٠٠١٢٣٤٥٦٧", None, "only digits"),
    ("3001234567+", None, "only digits"),
])
def test_invalid_phones_are_refused_naming_the_country(typed, region, message):
    with pytest.raises(ValidationFailed) as refused:
        auth_services.normalise_phone(typed, region)
    assert message in refused.value.message
    assert "phone" in refused.value.fields and refused.value.code == "invalid_phone"


def test_a_farmer_added_to_a_peruvian_coop_is_read_as_peruvian(make_coop, make_farmer):
    coop = make_coop(country="PE", currency="PEN")
    farmer = make_farmer(coop, phone="987 654 321")
    assert farmer.phone == "+51987654321"
    with pytest.raises(ValidationFailed) as refused:
        coop_services.add_farmer(coop, name="X", email=None, password="12345678",
                                 phone="300 123 4567", member_number="Z-1",
                                 national_id="1234567")
    assert "Peru" in refused.value.message


def test_the_migration_converts_a_digits_only_phone_to_e164(make_coop, make_farmer,
                                                            make_user):
    """Rows as the earlier code stored them (digits only), converted by 0012_people's own
    function: "+"+digits first, else national in the person's coop's country, default
    Colombia; a number that does not parse is kept (and warned about), never lost."""
    peru = make_coop(country="PE", currency="PEN")
    peruvian = make_farmer(peru, phone="+51987654321")
    colombian = make_user(phone="+573001234567")
    national = make_user(phone="+573109876543")
    broken = make_user(phone="+573001112233")
    invited_to = make_coop()
    manager = next(m.user for m in invited_to.memberships if m.role == "manager")
    from coop.cooperatives import invitations
    invitation, _ = invitations.invite(invited_to, manager, "farmer", phone="3201112233")
    db.session.commit()
    set_phone = text("UPDATE users SET phone = :p WHERE id = :id")
    db.session.execute(set_phone, {"p": "987654321", "id": peruvian.id})   # Peru, national
    db.session.execute(set_phone, {"p": "573001234567", "id": colombian.id})  # with code
    db.session.execute(set_phone, {"p": "3109876543", "id": national.id})  # no coop: CO
    db.session.execute(set_phone, {"p": "12345", "id": broken.id})
    db.session.execute(text("UPDATE coop_invitations SET phone = '3201112233' WHERE id = :id"),
                       {"id": invitation.id})
    warnings = []
    counts = _migration().convert_phones(db.session.connection(), warn=warnings.append)
    db.session.commit()
    db.session.expire_all()
    phone = lambda u: db.session.get(User, u.id).phone  # noqa: E731
    assert phone(peruvian) == "+51987654321"
    assert phone(colombian) == "+573001234567"
    assert phone(national) == "+573109876543"
    assert phone(broken) == "12345"
    assert db.session.get(Invitation, invitation.id).phone == "+573201112233"
    assert counts == {"converted": 3, "kept": 1}
    assert len(warnings) == 1 and f"user {broken.id}" in warnings[0]
    # Converted again: nothing changes.
    assert _migration().convert_phones(db.session.connection(), warn=warnings.append) == {
        "converted": 0, "kept": 1}
    # The farmer still logs in with what they always typed.
    assert auth_services.find_by_login("987654321").id == peruvian.id


# ---------------------------------------------------------------- preferences

def test_channel_time_zone_and_language_defaults(make_coop, make_farmer, make_user):
    buyer = make_user(email="b@example.org")
    assert auth_services.channel_of(buyer) == "email"
    assert auth_services.timezone_of(buyer) == "America/Bogota"   # the app's default
    assert auth_services.language_of(buyer) == "es"
    farmer = pin_farmer(make_coop(country="PE", currency="PEN"), phone="+51987654321").user
    assert auth_services.channel_of(farmer) == "sms"              # no e-mail
    assert auth_services.timezone_of(farmer) == "America/Lima"     # the coop's country
    auth_services.update_preferences(farmer, channel="whatsapp", timezone="America/Bogota",
                                     language="en")
    assert (auth_services.channel_of(farmer), auth_services.timezone_of(farmer),
            auth_services.language_of(farmer)) == ("whatsapp", "America/Bogota", "en")
    assert farmer.announcements is False  # opt-in
    auth_services.set_announcements(farmer, True)
    assert farmer.announcements is True
    auth_services.set_announcements(farmer, False)
    assert farmer.announcements is False


@pytest.mark.parametrize("change, field", [
    ({"channel": "email"}, "channel"),          # a farmer without e-mail
    ({"channel": "pigeon"}, "channel"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": 5}, "timezone"),
    ({"language": "fr"}, "language"),
    ({"name": "  "}, "name"),
    ({"name": "x" * 121}, "name"),
    ({"announcements": "yes"}, "announcements"),
])
def test_bad_preferences_are_refused_and_nothing_changes(make_coop, change, field):
    farmer = pin_farmer(make_coop()).user
    with pytest.raises(ValidationFailed) as refused:
        auth_services.update_preferences(farmer, **{"name": "New name", **change})
    assert field in refused.value.fields
    db.session.rollback()
    db.session.expire_all()
    again = db.session.get(User, farmer.id)
    assert again.name != "New name" and again.channel is None and again.timezone is None


def test_the_account_page_saves_preferences(client, make_user, login):
    user = make_user(email="p@example.org", phone="3001230000")
    login(user)
    page = client.get("/account").get_data(as_text=True)
    assert 'name="channel"' in page and 'name="timezone"' in page
    response = client.post("/account/preferences", data={
        "name": "Paula", "language": "en", "channel": "whatsapp",
        "timezone": "America/Lima", "announcements": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(User, user.id)
    assert (saved.name, saved.locale, saved.channel, saved.timezone, saved.announcements) == (
        "Paula", "en", "whatsapp", "America/Lima", True)
    response = client.post("/account/preferences", data={
        "name": "Paula", "language": "en", "channel": "pigeon", "timezone": ""})
    assert response.status_code == 422
    response = client.post("/account/preferences", data={
        "name": "Paula", "language": "en", "channel": "", "timezone": "Mars/Olympus"})
    assert response.status_code == 422
    # Unticked: the consent is withdrawn.
    client.post("/account/preferences", data={"name": "Paula", "language": "en",
                                              "channel": "", "timezone": ""})
    db.session.expire_all()
    saved = db.session.get(User, user.id)
    assert (saved.channel, saved.timezone, saved.announcements) == (None, None, False)


# ---------------------------------------------------------------- PIN and phone

def test_a_farmer_changes_their_pin_on_the_account_page(app, client, make_coop):
    farmer = pin_farmer(make_coop(), phone="3105550177").user
    other = app.test_client()
    other.post("/login", data={"login": "3105550177", "password": PIN})
    stolen = session_cookie(other)
    client.post("/login", data={"login": "3105550177", "password": PIN})
    assert 'href="/account/pin/change"' in client.get("/account").get_data(as_text=True)
    wrong = client.post("/account/pin/change", data={"current_pin": "0000", "pin": "5927",
                                                     "pin_confirm": "5927"})
    assert wrong.status_code == 422
    weak = client.post("/account/pin/change", data={"current_pin": PIN, "pin": "1111",
                                                    "pin_confirm": "1111"})
    assert weak.status_code == 422
    response = client.post("/account/pin/change", data={"current_pin": PIN, "pin": "5927",
                                                        "pin_confirm": "5927"})
    assert response.status_code == 302 and logged_in(client)
    assert not logged_in(replay(app, stolen))
    db.session.expire_all()
    assert check_password_hash(db.session.get(User, farmer.id).password_hash, "5927")


def _audit(action):
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_change_of_phone_waits_for_the_code_sent_to_the_old_phone(client, make_coop):
    coop = make_coop()
    farmer = pin_farmer(coop, phone="3105550188").user
    client.post("/login", data={"login": "3105550188", "password": PIN})
    response = client.post("/account/phone", data={"phone": "320 111 2233"})
    assert response.status_code == 200
    assert "+57 ••• 0188" in response.get_data(as_text=True)
    notice = last_message("auth.change_code")
    assert (notice.user_id, notice.channel) == (farmer.id, "sms")
    assert notice.to_address == "+573105550188"  # the phone on file: the old one
    assert "phone number" in notice.body or "teléfono" in notice.body
    db.session.expire_all()
    assert db.session.get(User, farmer.id).phone == "+573105550188"  # not yet
    wrong = f"{(int(code_in(notice)) + 1) % 1_000_000:06d}"
    assert client.post("/account/phone/confirm", data={"code": wrong}).status_code == 422
    response = client.post("/account/phone/confirm", data={"code": code_in(notice)})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, farmer.id).phone == "+573201112233"
    (event,) = _audit("people.phone_changed")
    assert event.coop_id == coop.id and event.user_id == farmer.id
    assert "+573105550188" in event.before_json and "+573201112233" in event.after_json
    client.post("/logout")
    assert client.post("/login", data={"login": "3201112233", "password": PIN}
                       ).status_code == 302


def test_without_a_phone_the_code_goes_to_the_new_one(client, make_user, login):
    user = make_user(email="nophone@example.org")
    login(user)
    assert client.post("/account/phone", data={"phone": "3001231234"}).status_code == 200
    notice = last_message("auth.change_code")
    assert (notice.to_address, notice.channel) == ("+573001231234", "sms")
    assert client.post("/account/phone/confirm", data={"code": code_in(notice)}
                       ).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).phone == "+573001231234"
    (event,) = _audit("people.phone_changed")
    assert event.coop_id is None  # nobody's coop: the platform's log


def test_a_change_of_phone_refuses_bad_taken_and_same_numbers(client, make_user, login):
    make_user(phone="3001119999")
    user = make_user(email="mine@example.org", phone="3001118888")
    login(user)
    for typed, status, message in (("3001119999", 409, "Another account"),
                                   ("300 111 8888", 422, "already your phone"),
                                   ("12ab", 422, "only digits"),
                                   ("987654321", 422, "not a valid phone number in Colombia")):
        response = client.post("/account/phone", data={"phone": typed})
        assert response.status_code == status, typed
        html = response.get_data(as_text=True)
        assert message in html and f'value="{typed}"' in html
    assert messages_to() == []
    assert client.post("/account/phone/confirm", data={"code": "123456"}).status_code == 422


# ---------------------------------------------------------------- payout account

def test_a_payout_change_applies_only_with_the_code_sent_to_the_farmer(client, make_coop,
                                                                       make_farmer, login):
    coop = make_coop()
    farmer = make_farmer(coop, phone="3105550199", rail="nequi", account="3001234567")
    profile = coop_services.farmer_profile(coop.id, farmer.id)
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    login(manager)
    url = f"/manage/coops/{coop.id}/farmers/{profile.id}/payout"
    response = client.post(url, data={"payout-payout_rail": "daviplata",
                                      "payout-payout_account": "3109998877"})
    assert response.status_code == 200 and "+57 ••• 0199" in response.get_data(as_text=True)
    notice = last_message("auth.change_code")
    assert (notice.user_id, notice.channel) == (farmer.id, "sms")
    db.session.expire_all()
    assert db.session.get(FarmerProfile, profile.id).payout_account == "3001234567"
    assert client.post(url + "/confirm", data={"code": "000000" if code_in(notice)
                                               != "000000" else "111111"}
                       ).status_code == 422
    db.session.expire_all()
    assert db.session.get(FarmerProfile, profile.id).payout_rail == "nequi"
    assert client.post(url + "/confirm", data={"code": code_in(notice)}
                       ).status_code == 302
    db.session.expire_all()
    saved = db.session.get(FarmerProfile, profile.id)
    assert (saved.payout_rail, saved.payout_account) == ("daviplata", "3109998877")
    (event,) = _audit("payouts.account_changed")
    assert event.coop_id == coop.id and event.user_id == manager.id
    assert "3001234567" in event.before_json and "3109998877" in event.after_json
    # Used: the same code changes nothing again.
    assert client.post(url + "/confirm", data={"code": code_in(notice)}
                       ).status_code == 422


def test_a_code_for_one_farmer_does_not_change_another(client, make_coop, make_farmer, login):
    coop = make_coop()
    a = coop_services.farmer_profile(coop.id, make_farmer(coop, phone="3105550101").id)
    b = coop_services.farmer_profile(coop.id, make_farmer(coop, phone="3105550102").id)
    login(next(m.user for m in coop.memberships if m.role == "manager"))
    base = f"/manage/coops/{coop.id}/farmers"
    client.post(f"{base}/{a.id}/payout", data={"payout-payout_rail": "nequi",
                                               "payout-payout_account": "3109998877"})
    code = code_in(last_message("auth.change_code"))
    assert client.post(f"{base}/{b.id}/payout/confirm", data={"code": code}
                       ).status_code == 422
    db.session.expire_all()
    assert db.session.get(FarmerProfile, b.id).payout_rail == "cash"
