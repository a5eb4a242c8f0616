"""Getting in without help (issue 11, section 4): a forgotten password (or PIN) reset by an
e-mail link or a 6-digit SMS code, and a farmer's login by an SMS code. Every request answers
the same whether or not the account exists (the views show one page); what is sent goes
through the messages domain (`messages.notify`), in the person's language."""
from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _

from ..common.errors import ValidationFailed
from ..extensions import db
from . import codes, services
from .models import User


def _notify(user: User, template: str, **kwargs) -> None:
    from ..messages import services as messages
    messages.notify(user, template, **kwargs)


phone_channel = services.phone_channel


def uses_pin(user: User) -> bool:
    """A farmer without e-mail logs in with a PIN (or a first-login code), not a password."""
    return user.email is None


def request_reset(login: str) -> str:
    """Sends a reset to the account `login` names, if there is one: a link by e-mail when an
    e-mail was typed, else a 6-digit code to the phone on file (SMS or WhatsApp). Returns how
    the answer page speaks ("email" or "phone", from what was typed, never from the account),
    the same whether or not the account exists."""
    login = (login or "").strip()
    by = "email" if "@" in login else "phone"
    user = services.find_by_login(login)
    if user is None:
        return by
    if by == "email" and user.email:
        row, token = codes.issue_reset_link(user)
        # A path: the messages domain makes it absolute with PUBLIC_BASE_URL, never with the
        # request's Host header (which whoever asks for the reset controls).
        _notify(user, "auth.reset_link", event=f"reset:{row.id}", channel="email",
                link=url_for("auth.reset_with_link", token=token))
    elif user.phone:
        row, code = codes.issue_code(user, "reset_code")
        _notify(user, "auth.reset_code", event=f"reset:{row.id}", channel=phone_channel(user),
                code=code)
    return by


def _new_secret(user: User, secret: str, confirm: str) -> str:
    """Sets the new password, or PIN for a PIN account (the same rules as everywhere); every
    session and API token of the account ends. Returns the login factor: "pin" or
    "password"."""
    if uses_pin(user):
        try:
            services.set_pin(user, secret, confirm)
        except ValidationFailed as exc:  # the form's fields are `password`, `password_confirm`
            exc.fields = {("password_confirm" if k == "pin_confirm" else "password"): v
                          for k, v in exc.fields.items()}
            raise
        return "pin"
    services.check_new_password(secret, field="password")
    if confirm != secret:
        raise ValidationFailed(_("The two new passwords are not the same."),
                               fields={"password_confirm": [_(
                                   "Type the same password.")]})
    user.password_hash = services.hash_password(secret)
    user.must_set_pin = False
    services.end_sessions(user)
    services.revoke_all_tokens(user)
    return "password"


def link_works(token: str) -> User | None:
    """The account a live reset link is for, else None (the page says to ask for a new one)."""
    row = codes.reset_link_row(token)
    return db.session.get(User, row.user_id) if row is not None else None


def reset_with_link(token: str, secret: str, confirm: str) -> tuple[User, str]:
    """The new password from a reset link, which then stops working; every other session and
    API token of the account ends. Refuses a dead link (CodeRefused) and a password that
    breaks the rules (the link still works then)."""
    row = codes.use_reset_link(token)
    user = db.session.get(User, row.user_id)
    return user, _new_secret(user, secret, confirm)


def reset_with_code(login: str, code: str, secret: str, confirm: str) -> tuple[User, str]:
    """The new password (or PIN) given the 6-digit code sent to the account's phone. Refuses,
    with one message, an unknown account and a wrong, expired, used or spent code; a new
    secret that breaks the rules keeps the code (the try is counted)."""
    user = services.find_by_login(login)
    codes.check_code(user, "reset_code", code)
    return user, _new_secret(user, secret, confirm)


def request_login_code(login: str) -> None:
    """Sends a one-time login code to the phone of the PIN account `login` names, if there is
    one (nothing otherwise: the same answer)."""
    user = services.find_by_login(login)
    if user is None or not user.phone or not uses_pin(user):
        return
    row, code = codes.issue_code(user, "login_code")
    _notify(user, "auth.login_code", event=f"login_code:{row.id}", channel=phone_channel(user),
            code=code)


def login_with_code(login: str, code: str) -> User:
    """The PIN account whose phone received `code`; CodeRefused otherwise (one message)."""
    user = services.find_by_login(login)
    if user is not None and not uses_pin(user):
        user = None
    codes.check_code(user, "login_code", code)
    return user
