"""Accounts: buyer sign-up, login by e-mail or phone, logout, hashing, rate limits, CSRF,
and the production configuration's refusal of the development secret key."""
from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

import config
from coop import create_app
from coop.auth import services
from coop.auth.models import Buyer, User
from coop.extensions import db
from tests.support import PASSWORD

REDIS_URI = "redis://127.0.0.1:6379/15"


@pytest.fixture
def en(client):
    """Ask for English, so the tests can read the messages."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def counts() -> tuple[int, int]:
    db.session.expire_all()
    return (db.session.scalar(select(func.count()).select_from(User)),
            db.session.scalar(select(func.count()).select_from(Buyer)))


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


# --- sign-up ---------------------------------------------------------------------------------

def test_buyer_signup_creates_organisation_and_logs_in(en):
    response = en.post("/signup", data={"organisation": "Tostadores del Sur", "name": "Ana",
                                        "email": "Ana@Tostadores.example", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/supply")
    user = db.session.scalar(select(User).where(User.email == "ana@tostadores.example"))
    assert user is not None and user.name == "Ana"
    assert user.buyer is not None and user.buyer.organisation == "Tostadores del Sur"
    assert user.memberships == []
    account = en.get("/account")
    assert account.status_code == 200 and b"ana@tostadores.example" in account.data


def test_signup_without_name_uses_the_organisation(en):
    assert en.post("/signup", data={"organisation": "Chocolates Kallpa",
                                    "email": "k@example.org", "password": PASSWORD}
                   ).status_code == 302
    user = db.session.scalar(select(User).where(User.email == "k@example.org"))
    assert user.name == "Chocolates Kallpa"


@pytest.mark.parametrize("data, field, message", [
    ({"organisation": "", "email": "a@example.org"}, "organisation", "This field is required"),
    ({"organisation": "   ", "email": "a@example.org"}, "organisation", "This field is required"),
    ({"organisation": "Org", "email": "not-an-email"}, "email", "Invalid email address"),
    ({"organisation": "Org", "email": "a@b"}, "email", "Invalid email address"),
    ({"organisation": "Org", "email": "a@example.org", "password": "short"}, "password",
     "At least 12 characters"),
    ({"organisation": "O" * 5000, "email": "a@example.org"}, "organisation",
     "longer than 160 characters"),
    ({"organisation": "Org", "email": "a" * 3000 + "@example.org"}, "email",
     "cannot be longer than 254 characters"),
    ({"organisation": "Org", "email": "a@example.org", "password": "p" * 5000}, "password",
     "cannot be longer than 200 characters"),
])
def test_signup_refuses_bad_input_keeps_it_and_writes_nothing(en, data, field, message):
    data = {"password": PASSWORD, "name": "Kept Name", **data}
    before = counts()
    response = en.post("/signup", data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="{field}-err"' in html           # the message sits next to the field
    assert message in html
    assert 'value="Kept Name"' in html            # the user's input is still there
    if field != "organisation" and data["organisation"].strip():
        assert f'value="{data["organisation"]}"' in html
    if data["email"] and len(data["email"]) < 300:
        assert f'value="{data["email"]}"' in html
    assert counts() == before


def test_signup_refuses_a_taken_email_whatever_its_case(en, make_buyer):
    make_buyer(email="taken@example.org")
    before = counts()
    response = en.post("/signup", data={"organisation": "Second Org", "email": "TAKEN@example.org",
                                        "password": PASSWORD})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "An account with that e-mail already exists." in html
    assert 'value="Second Org"' in html and 'value="TAKEN@example.org"' in html
    assert counts() == before
    assert db.session.scalar(select(Buyer).where(Buyer.organisation == "Second Org")) is None


def test_signup_service_rules():
    from coop.auth import services
    from coop.common.errors import Conflict, ValidationFailed
    with pytest.raises(ValidationFailed) as exc:
        services.sign_up_buyer(organisation="", email="x@example.org", password=PASSWORD)
    assert "organisation" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        services.sign_up_buyer(organisation="O" * 161, email="x@example.org", password=PASSWORD)
    assert "organisation" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        services.sign_up_buyer(organisation="Org", email="x@example.org", password="123456789")
    assert "password" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        services.sign_up_buyer(organisation="Org", email="nope", password=PASSWORD)
    assert "email" in exc.value.fields
    services.sign_up_buyer(organisation="Org", email="x@example.org", password=PASSWORD)
    with pytest.raises(Conflict) as exc:
        services.sign_up_buyer(organisation="Org 2", email=" X@Example.org ", password=PASSWORD)
    assert exc.value.code == "email_taken"
    with pytest.raises(ValidationFailed):
        services.create_user(email="y@example.org", name="Y", password=PASSWORD, phone="12ab")
    services.create_user(email="y@example.org", name="Y", password=PASSWORD, phone="+57 300 000 0001")
    with pytest.raises(Conflict) as exc:
        services.create_user(email="z@example.org", name="Z", password=PASSWORD,
                             phone="573000000001")
    assert exc.value.code == "phone_taken"


def test_passwords_are_stored_hashed(make_user):
    user = make_user(password="a-long-secret-phrase")
    db.session.expire_all()
    stored = db.session.get(User, user.id).password_hash
    assert "a-long-secret-phrase" not in stored
    assert stored.startswith(("pbkdf2:", "scrypt:"))
    assert check_password_hash(stored, "a-long-secret-phrase")
    assert not check_password_hash(stored, "a-long-secret-phrasE")
    # Two people with the same password get different hashes (salted).
    other = make_user(password="a-long-secret-phrase")
    assert db.session.get(User, other.id).password_hash != stored


# --- login and logout ------------------------------------------------------------------------

def test_login_by_email_any_case(en, make_user):
    user = make_user(email="farmer.ana@example.org")
    response = en.post("/login", data={"login": "  Farmer.Ana@Example.org ", "password": PASSWORD})
    assert response.status_code == 302
    assert en.get("/account").status_code == 200


@pytest.mark.parametrize("typed", ["+57 300 123 4567", "573001234567", "3001234567",
                                   "300-123-4567", "(300) 123 4567"])
def test_login_by_phone_with_or_without_country_code(en, make_user, typed):
    make_user(phone="+57 300 123 4567")
    response = en.post("/login", data={"login": typed, "password": PASSWORD})
    assert response.status_code == 302, typed
    assert en.get("/account").status_code == 200


def test_login_with_country_code_when_registered_without(en, make_user):
    services.create_user(email="pe@example.org", name="Peruana", password=PASSWORD,
                         phone="987654321", region="PE")  # a Peruvian mobile, without +51
    db.session.commit()
    assert db.session.scalar(select(User.phone).where(User.email == "pe@example.org")) \
        == "+51987654321"
    for typed in ("+51 987 654 321", "51987654321", "987 654 321"):
        assert en.post("/login", data={"login": typed, "password": PASSWORD}
                       ).status_code == 302, typed
        en.post("/logout")


def test_phone_login_needs_the_whole_number(en, make_user):
    make_user(phone="+57 300 123 4567")
    # Only a country code (1 to 3 digits) may be left off, not the start of the number.
    for typed in ("1234567", "01234567", "23 4567"):
        assert en.post("/login", data={"login": typed, "password": PASSWORD}
                       ).status_code == 401, typed


def test_phone_login_reads_a_national_number_in_each_country_of_the_platform(en, make_user):
    colombian = make_user(phone="573001234567")
    peruvian = services.create_user(email="pe2@example.org", name="P", password=PASSWORD,
                                    phone="+51 912 345 678")
    db.session.commit()
    assert (colombian.phone, peruvian.phone) == ("+573001234567", "+51912345678")
    assert services.find_by_login("300 123 4567").id == colombian.id
    assert services.find_by_login("912345678").id == peruvian.id
    assert services.find_by_login("+57 912 345 678") is None  # no such Colombian number


def test_wrong_password_or_unknown_login_is_refused_clearly(en, make_user):
    make_user(email="someone@example.org", phone="3001112233")
    for login in ("someone@example.org", "nobody@example.org", "3001112233", "+57 999"):
        response = en.post("/login", data={"login": login, "password": "wrong-password!"})
        assert response.status_code == 401
        html = response.get_data(as_text=True)
        assert "Wrong e-mail, phone or password." in html
        assert f'value="{login}"' in html  # what was typed stays
    response = en.post("/login", data={"login": "x" * 5000, "password": "wrong-password!"})
    assert response.status_code == 422
    assert "cannot be longer than 254 characters" in response.get_data(as_text=True)
    assert en.get("/account").status_code == 302


def test_login_with_empty_fields_is_a_form_error(en):
    response = en.post("/login", data={"login": "", "password": ""})
    assert response.status_code == 422
    assert "This field is required" in response.get_data(as_text=True)


def test_login_next_only_redirects_inside_minga(en, make_user):
    user = make_user()
    response = en.post("/login?next=/account", data={"login": user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/account"
    en.post("/logout")
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)",
                   "/%5Cevil.example", "/%5C%5Cevil.example", "/%0D%0ASet-Cookie:%20evil=1"):
        response = en.post(f"/login?next={target}",
                           data={"login": user.email, "password": PASSWORD})
        assert response.status_code == 302
        assert "evil" not in response.headers["Location"]
        assert not response.headers["Location"].startswith("javascript")
        assert "\\" not in response.headers["Location"]
        assert "Set-Cookie" not in response.headers["Location"]
        en.post("/logout")


def test_logout_is_a_post(en, login, make_user):
    login(make_user())
    assert en.get("/logout").status_code == 405
    assert en.get("/account").status_code == 200
    response = en.post("/logout")
    assert response.status_code == 302
    response = en.get("/account")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_csrf_token_required_on_forms(other_app, make_user):
    strict = other_app(WTF_CSRF_ENABLED=True)
    client = strict.test_client()
    user = make_user()
    refused = client.post("/login", data={"login": user.email, "password": PASSWORD})
    assert refused.status_code == 400
    assert client.get("/account").status_code == 302
    refused = client.post("/signup", data={"organisation": "No Token Org",
                                           "email": "notoken@example.org", "password": PASSWORD})
    assert refused.status_code == 400
    assert db.session.scalar(select(User).where(User.email == "notoken@example.org")) is None

    page = client.get("/login").get_data(as_text=True)
    accepted = client.post("/login", data={"login": user.email, "password": PASSWORD,
                                           "csrf_token": csrf_token(page)})
    assert accepted.status_code == 302
    # Logging out needs the token too: a cross-site POST cannot log a user out.
    assert client.post("/logout").status_code == 400
    assert client.get("/account").status_code == 200
    page = client.get("/account").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert client.get("/account").status_code == 302


# --- rate limits -----------------------------------------------------------------------------

def _bad_html(client, user):
    return client.post("/login", data={"login": user.email, "password": "wrong-password!"})


def test_sixth_failed_html_login_in_a_minute_is_429(en, make_user):
    user = make_user()
    for _ in range(5):
        assert _bad_html(en, user).status_code == 401
    response = _bad_html(en, user)
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Too many attempts. Wait a minute and try again." in html
    assert int(response.headers["Retry-After"]) > 0
    # Even the right password waits now: the limit is on attempts, not on guesses.
    assert en.post("/login", data={"login": user.email, "password": PASSWORD}
                   ).status_code == 429
    # Reading the form is not limited.
    assert en.get("/login").status_code == 200


def test_sixth_failed_api_token_request_is_json_429(client, make_user):
    user = make_user()
    for _ in range(5):
        response = client.post("/api/v1/auth/tokens",
                               json={"email": user.email, "password": "wrong-password!"})
        assert response.status_code == 401
        assert response.json["error"]["code"] == "invalid_credentials"
    response = client.post("/api/v1/auth/tokens",
                           json={"email": user.email, "password": "wrong-password!"})
    assert response.status_code == 429
    assert response.is_json
    assert response.json["error"]["code"] == "rate_limited"
    assert response.json["error"]["message"]
    assert response.json["error"]["fields"] == {}
    assert int(response.headers["Retry-After"]) > 0


def test_successful_logins_do_not_count(en, make_user):
    user = make_user()
    for _ in range(8):
        assert en.post("/login", data={"login": user.email, "password": PASSWORD}
                       ).status_code == 302
    for _ in range(8):
        assert en.post("/api/v1/auth/tokens", json={"email": user.email, "password": PASSWORD}
                       ).status_code == 201
    for _ in range(5):
        assert _bad_html(en, user).status_code == 401
    assert _bad_html(en, user).status_code == 429


def test_successes_between_failures_do_not_reset_or_add(en, make_user):
    user = make_user()
    for _ in range(4):
        assert _bad_html(en, user).status_code == 401
    for _ in range(3):
        assert en.post("/login", data={"login": user.email, "password": PASSWORD}
                       ).status_code == 302
    assert _bad_html(en, user).status_code == 401   # the fifth failure
    assert _bad_html(en, user).status_code == 429   # the sixth


def test_login_limit_holds_across_clients_and_apps_through_redis(other_app, make_user):
    import redis
    store = redis.Redis.from_url(REDIS_URI)
    prefix = f"minga-test-{uuid.uuid4().hex}"
    user = make_user()
    try:
        shared = other_app(RATELIMIT_STORAGE_URI=REDIS_URI, CELERY_BROKER_URL=REDIS_URI, RATELIMIT_KEY_PREFIX=prefix)
        first, second = shared.test_client(), shared.test_client()
        for client in (first, second, first, second, first):
            assert _bad_html(client, user).status_code == 401
        assert _bad_html(second, user).status_code == 429
        assert _bad_html(first, user).status_code == 429
        assert list(store.scan_iter(f"*{prefix}*")), "the counter should live in Redis"
        # Another worker (here: another app, with its own fresh storage connection) sees the
        # same counter; with per-process memory storage it would start again from zero.
        worker = other_app(RATELIMIT_STORAGE_URI=REDIS_URI, CELERY_BROKER_URL=REDIS_URI, RATELIMIT_KEY_PREFIX=prefix)
        assert _bad_html(worker.test_client(), user).status_code == 429
    finally:
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)
    assert not list(store.scan_iter(f"*{prefix}*"))


def test_memory_storage_would_not_share_between_workers(other_app, make_user):
    """The control for the test above: it is Redis that makes the limit hold."""
    user = make_user()
    one = other_app(RATELIMIT_STORAGE_URI="memory://")
    for _ in range(5):
        _bad_html(one.test_client(), user)
    assert _bad_html(one.test_client(), user).status_code == 429
    two = other_app(RATELIMIT_STORAGE_URI="memory://")
    assert _bad_html(two.test_client(), user).status_code == 401


# --- production configuration ----------------------------------------------------------------

def test_production_refuses_the_default_secret_key(monkeypatch, app, other_app):
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", config.DEFAULT_SECRET_KEY)
    monkeypatch.setattr(config.ProductionConfig, "RATELIMIT_STORAGE_URI", REDIS_URI)
    monkeypatch.setattr(config.ProductionConfig, "CELERY_BROKER_URL", REDIS_URI)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        config.ProductionConfig.check()
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production", SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"])
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("production", SECRET_KEY="short")
    # Set in the environment (here: on the class) or given to create_app, a real key starts it.
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", "k" * 64)
    config.ProductionConfig.check()
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", config.DEFAULT_SECRET_KEY)
    production = other_app("production", SECRET_KEY=uuid.uuid4().hex * 2,
                           RATELIMIT_STORAGE_URI=REDIS_URI, CELERY_BROKER_URL=REDIS_URI)
    assert production.config["SESSION_COOKIE_SECURE"] is True
    assert production.config["TESTING"] is False
    with pytest.raises(RuntimeError):
        create_app("production", SECRET_KEY=config.DEFAULT_SECRET_KEY)
