"""What the tests of sessions, tokens, passwords and headers share (tests/auth, tests/api,
tests/test_headers.py): a farmer who logs in with a PIN, the session cookie to replay, a clock
to move the rate limits' windows."""
from __future__ import annotations

import itertools

from coop.auth import services as auth_services
from coop.cooperatives import services as coop_services
from coop.extensions import db

PIN = "4831"
_seq = itertools.count(1)


def pin_farmer(coop, phone: str | None = None, pin: str = PIN):
    """A farmer with a phone and no e-mail who has chosen `pin` (as at their first login)."""
    n = next(_seq)
    phone = phone or f"57310555{n:04d}"
    profile = coop_services.add_farmer(
        coop, name=f"Farmer PIN {n}", email=None, password=auth_services.first_login_code(),
        phone=phone, member_number=f"P-{n}", national_id=f"{8000000 + n}",
        payout_rail="nequi", payout_account="3001234567")
    auth_services.set_pin(profile.user, pin, pin)
    db.session.commit()
    return profile


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def replay(app, cookie: str):
    """A new browser holding an old session cookie (as an attacker who copied it would)."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def logged_in(client) -> bool:
    """Whether the client's session logs someone in (the account page answers, not a login)."""
    return client.get("/account").status_code == 200


class Clock:
    """Moves the rate limits' clock (the limits package's memory storage reads time.time())."""

    def __init__(self, monkeypatch):
        import time as real_time

        import limits.storage.memory as memory
        self.offset = 0.0
        clock = self

        class _Time:
            def __getattr__(self, name):
                return getattr(real_time, name)

            @staticmethod
            def time():
                return real_time.time() + clock.offset
        monkeypatch.setattr(memory, "time", _Time())

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def client_as(app, user, lang: str = "en"):
    """A test client logged in as `user` (a password session, fresh), reading `lang`."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = lang
    with client.session_transaction() as session:
        session["lang"] = lang
        session["_user_id"] = user.get_id()
        session["login_factor"] = "password"
        session["_fresh"] = True
    return client
