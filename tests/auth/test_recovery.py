"""Getting in without help (issue 11 §4): a password reset by an e-mail link or a 6-digit SMS
code (random, single-use, expiring, 5 tries, hashed, rate limited, the same answer whether or
not the account exists; every other session and API token ends), a farmer's PIN reset the
same way, the farmer's login with a one-time SMS code, and the owner told when their account
is throttled."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash

from coop.auth import codes
from coop.auth import services as auth_services
from coop.auth.models import ApiToken, OneTimeCode, User
from coop.common.models import utcnow
from coop.extensions import db
from tests.support import PASSWORD
from tests.support.auth import PIN, logged_in, pin_farmer, replay, session_cookie
from tests.support.sent import code_in, last_message, messages_to, reset_token_in

NEW_PASSWORD = "a-brand-new-long-secret"


def _expire(row_id):
    db.session.execute(update(OneTimeCode).where(OneTimeCode.id == row_id).values(
        expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


@pytest.fixture(autouse=True)
def en(client):
    """Pages in English, so the tests read the messages."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def roomy(app, monkeypatch):
    """The rate limits out of the way, to see each code's own rules (5 tries, 10 minutes)."""
    monkeypatch.setitem(app.config, "PIN_RATE_LIMIT", "1000 per minute")


@pytest.fixture
def farmer(make_coop):
    return pin_farmer(make_coop(), phone="3105550123").user


# ---------------------------------------------------------------- by e-mail: a link

def test_a_reset_link_sets_a_new_password_and_ends_every_other_session_and_token(
        app, client, make_user):
    user = make_user(email="ana@example.org")
    other = app.test_client()
    other.post("/login", data={"login": "ana@example.org", "password": PASSWORD})
    stolen = session_cookie(other)
    auth_services.issue_token(user)
    db.session.commit()
    response = client.post("/password/forgot", data={"login": "Ana@Example.org"})
    assert response.status_code == 200
    notice = last_message("auth.reset_link")
    assert (notice.user_id, notice.channel) == (user.id, "email")
    row = db.session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == user.id))
    assert notice.event == f"reset:{row.id}"
    token = reset_token_in(notice)
    # The link is on Minga's own address, whatever Host the request that asked for it sent.
    assert notice.link.startswith(app.config["PUBLIC_BASE_URL"] + "/password/reset/")
    # Only the token's SHA-256 is stored; it lasts PASSWORD_RESET_TTL_MINUTES (60).
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.secret_hash, row.payload or "")
    lasts = row.expires_at - row.created_at
    assert timedelta(minutes=59) < lasts <= timedelta(minutes=60, seconds=1)
    page = client.get(f"/password/reset/{token}")
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    response = client.post(f"/password/reset/{token}", data={
        "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert logged_in(client)  # this browser, on a new session
    db.session.expire_all()
    assert check_password_hash(db.session.get(User, user.id).password_hash, NEW_PASSWORD)
    assert not logged_in(replay(app, stolen))
    assert db.session.scalar(select(func.count()).select_from(ApiToken).where(
        ApiToken.user_id == user.id)) == 0
    # Used: the link works no more.
    assert client.get(f"/password/reset/{token}").status_code == 404
    again = app.test_client().post(f"/password/reset/{token}", data={
        "password": "another-long-secret!", "password_confirm": "another-long-secret!"})
    assert again.status_code == 404
    db.session.expire_all()
    assert check_password_hash(db.session.get(User, user.id).password_hash, NEW_PASSWORD)


def test_an_unknown_account_gets_the_same_page_and_status_and_nothing_is_sent(
        client, make_user):
    make_user(email="known@example.org")
    known = client.post("/password/forgot", data={"login": "known@example.org"})
    unknown = client.post("/password/forgot", data={"login": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    strip = lambda r: re.sub(r'name="csrf_token"[^>]*', "", r.get_data(as_text=True))  # noqa
    assert strip(known) == strip(unknown)
    assert [m.template for m in messages_to()] == ["auth.reset_link"]
    # By phone too: the code page, the same for a phone nobody has.
    by_phone = client.post("/password/forgot", data={"login": "3109998877"})
    assert by_phone.status_code == 200 and "6" in by_phone.get_data(as_text=True)
    assert len(messages_to()) == 1


def test_a_reset_link_expires_is_replaced_by_a_newer_one_and_refuses_weak_passwords(
        client, make_user):
    user = make_user(email="eva@example.org")
    client.post("/password/forgot", data={"login": "eva@example.org"})
    first = reset_token_in(last_message("auth.reset_link"))
    client.post("/password/forgot", data={"login": "eva@example.org"})
    second = reset_token_in(last_message("auth.reset_link"))
    assert first != second
    assert client.get(f"/password/reset/{first}").status_code == 404  # replaced
    # The password rules hold; the link still works after a refusal.
    for weak in ("short", "password1234"):
        response = client.post(f"/password/reset/{second}", data={
            "password": weak, "password_confirm": weak})
        assert response.status_code == 422
    response = client.post(f"/password/reset/{second}", data={
        "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD + "x"})
    assert response.status_code == 422 and "not the same" in response.get_data(as_text=True)
    assert client.get(f"/password/reset/{second}").status_code == 200
    row = db.session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == user.id)
                            .order_by(OneTimeCode.id.desc()))
    _expire(row.id)
    assert client.get(f"/password/reset/{second}").status_code == 404
    assert client.get("/password/reset/not-a-token-at-all-000000").status_code == 404


def test_asking_for_resets_is_rate_limited_per_address_and_per_account(app, client,
                                                                       make_user):
    make_user(email="flood@example.org")
    limit = int(app.config["RESET_RATE_LIMIT"].split()[0])
    for n in range(limit):
        assert client.post("/password/forgot", data={"login": "flood@example.org"},
                           environ_base={"REMOTE_ADDR": f"10.1.0.{n}"}).status_code == 200
    # The account: from a new address too.
    assert client.post("/password/forgot", data={"login": "flood@example.org"},
                       environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code == 429
    assert len(messages_to(template="auth.reset_link")) == limit
    # The address: whatever account it types.
    for n in range(limit):
        client.post("/password/forgot", data={"login": f"x{n}@example.org"},
                    environ_base={"REMOTE_ADDR": "10.2.0.1"})
    assert client.post("/password/forgot", data={"login": "other@example.org"},
                       environ_base={"REMOTE_ADDR": "10.2.0.1"}).status_code == 429


# ---------------------------------------------------------------- by phone: a 6-digit code

def _reset_by_code(client, login, code, secret, confirm=None):
    return client.post("/password/reset/code", data={
        "login": login, "code": code, "password": secret,
        "password_confirm": secret if confirm is None else confirm})


def test_a_farmer_resets_a_forgotten_pin_with_the_sms_code_and_logs_in(app, client, farmer):
    other = app.test_client()
    assert other.post("/login", data={"login": "3105550123", "password": PIN}
                      ).status_code == 302
    stolen = session_cookie(other)
    response = client.post("/password/forgot", data={"login": "310 555 0123"})
    assert response.status_code == 200
    notice = last_message("auth.reset_code")
    assert (notice.user_id, notice.channel) == (farmer.id, "sms")
    code = code_in(notice)
    assert re.fullmatch(r"[0-9]{6}", code)
    row = db.session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == farmer.id))
    assert code not in row.secret_hash and len(row.secret_hash) == 64
    assert timedelta(minutes=9) < row.expires_at - row.created_at <= timedelta(minutes=10,
                                                                               seconds=1)
    # A PIN account gets a new PIN (the PIN rules hold), not a password.
    weak = _reset_by_code(client, "3105550123", code, "1234")
    assert weak.status_code == 422 and "too easy" in weak.get_data(as_text=True)
    response = _reset_by_code(client, "3105550123", code, "5927")
    assert response.status_code == 302
    assert logged_in(client)
    assert not logged_in(replay(app, stolen))
    client.post("/logout")
    assert client.post("/login", data={"login": "+57 310 555 0123", "password": PIN}
                       ).status_code == 401
    assert client.post("/login", data={"login": "3105550123", "password": "5927"}
                       ).status_code == 302
    # Used once: the same code no longer works.
    assert _reset_by_code(app.test_client(), "3105550123", code, "6038").status_code == 422


def test_a_wrong_code_five_times_kills_it_and_the_sixth_try_fails_even_when_right(
        client, farmer, roomy):
    client.post("/password/forgot", data={"login": "3105550123"})
    code = code_in(last_message("auth.reset_code"))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(codes.MAX_TRIES):
        response = _reset_by_code(client, "3105550123", wrong, "5927")
        assert response.status_code == 422
        assert "not right" in response.get_data(as_text=True)
    row = db.session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == farmer.id))
    db.session.refresh(row)
    assert row.tries == codes.MAX_TRIES  # each try counted, though each request rolled back
    assert _reset_by_code(client, "3105550123", code, "5927").status_code == 422
    db.session.expire_all()
    assert check_password_hash(db.session.get(User, farmer.id).password_hash, PIN)
    # A new code must be asked for; it works.
    client.post("/password/forgot", data={"login": "3105550123"})
    fresh = code_in(last_message("auth.reset_code"))
    assert _reset_by_code(client, "3105550123", fresh, "5927").status_code == 302


def test_an_expired_code_and_bad_inputs_are_refused(client, farmer, roomy):
    client.post("/password/forgot", data={"login": "3105550123"})
    code = code_in(last_message("auth.reset_code"))
    for bad in ("12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 56"):
        response = _reset_by_code(client, "3105550123", bad, "5927")
        assert response.status_code == 422, bad
        assert f'value="{bad}"' in response.get_data(as_text=True)  # the input is kept
    row = db.session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == farmer.id))
    db.session.refresh(row)
    assert row.tries == 0  # a malformed code spends no try
    _expire(row.id)
    assert _reset_by_code(client, "3105550123", code, "5927").status_code == 422
    # An unknown phone, or a code for nobody: the same refusal.
    response = _reset_by_code(client, "3119990000", code, "5927")
    assert response.status_code == 422 and "not right" in response.get_data(as_text=True)


def test_a_password_account_resets_its_password_by_sms_on_its_channel(client, make_user):
    user = make_user(email="manager@example.org", phone="3001112233")
    auth_services.update_preferences(user, channel="whatsapp")
    db.session.commit()
    client.post("/password/forgot", data={"login": "+573001112233"})
    notice = last_message("auth.reset_code")
    assert notice.channel == "whatsapp"
    pin_like = _reset_by_code(client, "3001112233", code_in(notice), "5927")
    assert pin_like.status_code == 422  # a password account needs a password
    response = _reset_by_code(client, "3001112233", code_in(notice), NEW_PASSWORD)
    assert response.status_code == 302
    db.session.expire_all()
    assert check_password_hash(db.session.get(User, user.id).password_hash, NEW_PASSWORD)


def test_the_login_page_links_the_reset_and_offers_a_code(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/password/forgot"' in page and 'formaction="/login/code/send"' in page


# ---------------------------------------------------------------- phone login with a code

def test_a_farmer_logs_in_with_a_one_time_sms_code(client, farmer):
    response = client.post("/login/code/send", data={"login": "310-555-0123"})
    assert response.status_code == 200
    notice = last_message("auth.login_code")
    assert (notice.user_id, notice.channel) == (farmer.id, "sms")
    assert notice.event.startswith("login_code:")
    code = code_in(notice)
    response = client.post("/login/code", data={"login": "3105550123", "code": code})
    assert response.status_code == 302
    assert logged_in(client)
    # A session opened with a code is like one opened with a PIN: no payout changes.
    with client.session_transaction() as stored:
        assert stored["login_factor"] == "pin"
    client.post("/logout")
    assert client.post("/login/code", data={"login": "3105550123", "code": code}
                       ).status_code == 401  # single use


def test_a_login_code_answers_the_same_for_unknown_phones_and_password_accounts(
        client, make_user, farmer):
    make_user(email="buyer@example.org", phone="3001112244")
    pages = []
    for typed in ("3105550123", "3119990000", "3001112244"):
        response = client.post("/login/code/send", data={"login": typed})
        assert response.status_code == 200
        pages.append(re.sub(r'value="[^"]*"', "", response.get_data(as_text=True)))
    assert pages[0] == pages[1] == pages[2]
    # Only the farmer (a PIN account) was sent a code.
    assert [m.user_id for m in messages_to()] == [farmer.id]
    assert client.post("/login/code", data={"login": "3001112244", "code": "123456"}
                       ).status_code == 401


def test_login_codes_die_after_five_tries(client, farmer, roomy):
    client.post("/login/code/send", data={"login": "3105550123"})
    code = code_in(last_message("auth.login_code"))
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    for n in range(codes.MAX_TRIES):
        response = client.post("/login/code", data={"login": "3105550123", "code": wrong},
                               environ_base={"REMOTE_ADDR": f"10.3.0.{n}"})
        assert response.status_code == 401
    assert client.post("/login/code", data={"login": "3105550123", "code": code},
                       environ_base={"REMOTE_ADDR": "10.3.1.1"}).status_code == 401
    assert not logged_in(client)
    row = db.session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == farmer.id,
                                                      OneTimeCode.purpose == "login_code"))
    db.session.refresh(row)
    assert row.used_at is None and row.tries == codes.MAX_TRIES


def test_an_expired_login_code_is_refused(client, farmer):
    client.post("/login/code/send", data={"login": "3105550123"})
    code = code_in(last_message("auth.login_code"))
    row = db.session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == farmer.id))
    _expire(row.id)
    assert client.post("/login/code", data={"login": "3105550123", "code": code}
                       ).status_code == 401


def test_code_guessing_is_stopped_per_account_from_any_address_and_the_owner_told(
        app, client, farmer):
    """PIN_RATE_LIMIT (5 per 15 minutes) counts refused codes per account from every address
    (shared with the PIN logins); once reached, the owner is told once an hour."""
    client.post("/login/code/send", data={"login": "3105550123"})
    limit = int(app.config["PIN_RATE_LIMIT"].split()[0])
    statuses = [client.post("/login/code", data={"login": "3105550123", "code": "000001"},
                            environ_base={"REMOTE_ADDR": f"10.4.0.{n}"}).status_code
                for n in range(limit + 2)]
    assert statuses[:limit] == [401] * limit and statuses[limit:] == [429, 429]
    # Told once (the message's event is the account and the hour), on their channel.
    (told,) = messages_to(template="auth.login_throttled")
    assert (told.user_id, told.channel) == (farmer.id, "sms")
    assert told.event.startswith(f"login_throttled:{farmer.id}:")
    assert "muchos intentos fallidos" in told.body  # in the farmer's Spanish


def test_failed_pin_logins_tell_the_owner_once_the_account_is_throttled(app, client, farmer):
    limit = int(app.config["PIN_RATE_LIMIT"].split()[0])
    for n in range(limit + 1):
        client.post("/login", data={"login": "3105550123", "password": "9999"},
                    environ_base={"REMOTE_ADDR": f"10.5.0.{n}"})
    assert [m.template for m in messages_to()] == ["auth.login_throttled"]
    # An unknown account tells nobody.
    for n in range(limit + 1):
        client.post("/login", data={"login": "3119990000", "password": "9999"},
                    environ_base={"REMOTE_ADDR": f"10.6.0.{n}"})
    assert len(messages_to()) == 1


def test_the_code_service_counts_concurrent_tries_and_uses_a_code_once(farmer):
    row, code = codes.issue_code(farmer, "login_code")
    db.session.commit()
    used = codes.check_code(farmer, "login_code", code)
    db.session.commit()
    assert used.used_at is not None
    with pytest.raises(codes.CodeRefused) as refused:
        codes.check_code(farmer, "login_code", code)
    assert refused.value.reason == "code_missing"
    # A new code of the same purpose ends the one before.
    first, first_code = codes.issue_code(farmer, "login_code")
    second, second_code = codes.issue_code(farmer, "login_code")
    db.session.commit()
    if first_code != second_code:
        with pytest.raises(codes.CodeRefused):
            codes.check_code(farmer, "login_code", first_code)
    codes.check_code(farmer, "login_code", second_code)
