"""Cooperatives, their members, roles, farmer profiles and plots."""
from __future__ import annotations

import json
import re
import unicodedata

from babel import Locale
from babel.numbers import get_territory_currencies
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, func, or_, select

from ..audit import services as audit
from ..auth import services as auth_services
from ..auth.models import User
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.models import utcnow
from ..common.statuses import CoopStatus, InvitationStatus
from ..common.paging import PER_PAGE, KeysetPage, Page, count as count_rows, keyset, paginate
from ..extensions import db
from .models import (PAYOUT_RAILS, ROLES, Cooperative, FarmerProfile, Invitation,
                     Membership)
from .payout_accounts import validate_payout_account
from . import verification

# Countries: two-letter territories that have a currency of their own (drops ZZ "Unknown
# Region", UN, EZ, QO ...); the EU is not a country. Currencies: those in use today somewhere
# (drops XXX, XTS and the pesetas and sucres of the past).
_COUNTRIES = {code for code in Locale("en").territories
              if re.fullmatch(r"[A-Z]{2}", code) and code != "EU"
              and get_territory_currencies(code)}
_CURRENCIES = {cur for code in _COUNTRIES for cur in get_territory_currencies(code)}


def slugify(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:70] or "coop"


def list_coops() -> list[Cooperative]:
    """The verified cooperatives (what anyone may see): a pending one is nobody's business
    but its founders' and the platform's staff's."""
    return list(db.session.scalars(select(Cooperative).where(
        Cooperative.status == CoopStatus.VERIFIED).order_by(Cooperative.name)))


def coops_page(cursor: str | None, *, q: str = "", limit: int = PER_PAGE) -> KeysetPage:
    """A page of the verified cooperatives by name (keyset on name and id), found by part
    of the name or region."""
    stmt = select(Cooperative).where(Cooperative.status == CoopStatus.VERIFIED)
    q = (q or "").strip()[:80]
    if q:
        like = _like(q)
        stmt = stmt.where(or_(Cooperative.name.ilike(like, escape="\\"),
                              Cooperative.region.ilike(like, escape="\\")))
    return keyset(stmt, [Cooperative.name, Cooperative.id], cursor, limit)


_COOPS_AFTER = None


def _coops_after_statement():
    """Built once per process: SQLAlchemy keeps a statement's cache key, so executing the
    same statement again skips building and keying it (a third of this endpoint's time)."""
    global _COOPS_AFTER
    if _COOPS_AFTER is None:
        # The table's columns, not the mapped class's: a Core statement skips the ORM's
        # compile and result layers (another fifth of the answer).
        c = Cooperative.__table__.c
        _COOPS_AFTER = (
            select(c.id, c.slug, c.name, c.country, c.currency, c.region)
            .where(c.status == CoopStatus.VERIFIED, c.id > bindparam("after_id"))
            .order_by(c.id).limit(bindparam("limit")))
    return _COOPS_AFTER


def coops_after(limit: int, after_id: int | None = None) -> list:
    """Up to `limit` verified cooperatives by id after `after_id` (the API's pages), as rows
    of (id, slug, name, country, currency, region): plain columns, no ORM objects."""
    return list(db.session.connection().execute(_coops_after_statement(),
                                                {"after_id": after_id or 0, "limit": limit}))


def coop_countries() -> list[str]:
    """The countries of every coop, pending ones included (ISO codes, each once)."""
    return list(db.session.scalars(select(Cooperative.country).distinct()
                                   .order_by(Cooperative.country)))


def get_coop(coop_id: int) -> Cooperative:
    coop = db.session.get(Cooperative, coop_id)
    if coop is None:
        raise NotFound(_("No such cooperative."))
    return coop


def coop_by_slug(slug: str) -> Cooperative:
    """A verified cooperative by its public slug (its public pages)."""
    coop = db.session.scalar(select(Cooperative).where(Cooperative.slug == slug))
    if coop is None or coop.status != CoopStatus.VERIFIED:
        raise NotFound(_("No such cooperative."))
    return coop


def _coop_fields(name, country, currency, region) -> tuple[str, str, str, str, dict]:
    name = " ".join(name.split()) if isinstance(name, str) else ""
    country = country.strip().upper() if isinstance(country, str) else ""
    currency = currency.strip().upper() if isinstance(currency, str) else ""
    region = region.strip() if isinstance(region, str) else ""
    fields = {}
    if not name:
        fields["name"] = [_("Required.")]
    elif len(name) > 160 or _CONTROL.search(name):
        fields["name"] = [_("Too long.")]
    if country not in _COUNTRIES:
        fields["country"] = [_("Use a two-letter country code such as CO or PE.")]
    if currency not in _CURRENCIES:
        fields["currency"] = [_("Use a three-letter currency code such as COP or PEN.")]
    if len(region) > 120 or _CONTROL.search(region):
        fields["region"] = [_("Too long.")]
    return name, country, currency, region, fields


def _new_coop(founder: User, name: str, country: str, currency: str, region: str,
              **registration) -> Cooperative:
    base = slugify(name)
    slug, n = base, 1
    while db.session.scalar(select(Cooperative.id).where(Cooperative.slug == slug)):
        n += 1
        slug = f"{base}-{n}"
    coop = Cooperative(name=name, country=country, currency=currency, region=region, slug=slug,
                       founded_by_id=founder.id, **registration)
    db.session.add(coop)
    verification.saved(coop)
    grant_role(coop, founder, "manager", by=founder)
    return coop


def create_cooperative(*, founder: User, name: str, country: str, currency: str,
                       region: str = "", legal_name: str = "", tax_id: str = "",
                       document: "verification.Upload | None" = None) -> Cooperative:
    """A new cooperative, pending until the platform's staff verify its registration (legal
    name, tax id with its check digit, the document); the founder becomes its manager.
    Refuses unknown countries and currencies, a name or tax id another coop of the country
    has, and a founder with MAX_UNVERIFIED_PER_FOUNDER coops already waiting."""
    name, country, currency, region, fields = _coop_fields(name, country, currency, region)
    if fields:
        raise ValidationFailed(_("Check the cooperative's details."), fields=fields)
    verification.check_founder_limit(founder)
    key, legal, tax = verification.check_registration(
        None, name=name, country=country, legal_name=legal_name, tax_id=tax_id)
    coop = _new_coop(founder, name, country, currency, region, name_key=key, legal_name=legal,
                     tax_id=tax, status=CoopStatus.PENDING, submitted_at=utcnow())
    verification.submit_document(coop, document, founder)
    db.session.flush()
    audit.record(coop.id, founder, "coop.submitted", "coop", coop.id,
                 after={"status": CoopStatus.PENDING})
    return coop


def create_verified_cooperative_for_seed(*, founder: User, name: str, country: str,
                                         currency: str, region: str = "",
                                         legal_name: str = "", tax_id: str | None = None
                                         ) -> Cooperative:
    """THE SEED AND TEST PATH: a cooperative made verified without the staff's review (the
    demo data, test fixtures). Names and tax ids stay unique per country; no route calls it."""
    name, country, currency, region, fields = _coop_fields(name, country, currency, region)
    if fields:
        raise ValidationFailed(_("Check the cooperative's details."), fields=fields)
    key = verification.name_key(name)
    tax = verification.normalise_tax_id(country, tax_id) if tax_id else None
    verification.check_unique(country, key, tax)
    return _new_coop(founder, name, country, currency, region, name_key=key,
                     legal_name=legal_name or name, tax_id=tax, status=CoopStatus.VERIFIED,
                     reviewed_at=utcnow())


def grant_role(coop: Cooperative, user: User, role: str, *, by: User | None = None
               ) -> Membership:
    """Give a role, audited (`by`: who gave it; None: the system). Granting one already held
    changes nothing. No route calls it with another person's account: people join through an
    invitation they accept (coop/cooperatives/invitations.py); the founder, the seed and the
    test fixtures call it directly."""
    if role not in ROLES:
        raise ValidationFailed(_("Unknown role."), fields={"role": [_("Unknown role.")]})
    existing = db.session.scalar(select(Membership).where(
        Membership.coop_id == coop.id, Membership.user_id == user.id, Membership.role == role))
    if existing:
        return existing
    membership = Membership(coop_id=coop.id, user_id=user.id, role=role)
    db.session.add(membership)
    db.session.flush()
    db.session.refresh(user, ["memberships"])
    audit.record(coop.id, by, "roles.granted", "membership", membership.id,
                 after={"role": role, "member_id": user.id})
    return membership


def revoke_role(coop: Cooperative, user: User, role: str, *, by: User | None = None) -> None:
    """Take a role away, audited; the last manager of a cooperative cannot be removed."""
    membership = db.session.scalar(select(Membership).where(
        Membership.coop_id == coop.id, Membership.user_id == user.id, Membership.role == role))
    if membership is None:
        raise NotFound(_("That person does not hold that role."))
    if role == "manager":
        # Lock the cooperative so two managers removing each other cannot both succeed.
        db.session.execute(select(Cooperative.id).where(Cooperative.id == coop.id)
                           .with_for_update())
        managers = db.session.scalar(select(func.count()).select_from(Membership).where(
            Membership.coop_id == coop.id, Membership.role == "manager"))
        if managers <= 1:
            raise Conflict(_("A cooperative needs at least one manager."), code="last_manager")
    audit.record(coop.id, by, "roles.revoked", "membership", membership.id,
                 before={"role": role, "member_id": user.id})
    db.session.delete(membership)
    db.session.flush()


def members(coop: Cooperative, *, staff_only: bool = False) -> list[tuple[User, list[str]]]:
    """Everyone in the coop with their roles, in two queries whatever the number of members;
    `staff_only`: only those who hold a manager's or treasurer's role (farmers who hold no
    other role are on the farmers' list, a page at a time)."""
    stmt = (select(User, Membership.role).join(Membership, Membership.user_id == User.id)
            .where(Membership.coop_id == coop.id))
    if staff_only:
        stmt = stmt.where(User.id.in_(select(Membership.user_id).where(
            Membership.coop_id == coop.id, Membership.role.in_(("manager", "treasurer")))))
    rows = db.session.execute(stmt.order_by(User.name, Membership.role)).all()
    out: dict[int, tuple[User, list[str]]] = {}
    for user, role in rows:
        out.setdefault(user.id, (user, []))[1].append(role)
    return list(out.values())


def farmer_profiles(coop: Cooperative) -> list[FarmerProfile]:
    return list(db.session.scalars(select(FarmerProfile).where(FarmerProfile.coop_id == coop.id)
                                   .order_by(FarmerProfile.member_number)))


def _like(text: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


def search_farmer_profiles(coop: Cooperative, *, q: str = "", rail: str = "",
                           page: int = 1, per_page: int = PER_PAGE) -> Page:
    """One page of the coop's farmers by member number, found by part of the name or member
    number and by payout method; with how many match. Three queries whatever the number of
    members (the page, its count, its plots)."""
    stmt = _farmers_matching(coop, q, rail)
    return paginate(stmt.order_by(FarmerProfile.member_number, FarmerProfile.id), page, per_page)


def _farmers_matching(coop: Cooperative, q: str = "", rail: str = ""):
    stmt = select(FarmerProfile).where(FarmerProfile.coop_id == coop.id)
    q = (q or "").strip()[:80]
    if q:
        like = _like(q)
        stmt = stmt.where(or_(FarmerProfile.member_number.ilike(like, escape="\\"),
                              FarmerProfile.user.has(User.name.ilike(like, escape="\\"))))
    if rail in PAYOUT_RAILS:
        stmt = stmt.where(FarmerProfile.payout_rail == rail)
    return stmt


def farmer_profiles_page(coop: Cooperative, cursor: str | None, *, q: str = "",
                         rail: str = "", limit: int = PER_PAGE,
                         with_total: bool = False) -> KeysetPage:
    """A page of the coop's farmers by member number (keyset on member number and id),
    found by part of the name or member number and by payout method; `with_total`: with
    how many match (one more query, on the coop's index)."""
    stmt = _farmers_matching(coop, q, rail)
    found = keyset(stmt, [FarmerProfile.member_number, FarmerProfile.id], cursor, limit)
    if with_total:
        found.total = count_rows(stmt)
    return found


def farmer_profile(coop_id: int, user_id: int) -> FarmerProfile | None:
    return db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.coop_id == coop_id, FarmerProfile.user_id == user_id))


def get_farmer_profile(coop: Cooperative, profile_id: int) -> FarmerProfile:
    profile = db.session.get(FarmerProfile, profile_id)
    if profile is None or profile.coop_id != coop.id:
        raise NotFound(_("No such member."))
    return profile


def farmer_details(coop: Cooperative, *, member_number: str, national_id: str,
                   payout_rail: str = "cash", payout_account: str = "", bank_name: str = "",
                   gender: str | None = None, household_size: int | None = None,
                   tax_id_type: str | None = None, tax_id: str | None = None,
                   exclude_invitation: int | None = None) -> dict:
    """A farmer member's details once checked (what a profile is made of): the member number
    and national ID unused in the coop (by its members and its pending invitations), the
    payout account right for its rail, the identity document of the purchase documents
    (optional; farmer_tax_id's rules)."""
    member_number = (member_number or "").strip() if isinstance(member_number, str) else ""
    national_id = (national_id or "").strip() if isinstance(national_id, str) else ""
    fields = {}
    try:
        tax_id_type, tax_id = farmer_tax_id(coop, tax_id_type, tax_id)
    except ValidationFailed as exc:
        fields.update(exc.fields)
    if not member_number or len(member_number) > 32:
        fields["member_number"] = [_("Required, at most 32 characters.")]
    if not national_id or len(national_id) > 32:
        fields["national_id"] = [_("Required, at most 32 characters.")]
    if payout_rail not in PAYOUT_RAILS:
        fields["payout_rail"] = [_("Choose a payout method.")]
    if gender not in (None, "", "female", "male", "other"):
        fields["gender"] = [_("Choose female, male or other.")]
    if household_size is not None and (isinstance(household_size, bool)
                                       or not isinstance(household_size, int)
                                       or not 1 <= household_size <= 50):
        fields["household_size"] = [_("A number of people from 1 to 50.")]
    if fields:
        raise ValidationFailed(_("Check the member's details."), fields=fields)
    if len(bank_name or "") > 80:
        raise ValidationFailed(_("Bank name is too long."), fields={"bank_name": [_("Too long.")]})
    account = validate_payout_account(payout_rail, payout_account)
    waiting = pending_farmer_details(coop, exclude=exclude_invitation)
    if db.session.scalar(select(FarmerProfile.id).where(
            FarmerProfile.coop_id == coop.id, FarmerProfile.member_number == member_number)) \
            or any(d.get("member_number") == member_number for d in waiting):
        raise Conflict(_("Member number %(n)s is already used in this cooperative.",
                         n=member_number), code="member_number_taken",
                       fields={"member_number": [_("Already used.")]})
    if db.session.scalar(select(FarmerProfile.id).where(
            FarmerProfile.coop_id == coop.id, FarmerProfile.national_id == national_id)) \
            or any(d.get("national_id") == national_id for d in waiting):
        # One person, one membership: a second profile would count the family twice.
        raise Conflict(_("A member with national ID %(n)s already exists in this cooperative.",
                         n=national_id), code="national_id_taken",
                       fields={"national_id": [_("Already a member.")]})
    return {"member_number": member_number, "national_id": national_id,
            "payout_rail": payout_rail, "payout_account": account,
            "bank_name": (bank_name or "").strip(), "gender": gender or None,
            "household_size": household_size, "tax_id_type": tax_id_type, "tax_id": tax_id}


def farmer_tax_id(coop: Cooperative, id_type: str | None, number: str | None
                  ) -> tuple[str | None, str | None]:
    """The identity document a farmer's weekly purchase document names them by, checked for
    the coop's country (coop/invoices/taxids.py): (type, normalised number), or (None, None)
    when both are left empty (it is optional). Colombia: CC, 3 to 10 digits; Peru: DNI, 8
    digits, or RUC, 11 digits with its check digit. Refuses (422, at the field) a type the
    country has not, a number without a type or a type without a number, and a number that
    is not one of its type."""
    from ..invoices import taxids
    id_type = (id_type or "").strip().upper() if isinstance(id_type, str) else ""
    number = (number or "").strip() if isinstance(number, str) else ""
    if not id_type and not number:
        return None, None
    kinds = taxids.PERSON_ID_TYPES.get(coop.country, ())
    if id_type not in kinds:
        raise ValidationFailed(_("Check the identity document."), fields={"tax_id_type": [
            _("Choose the type of identity document.") if kinds
            else _("Identity documents are not recorded for this country yet.")]})
    if not number:
        raise ValidationFailed(_("Check the identity document."), fields={
            "tax_id": [_("Give the document's number, or leave both empty.")]})
    normal = taxids.normalise_person_id(id_type, number)
    if normal is None:
        problem = {
            "CC": _("A cédula de ciudadanía has 3 to 10 digits, such as 1234567890."),
            "DNI": _("A DNI has exactly 8 digits, such as 45678912."),
            "RUC": _("Not a valid RUC: 11 digits with its check digit, such as "
                     "10456789124."),
        }[id_type]
        raise ValidationFailed(_("Check the identity document."),
                               fields={"tax_id": [problem]})
    return id_type, normal


def set_farmer_tax_id(profile: FarmerProfile, id_type: str | None, number: str | None, *,
                      by: User | None = None) -> FarmerProfile:
    """Record (or change, or clear) a member's identity document (farmer_tax_id's rules).
    Purchase documents issued already keep the one they were issued with."""
    coop = db.session.get(Cooperative, profile.coop_id)
    kind, normal = farmer_tax_id(coop, id_type, number)
    before = {"tax_id_type": profile.tax_id_type, "tax_id": profile.tax_id}
    profile.tax_id_type, profile.tax_id = kind, normal
    db.session.flush()
    if before != {"tax_id_type": kind, "tax_id": normal}:
        audit.record(coop.id, by, "farmer.tax_id_changed", "farmer_profile", profile.id,
                     before=before, after={"tax_id_type": kind, "tax_id": normal})
    return profile


def pending_farmer_details(coop: Cooperative, exclude: int | None = None) -> list[dict]:
    """The details of the coop's farmer invitations not yet answered."""
    stmt = select(Invitation.details_json).where(
        Invitation.coop_id == coop.id, Invitation.role == "farmer",
        Invitation.status == InvitationStatus.PENDING, Invitation.expires_at > utcnow())
    if exclude is not None:
        stmt = stmt.where(Invitation.id != exclude)
    out = []
    for raw in db.session.scalars(stmt):
        try:
            out.append(json.loads(raw or "{}"))
        except ValueError:
            continue
    return out


def make_farmer_profile(coop: Cooperative, user: User, details: dict, *,
                        by: User | None = None) -> FarmerProfile:
    """The profile and farmer role of `user` from checked `details` (farmer_details)."""
    if farmer_profile(coop.id, user.id):
        raise Conflict(_("That person is already a farmer member here."),
                       code="already_member", fields={"email": [_("Already a member.")]})
    profile = FarmerProfile(coop_id=coop.id, user_id=user.id, **details)
    db.session.add(profile)
    db.session.flush()
    grant_role(coop, user, "farmer", by=by)
    return profile


def add_farmer(coop: Cooperative, *, name: str, email: str | None, password: str,
               phone: str | None,
               member_number: str, national_id: str, payout_rail: str = "cash",
               payout_account: str = "", bank_name: str = "", gender: str | None = None,
               household_size: int | None = None, locale: str = "es",
               by: User | None = None, tax_id_type: str | None = None,
               tax_id: str | None = None) -> FarmerProfile:
    """THE SEED AND TEST PATH (and a new account's): a farmer member at once, their account
    created, or an existing one joined WITHOUT their consent. The routes call
    invitations.invite_farmer instead, which comes here only for a new account made by phone.
    Without an e-mail the phone number is required and is their login; `password` is then a
    first-login code, and the farmer chooses a PIN when they first log in."""
    details = farmer_details(coop, member_number=member_number, national_id=national_id,
                             payout_rail=payout_rail, payout_account=payout_account,
                             bank_name=bank_name, gender=gender, household_size=household_size,
                             tax_id_type=tax_id_type, tax_id=tax_id)
    without_email = email is None or not str(email).strip()
    if without_email:
        if phone is None or not str(phone).strip():
            raise ValidationFailed(_("Give the farmer's phone number or e-mail."),
                                   fields={"phone": [_("Required when there is no e-mail.")]})
        existing = db.session.scalar(select(User).where(
            User.phone == auth_services.normalise_phone(phone, coop.country)))
        taken_field = "phone"
    else:
        existing = db.session.scalar(select(User).where(
            User.email == auth_services.normalise_email(email)))
        taken_field = "email"
    if existing is not None:
        user = existing
        if farmer_profile(coop.id, user.id):
            raise Conflict(_("That person is already a farmer member here."),
                           code="already_member", fields={taken_field: [_("Already a member.")]})
    else:
        user = auth_services.create_user(email=None if without_email else email, name=name,
                                         password=password, phone=phone, locale=locale,
                                         must_set_pin=without_email, region=coop.country)
    return make_farmer_profile(coop, user, details, by=by)


def update_payout(profile: FarmerProfile, rail: str, account: str, bank_name: str = "") -> None:
    if rail not in PAYOUT_RAILS:
        raise ValidationFailed(_("Choose a payout method."),
                               fields={"payout_rail": [_("Choose a payout method.")]})
    profile.payout_account = validate_payout_account(rail, account)
    profile.payout_rail = rail
    profile.bank_name = (bank_name or "").strip()[:80]
    db.session.flush()


def request_payout_change(profile: FarmerProfile, rail: str, account: str,
                          bank_name: str = "") -> tuple[object, str]:
    """Starts a change of where the farmer is paid: the new details are checked
    (update_payout's rules), then a 6-digit code goes to the farmer's phone on file (their
    e-mail without one); the change applies only with that code (confirm_payout_change).
    Returns the code's row and where it went (the number, masked)."""
    from flask_babel import lazy_gettext as _l

    from ..auth import codes, phones
    from ..messages import services as messages
    if rail not in PAYOUT_RAILS:
        raise ValidationFailed(_("Choose a payout method."),
                               fields={"payout_rail": [_("Choose a payout method.")]})
    details = {"profile_id": profile.id, "rail": rail,
               "account": validate_payout_account(rail, account),
               "bank_name": (bank_name or "").strip()[:80]}
    farmer = profile.user
    row, code = codes.issue_code(farmer, "payout_change", details)
    channel = auth_services.phone_channel(farmer) if farmer.phone else None
    messages.notify(farmer, "auth.change_code", event=f"payout_change:{row.id}",
                    coop_id=profile.coop_id, channel=channel, code=code,
                    what=_l("payout account"))
    return row, phones.masked(farmer.phone) if farmer.phone else (farmer.email or "")


def confirm_payout_change(profile: FarmerProfile, code: str, by: User | None) -> None:
    """Applies the pending change of the farmer's payout details once `code` is the one sent
    to them (auth.codes' rules: 10 minutes, 5 tries); recorded in the audit log. Refuses a
    code for another farmer's change."""
    from ..auth import codes
    row = codes.check_code(profile.user, "payout_change", code)
    details = codes.payload_of(row)
    if details.get("profile_id") != profile.id:
        raise codes.CodeRefused("code_wrong")
    before = {"rail": profile.payout_rail, "payout_account": profile.payout_account}
    update_payout(profile, details["rail"], details["account"], details.get("bank_name", ""))
    audit.record(profile.coop_id, by, "payouts.account_changed", "user", profile.user_id,
                 before=before, after={"rail": profile.payout_rail,
                                       "payout_account": profile.payout_account})


def user_coops(user: User, role: str | None = None) -> list[Cooperative]:
    seen = {}
    for m in user.memberships:
        if role is None or m.role == role:
            seen.setdefault(m.coop_id, m.coop)
    return list(seen.values())


# ---------------------------------------------------------------- collection points

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _point_text(value, field: str, limit: int, required: bool) -> str:
    text = " ".join(value.split()) if isinstance(value, str) else None
    if text is None:
        raise ValidationFailed(_("Expected text."), fields={field: [_("Expected text.")]})
    if required and not text:
        raise ValidationFailed(_("Give the collection point a name."),
                               fields={field: [_("Required.")]})
    if len(text) > limit or _CONTROL.search(value):
        raise ValidationFailed(_("At most %(n)d characters, without control characters.",
                                 n=limit),
                               fields={field: [_("At most %(n)d characters, without control "
                                                 "characters.", n=limit)]})
    return text


def collection_points(coop_id: int) -> list:
    from .models import CollectionPoint
    return list(db.session.scalars(select(CollectionPoint).where(
        CollectionPoint.coop_id == coop_id).order_by(CollectionPoint.name)))


def collection_point_named(coop_id: int, name: str):
    """The coop's point of that name (spaces and case aside), or None."""
    from .models import CollectionPoint
    key = " ".join((name or "").split()).lower()
    if not key:
        return None
    return db.session.scalar(select(CollectionPoint).where(
        CollectionPoint.coop_id == coop_id, func.lower(CollectionPoint.name) == key))


def _same_name_elsewhere(coop_id: int, name: str, point_id: int | None = None) -> None:
    existing = collection_point_named(coop_id, name)
    if existing is not None and existing.id != point_id:
        raise Conflict(_("This cooperative already has a collection point of that name."),
                       code="duplicate_point", fields={"name": [_("Already used.")]})


def add_collection_point(coop: Cooperative, *, name: str, place: str = ""):
    from .models import CollectionPoint
    name = _point_text(name, "name", 160, True)
    place = _point_text(place or "", "place", 200, False)
    _same_name_elsewhere(coop.id, name)
    point = CollectionPoint(coop_id=coop.id, name=name, place=place)
    db.session.add(point)
    db.session.flush()
    return point


def get_collection_point(coop: Cooperative, point_id: int):
    from .models import CollectionPoint
    point = db.session.get(CollectionPoint, point_id)
    if point is None or point.coop_id != coop.id:
        raise NotFound(_("No such collection point."))
    return point


def on_collection_point_renamed(app, follow) -> None:
    """`follow(coop_id, old name, new name)` runs when a coop renames a collection point: how the
    domains that name points (listings) follow without this one importing them (create_app
    wires it)."""
    app.extensions.setdefault("collection_point_renamed", []).append(follow)


def rename_collection_point(coop: Cooperative, point_id: int, *, name: str, place: str = ""):
    """New name or place; the coop's listings at the point follow the new name."""
    point = get_collection_point(coop, point_id)
    name = _point_text(name, "name", 160, True)
    place = _point_text(place or "", "place", 200, False)
    _same_name_elsewhere(coop.id, name, point.id)
    old = point.name
    point.name, point.place = name, place
    db.session.flush()
    if old != name:
        for follow in current_app.extensions.get("collection_point_renamed", ()):
            follow(coop.id, old, name)
    return point


def staff_ids(coop_id: int, role: str) -> list[int]:
    """The ids of the people holding `role` in the coop (whom a notice goes to)."""
    return list(db.session.scalars(select(Membership.user_id).where(
        Membership.coop_id == coop_id, Membership.role == role).order_by(Membership.user_id)))
