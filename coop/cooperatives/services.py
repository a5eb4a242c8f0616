"""Cooperatives, their members, roles, farmer profiles and plots."""
from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from babel import Locale
from babel.numbers import get_territory_currencies
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ..auth import services as auth_services
from ..auth.models import User
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.paging import PER_PAGE, Page, paginate
from ..extensions import db
from .models import ILLICIT_CROPS, PAYOUT_RAILS, ROLES, Cooperative, FarmerProfile, Membership, Plot
from .payout_accounts import validate_payout_account

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
    return list(db.session.scalars(select(Cooperative).order_by(Cooperative.name)))


def get_coop(coop_id: int) -> Cooperative:
    coop = db.session.get(Cooperative, coop_id)
    if coop is None:
        raise NotFound(_("No such cooperative."))
    return coop


def coop_by_slug(slug: str) -> Cooperative:
    coop = db.session.scalar(select(Cooperative).where(Cooperative.slug == slug))
    if coop is None:
        raise NotFound(_("No such cooperative."))
    return coop


def create_cooperative(*, founder: User, name: str, country: str, currency: str,
                       region: str = "") -> Cooperative:
    """A new cooperative; the founder becomes its manager. Refuses unknown countries/currencies."""
    name = (name or "").strip()
    country = (country or "").strip().upper()
    currency = (currency or "").strip().upper()
    region = (region or "").strip()
    fields = {}
    if not name:
        fields["name"] = [_("Required.")]
    elif len(name) > 160:
        fields["name"] = [_("Too long.")]
    if country not in _COUNTRIES:
        fields["country"] = [_("Use a two-letter country code such as CO or PE.")]
    if currency not in _CURRENCIES:
        fields["currency"] = [_("Use a three-letter currency code such as COP or PEN.")]
    if len(region) > 120:
        fields["region"] = [_("Too long.")]
    if fields:
        raise ValidationFailed(_("Check the cooperative's details."), fields=fields)
    base = slugify(name)
    slug, n = base, 1
    while db.session.scalar(select(Cooperative.id).where(Cooperative.slug == slug)):
        n += 1
        slug = f"{base}-{n}"
    coop = Cooperative(name=name, country=country, currency=currency, region=region, slug=slug)
    db.session.add(coop)
    db.session.flush()
    grant_role(coop, founder, "manager")
    return coop


def grant_role(coop: Cooperative, user: User, role: str) -> Membership:
    """Give a role; granting one already held changes nothing."""
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
    return membership


def grant_staff_role(coop: Cooperative, email: str, role: str) -> Membership:
    """Make an existing account a manager or treasurer of the coop. Farmers are added with
    add_farmer (they need a member number and payout details); unknown e-mails are refused."""
    if role == "farmer":
        raise ValidationFailed(_("Add farmers with the farmer form: they need a member "
                                 "number and payout details."), fields={"role": []})
    user = db.session.scalar(select(User).where(
        User.email == auth_services.normalise_email(email)))
    if user is None:
        raise ValidationFailed(_("Nobody with that e-mail has a Minga account yet."),
                               fields={"email": [_("No account.")]})
    return grant_role(coop, user, role)


def revoke_role(coop: Cooperative, user: User, role: str) -> None:
    """Take a role away; the last manager of a cooperative cannot be removed."""
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
    stmt = select(FarmerProfile).where(FarmerProfile.coop_id == coop.id)
    q = (q or "").strip()[:80]
    if q:
        like = _like(q)
        stmt = stmt.where(or_(FarmerProfile.member_number.ilike(like, escape="\\"),
                              FarmerProfile.user.has(User.name.ilike(like, escape="\\"))))
    if rail in PAYOUT_RAILS:
        stmt = stmt.where(FarmerProfile.payout_rail == rail)
    return paginate(stmt.order_by(FarmerProfile.member_number, FarmerProfile.id), page, per_page)


def farmer_profile(coop_id: int, user_id: int) -> FarmerProfile | None:
    return db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.coop_id == coop_id, FarmerProfile.user_id == user_id))


def get_farmer_profile(coop: Cooperative, profile_id: int) -> FarmerProfile:
    profile = db.session.get(FarmerProfile, profile_id)
    if profile is None or profile.coop_id != coop.id:
        raise NotFound(_("No such member."))
    return profile


def parse_hectares(value, field: str, *, allow_zero: bool = False) -> int:
    """Hectares ("1.5", or the Decimal a form's HectaresField read in the page's locale) to
    square metres (15000); refuses negatives, junk, more than 100,000 ha."""
    from ..common.quantities import MACHINE_NUMBER
    if isinstance(value, Decimal):
        ha = value
    elif value in (None, "") or not MACHINE_NUMBER.fullmatch(str(value).strip()):
        ha = None
    else:
        try:
            ha = Decimal(str(value).strip())
        except InvalidOperation:
            ha = None
    if ha is None or not ha.is_finite():
        raise ValidationFailed(_("Give hectares as a number, like 1.5."),
                               fields={field: [_("A number of hectares.")]})
    m2 = int((ha * 10000).to_integral_value())
    if m2 < 0 or (m2 == 0 and not allow_zero) or m2 > 100_000 * 10_000:
        raise ValidationFailed(_("Hectares must be more than zero and realistic."),
                               fields={field: [_("Out of range.")]})
    return m2


def add_farmer(coop: Cooperative, *, name: str, email: str | None, password: str,
               phone: str | None,
               member_number: str, national_id: str, payout_rail: str = "cash",
               payout_account: str = "", bank_name: str = "", gender: str | None = None,
               household_size: int | None = None, locale: str = "es") -> FarmerProfile:
    """A farmer member: their account (created, or an existing one joined), profile and role.
    Without an e-mail the phone number is required and is their login; `password` is then a
    first-login code, and the farmer chooses a PIN when they first log in."""
    member_number = (member_number or "").strip()
    national_id = (national_id or "").strip()
    fields = {}
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
    if db.session.scalar(select(FarmerProfile.id).where(
            FarmerProfile.coop_id == coop.id, FarmerProfile.member_number == member_number)):
        raise Conflict(_("Member number %(n)s is already used in this cooperative.",
                         n=member_number), code="member_number_taken",
                       fields={"member_number": [_("Already used.")]})
    if db.session.scalar(select(FarmerProfile.id).where(
            FarmerProfile.coop_id == coop.id, FarmerProfile.national_id == national_id)):
        # One person, one membership: a second profile would count the family twice.
        raise Conflict(_("A member with national ID %(n)s already exists in this cooperative.",
                         n=national_id), code="national_id_taken",
                       fields={"national_id": [_("Already a member.")]})
    without_email = email is None or not str(email).strip()
    if without_email:
        if phone is None or not str(phone).strip():
            raise ValidationFailed(_("Give the farmer's phone number or e-mail."),
                                   fields={"phone": [_("Required when there is no e-mail.")]})
        existing = db.session.scalar(select(User).where(
            User.phone == auth_services.normalise_phone(phone)))
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
                                         must_set_pin=without_email)
    profile = FarmerProfile(coop_id=coop.id, user_id=user.id, member_number=member_number,
                            national_id=national_id, payout_rail=payout_rail,
                            payout_account=account, bank_name=(bank_name or "").strip(),
                            gender=gender or None, household_size=household_size)
    db.session.add(profile)
    db.session.flush()
    grant_role(coop, user, "farmer")
    return profile


def update_payout(profile: FarmerProfile, rail: str, account: str, bank_name: str = "") -> None:
    if rail not in PAYOUT_RAILS:
        raise ValidationFailed(_("Choose a payout method."),
                               fields={"payout_rail": [_("Choose a payout method.")]})
    profile.payout_account = validate_payout_account(rail, account)
    profile.payout_rail = rail
    profile.bank_name = (bank_name or "").strip()[:80]
    db.session.flush()


def add_plot(profile: FarmerProfile, *, name: str, hectares, replaced_crop: str | None,
             illicit_hectares, licit_crop: str | None = None) -> Plot:
    """A plot with its area and the illicit crop (and hectares of it) that it replaced."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed(_("Give the plot a name (at most 120 characters)."),
                               fields={"name": [_("Required.")]})
    area = parse_hectares(hectares, "hectares")
    replaced = (replaced_crop or "").strip() or None
    if replaced and replaced not in ILLICIT_CROPS:
        raise ValidationFailed(_("Choose coca, opium poppy or cannabis, or none."),
                               fields={"replaced_crop": [_("Unknown crop.")]})
    if not isinstance(illicit_hectares, Decimal):
        illicit_hectares = str(illicit_hectares or "").strip() or "0"
    illicit = parse_hectares(illicit_hectares, "illicit_hectares", allow_zero=True)
    if illicit and not replaced:
        raise ValidationFailed(_("Say which illicit crop those hectares grew."),
                               fields={"replaced_crop": [_("Required with illicit hectares.")]})
    if illicit > area:
        raise ValidationFailed(_("Replaced hectares cannot exceed the plot's hectares."),
                               fields={"illicit_hectares": [_("More than the plot.")]})
    licit = (licit_crop or "").strip() or None
    if licit is not None:
        from ..catalog.labels import CROPS
        if licit not in CROPS:
            raise ValidationFailed(_("Choose the legal crop from the list."),
                                   fields={"licit_crop": [_("Unknown crop.")]})
    plot = Plot(farmer_id=profile.id, name=name, area_m2=area, replaced_crop=replaced,
                illicit_area_m2=illicit, licit_crop=licit)
    db.session.add(plot)
    db.session.flush()
    return plot


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
