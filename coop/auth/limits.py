"""How many failed logins are allowed, for the login page and POST /api/v1/auth/tokens alike:
per client address (LOGIN_RATE_LIMIT) and per account typed, from any address
(LOGIN_ACCOUNT_RATE_LIMIT); a PIN or first-login code (digits only) harder still, per account
and per address (PIN_RATE_LIMIT). Each limit is shared by both routes (one `scope`) and, with
Redis as RATELIMIT_STORAGE_URI, by every worker. Only failed attempts count; once a limit is
reached every attempt is 429 until its window ends, then the right password gets in."""
from __future__ import annotations

import json

from flask import current_app, g, request

from ..extensions import limiter
from . import services


def _submitted() -> tuple[str, str]:
    """(login, secret) as the request typed them: the form's `login`/`password`, or the JSON
    body's `email`/`password` (the API)."""
    if request.form:
        return (str(request.form.get("login") or ""), str(request.form.get("password") or ""))
    if request.is_json or request.path.startswith("/api/"):
        try:
            data = json.loads(request.get_data(cache=True) or b"{}")
        except (ValueError, RecursionError, UnicodeDecodeError):
            return "", ""
        if isinstance(data, dict):
            login, secret = data.get("email"), data.get("password")
            return (login if isinstance(login, str) else "",
                    secret if isinstance(secret, str) else "")
    return "", ""


def account_key() -> str:
    """The account being tried, as typed (lower-cased; a phone by its last 9 digits, the same
    with or without the country code): the per-account limits hold from any address."""
    login = _submitted()[0].strip().lower()[:254]
    if "@" not in login:
        digits = "".join(ch for ch in login if ch.isascii() and ch.isdigit())
        login = digits[-9:] or login
    return "login-account:" + login


def _not_a_pin_attempt() -> bool:
    return not services.is_pin_like(_submitted()[1])


def _failed(response) -> bool:
    return response.status_code in (401, 429)


def _throttled(_limit) -> None:
    services.account_login_throttled(_submitted()[0])


def _config(name: str):
    return lambda: current_app.config[name]


def login_limits(view):
    """The four limits on a login route (the HTML login page, POST /api/v1/auth/tokens)."""
    view = limiter.shared_limit(_config("PIN_RATE_LIMIT"), scope="login-pin-address",
                                methods=["POST"], exempt_when=_not_a_pin_attempt,
                                deduct_when=_failed)(view)
    view = limiter.shared_limit(_config("PIN_RATE_LIMIT"), scope="login-pin-account",
                                key_func=account_key, methods=["POST"],
                                exempt_when=_not_a_pin_attempt, deduct_when=_failed,
                                on_breach=_throttled)(view)
    view = limiter.shared_limit(_config("LOGIN_ACCOUNT_RATE_LIMIT"), scope="login-account",
                                key_func=account_key, methods=["POST"], deduct_when=_failed,
                                on_breach=_throttled)(view)
    view = limiter.shared_limit(_config("LOGIN_RATE_LIMIT"), scope="login-address",
                                methods=["POST"], deduct_when=_failed)(view)
    return view


def attempt_counted() -> None:
    """This request is an attempt the code limits count (a well-formed request for a code, a
    code compared and refused): a form left empty or malformed is not one."""
    g.auth_attempt = True


def _counted(_response) -> bool:
    return bool(g.get("auth_attempt"))


def logged_in_key() -> str:
    """The logged-in account (for codes that confirm a change on the account page)."""
    from flask_login import current_user
    return f"login-account:user-{current_user.get_id()}"


def send_code_limits(key_func=account_key, *, per_address: bool = True):
    """Asking for a reset link or a code (reset, login, change of phone): RESET_RATE_LIMIT per
    account (`key_func`: the one typed) and, separately, per address, every well-formed
    request counted whether or not the account exists (each may send an SMS), shared by
    every page that sends one."""
    def decorate(view):
        view = limiter.shared_limit(_config("RESET_RATE_LIMIT"), scope="send-code-account",
                                    key_func=key_func, methods=["POST"],
                                    deduct_when=_counted)(view)
        if per_address:
            view = limiter.shared_limit(_config("RESET_RATE_LIMIT"), scope="send-code-address",
                                        methods=["POST"], deduct_when=_counted)(view)
        return view
    return decorate


def code_limits(key_func=account_key, *, per_address: bool = True):
    """Typing a code sent by SMS (to log in, reset a password or PIN, confirm a change):
    besides each code's own 5 tries, refused codes count against PIN_RATE_LIMIT per account
    (`key_func`: the one typed) and per address, shared with the PIN logins (one budget for
    guessing a farmer's way in); the account's owner is told when it is reached."""
    def decorate(view):
        view = limiter.shared_limit(_config("PIN_RATE_LIMIT"), scope="login-pin-account",
                                    key_func=key_func, methods=["POST"],
                                    deduct_when=_counted, on_breach=_throttled)(view)
        if per_address:
            view = limiter.shared_limit(_config("PIN_RATE_LIMIT"), scope="login-pin-address",
                                        methods=["POST"], deduct_when=_counted)(view)
        return view
    return decorate
