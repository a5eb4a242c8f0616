"""One-time secrets that prove a person holds the e-mail or phone on file (OWASP's forgot
password and one-time code rules): a reset link's random token (only its SHA-256 is kept,
valid PASSWORD_RESET_TTL_MINUTES) or a 6-digit code (kept as an HMAC keyed by the app's
secret, valid RESET_CODE_TTL_MINUTES). Each works once; a code dies after MAX_TRIES tries
(then a new one must be asked for); a new one of the same purpose ends the one before.
Compared in constant time. Written only here (table `one_time_codes`)."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import timedelta

from flask import current_app, g
from flask_babel import gettext as _
from sqlalchemy import select, update

from ..common.errors import ValidationFailed
from ..common.models import utcnow
from ..extensions import db
from .models import OneTimeCode, User

MAX_TRIES = 5
CODE_DIGITS = 6
PURPOSES = ("reset_link", "reset_code", "login_code", "phone_change", "payout_change")


class CodeRefused(ValidationFailed):
    """A code or link that does not work (wrong, expired, used, out of tries, none asked for):
    one message for all, so that the answer tells nothing about the account."""

    def __init__(self, reason: str, field: str = "code"):
        super().__init__(
            _("That code is not right, or no longer works (a code lasts %(minutes)d minutes "
              "and %(tries)d tries). Ask for a new one.",
              minutes=current_app.config["RESET_CODE_TTL_MINUTES"], tries=MAX_TRIES),
            code=reason, fields={field: [_("Not right, or no longer works.")]})
        self.reason = reason
        g.auth_attempt = True  # a code tried and refused: the code limits count it (limits.py)


def _code_hash(user_id: int, purpose: str, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{purpose}:{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _end_live(user: User, purpose: str) -> None:
    db.session.execute(update(OneTimeCode).where(
        OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose,
        OneTimeCode.used_at.is_(None)).values(tries=MAX_TRIES))


def issue_code(user: User, purpose: str, payload: dict | None = None
               ) -> tuple[OneTimeCode, str]:
    """A new 6-digit code for `purpose` (and what it confirms, `payload`); the code before it
    of the same purpose stops working. Returns the row and the code (to send, never kept)."""
    assert purpose in PURPOSES and purpose != "reset_link"
    _end_live(user, purpose)
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    ttl = timedelta(minutes=current_app.config["RESET_CODE_TTL_MINUTES"])
    row = OneTimeCode(user_id=user.id, purpose=purpose,
                      secret_hash=_code_hash(user.id, purpose, code),
                      payload=json.dumps(payload) if payload is not None else None,
                      expires_at=utcnow() + ttl)
    db.session.add(row)
    db.session.flush()
    return row, code


def issue_reset_link(user: User) -> tuple[OneTimeCode, str]:
    """A new reset link's token (32 random bytes); the link before it stops working."""
    _end_live(user, "reset_link")
    token = secrets.token_urlsafe(32)
    ttl = timedelta(minutes=current_app.config["PASSWORD_RESET_TTL_MINUTES"])
    row = OneTimeCode(user_id=user.id, purpose="reset_link", secret_hash=_token_hash(token),
                      expires_at=utcnow() + ttl)
    db.session.add(row)
    db.session.flush()
    return row, token


def _is_code(code) -> bool:
    return (isinstance(code, str) and len(code) == CODE_DIGITS and code.isascii()
            and code.isdigit())


def check_code(user: User | None, purpose: str, code: str, *, field: str = "code"
               ) -> OneTimeCode:
    """The live code row of `user` for `purpose` once `code` matches it: it is then used (in
    the caller's transaction). Refuses (CodeRefused, 422) no user, no code asked for, an
    expired one, one out of tries, a wrong one. Every try at a live code is counted AND
    COMMITTED at once, before comparing: a refusal that rolls the request back still spends
    the try, and concurrent tries never pass MAX_TRIES."""
    code = (code or "").strip() if isinstance(code, str) else ""
    if user is None:
        hmac.compare_digest(_code_hash(0, purpose, "000000"), _code_hash(0, purpose, code))
        raise CodeRefused("code_wrong", field)
    if not _is_code(code):
        raise ValidationFailed(_("A code is %(n)d digits.", n=CODE_DIGITS), code="code_format",
                               fields={field: [_("%(n)d digits.", n=CODE_DIGITS)]})
    row = db.session.scalar(select(OneTimeCode).where(
        OneTimeCode.user_id == user.id, OneTimeCode.purpose == purpose,
        OneTimeCode.used_at.is_(None)).order_by(OneTimeCode.id.desc()).limit(1))
    if row is None:
        raise CodeRefused("code_missing", field)
    if row.expires_at <= utcnow():
        raise CodeRefused("code_expired", field)
    counted = db.session.execute(update(OneTimeCode).where(
        OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None),
        OneTimeCode.tries < MAX_TRIES).values(tries=OneTimeCode.tries + 1)).rowcount
    row_id = row.id
    # The try is spent whatever happens next (see the docstring): this request's only other
    # commit, made before it wrote anything else.
    db.session.commit()
    if not counted:
        raise CodeRefused("code_spent", field)
    row = db.session.get(OneTimeCode, row_id)
    if not hmac.compare_digest(row.secret_hash, _code_hash(user.id, purpose, code)):
        raise CodeRefused("code_wrong", field)
    _use(row)
    return row


def _use(row: OneTimeCode) -> None:
    used = db.session.execute(update(OneTimeCode).where(
        OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None)).values(
        used_at=utcnow())).rowcount
    if not used:  # another request used it first
        raise CodeRefused("code_spent")
    db.session.expire(row, ["used_at"])


def reset_link_row(token: str) -> OneTimeCode | None:
    """The live reset link for `token` (None: unknown, used, expired or replaced)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100 or not token.isascii():
        return None
    row = db.session.scalar(select(OneTimeCode).where(
        OneTimeCode.secret_hash == _token_hash(token), OneTimeCode.purpose == "reset_link"))
    if row is None or row.used_at is not None or row.tries >= MAX_TRIES \
            or row.expires_at <= utcnow():
        return None
    return row


def use_reset_link(token: str) -> OneTimeCode:
    """The reset link's row, now used (in the caller's transaction); CodeRefused when it does
    not work (see reset_link_row) or another request used it first."""
    row = reset_link_row(token)
    if row is None:
        raise CodeRefused("link_dead", "password")
    _use(row)
    return row


def payload_of(row: OneTimeCode) -> dict:
    return json.loads(row.payload) if row.payload else {}
