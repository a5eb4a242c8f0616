"""How the session's user proved who they are: a password, or a PIN (or a farmer's first-login
code) — `login_factor` in the session, set at login (auth.views.start_session). A PIN is
short and a farmer's phone is often shared: a PIN alone never changes where money is paid."""
from __future__ import annotations

from flask import session
from flask_babel import gettext as _

from ..common.errors import Forbidden


def logged_in_with_password() -> bool:
    return session.get("login_factor") == "password"


def require_password_login(field: str = "payout_account") -> None:
    """Forbidden (403 `password_login_required`) unless this session was opened with a
    password: changing payout details needs more than a PIN."""
    if not logged_in_with_password():
        raise Forbidden(_("Payout details change only in a session opened with a password, "
                          "not with a PIN. Log out and log in with your password."),
                        code="password_login_required",
                        fields={field: [_("Log in with a password to change this.")]})
