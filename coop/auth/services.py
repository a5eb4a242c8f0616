"""Accounts: buyer sign-up, login by e-mail or phone, sessions that end, API tokens."""
from __future__ import annotations

import functools

import hashlib
import secrets
from contextlib import contextmanager
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from flask import current_app, g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.models import utcnow
from ..extensions import db
from .models import ApiToken, Buyer, User

from .passwords import MAX_PASSWORD, MIN_PASSWORD, check_new_password  # noqa: F401 (re-exported)
from .phones import normalise_phone  # noqa: F401 (re-exported)
from . import phones

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


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config.get(
        "PASSWORD_HASH_METHOD", "scrypt"))


def email_taken(email: str) -> bool:
    return db.session.scalar(select(func.count()).select_from(User).where(User.email == email)) > 0


def create_user(*, email: str | None, name: str, password: str, phone: str | None = None,
                locale: str | None = None, must_set_pin: bool = False,
                region: str | None = None) -> User:
    """A new person. Refuses a taken e-mail or phone, a short password, an empty name, a phone
    that is not valid in `region` (the coop's country; Colombia by default) nor with its
    country code. Without an e-mail (only for farmers a manager registers, with
    `must_set_pin`) a phone is required, and it is how they log in (`must_set_pin`: such a
    farmer chooses a PIN at first login). The phone is stored in E.164."""
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
    phone = normalise_phone(phone, region)
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
    user.buyer_id, user.buyer_role = buyer.id, "admin"
    return user


def login_regions() -> list[str]:
    """The countries a phone typed without its country code may be from: those of the
    platform's coops, Colombia and Peru first."""
    from .hooks import coop_countries  # cooperatives imports auth: wired by create_app
    regions = ["CO", "PE"]
    regions += [c for c in coop_countries() if c and c not in regions]
    return regions


def find_by_login(login: str) -> User | None:
    """The user whose e-mail or phone number is `login`. A phone is read with its "+" and
    country code, as digits beginning with a country code ("573001234567"), or as a national
    number of one of the platform's countries (login_regions): one account only, else None."""
    login = (login or "").strip()
    if not login or len(login) > 254 or not login.isprintable():
        return None
    if "@" in login:
        return db.session.scalar(select(User).where(User.email == login.lower()))
    candidates: list[str] = []
    for region in login_regions():
        number = phones.parse(login, region)
        if number and number not in candidates:
            candidates.append(number)
    if not candidates:
        return None
    matches = list(db.session.scalars(select(User).where(User.phone.in_(candidates)).limit(2)))
    return matches[0] if len(matches) == 1 else None


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


def _with_memberships(stmt):
    """A user query that brings the memberships and their coops (what every page and the
    locale read) in the same statement."""
    from sqlalchemy.orm import joinedload
    # A membership's coop is joined by its own mapping (cooperatives imports auth: auth
    # never imports it).
    return stmt.options(joinedload(User.memberships))


@functools.cache
def _token_statement():
    """Built once per process: SQLAlchemy keeps a built statement's cache key, so every API
    request skips building and keying it again."""
    from sqlalchemy import bindparam
    return _with_memberships(select(User).join(ApiToken, ApiToken.user_id == User.id)
                             .where(ApiToken.token_hash == bindparam("token_hash"),
                                    ApiToken.expires_at >= bindparam("now")))


def user_for_token(token: str) -> User | None:
    """The user of a live bearer token: one indexed query (token hash -> user, memberships)."""
    if not token or len(token) > 200 or not token.isprintable():
        return None
    return db.session.scalars(_token_statement(), {"token_hash": _digest(token),
                                                   "now": utcnow()}).unique().first()


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
    # One query: the user with memberships and coops (not get() and a second select).
    user = db.session.scalars(_with_memberships(select(User).where(User.id == int(user_id))))\
        .unique().first() if int(user_id) <= 2**31 - 1 else None
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
    """The account `login` names has reached a limit of failed logins (called by the limits
    on a breach, outside any unit of work, so it commits what it wrote): its owner is told,
    on their channel, at most once an hour (the message's event is the account and the hour).
    An unknown account is told nothing."""
    user = find_by_login(login)
    if user is None:
        return None
    from ..messages import services as messages
    hour = utcnow().strftime("%Y-%m-%dT%H")
    messages.notify(user, "auth.login_throttled", event=f"login_throttled:{user.id}:{hour}")
    db.session.commit()
    return None


# ---------------------------------------------------------------- how messages reach people

CHANNELS = ("email", "sms", "whatsapp")
# A person's time zone when they chose none: their coop's country's (else the buyer's).
COUNTRY_TIMEZONES = {"CO": "America/Bogota", "PE": "America/Lima", "MX": "America/Mexico_City",
                     "EC": "America/Guayaquil", "BO": "America/La_Paz", "US": "America/New_York"}


def channel_of(user: User) -> str:
    """The channel messages to `user` take: their choice, when they have its address; else
    e-mail if they have an e-mail, else SMS."""
    chosen = user.channel
    if chosen == "email" and user.email:
        return "email"
    if chosen in ("sms", "whatsapp") and user.phone:
        return chosen
    return "email" if user.email else "sms"


def _country_of(user: User) -> str | None:
    for membership in user.memberships:
        return membership.coop.country
    return user.buyer.country if user.buyer is not None else None


def timezone_of(user: User) -> str:
    """The person's IANA time zone: their choice, else their coop's country's (Colombia
    America/Bogota, Peru America/Lima), else the app's default."""
    if user.timezone:
        return user.timezone
    return COUNTRY_TIMEZONES.get(_country_of(user) or "",
                                 current_app.config.get("BABEL_DEFAULT_TIMEZONE",
                                                        "America/Bogota"))


def language_of(user: User) -> str:
    """The language messages to `user` are written in: their choice, else the app's default."""
    languages = current_app.config.get("LANGUAGES", ("es", "en"))
    if user.locale in languages:
        return user.locale
    return current_app.config.get("BABEL_DEFAULT_LOCALE", "es")


def set_announcements(user: User, on: bool) -> None:
    """The person's consent to announcements and news (opt-in; the unsubscribe link of an
    announcement calls this with False)."""
    user.announcements = bool(on)
    db.session.flush()


def check_timezone(name) -> str | None:
    """An IANA time zone name ("America/Lima"), or None for the default; refuses others."""
    if name is None or (isinstance(name, str) and not name.strip()):
        return None
    from zoneinfo import available_timezones
    if not isinstance(name, str) or name.strip() not in available_timezones():
        raise ValidationFailed(_("Choose a time zone from the list (such as America/Bogota)."),
                               code="invalid_timezone",
                               fields={"timezone": [_("Unknown time zone.")]})
    return name.strip()


def check_channel(user: User, channel) -> str | None:
    """A channel the person can be reached on ("email" needs an e-mail; "sms" and "whatsapp"
    a phone), or None for the default."""
    if channel is None or channel == "":
        return None
    if channel not in CHANNELS:
        raise ValidationFailed(_("Choose e-mail, SMS or WhatsApp."), code="invalid_channel",
                               fields={"channel": [_("Unknown channel.")]})
    if channel == "email" and not user.email:
        raise ValidationFailed(_("You have no e-mail address: choose SMS or WhatsApp."),
                               code="invalid_channel",
                               fields={"channel": [_("No e-mail on file.")]})
    if channel in ("sms", "whatsapp") and not user.phone:
        raise ValidationFailed(_("You have no phone number: add one first, or choose e-mail."),
                               code="invalid_channel",
                               fields={"channel": [_("No phone on file.")]})
    return channel


_UNCHANGED = object()


def update_preferences(user: User, *, name=_UNCHANGED, language=_UNCHANGED,
                       channel=_UNCHANGED, timezone=_UNCHANGED,
                       announcements=_UNCHANGED, display_currency=_UNCHANGED) -> None:
    """The person's own name and how they are told things; each argument left out stays.
    Refuses (422 on the field) an empty or long name, a language Minga does not speak, a
    channel they have no address for, an unknown time zone, a non-boolean consent, a display
    currency other than EUR, USD or none (the coop's). Nothing changes unless every value is
    right."""
    changes = {}
    if name is not _UNCHANGED:
        if not isinstance(name, str) or not name.strip():
            raise ValidationFailed(_("Name is required."), fields={"name": [_("Required.")]})
        if len(name.strip()) > 120:
            raise ValidationFailed(_("That name is too long."),
                                   fields={"name": [_("Too long.")]})
        changes["name"] = name.strip()
    if language is not _UNCHANGED:
        if language not in current_app.config.get("LANGUAGES", ("es", "en")):
            raise ValidationFailed(_("Choose Spanish or English."), code="invalid_language",
                                   fields={"language": [_("Unknown language.")]})
        changes["locale"] = language
    if channel is not _UNCHANGED:
        changes["channel"] = check_channel(user, channel)
    if timezone is not _UNCHANGED:
        changes["timezone"] = check_timezone(timezone)
    if announcements is not _UNCHANGED:
        if not isinstance(announcements, bool):
            raise ValidationFailed(_("announcements is true or false."),
                                   fields={"announcements": [_("Must be true or false.")]})
        changes["announcements"] = announcements
    if display_currency is not _UNCHANGED:
        from ..fx.services import check_display_currency
        changes["display_currency"] = check_display_currency(display_currency)
    for key, value in changes.items():
        setattr(user, key, value)
    db.session.flush()


def change_pin(user: User, current: str, new: str, confirm: str | None = None) -> None:
    """A farmer's new PIN, given the current one: refuses a wrong current PIN and a new one
    that breaks the PIN rules (check_new_pin). Every other session and API token ends."""
    if not check_password_hash(user.password_hash, current or ""):
        raise ValidationFailed(_("Your current PIN is not right."), code="wrong_pin",
                               fields={"current_pin": [_("Not right.")]})
    set_pin(user, new, confirm)


# ---------------------------------------------------------------- a change of phone

@contextmanager
def reached_at(user: User, *, phone: str):
    """Within the block, messages to `user` go to `phone` (E.164) instead of the one on file
    (auth.people reads it): a code that proves a new number, for a person with none yet."""
    overrides = g.setdefault("auth_reached_at", {})
    overrides[user.id] = phone
    try:
        yield
    finally:
        overrides.pop(user.id, None)


def reached_phone(user: User) -> str | None:
    """The phone messages to `user` go to now (see reached_at)."""
    return (g.get("auth_reached_at") or {}).get(user.id, user.phone)


def phone_channel(user: User) -> str:
    """Where a code to the phone goes: WhatsApp when that is the person's channel, else SMS."""
    return "whatsapp" if channel_of(user) == "whatsapp" else "sms"


def _phone_region(user: User) -> str:
    return (phones.region_of(user.phone) or _country_of(user) or phones.DEFAULT_REGION)


def request_phone_change(user: User, raw: str):
    """Starts a change of the person's phone to `raw` (read in the country of their coop or
    current phone): a 6-digit code goes to the OLD phone (or, without one, to the new one);
    the change applies only with that code (confirm_phone_change). Refuses an invalid
    number, the number they have, one another account has. Returns the code's row."""
    from ..messages import services as messages
    from . import codes
    new = normalise_phone(raw, _phone_region(user))
    if new is None:
        raise ValidationFailed(_("Give the new phone number."),
                               fields={"phone": [_("Required.")]})
    if new == user.phone:
        raise ValidationFailed(_("That is already your phone number."),
                               fields={"phone": [_("Already yours.")]})
    if db.session.scalar(select(User.id).where(User.phone == new, User.id != user.id)):
        raise Conflict(_("Another account has that phone number."), code="phone_taken",
                       fields={"phone": [_("Already registered.")]})
    row, code = codes.issue_code(user, "phone_change", {"phone": new})
    if user.phone:
        messages.notify(user, "auth.change_code", event=f"phone_change:{row.id}",
                        channel=phone_channel(user), code=code, what=_l("phone number"))
    else:  # nothing on file yet: the new number proves itself
        with reached_at(user, phone=new):
            messages.notify(user, "auth.change_code", event=f"phone_change:{row.id}",
                            channel="sms", code=code, what=_l("phone number"))
    return row


def confirm_phone_change(user: User, code: str) -> str:
    """Applies the pending change of phone once `code` is the one sent (codes.check_code's
    rules: 10 minutes, 5 tries); recorded in the audit log of each of the person's coops (or
    the platform's, without one). Returns the new number."""
    from ..audit import services as audit  # the audit log reads users: above auth
    from . import codes
    row = codes.check_code(user, "phone_change", code)
    new = codes.payload_of(row).get("phone")
    if db.session.scalar(select(User.id).where(User.phone == new, User.id != user.id)):
        raise Conflict(_("Another account has that phone number."), code="phone_taken",
                       fields={"code": [_("Another account took that number meanwhile.")]})
    old, user.phone = user.phone, new
    if user.channel in ("sms", "whatsapp") and not new:
        user.channel = None
    db.session.flush()
    coops = sorted({m.coop_id for m in user.memberships}) or [None]
    for coop_id in coops:
        audit.record(coop_id, user, "people.phone_changed", "user", user.id,
                     before={"phone": old}, after={"phone": new})
    return new



# ---------------------------------------------------------------- buyers as organisations

def _invoice_people(rows) -> list:
    """Of (user, role) rows of one buyer with an e-mail: its accounts users, else its admins
    (a buyer user from before roles counts as admin; auth.organisations)."""
    accounts = [who for who, role in rows if role == "accounts"]
    return accounts or [who for who, role in rows if (role or "admin") == "admin"]


def accounts_emails(buyer_id: int) -> list[str]:
    """Where a buyer organisation's invoices go: its accounts users' e-mails, else its admins'.
    Sorted, no duplicates; empty for an unknown buyer."""
    rows = db.session.execute(select(User.email, User.buyer_role).where(
        User.buyer_id == buyer_id, User.email.is_not(None))).all()
    return sorted(set(_invoice_people(rows)))


def invoice_recipients(buyer_ids) -> dict[int, list[int]]:
    """buyer id -> the users its invoices are e-mailed to (`accounts_emails`' people), for
    many buyers in one query."""
    ids = sorted(set(buyer_ids))
    by_buyer: dict[int, list] = {}
    if ids:
        for user_id, buyer_id, role in db.session.execute(
                select(User.id, User.buyer_id, User.buyer_role)
                .where(User.buyer_id.in_(ids), User.email.is_not(None)).order_by(User.id)):
            by_buyer.setdefault(buyer_id, []).append((user_id, role))
    return {buyer_id: _invoice_people(rows) for buyer_id, rows in by_buyer.items()}
