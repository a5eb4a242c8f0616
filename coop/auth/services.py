"""Accounts: buyer sign-up, login by e-mail or phone, sessions that end, API tokens."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.models import utcnow
from ..extensions import db
from .models import ApiToken, Buyer, User

from .passwords import MAX_PASSWORD, MIN_PASSWORD, check_new_password  # noqa: F401 (re-exported)

# Checked against when the login is unknown, so both paths cost the same time.
_DUMMY_HASH = None


def normalise_email(raw: str) -> str:
    """Lower-cased, validated address; raises ValidationFailed with a readable reason."""
    raw = (raw or "").strip()
    if not raw:
        raise ValidationFailed(_("E-mail is required."), fields={"email": [_("Required.")]})
    if len(raw) > 254:
        raise ValidationFailed(_("That e-mail is too long."), fields={"email": [_("Too long.")]})
    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValidationFailed(_("That is not a valid e-mail address."),
                               fields={"email": [_("Not a valid e-mail address.")]})


def normalise_phone(raw: str | None) -> str | None:
    """Digits only ("+57 300 123 4567" -> "573001234567"); None when empty; refuses junk."""
    if raw is None or not str(raw).strip():
        return None
    digits = re.sub(r"[\s\-().+]", "", str(raw))
    if not re.fullmatch(r"[0-9]{7,15}", digits):
        raise ValidationFailed(_("A phone number has 7 to 15 digits."),
                               fields={"phone": [_("7 to 15 digits.")]})
    return digits


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config.get(
        "PASSWORD_HASH_METHOD", "scrypt"))


def email_taken(email: str) -> bool:
    return db.session.scalar(select(func.count()).select_from(User).where(User.email == email)) > 0


def create_user(*, email: str | None, name: str, password: str, phone: str | None = None,
                locale: str | None = None, must_set_pin: bool = False) -> User:
    """A new person. Refuses a taken e-mail or phone, a short password, an empty name. Without
    an e-mail (only for farmers a manager registers, with `must_set_pin`) a phone is required,
    and it is how they log in (`must_set_pin`: such a farmer chooses a PIN at first login)."""
    if must_set_pin and (email is None or not str(email).strip()):
        if phone is None or not str(phone).strip():
            raise ValidationFailed(_("Give a phone number when there is no e-mail."),
                                   fields={"phone": [_("Required when there is no e-mail.")]})
        email = None
    else:
        email = normalise_email(email)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Name is required."), fields={"name": [_("Required.")]})
    if len(name) > 120:
        raise ValidationFailed(_("That name is too long."), fields={"name": [_("Too long.")]})
    if not must_set_pin:  # else a first-login code, replaced by a PIN at the first login
        check_new_password(password)
    phone = normalise_phone(phone)
    if email is not None and email_taken(email):
        raise Conflict(_("An account with that e-mail already exists."), code="email_taken",
                       fields={"email": [_("Already registered.")]})
    if phone and db.session.scalar(select(User.id).where(User.phone == phone)):
        raise Conflict(_("An account with that phone number already exists."),
                       code="phone_taken", fields={"phone": [_("Already registered.")]})
    user = User(email=email, name=name, phone=phone, password_hash=hash_password(password),
                locale=locale, must_set_pin=must_set_pin)
    try:
        with db.session.begin_nested():
            db.session.add(user)
    except IntegrityError:
        # Signed up at the same moment with the same e-mail or phone: the database decided.
        raise Conflict(_("An account with that e-mail or phone already exists."),
                       code="email_taken", fields={"email": [_("Already registered.")]})
    return user


def sign_up_buyer(*, organisation: str, email: str, password: str, name: str | None = None,
                  locale: str | None = None) -> User:
    """A buying organisation and its first user."""
    organisation = (organisation or "").strip()
    if not organisation:
        raise ValidationFailed(_("Organisation name is required."),
                               fields={"organisation": [_("Required.")]})
    if len(organisation) > 160:
        raise ValidationFailed(_("That organisation name is too long."),
                               fields={"organisation": [_("Too long.")]})
    user = create_user(email=email, name=name or organisation, password=password, locale=locale)
    buyer = Buyer(organisation=organisation)
    db.session.add(buyer)
    db.session.flush()
    user.buyer_id = buyer.id
    return user


def find_by_login(login: str) -> User | None:
    """The user whose e-mail or phone number is `login` (phone with or without country code)."""
    login = (login or "").strip()
    if not login or len(login) > 254:
        return None
    if "@" in login:
        return db.session.scalar(select(User).where(User.email == login.lower()))
    try:
        phone = normalise_phone(login)
    except ValidationFailed:
        return None
    user = db.session.scalar(select(User).where(User.phone == phone))
    if user is None:
        # Typed without the country code (1 to 3 digits), or registered without it while typed
        # with it: accept only when exactly one number differs from it by such a code.
        shorter = [phone[n:] for n in (1, 2, 3) if len(phone) - n >= 7]
        matches = list(db.session.scalars(select(User).where(or_(
            and_(User.phone.like(f"%{phone}"),
                 func.length(User.phone).between(len(phone) + 1, len(phone) + 3)),
            User.phone.in_(shorter))).limit(2)))
        user = matches[0] if len(matches) == 1 else None
    return user


def authenticate(login: str, password: str) -> User | None:
    """The user if the password matches; None otherwise (same work whether or not they exist)."""
    global _DUMMY_HASH
    user = find_by_login(login)
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password("not-a-real-password")
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or ""):
        return None
    return user


PIN_LENGTHS = (4, 6)
# The PINs people pick most, after repeated digits and runs (which are refused by rule).
_COMMON_PINS = {"1212", "2580", "0852", "1004", "2000", "2001", "1122", "6969", "1010",
                "2020", "2021", "2022", "2023", "2024", "2025", "2026", "112233", "121212",
                "123123", "159753", "147258", "102030", "010203", "131313", "696969"}


def _run(pin: str) -> bool:
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:])}
    return steps in ({1}, {9})  # 1234, 6789, 7890, 4321, 9876...


def check_new_pin(pin: str, confirm: str | None = None, user: User | None = None) -> str:
    """A PIN of 4 to 6 digits that is not trivially guessed: not one digit repeated (0000),
    not a run (1234, 9876), not a common one (2580, 1212), not the end of the farmer's phone."""
    pin = (pin or "").strip()
    low, high = PIN_LENGTHS
    if not pin.isascii() or not pin.isdigit() or not low <= len(pin) <= high:
        raise ValidationFailed(_("A PIN is %(low)d to %(high)d digits.", low=low, high=high),
                               fields={"pin": [_("Only digits, %(low)d to %(high)d of them.",
                                                 low=low, high=high)]})
    weak = (len(set(pin)) == 1 or _run(pin) or pin in _COMMON_PINS
            or (user is not None and user.phone and user.phone.endswith(pin)))
    if weak:
        raise ValidationFailed(_("That PIN is too easy to guess. Choose digits that are not "
                                 "all the same, not in a row and not your phone number."),
                               fields={"pin": [_("Too easy to guess.")]})
    if confirm is not None and (confirm or "").strip() != pin:
        raise ValidationFailed(_("The two PINs are not the same."),
                               fields={"pin_confirm": [_("Type the same PIN again.")]})
    return pin


def set_pin(user: User, pin: str, confirm: str | None = None) -> None:
    """The farmer's PIN replaces the first password (hashed like a password); their other
    sessions and their API tokens end, as on any change of password."""
    pin = check_new_pin(pin, confirm, user)
    user.password_hash = hash_password(pin)
    user.must_set_pin = False
    end_sessions(user)
    revoke_all_tokens(user)


def first_login_code() -> str:
    """A one-time code of 8 digits a manager hands to a farmer for their first login (easy to
    type on any phone); the farmer replaces it by their PIN at once."""
    return f"{secrets.randbelow(10**8):08d}"


def issue_first_login(user: User) -> str:
    """A new first-login code for the farmer (registration or a forgotten PIN): their PIN, their
    sessions and their API tokens end; they choose a new PIN at the next login."""
    code = first_login_code()
    user.password_hash = hash_password(code)
    user.must_set_pin = True
    end_sessions(user)
    revoke_all_tokens(user)
    return code


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User) -> str:
    """A new bearer token; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    ttl = timedelta(days=current_app.config["API_TOKEN_TTL_DAYS"])
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token), expires_at=utcnow() + ttl))
    db.session.flush()
    return token


def token_row(token: str) -> ApiToken | None:
    """The live token row for a bearer token (None when unknown, revoked or expired)."""
    if not token or len(token) > 200 or not token.isprintable():
        return None
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.expires_at < utcnow():
        return None
    return row


def user_for_token(token: str) -> User | None:
    row = token_row(token)
    return db.session.get(User, row.user_id) if row is not None else None


def tokens_of(user: User) -> list[ApiToken]:
    """The user's live API tokens, newest first (expired ones are not shown)."""
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.expires_at >= utcnow())
        .order_by(ApiToken.id.desc())))


def revoke_token(user: User, token_id: int) -> None:
    """Ends one of the user's own tokens; NotFound for anyone else's (or an unknown id)."""
    row = db.session.get(ApiToken, token_id) if 0 < token_id <= 2**31 - 1 else None
    if row is None or row.user_id != user.id:
        raise NotFound(_("No such token."), code="token_not_found")
    db.session.delete(row)
    db.session.flush()


def revoke_all_tokens(user: User) -> None:
    db.session.execute(ApiToken.__table__.delete().where(ApiToken.user_id == user.id))
    db.session.flush()


# ---------------------------------------------------------------- sessions that end

def user_for_session(session_id: str) -> User | None:
    """Flask-Login's user loader: the session holds "<user id>:<session version>" (User.get_id);
    a session made before the user's last logout or change of password finds nobody."""
    user_id, sep, version = str(session_id or "").partition(":")
    if not sep or not user_id.isdigit() or not version.isdigit() or len(user_id) > 10:
        return None  # a session from before versions (or junk): log in again
    user = db.session.get(User, int(user_id)) if int(user_id) <= 2**31 - 1 else None
    if user is None or (user.session_version or 0) != int(version):
        return None
    return user


def end_sessions(user: User) -> None:
    """Every session of the user made until now stops working (logout, new password or PIN).
    One UPDATE with an increment: two at once both end every older session."""
    db.session.execute(User.__table__.update().where(User.id == user.id).values(
        session_version=User.__table__.c.session_version + 1))
    db.session.expire(user, ["session_version"])


def change_password(user: User, current: str, new: str, confirm: str | None = None) -> None:
    """The user's new password, given the current one: refuses a wrong current password, a new
    one that breaks the rules (check_new_password) or differs from its confirmation. Every
    other session and every API token of the user ends."""
    if not check_password_hash(user.password_hash, current or ""):
        raise ValidationFailed(_("Your current password is not right."),
                               code="wrong_password",
                               fields={"current_password": [_("Not right.")]})
    check_new_password(new, field="new_password")
    if confirm is not None and confirm != new:
        raise ValidationFailed(_("The two new passwords are not the same."),
                               fields={"new_password_confirm": [_("Type the same password.")]})
    user.password_hash = hash_password(new)
    end_sessions(user)
    revoke_all_tokens(user)


# The secrets a farmer types to log in that are PINs (4 to 6 digits) or first-login codes (8):
# no password (12 characters at least) looks like one. Such logins are limited harder, and a
# session they opened cannot change payout details.
def is_pin_like(secret: str | None) -> bool:
    secret = secret or ""
    return secret.isascii() and secret.isdigit() and len(secret) <= 8


def account_login_throttled(login: str) -> None:
    """The account `login` names has reached its limit of failed logins. Here the farmer will be
    told by SMS (issue 11, the Messages issue, provides sending); until then nothing is sent."""
    return None
