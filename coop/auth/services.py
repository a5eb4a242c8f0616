"""Accounts: buyer sign-up, login by e-mail or phone, API tokens."""
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

from ..common.errors import Conflict, ValidationFailed
from ..common.models import utcnow
from ..extensions import db
from .models import ApiToken, Buyer, User

MIN_PASSWORD = 10
MAX_PASSWORD = 200
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


def check_new_password(password: str) -> None:
    if not password or len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            _("Use a password of at least %(n)d characters.", n=MIN_PASSWORD),
            fields={"password": [_("At least %(n)d characters.", n=MIN_PASSWORD)]})
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed(_("That password is too long."),
                               fields={"password": [_("Too long.")]})


def email_taken(email: str) -> bool:
    return db.session.scalar(select(func.count()).select_from(User).where(User.email == email)) > 0


def create_user(*, email: str, name: str, password: str, phone: str | None = None,
                locale: str | None = None) -> User:
    """A new person. Refuses a taken e-mail or phone, a short password, an empty name."""
    email = normalise_email(email)
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Name is required."), fields={"name": [_("Required.")]})
    if len(name) > 120:
        raise ValidationFailed(_("That name is too long."), fields={"name": [_("Too long.")]})
    check_new_password(password)
    phone = normalise_phone(phone)
    if email_taken(email):
        raise Conflict(_("An account with that e-mail already exists."), code="email_taken",
                       fields={"email": [_("Already registered.")]})
    if phone and db.session.scalar(select(User.id).where(User.phone == phone)):
        raise Conflict(_("An account with that phone number already exists."),
                       code="phone_taken", fields={"phone": [_("Already registered.")]})
    user = User(email=email, name=name, phone=phone, password_hash=hash_password(password),
                locale=locale)
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


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User) -> str:
    """A new bearer token; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    ttl = timedelta(days=current_app.config["API_TOKEN_TTL_DAYS"])
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token), expires_at=utcnow() + ttl))
    db.session.flush()
    return token


def user_for_token(token: str) -> User | None:
    if not token or len(token) > 200:
        return None
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.expires_at < utcnow():
        return None
    return db.session.get(User, row.user_id)
